/**
 * `strata/client`: the typed TypeScript client (docs/client.md).
 *
 *   const client = createClient({ url: 'http://127.0.0.1:8080' });
 *   const users = client.namespace<User>('users', { codec: json<User>(), ttl: 300 });
 *   const user = await users.getOrSet('42', () => db.user(42));
 */
export {
  type ClientNode,
  type ClientOptions,
  createClient,
  type GetOrSetOptions,
  Namespace,
  type NamespaceOptions,
  type SetOptions,
  StrataClient,
} from './client.js';
export { type Codec, type JsonSafe, json, type MsgpackSafe, msgpack, raw, type SchemaOutput, type StandardSchema, schema, text } from './codecs.js';
export { type ClientErrorCode, StrataError } from './errors.js';
