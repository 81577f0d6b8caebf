import type { HttpRequest } from './uws.js';

/**
 * Checks message framing per RFC 9112 §6.3 for a request whose content-length
 * or transfer-encoding header is present. Returns why it is ambiguous or
 * invalid, or null when the body length is well defined. Must run in the
 * handler, before it returns (uWS clears `req` afterwards).
 *
 * uWS itself drops (without a response) a request that has both
 * Transfer-Encoding and Content-Length; what reaches here are the cases it lets
 * through: repeated or malformed Content-Length, or a Transfer-Encoding whose
 * final coding is not chunked.
 */
export function framingProblem(req: HttpRequest): string | null {
  let lengths = 0;
  let length = '';
  let codings = 0;
  let coding = '';
  req.forEach((name, value) => {
    if (name === 'content-length') {
      lengths++;
      length = value;
    } else if (name === 'transfer-encoding') {
      codings++;
      coding = value;
    }
  });
  if (lengths > 0 && codings > 0) return 'both Content-Length and Transfer-Encoding';
  if (lengths > 1) return 'more than one Content-Length';
  if (lengths === 1 && !/^\d{1,15}$/.test(length)) return 'Content-Length is not a decimal length';
  if (codings > 1) return 'more than one Transfer-Encoding';
  if (codings === 1 && coding.trim().toLowerCase() !== 'chunked') return 'Transfer-Encoding other than chunked';
  return null;
}
