import { describe, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { type Codec, createClient, json, msgpack, type Namespace, raw, StrataError, schema, text } from '../../src/client/index.js';

// Compile-time checks: `tsc -p .` (the suite's build) fails when a @ts-expect-error line compiles,
// so what must not compile is proven by the build, and what must compile by these lines themselves.

interface User {
  id: number;
  name: string;
  email?: string;
  roles: readonly string[];
  address: { city: string; zip: string | null };
}

describe('typed client: codecs at compile time', () => {
  it('json<T>() takes every type JSON round-trips', () => {
    expectTypeOf(json<User>()).toEqualTypeOf<Codec<User>>();
    expectTypeOf(json<string[]>()).toEqualTypeOf<Codec<string[]>>();
    expectTypeOf(json<{ n: number; nested: { ok: boolean }[] }>()).toEqualTypeOf<Codec<{ n: number; nested: { ok: boolean }[] }>>();
    expectTypeOf(raw()).toEqualTypeOf<Codec<Uint8Array>>();
    expectTypeOf(text()).toEqualTypeOf<Codec<string>>();
  });

  it('json<T>() refuses a T with a part JSON would change or drop', () => {
    // @ts-expect-error a Date comes back as a string
    json<{ at: Date }>();
    // @ts-expect-error a function is dropped
    json<{ f: () => void }>();
    // @ts-expect-error JSON.stringify throws on a bigint
    json<{ n: bigint }>();
    // @ts-expect-error a Map comes back as {}
    json<Map<string, number>>();
    // @ts-expect-error nested too
    json<{ a: { b: { c: Set<string> }[] } }>();
    // @ts-expect-error undefined is not a JSON value
    json<undefined>();
    // @ts-expect-error a symbol is dropped
    json<{ s: symbol }>();
  });

  it('msgpack<T>() takes a Date and bytes too, and refuses what MessagePack would change', () => {
    expectTypeOf(msgpack<{ at: Date; blob: Uint8Array; user: User }>()).toEqualTypeOf<Codec<{ at: Date; blob: Uint8Array; user: User }>>();
    // @ts-expect-error a bigint is refused
    msgpack<{ n: bigint }>();
    // @ts-expect-error a function is dropped
    msgpack<{ f: () => void }>();
    // @ts-expect-error a Map comes back as an object
    msgpack<{ m: Map<string, string> }>();
  });

  it('schema(s) is typed by what the schema validates to', () => {
    const Person = z.object({ name: z.string(), born: z.number().int(), nick: z.string().optional() });
    const codec = schema(Person);
    expectTypeOf(codec).toEqualTypeOf<Codec<{ name: string; born: number; nick?: string | undefined }>>();
    const people = createClient({ url: 'http://127.0.0.1:1' }).namespace('people', { codec });
    expectTypeOf(people.get).returns.resolves.toEqualTypeOf<{ name: string; born: number; nick?: string | undefined } | undefined>();
  });

  it('a namespace is typed by its codec', () => {
    const client = createClient({ url: 'http://127.0.0.1:1' });
    const users = client.namespace('users', { codec: json<User>() });
    expectTypeOf(users).toEqualTypeOf<Namespace<User>>();
    expectTypeOf(users.get).returns.resolves.toEqualTypeOf<User | undefined>();
    expectTypeOf(users.getOrSet).parameter(1).toEqualTypeOf<() => Promise<User>>();
    // Type-checked, never run (there is no node at that address).
    const notCalled = () => {
      // @ts-expect-error a value of another type
      void users.set('1', { id: 'one' });
      // @ts-expect-error a loader of another type
      void users.getOrSet('1', async () => 42);
    };
    expectTypeOf(notCalled).toBeFunction();
    const blobs = client.namespace('blobs', { codec: raw() });
    expectTypeOf(blobs.get).returns.resolves.toEqualTypeOf<Uint8Array | undefined>();
    expectTypeOf(new StrataError('E_X', 400, 'm').code).toEqualTypeOf<string>();
  });
});
