#!/usr/bin/env -S node --max-semi-space-size=2
// The flag keeps the main thread's young generation at 2 MiB per semi-space instead of V8's 16 (docs/memory.md);
// `npm start` passes the same flag, since a flag cannot be set once V8's heap exists.
import { helpText, loadConfig } from './config/load.js';
import type { StrataConfig } from './config/schema.js';
import { ConfigError, EXIT, PortInUseError, StrataError } from './errors.js';
import { CLOSE_WAIT_MS } from './front/supervisor.js';
import { startNode } from './node.js';

/** Entry point: `strata [options]`. Exit 2 on bad configuration, 1 on other startup failures. */
async function main(argv: readonly string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(helpText());
    return;
  }
  let config: StrataConfig;
  try {
    config = await loadConfig({ argv, env: process.env, cwd: process.cwd() });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`strata: ${err.message}\n`);
      process.exit(EXIT.CONFIG);
    }
    throw err;
  }
  const node = await startNode(config, { say: (line) => process.stdout.write(`${line}\n`) });
  const mib = (config.l1MaxBytes / 1048576).toFixed(config.l1MaxBytes % 1048576 === 0 ? 0 : 1);
  const l2 = node.internals.l2;
  process.stdout.write(
    `strata listening on http://${config.host}:${node.port} with ${config.fronts} front${config.fronts === 1 ? '' : 's'} and ${config.shards} shard${config.shards === 1 ? '' : 's'}, L1 budget ${mib} MiB, ${l2 === null ? 'no L2 configured (L1 only)' : `L2 ${l2.describe()}`}, node ${node.nodeId}${clusterSummary(config)}\n`,
  );
  const status = node.l2Status();
  if (status.configured && !status.up) {
    const why = status.lastError ? ` (${status.lastError})` : '';
    process.stderr.write(
      `strata: warning: the L2 is not reachable yet${why}; L1 hits are served, everything else gets 503 E_L2_UNAVAILABLE and /readyz 503 until it is\n`,
    );
  }
  let signalled = false;
  const stop = (signal: string) => {
    if (signalled) return;
    signalled = true;
    process.stdout.write(`strata: ${signal}: draining\n`);
    // The drain (a hung front is waited for CLOSE_WAIT_MS past it), the fronts' stop (CLOSE_WAIT_MS), then the workers, PostgreSQL and the L2.
    const force = setTimeout(
      () => {
        process.stderr.write('strata: drain took too long; exiting\n');
        process.exit(EXIT.FAILURE);
      },
      config.drainTimeoutMs + 2 * CLOSE_WAIT_MS + 1500,
    );
    force.unref();
    node.close().then(
      () => {
        process.stdout.write('strata: stopped\n');
        process.exit(EXIT.OK);
      },
      (err: unknown) => {
        process.stderr.write(`strata: shutdown failed: ${(err as Error).stack ?? err}\n`);
        process.exit(EXIT.FAILURE);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main(process.argv.slice(2)).catch((err: unknown) => {
  const code = err instanceof StrataError ? ` [${err.code}]` : '';
  process.stderr.write(`strata: cannot start${code}: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(err instanceof PortInUseError ? EXIT.PORT_IN_USE : EXIT.FAILURE);
});

/** How the node finds its peers, for the start line. */
function clusterSummary(config: StrataConfig): string {
  const parts: string[] = [];
  if (config.members.length > 0) parts.push(`${config.members.length} configured members`);
  if (config.registry) parts.push('the registry');
  if (parts.length === 0) return '';
  return ` (ring from ${parts.join(' and ')}, routing ${config.routing})`;
}
