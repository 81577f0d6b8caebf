import { readlinkSync } from 'node:fs';

/**
 * This thread's Linux thread id (from /proc/thread-self, "PID/task/TID"), or
 * 0 where there is none. The node reports each thread's id in /v1/stats so
 * that per-thread CPU can be read from /proc/PID/task/TID/stat.
 */
export function linuxThreadId(): number {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    return Number.isInteger(tid) ? tid : 0;
  } catch {
    return 0;
  }
}
