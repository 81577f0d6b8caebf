/**
 * Redis Cluster hash slots (Redis Cluster specification, "Keys distribution
 * model"): CRC16-CCITT (XMODEM: polynomial 0x1021, initial 0) of the key's
 * bytes — or of its hash tag, the text between the first `{` and the next
 * `}` when that is not empty — modulo 16384. Strata's own keys never carry a
 * hash tag (keys.ts escapes braces); the rule is implemented whole so the
 * slot is right for any key.
 */
export const CLUSTER_SLOTS = 16384;

const TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

/** CRC16-XMODEM of bytes[start, end). */
export function crc16(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let crc = 0;
  for (let i = start; i < end; i++) crc = ((crc << 8) & 0xffff) ^ (TABLE[((crc >> 8) ^ (bytes[i] as number)) & 0xff] as number);
  return crc;
}

const encoder = new TextEncoder();

/** The cluster slot of a key (UTF-8). */
export function slotOf(key: string): number {
  const bytes = encoder.encode(key);
  const open = bytes.indexOf(0x7b); // {
  if (open !== -1) {
    const close = bytes.indexOf(0x7d, open + 1); // }
    if (close > open + 1) return crc16(bytes, open + 1, close) % CLUSTER_SLOTS;
  }
  return crc16(bytes) % CLUSTER_SLOTS;
}
