// Plain-JS model of the smp guest: what each hart leaves in its partition
// and the line hart 0 prints.
import { LCG_SEED, lcgBytes, fnv1a64, wordBytes, hex16 } from '../common/pattern.mjs';

export const SMP_MAX_HARTS = 8;
export const SMP_PART_BASE = 0x80400000n;
export const SMP_PART_SIZE = 0x100000n;
/** Where hart h's data pages start (after its three table pages and a gap). */
export const smpDataGpa = (h) => SMP_PART_BASE + BigInt(h) * SMP_PART_SIZE + 0x10000n;
export const SMP_DATA_BYTES = 32 * 4096;

/** Hart h's data pages: the LCG stream seeded LCG_SEED + h. */
export const smpHartData = (h) => lcgBytes(LCG_SEED + BigInt(h), SMP_DATA_BYTES / 8);

/** FNV-1a 64 of hart h's data. */
export const smpHartChecksum = (h) => fnv1a64(smpHartData(h));

/** The combined checksum: FNV-1a 64 over the harts' checksums as LE words. */
export const smpChecksum = (harts) =>
  fnv1a64(wordBytes(Array.from({ length: harts }, (_, h) => smpHartChecksum(h))));

/** The line the guest prints on `harts` harts. */
export const smpLine = (harts) => `smp ok harts=${harts} checksum=0x${hex16(smpChecksum(harts))}\n`;

// node guests/smp/reference.mjs [harts]
if (import.meta.url === `file://${globalThis.process?.argv?.[1]}`) { // a browser has no process
  process.stdout.write(smpLine(Number(process.argv[2] ?? 1)));
}
