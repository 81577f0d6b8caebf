/**
 * Which thread of a Strata process does what, and the CPU each role took.
 *
 * Roles:
 * - front: an HTTP front (parses, answers hot-read-index hits, hops to shards);
 * - shard: a shard worker owning an L1 partition;
 * - main: the supervisor (bus subscription, metrics), when it is not a front;
 *   a main thread that is also a front counts as front;
 * - v8: V8's platform threads (GC helpers, concurrent compilation, Node's
 *   delayed-task scheduler);
 * - other: libuv's thread pool, the inspector's signal thread, any thread
 *   not recognised (and any that started after the roles were read).
 *
 * A node whose /v1/stats has `threads` ({ main, fronts, shards }, Linux thread
 * ids) says which are its fronts and shards. Without it (nodes from before
 * several fronts): the main thread (tid = pid) is the one front, and the shards
 * are the threads that wait in epoll besides it and Node's delayed-task
 * scheduler.
 *
 * Node 20 names none of its threads (every comm is "node"), so V8's threads
 * are found by what they wait on when the process is idle: the delayed-task
 * scheduler is the first thread that runs an event loop (epoll) after the main
 * thread, created at start before any worker; V8's worker threads, created
 * right after it, wait on one shared condition variable, a different one from
 * libuv's pool.
 * Where comm names exist (Node 22 and later, "V8 DefaultWorke", "libuv-worker")
 * they are used first.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { cpuOf } from './harness.js';

export type Role = 'front' | 'shard' | 'main' | 'v8' | 'other';
export const ROLES: readonly Role[] = ['front', 'shard', 'main', 'v8', 'other'];

/** What /v1/stats says of the node's threads, when it says it. */
export interface ReportedThreads {
  main: number;
  fronts: number[];
  shards: number[];
}

/** System call numbers of an idle thread's wait. */
const SYSCALLS: Record<string, { epoll: readonly number[]; futex: number }> = {
  x64: { epoll: [232, 281, 441], futex: 202 }, // epoll_wait, epoll_pwait, epoll_pwait2
  arm64: { epoll: [22, 441], futex: 98 }, // epoll_pwait, epoll_pwait2
};

/** sizeof(pthread_cond_t) on glibc: futex words closer than this belong to one condition variable. */
const CONDVAR_BYTES = 48n;

/** What an idle thread was blocked in: its system call and first argument (the futex address for futex). */
interface Wait {
  syscall: number;
  arg0: string;
}

function commOf(pid: number, tid: number): string {
  try {
    return readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/** Samples /proc/PID/task/TID/syscall until every thread has been seen blocked (or ~1 s has passed). */
async function idleWaits(pid: number): Promise<Map<number, Wait>> {
  const waits = new Map<number, Wait>();
  for (let attempt = 0; attempt < 50; attempt++) {
    const tids = readdirSync(`/proc/${pid}/task`).map(Number);
    for (const tid of tids) {
      if (waits.has(tid)) continue;
      try {
        const [nr, arg0] = readFileSync(`/proc/${pid}/task/${tid}/syscall`, 'utf8').trim().split(' ');
        // "running", or -1 (blocked in no system call): try again later.
        if (nr === undefined || arg0 === undefined || !/^\d+$/.test(nr)) continue;
        waits.set(tid, { syscall: Number(nr), arg0 });
      } catch {
        // thread exited
      }
    }
    if (tids.every((tid) => waits.has(tid))) break;
    await sleep(20);
  }
  return waits;
}

/**
 * Role of each thread of the Strata process `pid`, read while the node is
 * idle. `reported` is /v1/stats `threads` if the node has it; without it the
 * node must have one front, and `shards` event-loop threads besides it.
 */
export async function threadRoles(pid: number, reported: ReportedThreads | null, shards: number): Promise<Map<number, Role>> {
  const calls = SYSCALLS[process.arch];
  if (calls === undefined) throw new Error(`thread roles: no system call table for ${process.arch}`);
  const waits = await idleWaits(pid);
  const roles = new Map<number, Role>();
  const tids = [...waits.keys()].sort((a, b) => a - b);
  for (const tid of tids) {
    const comm = commOf(pid, tid);
    if (/^(V8 |DelayedTask|PlatformWorker)/.test(comm)) roles.set(tid, 'v8');
    else if (/^libuv-worker/.test(comm)) roles.set(tid, 'other');
  }
  if (reported !== null) {
    for (const tid of reported.fronts) roles.set(tid, 'front');
    for (const tid of reported.shards) roles.set(tid, 'shard');
    if (!roles.has(reported.main)) roles.set(reported.main, 'main');
  } else {
    roles.set(pid, 'front');
  }
  const loops = tids.filter((tid) => !roles.has(tid) && calls.epoll.includes(waits.get(tid)?.syscall ?? -1));
  const scheduler = loops[0];
  if (scheduler !== undefined && (reported !== null || loops.length === shards + 1)) roles.set(scheduler, 'v8');
  if (reported === null) {
    const workers = loops.slice(1);
    if (workers.length !== shards) {
      throw new Error(
        `thread roles: ${loops.length} event-loop threads besides the main thread, expected Node's scheduler and ${shards} shards; ` +
          'a node with several fronts must report /v1/stats threads',
      );
    }
    for (const tid of workers) roles.set(tid, 'shard');
  }
  // V8's worker threads: those waiting on the condition variable of the first futex waiter after the scheduler.
  // glibc's condition variable has two futex words (its waiters alternate between them), hence "near".
  const futexWaiters = tids.filter((tid) => !roles.has(tid) && waits.get(tid)?.syscall === calls.futex && (scheduler === undefined || tid > scheduler));
  const first = futexWaiters[0];
  if (first !== undefined) {
    const address = BigInt(waits.get(first)?.arg0 ?? 0);
    for (const tid of futexWaiters) {
      const distance = BigInt(waits.get(tid)?.arg0 ?? 0) - address;
      if (distance > -CONDVAR_BYTES && distance < CONDVAR_BYTES) roles.set(tid, 'v8');
    }
  }
  for (const tid of tids) if (!roles.has(tid)) roles.set(tid, 'other');
  return roles;
}

/** CPU seconds each role took between two cpuOf() readings; a thread not in `roles` counts as other. */
export function cpuByRole(before: ReturnType<typeof cpuOf>, after: ReturnType<typeof cpuOf>, roles: Map<number, Role>): Record<Role, number> {
  const byRole: Record<Role, number> = { front: 0, shard: 0, main: 0, v8: 0, other: 0 };
  for (const [tid, [, seconds]] of after.threads) {
    byRole[roles.get(tid) ?? 'other'] += seconds - (before.threads.get(tid)?.[1] ?? 0);
  }
  return byRole;
}

/** How many threads hold each role, e.g. "front 1, shard 2, v8 5, other 5". */
export function describeRoles(roles: Map<number, Role>): string {
  return ROLES.map((role) => [role, [...roles.values()].filter((r) => r === role).length] as const)
    .filter(([, n]) => n > 0)
    .map(([role, n]) => `${role} ${n}`)
    .join(', ');
}
