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
  const payload = payloadFor(size);
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

// Small-block caches (the kernel's kmalloc slab caches, in spirit): every
// KVM_SET_USER_MEMORY_REGION frees and allocates blocks of the same few sizes
// (the slot, its INVALID copy, its arch data, a small dirty bitmap). A freed
// block whose payload is one of TLSF's four smallest sizes goes on a short
// LIFO list of its size and is handed out again without TLSF's search,
// splitting and coalescing. Accounting treats it as freed (it is not live).
// A list holds up to 1,024 blocks (64 KiB of the largest size): enough for a
// VMM that deletes a thousand slots and creates them again to be served from
// it, as the kernel's slab caches serve it; beyond that blocks go to TLSF.
const CACHE_CLASSES: usize = 4;   // payloads TLSF_BLOCK_MINSIZE + 16 * class
const CACHE_DEPTH: u32 = 1024;
const CACHE_MAX_PAYLOAD: usize = TLSF_BLOCK_MINSIZE + ((CACHE_CLASSES - 1) << 4);
const cacheBlocks = memory.data(<i32>(CACHE_CLASSES * <usize>CACHE_DEPTH * 4));
const cacheCounts = memory.data(<i32>(CACHE_CLASSES * 4));

/** The cache class of a block of this payload (its header's size), or -1. */
// @ts-ignore: decorator
@inline function cacheClass(payload: usize): i32 {
  if (payload > CACHE_MAX_PAYLOAD || ((payload - TLSF_BLOCK_MINSIZE) & AL_MASK) != 0) return -1;
  return <i32>((payload - TLSF_BLOCK_MINSIZE) >> AL_BITS);
}

/** The payload TLSF gives a request of size bytes (prepareSize). */
// @ts-ignore: decorator
@inline function payloadFor(size: usize): usize {
  return size <= TLSF_BLOCK_MINSIZE ? TLSF_BLOCK_MINSIZE : ((size + BLOCK_OVERHEAD + AL_MASK) & ~AL_MASK) - BLOCK_OVERHEAD;
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
  let p: usize = 0;
  const c = size <= CACHE_MAX_PAYLOAD ? cacheClass(payloadFor(size)) : -1;
  const count = cacheCounts + (<usize>c << 2);
  if (c >= 0 && load<u32>(count) != 0) {
    const n = load<u32>(count) - 1;
    store<u32>(count, n);
    p = load<u32>(cacheBlocks + ((<usize>c * <usize>CACHE_DEPTH + <usize>n) << 2));
  } else {
    if (!heapCanServe(size)) { heapUnlock(); return 0; }
    const fit = WEBKVM_DEBUG && tlsfHasFit(size);
    const pages = memory.size();
    p = heap.alloc(size);
    if (fit && memory.size() != pages) abort("kalloc: TLSF grew the memory for a request its free lists held (tlsfHasFit no longer mirrors rt/tlsf)");
  }
  P.allocatedBytes += <u64>size;
  P.heapBlockBytes += blockBytes(p);
  P.liveAllocations++;
  heapUnlock();
  // Small objects (slots, their arch data) are zeroed word by word: the engine
  // may run memory.fill as a call out of the compiled code, which costs more
  // than a few stores. (The payload may end 4 bytes past a word boundary: the tail goes by halves and bytes.)
  if (size <= 64) {
    let o: usize = 0;
    for (; o + 8 <= size; o += 8) store<u64>(p + o, 0);
    if (o + 4 <= size) { store<u32>(p + o, 0); o += 4; }
    for (; o < size; o++) store<u8>(p + o, 0);
  } else {
    memory.fill(p, 0, size);
  }
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
  const c = cacheClass(<usize>(load<u32>(p - BLOCK_OVERHEAD) & ~3));
  const count = cacheCounts + (<usize>c << 2);
  if (c >= 0 && load<u32>(count) < CACHE_DEPTH) {
    const n = load<u32>(count);
    store<u32>(cacheBlocks + ((<usize>c * <usize>CACHE_DEPTH + <usize>n) << 2), <u32>p);
    store<u32>(count, n + 1);
  } else {
    heap.free(p);
  }
  P.allocatedBytes -= <u64>size;
  P.liveAllocations--;
  heapUnlock();
}
