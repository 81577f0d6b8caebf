/**
 * Codecs: how a namespace's values of type T become bytes and back. The
 * types refuse, at compile time, a codec that cannot carry T: `json<T>()`
 * only for types JSON round-trips unchanged (no functions, symbols, bigint,
 * Date, Map, Set or undefined anywhere in T).
 */

import { Packr } from 'msgpackr';

/** How values of T are stored. */
export interface Codec<T> {
  /** The Content-Type the values are stored with. */
  readonly contentType: string;
  encode(value: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

type JsonPrimitive = string | number | boolean | null;
/** What JSON cannot carry unchanged (a Date comes back as a string, a Map as {}, a function not at all). */
// biome-ignore lint/complexity/noBannedTypes: any function is what is meant
type NotJson = bigint | symbol | Function | Date | Map<unknown, unknown> | Set<unknown> | undefined | RegExp | Uint8Array;

/**
 * T itself where JSON round-trips it, `never` in every place where it would
 * not: `json<T>()` compiles only when T extends JsonSafe<T>. Optional properties are
 * fine (JSON omits them); `undefined` as a value is not.
 */
export type JsonSafe<T> = CarriedBy<T, JsonPrimitive, NotJson>;

/**
 * T where every part is a `Leaf` or built of them by arrays and objects, and
 * `never` in every place holding a `Refused` (or anything else). Optional
 * properties are checked without their `undefined`.
 */
type CarriedBy<T, Leaf, Refused> = T extends Leaf
  ? T
  : T extends Refused
    ? never
    : T extends readonly (infer U)[]
      ? readonly CarriedBy<U, Leaf, Refused>[]
      : T extends object
        ? { [K in keyof T]: K extends symbol ? never : CarriedBy<Exclude<T[K], undefined>, Leaf, Refused> }
        : never;

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** What `json<T>()` takes: nothing when JSON carries T, else a parameter no call can fill (a compile-time error). */
type JsonGuard<T> = [T] extends [JsonSafe<T>]
  ? []
  : [never: 'T has a part JSON does not round-trip (a function, symbol, bigint, Date, Map, Set, RegExp, bytes or undefined)'];

/** JSON (UTF-8), `application/json`. Only for a T that JSON round-trips: anything else does not compile. */
export function json<T>(..._guard: JsonGuard<T>): Codec<T> {
  return {
    contentType: 'application/json',
    encode: (value) => encoder.encode(JSON.stringify(value)),
    decode: (bytes) => JSON.parse(decoder.decode(bytes)) as T,
  };
}

/** The bytes as they are, `application/octet-stream`. */
export function raw(): Codec<Uint8Array> {
  return {
    contentType: 'application/octet-stream',
    encode: (value) => value,
    decode: (bytes) => bytes,
  };
}

/** UTF-8 text, `text/plain; charset=utf-8`. */
export function text(): Codec<string> {
  return {
    contentType: 'text/plain; charset=utf-8',
    encode: (value) => encoder.encode(value),
    decode: (bytes) => decoder.decode(bytes),
  };
}

/** What MessagePack (msgpackr, plain maps and arrays) cannot carry unchanged. */
// biome-ignore lint/complexity/noBannedTypes: any function is what is meant
type NotMsgpack = bigint | symbol | Function | Map<unknown, unknown> | Set<unknown> | undefined | RegExp;

/** T itself where MessagePack round-trips it (a Date and bytes too, unlike JSON), `never` where it would not. */
export type MsgpackSafe<T> = CarriedBy<T, JsonPrimitive | Date | Uint8Array, NotMsgpack>;

type MsgpackGuard<T> = [T] extends [MsgpackSafe<T>]
  ? []
  : [never: 'T has a part MessagePack does not round-trip (a function, symbol, bigint, Map, Set, RegExp or undefined)'];

/** MessagePack (msgpackr), `application/msgpack`: smaller than JSON, and a Date comes back a Date. Only for a T it round-trips. */
export function msgpack<T>(..._guard: MsgpackGuard<T>): Codec<T> {
  // Plain MessagePack (no msgpackr records), so that any MessagePack reader can read the values.
  const packr = new Packr({ useRecords: false });
  return {
    contentType: 'application/msgpack',
    encode: (value) => packr.pack(value),
    decode: (bytes) => packr.unpack(bytes) as T,
  };
}

/**
 * A schema in the Standard Schema form (standardschema.dev, v1) that zod,
 * valibot, ArkType and others implement: only what the codec uses.
 */
export interface StandardSchema<Input = unknown, Output = Input> {
  readonly '~standard': {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (value: unknown) => StandardResult<Output> | Promise<StandardResult<Output>>;
    readonly types?: { readonly input: Input; readonly output: Output } | undefined;
  };
}
type StandardResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | { readonly issues: readonly { readonly message: string; readonly path?: readonly unknown[] | undefined }[] };
/** The type a schema's validation produces. */
export type SchemaOutput<S extends StandardSchema> = NonNullable<S['~standard']['types']>['output'];

/** A path segment of a Standard Schema issue: a key, or `{ key }`. */
function segmentName(segment: unknown): string {
  return typeof segment === 'object' && segment !== null && 'key' in segment ? String((segment as { key: unknown }).key) : String(segment);
}

/**
 * JSON whose every decode is validated by `schema` and narrowed to its
 * output type: a stored value that no longer matches (an older shape, another
 * writer) is an E_CLIENT_CODEC error, never a wrongly typed value. Encoding
 * validates too. The schema must validate synchronously.
 */
export function schema<S extends StandardSchema>(schema: S): Codec<SchemaOutput<S>> {
  const check = (value: unknown): SchemaOutput<S> => {
    const result = schema['~standard'].validate(value);
    if (result instanceof Promise) throw new TypeError('the schema validates asynchronously; a codec needs a synchronous one');
    if (result.issues !== undefined) {
      const issues = result.issues.map((i) => `${(i.path ?? []).map(segmentName).join('.') || '(value)'}: ${i.message}`);
      throw new TypeError(`the value does not match the schema: ${issues.join('; ')}`);
    }
    return result.value as SchemaOutput<S>;
  };
  return {
    contentType: 'application/json',
    encode: (value) => encoder.encode(JSON.stringify(check(value))),
    decode: (bytes) => check(JSON.parse(decoder.decode(bytes))),
  };
}
