// Metadata allocation (the kernel's kzalloc/kvzalloc). Wraps the TLSF heap but
// never traps: a request the memory's maximum (4 GiB, or a smaller shared one's) cannot satisfy returns 0,
// which callers turn into ENOMEM, as the kernel does when vmalloc fails.
// Safe from any thread of the threads build: the heap and its accounting sit
// under threads.ts's heap lock (why a lock and not per-thread arenas: there).

import { injected } from "./debug/inject";
import { AL_BITS, AL_MASK, BLOCK_OVERHEAD, BLOCK_MAXSIZE } from "rt/common";
import { ROOT } from "rt/tlsf";
import { P, heapLock, heapUnlock, WASM_MAX_PAGES } from "./threads";

export function allocatedBytes(): u64 { return P.allocatedBytes; }
/** Heap bytes the live blocks occupy, headers and size rounding included: exact (bench/footprint.js measures with it). */
export function heapBlockBytes(): u64 { return P.heapBlockBytes; }

/** A block's whole size: its payload (the header word before p, BLOCK.mmInfo, low two bits tags) and that header. */
// @ts-ignore: decorator
@inline function blockBytes(p: usize): u64 {
  return <u64>(load<u32>(p - BLOCK_OVERHEAD) & ~3) + <u64>BLOCK_OVERHEAD;
}
/** Blocks allocated and not yet freed: exact, unlike allocatedBytes (callers may free without a size). */
export function liveAllocations(): u32 { return P.liveAllocations; }

/**
 * The memory's maximum in 64 KiB pages, when the host instantiated the threads
 * build over a shared memory smaller than the module allows (Kvm.open's
 * maximumMemory). Nothing in wasm can read a memory's maximum, so the host says it.
 */
export function setMemoryMaximum(pages: i32): void {
  P.maxPages = pages < WASM_MAX_PAGES ? pages : WASM_MAX_PAGES;
}

// TLSF's geometry in rt/tlsf.ts (the AssemblyScript package-lock.json pins):
// second-level bits, the small-block bound, the smallest block it hands out.
const TLSF_SL_BITS: u32 = 4;
const TLSF_SB_BITS: u32 = TLSF_SL_BITS + AL_BITS;
const TLSF_SB_SIZE: usize = 1 << TLSF_SB_BITS;
const TLSF_ROUND_BITS: usize = sizeof<usize>() * 8 - 1 - TLSF_SL_BITS;
const TLSF_BLOCK_MINSIZE: usize = ((3 * sizeof<usize>() + BLOCK_OVERHEAD + AL_MASK) & ~AL_MASK) - BLOCK_OVERHEAD;

/**
 * Whether TLSF's free lists hold a block for size bytes, so that it serves the
 * request without growing the memory: rt/tlsf's searchBlock, read only (its
 * size class, then its two bitmaps at the root). The debug core checks every
 * allocation against it (kzalloc), so a TLSF that changed underneath shows.
 */
function tlsfHasFit(size: usize): bool {
  const root = changetype<usize>(ROOT);
  if (root == 0) return false;
  const payload = size <= TLSF_BLOCK_MINSIZE ? TLSF_BLOCK_MINSIZE : ((size + BLOCK_OVERHEAD + AL_MASK) & ~AL_MASK) - BLOCK_OVERHEAD;
  let fl: usize, sl: u32;
  if (payload < TLSF_SB_SIZE) {
    fl = 0;
    sl = <u32>(payload >> AL_BITS);
  } else {
    // roundSize: up to the next size class, so any block listed there fits
    const r = payload < (BLOCK_MAXSIZE >> 1) ? payload + (<usize>1 << (TLSF_ROUND_BITS - clz<usize>(payload))) - 1 : payload;
    fl = sizeof<usize>() * 8 - 1 - clz<usize>(r);
    sl = <u32>((r >> (fl - TLSF_SL_BITS)) ^ (1 << TLSF_SL_BITS));
    fl -= TLSF_SB_BITS - 1;
  }
  if ((load<u32>(root + (fl << 2), sizeof<usize>()) & (~<u32>0 << sl)) != 0) return true;
  return (load<usize>(root) & (~<usize>0 << (fl + 1))) != 0;
}

/**
 * Whether the heap may serve size bytes without trapping. TLSF traps when the
 * memory.grow it needs is refused, which would leave the heap lock held and
 * every other thread of the process stuck behind it. So a request goes to it
 * when its free lists hold a block for it, or when the growth it would ask for
 * fits under the maximum: its size rounding adds under 1/16, plus two block
 * headers (it tries to double the memory first, and falls back to that).
 * Called under the heap lock, which every memory.grow of the core (this heap's,
 * hostmm/frames.ts's) is under too.
 */
function heapCanServe(size: usize): bool {
  if (size > BLOCK_MAXSIZE - 64) return false;
  if (tlsfHasFit(size)) return true;
  const worst = <u64>size + (<u64>size >> 4) + 64;
  return <u64>memory.size() + ((worst + 0xffff) >> 16) <= <u64>P.maxPages;
}

/** Zeroed allocation, 0 on failure. `point` names an injection site (0 = none). */
export function kzalloc(size: usize, point: i32 = 0): usize {
  if (point != 0 && injected(point) != 0) return 0;
  if (size == 0) size = 1;
  heapLock();
  if (!heapCanServe(size)) { heapUnlock(); return 0; }
  const fit = WEBKVM_DEBUG && tlsfHasFit(size);
  const pages = memory.size();
  const p = heap.alloc(size);
  if (fit && memory.size() != pages) abort("kalloc: TLSF grew the memory for a request its free lists held (tlsfHasFit no longer mirrors rt/tlsf)");
  P.allocatedBytes += <u64>size;
  P.heapBlockBytes += blockBytes(p);
  P.liveAllocations++;
  heapUnlock();
  memory.fill(p, 0, size);
  return p;
}

export function kfree(p: usize, size: usize = 0): void {
  if (p == 0) return;
  // Debug core: freed memory reads as a pattern no structure holds, so a use
  // after free trips an invariant instead of reading the old values. The
  // block's payload size sits in the heap's header word before p (the runtime's
  // BLOCK.mmInfo, low two bits tags).
  if (WEBKVM_DEBUG) memory.fill(p, 0xa5, <usize>(load<u32>(p - 4) & ~3));
  heapLock();
  P.heapBlockBytes -= blockBytes(p);
  heap.free(p);
  P.allocatedBytes -= <u64>size;
  P.liveAllocations--;
  heapUnlock();
}
