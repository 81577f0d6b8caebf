import type { MessagePort } from 'node:worker_threads';
import type { MemberConfig } from '../cluster/members.js';
import type { StrataConfig } from '../config/schema.js';
import type { ErrorCode } from '../errors.js';
import type { Question, SupervisorAnswer } from '../http/app.js';
import { errorBody } from '../http/respond.js';
import type { HotIndexShape } from '../l1/hot-index.js';

export type { Question, SupervisorAnswer } from '../http/app.js';

/** Supervisor → front. */
export type ToFront =
  /** A (new) worker owns `shard`: batches go to `port`; its hot-read index is `hotIndex`. */
  | { readonly type: 'shard'; readonly shard: number; readonly threadId: number; readonly port: MessagePort; readonly hotIndex: SharedArrayBuffer | null }
  /** The shard's worker is gone: what it owed fails with `code`. */
  | { readonly type: 'shardDown'; readonly shard: number; readonly threadId: number; readonly code: ErrorCode; readonly message: string }
  | { readonly type: 'answer'; readonly id: number; readonly answer: SupervisorAnswer }
  /** The ring's members (this node included) changed: route key reads by them. */
  | { readonly type: 'ring'; readonly members: readonly MemberConfig[] }
  /** Every shard's port has been sent: listen now. */
  | { readonly type: 'listen' }
  /** Shutdown, step 1: stop accepting, refuse new work, report 'drained' when nothing is in flight (or at the deadline). */
  | { readonly type: 'drain'; readonly deadlineMs: number }
  /** Shutdown, step 2: close every connection and end the thread. */
  | { readonly type: 'close' }
  /** Test-only: fail as a bug in a handler would (an uncaught exception). */
  | { readonly type: 'crash' };

/** Front → supervisor. */
export type FromFront =
  | { readonly type: 'listening' }
  | { readonly type: 'listenFailed'; readonly message: string }
  | { readonly type: 'ask'; readonly id: number; readonly question: Question }
  /** The shard's worker sat on a batch past the deadline: replace it. */
  | { readonly type: 'timeout'; readonly shard: number; readonly threadId: number }
  | { readonly type: 'drained' };

/** What a front thread starts with. */
export interface FrontWorkerData {
  readonly front: number;
  readonly config: StrataConfig;
  /** The port to listen on (never 0: every front must bind the same number for SO_REUSEPORT). */
  readonly port: number;
  /** The fronts' counters (counters/layout.ts); this front writes region `front`. */
  readonly frontCounters: SharedArrayBuffer;
  readonly hotIndexShape: HotIndexShape | null;
  /** This node's id on the ring and in x-strata-node (resolved: never empty). */
  readonly nodeId: string;
}

/** The 500 a front answers in place of what the supervisor could not give. */
export function internalAnswer(message: string): SupervisorAnswer {
  return { status: 500, contentType: 'application/json', body: errorBody('E_INTERNAL', message) };
}
