import type { Answer } from './transport.js';

/** Errors the typed client throws: the server's stable codes (docs/errors.md), and its own. */

/**
 * Codes the client gives when there is no answer from the server to take one
 * from (status 0): no node answered within timeoutMs; no node could be
 * reached (refused, reset, DNS); a value the codec could not encode or
 * decode; an answer that is not Strata's (no JSON error body).
 */
export const CLIENT_ERROR_CODES = ['E_CLIENT_TIMEOUT', 'E_CLIENT_UNREACHABLE', 'E_CLIENT_CODEC', 'E_CLIENT_PROTOCOL'] as const;
export type ClientErrorCode = (typeof CLIENT_ERROR_CODES)[number];

/**
 * A failed call. `code` is the server's (`E_KEY_NOT_FOUND`, `E_L2_UNAVAILABLE`,
 * …) or one of ClientErrorCode; `status` the HTTP status, 0 when there was no
 * answer.
 */
export class StrataError extends Error {
  override readonly name = 'StrataError';

  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The error a non-2xx answer carries (`{"error":{"code","message"}}`), as a StrataError. */
export function errorOf(res: Answer): StrataError {
  const text = res.text();
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    const { code, message } = body.error ?? {};
    if (typeof code === 'string' && typeof message === 'string') return new StrataError(code, res.status, message);
  } catch {
    // not JSON: below
  }
  return new StrataError('E_CLIENT_PROTOCOL', res.status, `unexpected answer ${res.status}: ${text.slice(0, 200)}`);
}
