import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { freshnessOf, parseCacheControl } from '../../src/origin/cache-control.js';
import { checkOriginRules, type OriginRule, originUrl, parseOriginRule, ruleFor } from '../../src/origin/rules.js';
import { OriginSlots } from '../../src/origin/slots.js';

const rule = (fields: Record<string, unknown> = {}): OriginRule =>
  checkOriginRules([{ prefix: 'user:', url: 'http://127.0.0.1:3000/users/{id}', ...fields }])[0] as OriginRule;

function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('origin rules', () => {
  it('fill every field with its default; the lock outlives the load by a margin', () => {
    expect(rule()).toEqual({
      name: 'user:',
      prefix: 'user:',
      url: 'http://127.0.0.1:3000/users/{id}',
      ttl: 60,
      negativeTtl: 10,
      staleWhileRevalidate: 0,
      staleIfError: 0,
      softTimeoutMs: 0,
      timeoutMs: 2000,
      lockTtlMs: 2250,
      maxConcurrent: 64,
      writeThrough: null,
      headers: {},
    });
    expect(rule({ writeThrough: true }).writeThrough).toBe('PUT');
    expect(rule({ writeThrough: 'post' }).writeThrough).toBe('POST');
    expect(rule({ headers: { 'X-Api-Key': 'k' } }).headers).toEqual({ 'x-api-key': 'k' });
  });

  it('refuse what cannot work, naming the rule and field, never a header value or URL credentials', () => {
    const cases: [unknown, string][] = [
      [[{ prefix: '', url: 'http://h/{id}' }], 'origins[0].prefix'],
      [[{ prefix: 'a:', url: 'ftp://h/{id}' }], 'origins[0].url'],
      [[{ prefix: 'a:', url: 'http://h/static' }], 'origins[0].url'],
      [
        [
          { prefix: 'a:', url: 'http://h/{id}' },
          { prefix: 'b:', url: 'http://h/{id}', timeoutMs: 0 },
        ],
        'origins[1].timeoutMs',
      ],
      [[{ prefix: 'a:', url: 'http://h/{id}', softTimeoutMs: 3000, timeoutMs: 2000 }], 'origins[0].softTimeoutMs'],
      [
        [
          { prefix: 'a:', url: 'http://h/{id}' },
          { prefix: 'a:', url: 'http://h/{key}' },
        ],
        'origins[1].prefix',
      ],
      [[{ prefix: 'a:', url: 'http://h/{id}', writeThrough: 'DELETE' }], 'origins[0].writeThrough'],
      [[{ prefix: 'a:', url: 'http://h/{id}', headers: { host: 'x' } }], 'origins[0].headers'],
      [[{ prefix: 'a:', url: 'http://h/{id}', bogus: 1 }], 'origins[0].bogus'],
      [[{ prefix: 'a:', url: 'http://h/{id}', name: 'has space' }], 'origins[0].name'],
    ];
    for (const [value, option] of cases) expect(configError(() => checkOriginRules(value)).option).toBe(option);
    const secret = configError(() => checkOriginRules([{ prefix: 'a:', url: 'http://h/{id}', headers: { 'x-api-key': 'top\nsecret' } }]));
    expect(secret.option).toBe('origins[0].headers.x-api-key');
    expect(secret.message).not.toContain('secret');
    const creds = configError(() => checkOriginRules([{ prefix: 'a:', url: 'http://me:hunter2@h/{id}' }]));
    expect(creds.message).not.toContain('hunter2');
  });

  it('pick the longest matching prefix, and put the percent-encoded id or key into the URL', () => {
    const rules = checkOriginRules([
      { prefix: 'user:', url: 'http://h/users/{id}' },
      { prefix: 'user:vip:', url: 'https://vip/{key}' },
    ]);
    expect(ruleFor('user:1', rules)?.prefix).toBe('user:');
    expect(ruleFor('user:vip:7', rules)?.prefix).toBe('user:vip:');
    expect(ruleFor('other', rules)).toBeNull();
    expect(originUrl(rules[0] as OriginRule, 'user:a/b c').href).toBe('http://h/users/a%2Fb%20c');
    expect(originUrl(rules[1] as OriginRule, 'user:vip:7').href).toBe('https://vip/user%3Avip%3A7');
  });

  it('come from the environment as <prefix>=<url>, and must answer within half of requestTimeoutMs', () => {
    expect(parseOriginRule('user:=http://127.0.0.1:3000/users/{id}')[0]?.prefix).toBe('user:');
    const config = resolveConfig(new Map(), { STRATA_ORIGIN: 'item:=http://127.0.0.1:3000/items/{id}' }, {});
    expect(config.origins.map((r) => r.url)).toEqual(['http://127.0.0.1:3000/items/{id}']);
    expect(configError(() => resolveConfig(new Map(), { STRATA_ORIGIN: 'no-url' }, {})).option).toBe('STRATA_ORIGIN');
    const slow = configError(() =>
      resolveConfig(new Map(), { STRATA_REQUEST_TIMEOUT_MS: '3000' }, { origins: [{ prefix: 'a:', url: 'http://h/{id}', name: 'api' }] }),
    );
    expect(slow.option).toBe('origins[0].timeoutMs');
    expect(slow.message).toContain('rule "api"');
  });
});

