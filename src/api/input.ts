import type { ErrorCode } from '../errors.js';
import { keyProblem } from './key.js';

/**
 * The API's input rules that every way in shares: the HTTP routes, and the
 * PostgreSQL outbox (whose entries are checked as POST /v1/invalidate's
 * body). Keys are checked in key.ts.
 */

/** A rejected input: the code to answer with and why. */
export interface InputProblem {
  readonly code: ErrorCode;
  readonly message: string;
}

export const MAX_TAGS = 32;
export const MAX_TAG_BYTES = 128;
export const MAX_CONTENT_TYPE_LENGTH = 256;
const TAG_FORBIDDEN = /[\u0000-\u001f\u007f-\u009f,]/;

/** Why a tag is unacceptable, or null. */
export function tagProblem(tag: string): string | null {
  if (tag.length === 0) return 'a tag is empty';
  if (Buffer.byteLength(tag) > MAX_TAG_BYTES) return `a tag is longer than ${MAX_TAG_BYTES} bytes`;
  if (TAG_FORBIDDEN.test(tag)) return 'a tag contains a comma or control characters';
  // A lone surrogate has no UTF-8 form: Redis and the bus would see another tag (as for keys, see key.ts).
  if (!tag.isWellFormed()) return 'a tag is not valid Unicode (a lone surrogate has no UTF-8 form)';
  return null;
}

/** Most keys (or tags) in one mget or invalidate (a request body, or a PostgreSQL outbox entry). */
export const MAX_BATCH_KEYS = 1000;

/**
 * An invalidation as POST /v1/invalidate's body and a PostgreSQL outbox
 * entry give it: {"keys": [...], "tags": [...]}, one of the two at least.
 */
export function invalidationOf(body: Record<string, unknown>): { keys: string[]; tags: string[] } | InputProblem {
  const keys = stringList(body, 'keys', MAX_BATCH_KEYS, keyProblem, 'E_INVALID_KEY');
  if (isProblem(keys)) return keys;
  const tags = stringList(body, 'tags', MAX_BATCH_KEYS, tagProblem, 'E_INVALID_TAGS');
  if (isProblem(tags)) return tags;
  if (keys === undefined && tags === undefined) return { code: 'E_INVALID_BODY', message: 'the body must be {"keys": [...], "tags": [...]}' };
  return { keys: keys ?? [], tags: tags ?? [] };
}

/** A list field of an mget/invalidate body, checked item by item. */
export function stringList(
  body: Record<string, unknown>,
  field: string,
  max: number,
  check: (item: string) => string | null,
  code: ErrorCode,
): string[] | InputProblem | undefined {
  const value = body[field];
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) return { code: 'E_INVALID_BODY', message: `"${field}" must be an array of strings` };
  if (value.length > max) return { code: 'E_TOO_MANY_KEYS', message: `"${field}" has ${value.length} items; at most ${max}` };
  for (const item of value) {
    if (typeof item !== 'string') return { code: 'E_INVALID_BODY', message: `"${field}" must be an array of strings` };
    const problem = check(item);
    if (problem !== null) return { code, message: `${field}: ${problem}` };
  }
  return value as string[];
}

export function isProblem(value: unknown): value is InputProblem {
  return typeof value === 'object' && value !== null && 'code' in value && 'message' in value;
}
