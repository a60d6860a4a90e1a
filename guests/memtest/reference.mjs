// Plain-JS model of the memtest guest: the byte pattern it leaves in
// [MEMTEST_BASE, MEMTEST_BASE + size) and the FNV-1a 64 it prints.
import { LCG_SEED, lcgBytes, fnv1a64, hex16 } from '../common/pattern.mjs';

export { fnv1a64 };
export const MEMTEST_BASE = 0x80200000;
export const MEMTEST_DEFAULT_SIZE = 4 * 1024 * 1024;

/**
 * The region's contents after the guest ran with a1 = size (0 = 4 MiB): the
 * LCG stream from LCG_SEED, one word per 8 bytes, stored little endian; a
 * partial last word keeps its low bytes.
 */
export function memtestPattern(size) {
  const n = Number(size) === 0 ? MEMTEST_DEFAULT_SIZE : Number(size);
  return lcgBytes(LCG_SEED, Math.ceil(n / 8)).subarray(0, n);
}

/** The line the guest prints for a1 = size. */
export function memtestLine(size) {
  return `memtest ok checksum=0x${hex16(fnv1a64(memtestPattern(size)))}\n`;
}

// node guests/memtest/reference.mjs [size]
if (import.meta.url === `file://${process.argv[1]}`) {
  process.stdout.write(memtestLine(process.argv[2] ?? 0));
}