describe('Cache-Control', () => {
  const r = rule({ ttl: 30, staleWhileRevalidate: 5, staleIfError: 60 });

  it('takes the rule’s freshness when the origin says nothing', () => {
    expect(freshnessOf('', '', r)).toEqual({ store: true, freshMs: 30_000, swrMs: 5000, sieMs: 60_000 });
  });

  it('s-maxage over max-age, Age subtracted, stale windows from the response', () => {
    expect(freshnessOf('max-age=10, s-maxage=100', '', r).freshMs).toBe(100_000);
    expect(freshnessOf('max-age=10', '4', r).freshMs).toBe(6000);
    expect(freshnessOf('max-age=10', '40', r).freshMs).toBe(0);
    expect(freshnessOf('max-age=10, stale-while-revalidate=20, stale-if-error=0', '', r)).toEqual({ store: true, freshMs: 10_000, swrMs: 20_000, sieMs: 0 });
  });

  it('no-store and private are not stored; no-cache is stale at once', () => {
    expect(freshnessOf('no-store', '', r).store).toBe(false);
    expect(freshnessOf('private, max-age=600', '', r).store).toBe(false);
    expect(freshnessOf('no-cache, max-age=600', '', r)).toMatchObject({ store: true, freshMs: 0 });
  });

  it('parses directives case-insensitively, with quoted values, the first of a repeated one winning', () => {
    expect([...parseCacheControl(' Max-Age=5 , private="x-a", max-age=9,,no-cache')]).toEqual([
      ['max-age', '5'],
      ['private', 'x-a'],
      ['no-cache', ''],
    ]);
  });
});

describe('origin slots', () => {
  it('count requests in flight per rule against maxConcurrent, across threads (shared memory)', () => {
    const slots = new OriginSlots(2);
    const view = new OriginSlots(2, slots.buffer);
    expect(slots.tryTake(0, 2)).toBe(true);
    expect(view.tryTake(0, 2)).toBe(true);
    expect(slots.tryTake(0, 2)).toBe(false);
    expect(slots.tryTake(1, 2)).toBe(true);
    view.give(0);
    expect(slots.inFlight(0)).toBe(1);
    expect(slots.tryTake(0, 2)).toBe(true);
  });

  it('come back when the worker that held them is gone, and what it gives later is not counted twice', () => {
    const node = new OriginSlots(1);
    const deadRow = OriginSlots.newRow(1);
    const dead = new OriginSlots(1, node.buffer, deadRow);
    const live = new OriginSlots(1, node.buffer, OriginSlots.newRow(1));
    expect(dead.tryTake(0, 3)).toBe(true);
    expect(dead.tryTake(0, 3)).toBe(true);
    expect(live.tryTake(0, 3)).toBe(true);
    expect(live.tryTake(0, 3)).toBe(false);
    // The pool retires the row of a worker that crashed or hung with two requests in flight.
    node.retire(deadRow);
    expect(node.inFlight(0)).toBe(1);
    expect(live.tryTake(0, 3)).toBe(true);
    // A hung worker that still runs: its late gives change nothing, and it can take nothing more.
    dead.give(0);
    expect(node.inFlight(0)).toBe(2);
    expect(dead.tryTake(0, 3)).toBe(false);
    expect(node.inFlight(0)).toBe(2);
    live.give(0);
    live.give(0);
    expect(node.inFlight(0)).toBe(0);
  });
});
