// Metadata allocation (the kernel's kzalloc/kvzalloc). Wraps the TLSF heap but
// never traps: a request the memory's maximum (4 GiB, or a smaller shared one's) cannot satisfy returns 0,
// which callers turn into ENOMEM, as the kernel does when vmalloc fails.
// Safe from any thread of the threads build: the heap and its accounting sit
// under threads.ts's heap lock (why a lock and not per-thread arenas: there).

import { injected } from "./debug/inject";
import { BLOCK_MAXSIZE } from "rt/common";
import { P, heapLock, heapUnlock, WASM_MAX_PAGES } from "./threads";

export function allocatedBytes(): u64 { return P.allocatedBytes; }
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

/**
 * Whether the heap may serve size bytes without trapping. TLSF traps when the
 * memory.grow it needs is refused, which would leave the heap lock held and
 * every other thread of the process stuck behind it; and it cannot say whether
 * a request fits its free lists without trying. So a request goes to it only
 * when the worst growth it could ask for fits under the maximum: its size
 * rounding adds under 1/16, plus two block headers. Near the maximum this
 * refuses some requests a free block could have held (ENOMEM where the kernel
 * might have succeeded), never grows past it. Called under the heap lock, which
 * every memory.grow of the core (this heap's, hostmm/frames.ts's) is under too.
 */
function heapCanServe(size: usize): bool {
  if (size > BLOCK_MAXSIZE - 64) return false;
  const worst = <u64>size + (<u64>size >> 4) + 64;
  return <u64>memory.size() + ((worst + 0xffff) >> 16) <= <u64>P.maxPages;
}

/** Zeroed allocation, 0 on failure. `point` names an injection site (0 = none). */
export function kzalloc(size: usize, point: i32 = 0): usize {
  if (point != 0 && injected(point) != 0) return 0;
  if (size == 0) size = 1;
  heapLock();
  if (!heapCanServe(size)) { heapUnlock(); return 0; }
  const p = heap.alloc(size);
  P.allocatedBytes += <u64>size;
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
  heap.free(p);
  P.allocatedBytes -= <u64>size;
  P.liveAllocations--;
  heapUnlock();
}
