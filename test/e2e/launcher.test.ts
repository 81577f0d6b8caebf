import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterDown, clusterUp, type HaproxyRecord, readTopology, restartNode, type Topology } from '../../src/cluster/local-topology.js';
import { Ring } from '../../src/cluster/ring.js';
import { until } from '../helpers/node.js';

// The local launcher (npm run cluster:up / cluster:down) end to end: a real Redis Cluster, three real
// Strata nodes and HAProxy, started once for the file from a state directory of its own.

const IDS = ['n1', 'n2', 'n3'];
const ringOf = (ids: readonly string[]) => new Ring(ids.map((id) => ({ id, weight: 1 })));
const RING = ringOf(IDS);

interface ClusterView {
  ring: { fingerprint: string; members: { id: string; weight: number }[] };
  members: { id: string; state: string }[];
}

interface Answer {
  status: number;
  /** x-strata-node: the node that served it. */
  node: string | null;
  /** x-haproxy-server: the node HAProxy sent it to. */
  balancedTo: string | null;
  body: string;
}

async function get(base: string, key: string): Promise<Answer> {
  const res = await fetch(`${base}/v1/keys/${encodeURIComponent(key)}`);
  return { status: res.status, node: res.headers.get('x-strata-node'), balancedTo: res.headers.get('x-haproxy-server'), body: await res.text() };
}

async function put(base: string, key: string, value: string): Promise<Answer> {
  const res = await fetch(`${base}/v1/keys/${encodeURIComponent(key)}?ttl=300`, { method: 'PUT', body: value, headers: { 'content-type': 'text/plain' } });
  return { status: res.status, node: res.headers.get('x-strata-node'), balancedTo: res.headers.get('x-haproxy-server'), body: await res.text() };
}

async function clusterView(base: string): Promise<ClusterView> {
  return (await (await fetch(`${base}/v1/cluster`)).json()) as ClusterView;
}

/** Whether a pid is gone: no /proc entry, or a zombie not reaped yet. */
function gone(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8')
      .replace(/^.*\) /s, '')
      .startsWith('Z');
  } catch {
    return true;
  }
}

/** Every pid the state file records. */
function recordedPids(topology: Topology): number[] {
  return [...topology.redis.nodes, ...topology.nodes, ...(topology.haproxy === null ? [] : [topology.haproxy])].map((p) => p.pid);
}

