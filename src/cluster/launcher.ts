/**
 * `npm run cluster:up` / `npm run cluster:down`: a local Strata cluster
 * without Docker (src/cluster/local-topology.ts does the work; this is its
 * command line). Exit codes: 0 done, 1 a step failed (the reason is printed),
 * 2 a bad option, 130 interrupted.
 */
import { parseArgs } from 'node:util';
import { clusterDown, clusterUp, describeTopology, LauncherError, restartNode, stateDir } from './local-topology.js';

const USAGE = `usage: node dist/src/cluster/launcher.js <command> [options]

  up [--nodes N] [--fronts F] [--shards S] [--no-haproxy] [-- <more node flags>]
      a 6-node Redis Cluster, N Strata nodes n1..nN (default 3, each --fronts 1 --shards 1 by default)
      and HAProxy in front when it is on the PATH; prints every address
  down
      stops exactly the processes up recorded, and removes their data
  restart <node id>
      starts a recorded node that died (or was killed) again, on its port

  --dir D   the state directory (default: STRATA_CLUSTER_DIR, else <tmpdir>/strata-cluster)
`;

/** A whole positive number from a flag, or a usage error naming it. */
function count(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[0-9]+$/.test(text)) throw new LauncherError('usage', `--${name} must be a whole number, not ${JSON.stringify(text)}`);
  return Number(text);
}

async function main(argv: readonly string[]): Promise<number> {
  const split = argv.indexOf('--');
  const nodeArgs = split === -1 ? [] : argv.slice(split + 1);
  const { values, positionals } = parseArgs({
    args: split === -1 ? [...argv] : argv.slice(0, split),
    allowPositionals: true,
    options: {
      nodes: { type: 'string' },
      fronts: { type: 'string' },
      shards: { type: 'string' },
      dir: { type: 'string' },
      'no-haproxy': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, ...rest] = positionals;
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const dir = values.dir;
  switch (command) {
    case 'up': {
      if (rest.length > 0) throw new LauncherError('usage', `up takes no arguments besides options (got ${rest.join(' ')})`);
      const aborter = new AbortController();
      // Kept (not once): a second Ctrl-C while `up` stops what it started must not kill the launcher half-way.
      const interrupt = () => aborter.abort();
      process.on('SIGINT', interrupt);
      process.on('SIGTERM', interrupt);
      try {
        const nodes = count('nodes', values.nodes);
        const fronts = count('fronts', values.fronts);
        const shards = count('shards', values.shards);
        const topology = await clusterUp({
          ...(dir === undefined ? {} : { dir }),
          ...(nodes === undefined ? {} : { nodes }),
          ...(fronts === undefined ? {} : { fronts }),
          ...(shards === undefined ? {} : { shards }),
          haproxy: values['no-haproxy'] ? false : 'auto',
          nodeArgs,
          say,
          signal: aborter.signal,
        });
        say('');
        for (const line of describeTopology(topology)) say(line);
        return 0;
      } catch (err) {
        if (aborter.signal.aborted) {
          process.stderr.write('cluster:up: interrupted; stopped what it had started\n');
          return 130;
        }
        throw err;
      } finally {
        process.off('SIGINT', interrupt);
        process.off('SIGTERM', interrupt);
      }
    }
    case 'down': {
      if (rest.length > 0) throw new LauncherError('usage', `down takes no arguments besides --dir (got ${rest.join(' ')})`);
      const report = await clusterDown(dir);
      for (const line of report.lines) say(line);
      return report.processes.some((p) => p.outcome === 'stuck') ? 1 : 0;
    }
    case 'restart': {
      const [id, ...extra] = rest;
      if (id === undefined || extra.length > 0) throw new LauncherError('usage', 'restart takes one node id (n1, n2, …)');
      const node = await restartNode(id, dir === undefined ? {} : { dir });
      say(`${node.id} ${node.url} pid ${node.pid} (state ${stateDir(dir)})`);
      return 0;
    }
    default:
      throw new LauncherError('usage', command === undefined ? 'a command is needed' : `unknown command ${JSON.stringify(command)}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const usage = err instanceof LauncherError ? err.reason === 'usage' : (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true;
    process.stderr.write(`cluster: ${err instanceof Error ? err.message : String(err)}\n`);
    if (usage) process.stderr.write(`\n${USAGE}`);
    process.exitCode = usage ? 2 : 1;
  },
);
