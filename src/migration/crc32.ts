// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), the checksum every
// section and stream message carries. Incremental, so a large memory section
// is summed as it is written; browsers have no zlib.crc32. Slicing-by-16
// (sixteen tables, four 32-bit words a step): every byte of a migration's
// pages is summed on both ends, and the byte-at-a-time form held the stream
// to well under 1 GB/s. The words are read little endian (a reflected CRC
// takes the lowest byte first), so a big-endian host sums bytes instead.

const TABLES = (() => {
  const t = new Int32Array(16 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  // Table k: the CRC of byte n followed by k zero bytes.
  for (let n = 0; n < 256; n++) for (let k = 1; k < 16; k++) t[k * 256 + n] = t[t[(k - 1) * 256 + n] & 0xff] ^ (t[(k - 1) * 256 + n] >>> 8);
  return t;
})();

const EMPTY = new Int32Array(0);
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Continues a CRC-32 over bytes: crc32(b) === crc32(b.subarray(k), crc32(b.subarray(0, k))). */
export function crc32(bytes: Uint8Array, crc = 0): number {
  const t = TABLES;
  let c = ~crc;
  let i = 0;
  if (LITTLE_ENDIAN) {
    // Bytes up to a 4-byte boundary, then 16 bytes a step through an Int32Array view.
    for (const head = Math.min(bytes.length, (4 - (bytes.byteOffset & 3)) & 3); i < head; i++) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
    const n = ((bytes.length - i) >>> 4) << 2;
    const w = n > 0 ? new Int32Array(bytes.buffer, bytes.byteOffset + i, n) : EMPTY;
    for (let j = 0; j < n; j += 4) {
      const a = c ^ w[j], b = w[j + 1], d = w[j + 2], e = w[j + 3];
      c = t[3840 + (a & 0xff)] ^ t[3584 + ((a >>> 8) & 0xff)] ^ t[3328 + ((a >>> 16) & 0xff)] ^ t[3072 + (a >>> 24)]
        ^ t[2816 + (b & 0xff)] ^ t[2560 + ((b >>> 8) & 0xff)] ^ t[2304 + ((b >>> 16) & 0xff)] ^ t[2048 + (b >>> 24)]
        ^ t[1792 + (d & 0xff)] ^ t[1536 + ((d >>> 8) & 0xff)] ^ t[1280 + ((d >>> 16) & 0xff)] ^ t[1024 + (d >>> 24)]
        ^ t[768 + (e & 0xff)] ^ t[512 + ((e >>> 8) & 0xff)] ^ t[256 + ((e >>> 16) & 0xff)] ^ t[e >>> 24];
    }
    i += n * 4;
  }
  for (; i < bytes.length; i++) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}
