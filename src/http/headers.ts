import { DEADLINE_HEADER, HOP_HEADER } from '../cluster/forward.js';
import type { HttpRequest } from './uws.js';

/**
 * One pass over a request's header lines, in the handler (uWS clears `req`
 * once it returns). It finds what getHeader cannot tell: a field given more
 * than once. The values are the first of each field.
 *
 * Why every request pays for the pass (about 5 % of a bare GET with three
 * headers, native-bench/README.md): RFC 9112 §3.2 requires 400 for more than
 * one Host, two Authorization lines are two credentials of which getHeader
 * would silently pick one, and two Content-Length or Transfer-Encoding lines
 * make the body length ambiguous (RFC 9112 §6.3).
 */
export class HeaderScan {
  hosts = 0;
  host = '';
  authorizations = 0;
  authorization = '';
  contentLengths = 0;
  contentLength = '';
  codings = 0;
  coding = '';
  contentTypes = 0;
  contentType = '';
  /** `strata-lease`: a lease token a PUT fills under. */
  leases = 0;
  lease = '';
  /** `cookie`: read only by the dashboard's routes (its sign-in cookie). */
  cookie = '';
  /** `x-strata-hop`: another node forwarded this request (docs/cluster.md). */
  hop = false;
  /** `x-strata-deadline-ms`: what the forwarding node has left of the request's time. */
  deadline = '';

  /** True when the request announces a body (a non-zero Content-Length, or a Transfer-Encoding). */
  get hasBody(): boolean {
    return (this.contentLengths > 0 && this.contentLength !== '0') || this.codings > 0;
  }
}

// One scan per thread, reused: requests are handled one at a time and the scan is read before the handler returns.
const scan = new HeaderScan();

function visit(name: string, value: string): void {
  switch (name) {
    case 'host':
      if (scan.hosts++ === 0) scan.host = value;
      break;
    case 'authorization':
      if (scan.authorizations++ === 0) scan.authorization = value;
      break;
    case 'content-length':
      if (scan.contentLengths++ === 0) scan.contentLength = value;
      break;
    case 'transfer-encoding':
      if (scan.codings++ === 0) scan.coding = value;
      break;
    case 'content-type':
      if (scan.contentTypes++ === 0) scan.contentType = value;
      break;
    case 'strata-lease':
      if (scan.leases++ === 0) scan.lease = value;
      break;
    case HOP_HEADER:
      if (value !== '') scan.hop = true;
      break;
    case DEADLINE_HEADER:
      scan.deadline = value;
      break;
    case 'cookie':
      // RFC 6265 §5.4: a user agent sends one Cookie line; more (from a proxy) are joined as HTTP/2 does (RFC 9113 §8.2.3).
      scan.cookie = scan.cookie === '' ? value : `${scan.cookie}; ${value}`;
      break;
  }
}

/** Scans req's header lines. The result is shared: valid until the next call, so read it in the handler. */
export function scanHeaders(req: HttpRequest): HeaderScan {
  scan.hosts = 0;
  scan.host = '';
  scan.authorizations = 0;
  scan.authorization = '';
  scan.contentLengths = 0;
  scan.contentLength = '';
  scan.codings = 0;
  scan.coding = '';
  scan.contentTypes = 0;
  scan.contentType = '';
  scan.leases = 0;
  scan.lease = '';
  scan.cookie = '';
  scan.hop = false;
  scan.deadline = '';
  req.forEach(visit);
  return scan;
}

// RFC 9110 §7.2: Host = uri-host [ ":" port ], uri-host an IP literal or a reg-name (RFC 3986 §3.2.2).
const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::\d*)?$/;

/** Why the header lines are unacceptable (not the body framing: see framingProblem), or null. */
export function headerProblem(h: HeaderScan): string | null {
  // uWS itself drops an HTTP/1.1 request without Host before a handler runs.
  if (h.hosts > 1) return 'more than one Host header (RFC 9112 §3.2)';
  if (h.hosts === 1 && !HOST.test(h.host)) return 'the Host header is not a valid host[:port] (RFC 9112 §3.2)';
  if (h.authorizations > 1) return 'more than one Authorization header';
  if (h.contentTypes > 1) return 'more than one Content-Type header';
  if (h.leases > 1) return 'more than one strata-lease header';
  return null;
}

/**
 * Checks message framing per RFC 9112 §6.3 for a request whose Content-Length
 * or Transfer-Encoding is present. Returns why it is ambiguous or invalid, or
 * null when the body length is well defined.
 *
 * uWS itself drops (without a response) a request that has both
 * Transfer-Encoding and Content-Length; what reaches here are the cases it lets
 * through: repeated or malformed Content-Length, or a Transfer-Encoding whose
 * final coding is not chunked.
 */
export function framingProblem(h: HeaderScan): string | null {
  if (h.contentLengths > 0 && h.codings > 0) return 'both Content-Length and Transfer-Encoding';
  if (h.contentLengths > 1) return 'more than one Content-Length';
  if (h.contentLengths === 1 && !/^\d{1,15}$/.test(h.contentLength)) return 'Content-Length is not a decimal length';
  if (h.codings > 1) return 'more than one Transfer-Encoding';
  if (h.codings === 1 && h.coding.trim().toLowerCase() !== 'chunked') return 'Transfer-Encoding other than chunked';
  return null;
}
