import { describe, expect, it } from 'vitest';
import { loadNativeUws } from '../../src/http/uws.js';

describe('uWebSockets.js loader', () => {
  it('loads the native binary', () => {
    const uws = loadNativeUws({});
    expect(typeof uws.App).toBe('function');
    expect(typeof uws.us_socket_local_port).toBe('function');
  });

  it('refuses the JS fallback when asked for it', () => {
    expect(() => loadNativeUws({ UWS_USE_FALLBACK: 'true' })).toThrow(expect.objectContaining({ code: 'E_UWS_NATIVE_UNAVAILABLE' }));
    expect(() => loadNativeUws({ UWS_USE_FALLBACK: '1' })).toThrow(/fallback/);
    expect(() => loadNativeUws({ UWS_USE_FALLBACK: 'false' })).not.toThrow();
  });
});
