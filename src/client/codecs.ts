/**
 * Codecs: how a namespace's values of type T become bytes and back. The
 * types refuse, at compile time, a codec that cannot carry T: `json<T>()`
 * only for types JSON round-trips unchanged (no functions, symbols, bigint,
 * Date, Map, Set or undefined anywhere in T).
 */

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
export type JsonSafe<T> = T extends JsonPrimitive
  ? T
  : T extends NotJson
    ? never
    : T extends readonly (infer U)[]
      ? readonly JsonSafe<U>[]
      : T extends object
        ? { [K in keyof T]: K extends symbol ? never : JsonSafe<Exclude<T[K], undefined>> }
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
