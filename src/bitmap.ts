// A bit per page, little endian (page i is bit i & 7 of byte i >> 3), the
// layout of KVM's dirty bitmaps (KVM_GET_DIRTY_LOG, KVM_CLEAR_DIRTY_LOG): what
// the dirty log, the migration's dirty tracker, post-copy's page lists and
// the destination's record of received pages all keep.

/** Bytes of a dirty bitmap of `bits` bits, in whole u64 words (the kernel's ALIGN(n, 64) / 8). */
export const bitmapBytes = (bits: number): number => Math.ceil(bits / 64) * 8;

export const testBit = (b: Uint8Array, i: number): boolean => (b[i >> 3] & (1 << (i & 7))) !== 0;

export const setBit = (b: Uint8Array, i: number): void => { b[i >> 3] |= 1 << (i & 7); };

/** Sets bits lo..hi (inclusive): whole bytes by fill, the ends bit by bit. */
export function setBits(b: Uint8Array, lo: number, hi: number): void {
  if (hi < lo) return;
  const loByte = Math.ceil(lo / 8), hiByte = Math.floor((hi + 1) / 8); // whole bytes [loByte, hiByte)
  if (loByte >= hiByte) {
    for (let i = lo; i <= hi; i++) setBit(b, i);
    return;
  }
  for (let i = lo; i < loByte * 8; i++) setBit(b, i);
  b.fill(0xff, loByte, hiByte);
  for (let i = hiByte * 8; i <= hi; i++) setBit(b, i);
}

/** Set bits of the whole bitmap. */
export function countBits(b: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < b.length; i++) {
    let x = b[i];
    while (x) { x &= x - 1; n++; }
  }
  return n;
}

/** Runs of set bits among the first npages, as page indices (whole zero bytes skipped at once). */
export function* bitmapRuns(bitmap: Uint8Array, npages: number): Generator<{ first: number; count: number }> {
  for (let i = 0; i < npages;) {
    if ((i & 7) === 0 && bitmap[i >> 3] === 0) { i += 8; continue; }
    if (!testBit(bitmap, i)) { i++; continue; }
    let j = i + 1;
    while (j < npages && testBit(bitmap, j)) j++;
    yield { first: i, count: j - i };
    i = j;
  }
}
