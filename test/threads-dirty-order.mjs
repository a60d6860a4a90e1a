// Which page write i of vCPU thread k logs, in test/threads-dirty.test.ts's
// bitmap races (shared by the Workers and the main thread, which inverts it).
// Slots are 64-word (4,096-page) slots, one after the other from gfn 0.
//  - Several writers: interleaved (thread k writes pages k, k + writers, ...),
//    so in lockstep they set bits of the same word at once.
//  - One writer: bit 0 of every word of a slot, then bit 1, ..., so it writes
//    all 64 words of the slot it is in all along, and a harvest of that slot
//    takes every word while it may be written.

export const SLOT_WORDS = 64;
export const SLOT_PAGES = SLOT_WORDS * 64;

export function pageOf(writers, k, i) {
  if (writers > 1) return i * writers + k;
  const s = Math.floor(i / SLOT_PAGES), r = i % SLOT_PAGES;
  return s * SLOT_PAGES + (r % SLOT_WORDS) * 64 + Math.floor(r / SLOT_WORDS);
}
