// Plain-JS model of the dirtylog guest: its fixed addresses, the parameter
// block it reads through a1, and the pages a hart's seed makes it write.
import { lcgNext, MASK64, wordBytes } from '../common/pattern.mjs';

/** The iteration number (u64), written by the host, read before every store. */
export const DIRTYLOG_ITERATION = 0x80200000n;
/** steps[hartid] (u64): how many stores the hart has made. */
export const dirtylogStepsGpa = (hartid) => 0x80200008n + 8n * BigInt(hartid);
export const DIRTYLOG_MAX_HARTS = 511;
export const DIRTYLOG_DEFAULT_BASE = 0x80400000n;
export const DIRTYLOG_DEFAULT_PAGES = 512;

/** The bytes of struct { u64 base; u64 pages; u64 seed; } that a1 points at. */
export const dirtylogParams = ({ base, pages, seed }) => wordBytes([BigInt(base), BigInt(pages), BigInt(seed)]);

/** The pages (indices into the region) of steps 1..count for a seed. */
export function dirtylogPages(seed, pages, count) {
  const at = dirtylogPageOfStep(seed, pages);
  const out = new Array(count);
  for (let n = 0; n < count; n++) out[n] = at(n + 1);
  return out;
}

/**
 * The page step n (from 1) of a hart with this seed stores to, for n that
 * never decrease from call to call (the stream is walked once, forward).
 */
export function dirtylogPageOfStep(seed, pages) {
  let x = BigInt(seed) & MASK64, step = 0;
  return (n) => {
    if (!Number.isSafeInteger(n) || n < Math.max(step, 1)) throw new RangeError(`step ${n} after step ${step}`);
    for (; step < n; step++) x = lcgNext(x);
    return Number((x >> 32n) % BigInt(pages));
  };
}
