import type * as UWS from 'uWebSockets.js';
import { createRequire } from 'node:module';
import { UwsNativeUnavailableError } from '../errors.js';

export type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket } from 'uWebSockets.js';

/**
 * Loads uWebSockets.js's native binary directly. The package's own entry point
 * swaps in a slow JS server when the binary does not load; Strata refuses that
 * instead of quietly serving at a fraction of the speed.
 */
export function loadNativeUws(env: Readonly<Record<string, string | undefined>> = process.env): typeof UWS {
  const flag = env.UWS_USE_FALLBACK;
  if (flag !== undefined && flag !== '' && flag !== '0' && flag.toLowerCase() !== 'false') {
    throw new UwsNativeUnavailableError(`UWS_USE_FALLBACK=${flag} asks for the JS fallback; unset it`);
  }
  const require = createRequire(import.meta.url);
  const binary = `uWebSockets.js/binaries/uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
  let native: typeof UWS;
  try {
    native = require(binary) as typeof UWS;
  } catch (err) {
    throw new UwsNativeUnavailableError(
      `${binary} did not load on Node.js ${process.version} (${(err as Error).message.split('\n')[0]}); use Node.js 20 on linux x64/arm64`,
      err,
    );
  }
  if (typeof native.App !== 'function' || typeof native.us_socket_local_port !== 'function') {
    throw new UwsNativeUnavailableError(`${binary} loaded but is not the native uWS module`);
  }
  return native;
}
