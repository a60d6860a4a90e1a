// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), the checksum every
// section and stream message carries. Table-driven and incremental so a large
// memory section is summed as it is written; browsers have no zlib.crc32.

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** Continues a CRC-32 over bytes: crc32(b) === crc32(b.subarray(k), crc32(b.subarray(0, k))). */
export function crc32(bytes: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}