describe('npm run cluster:up / cluster:down (src/cluster/local-topology.ts)', () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'strata-launcher-')), 'cluster');
  let topology: Topology;
  let haproxy: HaproxyRecord;
  const url = (id: string) => (topology.nodes.find((n) => n.id === id) as { url: string }).url;

  beforeAll(async () => {
    // haproxy: true — the launcher fails without it (and so does this file): it is installed here and in CI.
    topology = await clusterUp({ dir, haproxy: true });
    haproxy = topology.haproxy as HaproxyRecord;
  }, 60_000);

  afterAll(async () => {
    await clusterDown(dir);
    rmSync(join(dir, '..'), { recursive: true, force: true });
  }, 30_000);

  it('records what it started: a 6-node Redis Cluster, n1..n3 and HAProxy, each pid running its recorded command', () => {
    expect(readTopology(dir)).toEqual(topology);
    expect(topology.redis.nodes).toHaveLength(6);
    expect(topology.redis.seeds).toEqual(topology.redis.nodes.map((r) => `127.0.0.1:${r.port}`));
    expect(topology.nodes.map((n) => n.id)).toEqual(IDS);
    expect(haproxy).not.toBeNull();
    for (const p of [...topology.redis.nodes, ...topology.nodes, haproxy]) {
      expect(readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').replace(/\0+$/, '').split('\0'), p.name).toEqual(p.cmdline);
      expect(existsSync(p.log), p.log).toBe(true);
    }
    for (const n of topology.nodes) expect(n.cmdline).toEqual(expect.arrayContaining(['--node-id', n.id, '--registry', 'on', '--routing', 'owner']));
  });

  it('a second up from the same state directory refuses while the cluster runs, and leaves it as it was', async () => {
    await expect(clusterUp({ dir, haproxy: false })).rejects.toMatchObject({ reason: 'running', message: expect.stringContaining('cluster:down') });
    expect(readTopology(dir)).toEqual(topology);
  });

  it('every node is ready and sees the same ring of the 3 members', async () => {
    // `up` returned once they agreed; a heartbeat delayed by a busy machine may show a member as suspect for a moment.
    await until(async () => {
      for (const id of IDS) {
        const view = await clusterView(url(id));
        if (view.members.some((m) => m.state !== 'up') || view.ring.members.length !== IDS.length) return false;
      }
      return true;
    }, 10_000);
    for (const id of IDS) {
      expect((await fetch(`${url(id)}/readyz`)).status, id).toBe(200);
      const view = await clusterView(url(id));
      expect(view.ring.members.map((m) => m.id)).toEqual(IDS);
      expect(view.members.map((m) => [m.id, m.state])).toEqual(IDS.map((m) => [m, 'up']));
      expect(view.ring.fingerprint, id).toBe(RING.fingerprint);
    }
  });

  it('a key put through one node is served by its owner, the one the ring computes, through every node', async () => {
    const key = 'greeting';
    expect((await put(url('n1'), key, 'hello world')).status).toBe(204);
    for (const id of IDS) {
      const answer = await get(url(id), key);
      expect(answer, `GET through ${id}`).toMatchObject({ status: 200, body: 'hello world', node: RING.owner(key) });
    }
  });

  it('keys spread over all three owners', async () => {
    const owners = new Map<string, number>();
    for (let i = 0; i < 60; i++) {
      const key = `spread:${i}`;
      expect((await put(url(IDS[i % 3] as string), key, `v${i}`)).status).toBe(204);
      const answer = await get(url(IDS[(i + 1) % 3] as string), key);
      expect(answer, key).toMatchObject({ status: 200, body: `v${i}`, node: RING.owner(key) });
      owners.set(answer.node as string, (owners.get(answer.node as string) ?? 0) + 1);
    }
    expect([...owners.keys()].sort()).toEqual(IDS);
  });

  it('through HAProxy: a key always goes to one node (its path hashed, not the query string) and is served by its owner', async () => {
    const picked = new Set<string>();
    for (let i = 0; i < 30; i++) {
      const key = `lb:${i}`;
      // The PUT has ?ttl=300, the GETs no query: HAProxy picks the same node for both.
      const stored = await put(haproxy.url, key, `lb${i}`);
      expect(stored.status).toBe(204);
      expect(IDS).toContain(stored.balancedTo);
      picked.add(stored.balancedTo as string);
      for (let round = 0; round < 3; round++) {
        const answer = await get(haproxy.url, key);
        expect(answer, `${key} round ${round}`).toMatchObject({ status: 200, body: `lb${i}`, node: RING.owner(key), balancedTo: stored.balancedTo });
      }
    }
    // The hash spreads keys over the nodes (30 keys all on one node: chance 3 · 3^-30).
    expect(picked.size).toBeGreaterThan(1);
  });

  it('a killed node: its keys are served by the others at once, it leaves the ring within the grace period, and rejoins when restarted', async () => {
    const key = Array.from({ length: 100 }, (_, i) => `owned-by-n3:${i}`).find((k) => RING.owner(k) === 'n3') as string;
    expect((await put(url('n1'), key, 'survives')).status).toBe(204);
    expect(await get(url('n1'), key)).toMatchObject({ status: 200, node: 'n3' });

    const n3 = topology.nodes[2] as { pid: number };
    process.kill(n3.pid, 'SIGKILL');
    await until(() => gone(n3.pid));
    // The forward is refused (or n3's breaker is open): n1 serves the key itself.
    expect(await get(url('n1'), key)).toMatchObject({ status: 200, body: 'survives', node: 'n1' });

    // n3's record expires in the registry (3 s) and the grace period (2 s) passes: n1's and n2's rings drop it.
    const two = ringOf(['n1', 'n2']);
    for (const id of ['n1', 'n2']) {
      await until(async () => (await clusterView(url(id))).ring.members.length === 2, 15_000, 200);
      const view = await clusterView(url(id));
      expect(view.ring.members.map((m) => m.id)).toEqual(['n1', 'n2']);
      expect(view.ring.fingerprint).toBe(two.fingerprint);
    }
    // The key has a new owner on the two-node ring; the fronts take the ring by message from their supervisor.
    const heir = two.owner(key);
    const other = heir === 'n1' ? 'n2' : 'n1';
    await until(async () => (await get(url(other), key)).node === heir, 10_000, 100);
    expect(await get(url(other), key)).toMatchObject({ status: 200, body: 'survives', node: heir });

    const restarted = await restartNode('n3', { dir });
    expect(restarted.pid).not.toBe(n3.pid);
    expect(restarted.port).toBe(topology.nodes[2]?.port);
    expect(readTopology(dir)?.nodes[2]?.pid).toBe(restarted.pid);
    await until(async () => (await clusterView(url('n1'))).ring.fingerprint === RING.fingerprint, 15_000, 200);
    // The fronts take the new ring by message from their supervisor: poll until the forward goes to n3.
    await until(async () => (await get(url('n1'), key)).node === 'n3', 10_000, 100);
    expect(await get(url('n1'), key)).toMatchObject({ status: 200, body: 'survives', node: 'n3' });
  }, 40_000);

  it('down stops every recorded process still running its recorded command, removes the state directory; a second down has nothing to stop', async () => {
    const recorded = readTopology(dir) as Topology;
    const pids = recordedPids(recorded);
    expect(pids).toHaveLength(10);
    expect(pids.filter(gone)).toEqual([]);
    // As if HAProxy's pid had been reused by another program: down must leave it alone.
    const reused = recorded.haproxy as HaproxyRecord;
    writeFileSync(recorded.stateFile, JSON.stringify({ ...recorded, haproxy: { ...reused, cmdline: ['haproxy', '-f', '/elsewhere.cfg'] } }));
    const stillHaproxy = () => readFileSync(`/proc/${reused.pid}/cmdline`, 'utf8').replace(/\0+$/, '') === reused.cmdline.join('\0');
    try {
      const report = await clusterDown(dir);
      expect(report.found).toBe(true);
      expect(report.processes.map((p) => p.pid).sort()).toEqual([...pids].sort());
      expect(report.processes.find((p) => p.pid === reused.pid)?.outcome).toBe('other');
      expect(report.processes.filter((p) => p.pid !== reused.pid && p.outcome !== 'stopped' && p.outcome !== 'killed')).toEqual([]);
      const stopped = pids.filter((pid) => pid !== reused.pid);
      await until(() => stopped.every(gone), 5000);
      expect(stillHaproxy()).toBe(true);
      expect(existsSync(dir)).toBe(false);
    } finally {
      // This file stops the HAProxy it told down to leave alone.
      if (!gone(reused.pid) && stillHaproxy()) process.kill(reused.pid, 'SIGKILL');
    }
    await until(() => gone(reused.pid));

    const again = await clusterDown(dir);
    expect(again).toMatchObject({ found: false, processes: [] });
    expect(again.lines.join('\n')).toMatch(/nothing to stop/);
  }, 40_000);
});
