// Per-slot dirty bitmaps. Layout of one allocation (n = ALIGN(npages, 64) / 64
// words, s = ALIGN(n, 64) / 64 words):
//
//   [ live bitmap: n words ][ scratch: n words ][ summary: s words ]
//
// Bit i of the live bitmap is page base_gfn + i (little-endian words, as the
// kernel's). The scratch half is the kernel's second bitmap (the snapshot a
// non-manual GET copies out). The summary has one bit per live word, set when
// the word may be non-zero, so scanning a large, mostly clean slot touches
// only the summary: 16 GiB of pages is 65,536 words but 1,024 summary words.
// The live bitmap starts on a cache line: GET_DIRTY_LOG's copy to a user page
// from a source 16 bytes off a line runs ~3% slower (split loads), and the
// heap only promises 16. The word after the summary keeps the heap block's
// start, for freeBitmap.

import { kzalloc, kfree } from "../kalloc";
import { AL_MASK } from "rt/common";
import { INJECT_ALLOC_BITMAP } from "../debug/inject";
import { dirtyAtomicOff, DIRTY_LEVER_MARK } from "../debug/dirty_levers";

@inline export function bitmapWords(npages: u64): usize {
  return <usize>((npages + 63) >> 6);
}

@inline export function summaryWords(npages: u64): usize {
  return (bitmapWords(npages) + 63) >> 6;
}

@inline function allocBytes(npages: u64): u64 {
  return (<u64>bitmapWords(npages) * 2 + <u64>summaryWords(npages)) << 3;
}

/** Where every live bitmap starts: a multiple of a cache line (the debug core checks). */
export const BITMAP_ALIGN: usize = 64;
/** What a bitmap's heap block holds beyond allocBytes: the pad up to a line, and the block's start. */
const EXTRA: usize = BITMAP_ALIGN - (AL_MASK + 1) + sizeof<usize>();

@inline export function scratchOf(bitmap: usize, npages: u64): usize {
  return bitmap + (bitmapWords(npages) << 3);
}

@inline export function summaryOf(bitmap: usize, npages: u64): usize {
  return bitmap + (bitmapWords(npages) << 4);
}

/** A zeroed bitmap, or all ones over npages when initiallySet; 0 on ENOMEM. */
export function allocBitmap(npages: u64, initiallySet: bool): usize {
  const bytes = allocBytes(npages);
  if (bytes > 0xffff0000) return 0;
  const block = kzalloc(<usize>bytes + EXTRA, INJECT_ALLOC_BITMAP);
  if (block == 0) return 0;
  const p = (block + BITMAP_ALIGN - 1) & ~(BITMAP_ALIGN - 1);
  store<usize>(p + <usize>bytes, block);
  if (!initiallySet) return p;
  const full = <usize>(npages >> 3);
  memory.fill(p, 0xff, full);
  const rest = <u32>(npages & 7);
  if (rest != 0) store<u8>(p + full, <u8>((<u32>1 << rest) - 1));
  // Summary bits exist only for the words the bitmap has.
  const n = bitmapWords(npages);
  const sum = summaryOf(p, npages);
  memory.fill(sum, 0xff, (n >> 6) << 3);
  if ((n & 63) != 0) store<u64>(sum + ((n >> 6) << 3), (<u64>1 << <u64>(n & 63)) - 1);
  return p;
}

export function freeBitmap(p: usize, npages: u64): void {
  if (p != 0) kfree(load<usize>(p + <usize>allocBytes(npages)), <usize>allocBytes(npages) + EXTRA);
}

/**
 * Sets bit rel (set_bit_le) and its summary bit. In the threads build other
 * vCPUs set bits of the same words, and GET/CLEAR_DIRTY_LOG take them, at the
 * same time: both ORs are atomic, the page's bit before its summary bit, so a
 * harvest that takes the summary bit finds the page's bit, and one that runs
 * between the two finds it at the next harvest (log.ts).
 */
@inline export function bitmapSet(p: usize, npages: u64, rel: u64): void {
  const w = p + <usize>((rel >> 6) << 3);
  if (WEBKVM_THREADS && !dirtyAtomicOff(DIRTY_LEVER_MARK)) atomic.or<u64>(w, <u64>1 << (rel & 63));
  else store<u64>(w, load<u64>(w) | (<u64>1 << (rel & 63)));
  const word = rel >> 6;
  const s = summaryOf(p, npages) + <usize>((word >> 6) << 3);
  if (WEBKVM_THREADS && !dirtyAtomicOff(DIRTY_LEVER_MARK)) atomic.or<u64>(s, <u64>1 << (word & 63));
  else store<u64>(s, load<u64>(s) | (<u64>1 << (word & 63)));
}

/**
 * Calls fn(wordIndex, ctx) for every live word whose summary bit is set, in
 * order, and clears summary bits of words found zero on the way.
 */
export function forEachMaybeDirtyWord(p: usize, npages: u64, from: usize, to: usize,
                                      fn: (word: usize, ctx: usize) => void, ctx: usize): void {
  const sum = summaryOf(p, npages);
  for (let sw = from >> 6; sw <= ((to - 1) >> 6) && from < to; sw++) {
    let bits = load<u64>(sum + (sw << 3));
    while (bits != 0) {
      const b = <usize>ctz(bits);
      bits &= bits - 1;
      const word = (sw << 6) + b;
      if (word < from || word >= to) continue;
      if (load<u64>(p + (word << 3)) == 0) {
        store<u64>(sum + (sw << 3), load<u64>(sum + (sw << 3)) & ~(<u64>1 << <u64>b));
        continue;
      }
      fn(word, ctx);
    }
  }
}
