// Host models of guests/common/pattern.h: the 64-bit LCG stream and FNV-1a 64.

export const MASK64 = (1n << 64n) - 1n;
export const LCG_SEED = 0x9E3779B97F4A7C15n;
const LCG_MUL = 6364136223846793005n;
const LCG_ADD = 1442695040888963407n;

/** lcg_next: x * MUL + ADD (mod 2^64). */
export const lcgNext = (x) => (x * LCG_MUL + LCG_ADD) & MASK64;

/** `count` words of the stream that starts after `seed`, as little-endian bytes. */
export function lcgBytes(seed, count) {
  const out = new Uint8Array(count * 8);
  const view = new DataView(out.buffer);
  let x = BigInt(seed) & MASK64;
  for (let k = 0; k < count; k++) {
    x = lcgNext(x);
    view.setBigUint64(k * 8, x, true);
  }
  return out;
}

/**
 * FNV-1a 64 of bytes. Kept in two 32-bit halves for speed: the prime is
 * 2^40 + 0x1b3, so h * prime = (h << 40) + h * 0x1b3 (mod 2^64).
 */
export function fnv1a64(bytes) {
  let lo = 0x84222325; // offset basis 0xcbf29ce484222325
  let hi = 0xcbf29ce4;
  for (let i = 0; i < bytes.length; i++) {
    lo = (lo ^ bytes[i]) >>> 0;
    const t = lo * 0x1b3; // < 2^41, exact
    const carry = Math.floor(t / 0x100000000);
    hi = (Math.imul(hi, 0x1b3) + carry + (lo << 8)) >>> 0;
    lo = t >>> 0;
  }
  return (BigInt(hi) << 32n) | BigInt(lo);
}

/** Little-endian bytes of u64 words. */
export function wordBytes(words) {
  const out = new Uint8Array(words.length * 8);
  const view = new DataView(out.buffer);
  words.forEach((w, i) => view.setBigUint64(i * 8, BigInt(w) & MASK64, true));
  return out;
}

export const hex16 = (v) => v.toString(16).padStart(16, '0');
