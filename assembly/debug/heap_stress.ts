// The threads build's allocator stress (test/threads.test.ts): each thread runs
// this loop at once over the shared heap. Every block it holds is filled with the
// thread's own tag and checked before it is freed, and every fresh block must
// read as zero, so two threads handed overlapping memory (a heap without its
// lock) show up as a count of bad blocks, or as a TLSF assertion.

import { kzalloc, kfree } from "../kalloc";
import { allocFrame, freeFrame } from "../hostmm/frames";
import { P } from "../threads";
import { PAGE_SIZE } from "../layout";

const HELD: u32 = 32;
const FRAME: u32 = 0x80000000;

function check(p: usize, len: u32, tag: u8): i32 {
  for (let j: u32 = 0; j < len; j++) if (load<u8>(p + j) != tag) return 1;
  return 0;
}

/** Runs `iters` random allocations and frees (heap blocks and frames); returns the bad blocks seen. */
export function debugHeapStress(iters: i32, seed: u32): i32 {
  const table = kzalloc(HELD * 8);
  if (table == 0) return -1;
  const tag = <u8>(seed * 37 + 1);
  let x = seed * 2654435761 + 1;
  let bad = 0;
  for (let i = 0; i < iters; i++) {
    x ^= x << 13; x ^= x >> 17; x ^= x << 5;
    const e = table + <usize>(x % HELD) * 8;
    const p = <usize>load<u32>(e);
    const meta = load<u32>(e, 4);
    if (p != 0) {
      const len = meta & ~FRAME;
      bad += check(p, len, tag);
      if (meta & FRAME) freeFrame(p); else kfree(p, len);
      store<u32>(e, 0);
      continue;
    }
    const frame = (x & 0x700) == 0;
    const len: u32 = frame ? <u32>PAGE_SIZE : 1 + (x >> 8) % 700;
    const q = frame ? allocFrame() : kzalloc(len);
    if (q == 0) { bad++; continue; }
    bad += check(q, len, 0);
    memory.fill(q, tag, len);
    store<u32>(e, <u32>q);
    store<u32>(e, len | (frame ? FRAME : 0), 4);
  }
  for (let k: u32 = 0; k < HELD; k++) {
    const e = table + <usize>k * 8;
    const p = <usize>load<u32>(e);
    if (p == 0) continue;
    const meta = load<u32>(e, 4);
    bad += check(p, meta & ~FRAME, tag);
    if (meta & FRAME) freeFrame(p); else kfree(p, meta & ~FRAME);
  }
  kfree(table, HELD * 8);
  return bad;
}

/** Debug lever: turns the heap lock off (1) or on (0) for every thread. */
export function debugHeapLockOff(off: bool): void { P.heapLockOff = off ? 1 : 0; }

/** How many times a thread slept on the heap lock (the slow path ran). */
export function debugHeapLockSleeps(): u32 { return P.heapLockSleeps; }
