// Plain-JS model of the mips guest's workload (kernel.c in the shared
// anchors): kernel_init(12345) fills a 8192-word array from a 64-bit LCG,
// then kernel_run(iters, 0xC0FFEE) mixes it and returns a checksum.
// All arithmetic is on BigInt, reduced mod 2^64.

const MASK = (1n << 64n) - 1n;
const LCG_MUL = 6364136223846793005n;
const LCG_ADD = 1442695040888963407n;
const GOLDEN = 0x9E3779B97F4A7C15n;

export const ARR_WORDS = 8192;
export const INIT_SEED = 12345n;
export const RUN_SEED = 0xC0FFEEn;
export const DEFAULT_ITERS = 40_000_000;

/** The array after kernel_init(seed). */
export function kernelInit(seed = INIT_SEED) {
  const arr = new BigUint64Array(ARR_WORDS);
  let s = BigInt(seed) & MASK;
  for (let i = 0; i < ARR_WORDS; i++) {
    s = (s * LCG_MUL + LCG_ADD) & MASK;
    arr[i] = s ^ (BigInt(i) << 32n);
  }
  return arr;
}

/** kernel_run(iters, seed) over arr (modified in place); returns the checksum. */
export function kernelRun(arr, iters, seed = RUN_SEED) {
  const n = BigInt(iters);
  let s = BigInt(seed) & MASK;
  let acc = 0n;
  const idxMask = BigInt(ARR_WORDS - 1);
  for (let it = 0n; it < n; it++) {
    s = (s * LCG_MUL + LCG_ADD) & MASK;
    const idx = Number((s >> 40n) & idxMask);
    const v = arr[idx];
    acc = ((acc + v) & MASK) ^ (s >> 21n);
    acc = (acc * GOLDEN) & MASK;
    arr[idx] = v + (acc >> 13n); // BigUint64Array stores mod 2^64
    if (v & 0x100n) acc = (acc + it) & MASK;
    else acc ^= v;
  }
  return acc;
}

/** Checksum the mips guest prints for a1 = iters (0 means the default). */
export function mipsChecksum(iters) {
  const n = Number(iters) === 0 ? DEFAULT_ITERS : iters;
  return kernelRun(kernelInit(INIT_SEED), n, RUN_SEED);
}

/** The exact line the guest prints. */
export function mipsLine(iters) {
  const n = Number(iters) === 0 ? DEFAULT_ITERS : Number(iters);
  return `mips iters=${n} checksum=0x${mipsChecksum(n).toString(16).padStart(16, '0')}\n`;
}

// node guests/mips/reference.mjs [iters]
if (import.meta.url === `file://${process.argv[1]}`) {
  process.stdout.write(mipsLine(process.argv[2] ?? 1000));
}
