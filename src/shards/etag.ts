/** Strong ETag of a value: FNV-1a 32 of its bytes and its length, quoted. */
export function etagOf(value: Uint8Array): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < value.length; i++) h = Math.imul(h ^ (value[i] as number), 0x01000193);
  return `"${(h >>> 0).toString(16).padStart(8, '0')}-${value.length.toString(16)}"`;
}
