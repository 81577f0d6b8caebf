import { describe, expect, it } from 'vitest';
import { tagProblem } from '../../src/api/input.js';
import { decodeSegment, keyFromSegment, keyProblem } from '../../src/api/key.js';
import { contentTypeOf, parsePutQuery, TokenGuard } from '../../src/http/input.js';

describe('keys', () => {
  it('accepts 1..512 bytes of UTF-8 without control characters', () => {
    expect(keyProblem('a')).toBeNull();
    expect(keyProblem('x'.repeat(512))).toBeNull();
    expect(keyProblem('é'.repeat(256))).toBeNull(); // 512 bytes
    expect(keyProblem('user:42/profile?x=1 with spaces')).toBeNull();
  });

  it('rejects empty, too long (in bytes, not characters) and control characters', () => {
    expect(keyProblem('')).toMatch(/empty/);
    expect(keyProblem('x'.repeat(513))).toMatch(/512 bytes/);
    expect(keyProblem(`${'é'.repeat(256)}x`)).toMatch(/512 bytes/);
    expect(keyProblem('😀'.repeat(129))).toMatch(/512 bytes/);
    for (const c of ['\u0000', '\n', '\r', '\t', '\u007f', '\u0085']) expect(keyProblem(`a${c}b`)).toMatch(/control/);
  });

  it('percent-decodes one segment and refuses bad encodings', () => {
    expect(decodeSegment('plain')).toBe('plain');
    expect(decodeSegment('a%2Fb%20c')).toBe('a/b c');
    expect(decodeSegment('%E2%82%AC')).toBe('€');
    expect(decodeSegment('%')).toBeUndefined();
    expect(decodeSegment('%zz')).toBeUndefined();
    expect(decodeSegment('%C3')).toBeUndefined(); // truncated UTF-8
    expect(decodeSegment('%FF')).toBeUndefined(); // not UTF-8
    expect(keyFromSegment('%00')).toEqual({ message: expect.stringMatching(/control/) });
    expect(keyFromSegment('ok%21')).toBe('ok!');
  });

  it('one identity: a text without a UTF-8 form is refused in every form, never mapped to U+FFFD', () => {
    // JSON can carry lone surrogates; they have no UTF-8 bytes, and encoders would write U+FFFD (another key).
    expect(keyProblem('sur\ud800x')).toMatch(/lone surrogate/);
    expect(keyProblem('sur\udc00x')).toMatch(/lone surrogate/);
    expect(keyProblem('end\ud800')).toMatch(/lone surrogate/);
    expect(keyProblem('\udc00\ud800')).toMatch(/lone surrogate/);
    expect(keyProblem('pair-😀')).toBeNull();
    // U+FFFD itself is a character like any other in JSON and percent-encoded...
    expect(keyProblem('sur\ufffdx')).toBeNull();
    expect(keyFromSegment('sur%EF%BF%BDx')).toBe('sur\ufffdx');
    // ...but raw in a URL it may be invalid bytes that uWS replaced: refused.
    expect(keyFromSegment('sur\ufffdx')).toEqual({ message: expect.stringMatching(/not UTF-8/) });
    expect(keyFromSegment('a%20\ufffd')).toEqual({ message: expect.stringMatching(/not UTF-8/) });
    // An encoded surrogate is not UTF-8.
    expect(keyFromSegment('sur%ED%A0%80x')).toEqual({ message: expect.stringMatching(/not UTF-8/) });
    // Raw UTF-8 (curl sends it unencoded) is the same key as its percent-encoded form.
    expect(keyFromSegment('ключ')).toBe(keyFromSegment('%D0%BA%D0%BB%D1%8E%D1%87'));
    expect(tagProblem('t\ud800')).toMatch(/lone surrogate/);
    expect(parsePutQuery('tags=a,b\ufffd', 300, 86400)).toMatchObject({ code: 'E_INVALID_QUERY' });
    expect(parsePutQuery('tags=a,%EF%BF%BD', 300, 86400)).toEqual({ ttlS: 300, swrS: 0, tags: ['a', '\ufffd'] });
  });
});

describe('PUT query', () => {
  it('defaults the ttl and reads ttl and tags', () => {
    expect(parsePutQuery('', 300, 86400)).toEqual({ ttlS: 300, swrS: 0, tags: null });
    expect(parsePutQuery('ttl=60&tags=a,b,a', 300, 86400)).toEqual({ ttlS: 60, swrS: 0, tags: ['a', 'b'] });
    expect(parsePutQuery('ttl=86400', 300, 86400)).toEqual({ ttlS: 86400, swrS: 0, tags: null });
  });

  it.each(['ttl=0', 'ttl=-1', 'ttl=1.5', 'ttl=abc', 'ttl=', 'ttl', 'ttl=86401', 'ttl=1e3', 'ttl=%201'])('rejects %s with E_INVALID_TTL', (q) => {
    expect(parsePutQuery(q, 300, 86400)).toMatchObject({ code: 'E_INVALID_TTL' });
  });

  it('rejects unknown and repeated parameters, and bad tags', () => {
    expect(parsePutQuery('tll=5', 300, 86400)).toMatchObject({ code: 'E_INVALID_QUERY' });
    expect(parsePutQuery('ttl=5&ttl=6', 300, 86400)).toMatchObject({ code: 'E_INVALID_QUERY' });
    expect(parsePutQuery('tags=a,,b', 300, 86400)).toMatchObject({ code: 'E_INVALID_TAGS' });
    expect(parsePutQuery(`tags=${'t'.repeat(129)}`, 300, 86400)).toMatchObject({ code: 'E_INVALID_TAGS' });
    expect(parsePutQuery(`tags=${Array.from({ length: 33 }, (_, i) => i).join(',')}`, 300, 86400)).toMatchObject({ code: 'E_INVALID_TAGS' });
    expect(tagProblem('ok-tag')).toBeNull();
  });
});

describe('content type and tokens', () => {
  it('stores the request content type or application/octet-stream, refusing non-printable ones', () => {
    expect(contentTypeOf('')).toBe('application/octet-stream');
    expect(contentTypeOf('text/plain; charset=utf-8')).toBe('text/plain; charset=utf-8');
    expect(contentTypeOf('text/plain\u0001')).toMatchObject({ code: 'E_INVALID_CONTENT_TYPE' });
    expect(contentTypeOf('x'.repeat(257))).toMatchObject({ code: 'E_INVALID_CONTENT_TYPE' });
  });

  it('accepts only configured bearer tokens', () => {
    const open = new TokenGuard([]);
    expect(open.allows('')).toBe(true);
    const guard = new TokenGuard(['secret-token-1', 'other-token-22']);
    expect(guard.allows('Bearer secret-token-1')).toBe(true);
    expect(guard.allows('bearer other-token-22')).toBe(true);
    expect(guard.allows('Bearer secret-token-2')).toBe(false);
    expect(guard.allows('Bearer secret-token-11')).toBe(false);
    expect(guard.allows('Basic secret-token-1')).toBe(false);
    expect(guard.allows('')).toBe(false);
  });
});
