// Plain-JS model of the memtest guest: the byte pattern it leaves in
// [MEMTEST_BASE, MEMTEST_BASE + size) and the FNV-1a 64 it prints.

export const MEMTEST_BASE = 0x80200000;
export const MEMTEST_DEFAULT_SIZE = 4 * 1024 * 1024;

const MASK = (1n << 64n) - 1n;
const LCG_SEED = 0x9E3779B97F4A7C15n;
const LCG_MUL = 6364136223846793005n;
const LCG_ADD = 1442695040888963407n;

/**
 * The region's contents after the guest ran with a1 = size (0 = 4 MiB):
 * x = seed; per 8-byte word x = x * MUL + ADD (mod 2^64), stored little
 * endian; a partial last word keeps its low bytes.
 */
export function memtestPattern(size) {
  const n = Number(size) === 0 ? MEMTEST_DEFAULT_SIZE : Number(size);
  const out = new Uint8Array(n);
  const view = new DataView(out.buffer);
  const words = Math.floor(n / 8);
  let x = LCG_SEED;
  for (let k = 0; k < words; k++) {
    x = (x * LCG_MUL + LCG_ADD) & MASK;
    view.setBigUint64(k * 8, x, true);
  }
  if (n % 8) {
    x = (x * LCG_MUL + LCG_ADD) & MASK;
    for (let j = 0; j < n % 8; j++) out[words * 8 + j] = Number((x >> BigInt(8 * j)) & 0xffn);
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

/** The line the guest prints for a1 = size. */
export function memtestLine(size) {
  return `memtest ok checksum=0x${fnv1a64(memtestPattern(size)).toString(16).padStart(16, '0')}\n`;
}

// node guests/memtest/reference.mjs [size]
if (import.meta.url === `file://${process.argv[1]}`) {
  process.stdout.write(memtestLine(process.argv[2] ?? 0));
}
