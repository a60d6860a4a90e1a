// Metadata allocation (the kernel's kzalloc/kvzalloc). Wraps the TLSF heap but
// never traps: a request the 4 GiB wasm32 address space cannot satisfy returns 0,
// which callers turn into ENOMEM, as the kernel does when vmalloc fails.
// Safe from any thread of the threads build: the heap and its accounting sit
// under threads.ts's heap lock (why a lock and not per-thread arenas: there).

import { injected } from "./debug/inject";
import { P, heapLock, heapUnlock } from "./threads";

const WASM_MAX_PAGES: i32 = 65536;
// TLSF may need some room for its own bookkeeping when it grows.
const ALLOC_SLACK: u64 = 1 << 20;

export function allocatedBytes(): u64 { return P.allocatedBytes; }
/** Blocks allocated and not yet freed: exact, unlike allocatedBytes (callers may free without a size). */
export function liveAllocations(): u32 { return P.liveAllocations; }

/** Zeroed allocation, 0 on failure. `point` names an injection site (0 = none). */
export function kzalloc(size: usize, point: i32 = 0): usize {
  if (point != 0 && injected(point) != 0) return 0;
  if (size == 0) size = 1;
  heapLock();
  const room = (<u64>(WASM_MAX_PAGES - memory.size()) << 16);
  if (<u64>size + ALLOC_SLACK > room && <u64>size > (16 << 20)) {
    // Large requests only succeed when growth is possible; TLSF traps otherwise.
    heapUnlock();
    return 0;
  }
  if (<u64>size > room + (64 << 20)) { heapUnlock(); return 0; }
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
