// Metadata allocation (the kernel's kzalloc/kvzalloc). Wraps the TLSF heap but
// never traps: a request the 4 GiB wasm32 address space cannot satisfy returns 0,
// which callers turn into ENOMEM, as the kernel does when vmalloc fails.

import { injected } from "./debug/inject";

const WASM_MAX_PAGES: i32 = 65536;
// TLSF may need some room for its own bookkeeping when it grows.
const ALLOC_SLACK: u64 = 1 << 20;

export let allocatedBytes: u64 = 0;
/** Blocks allocated and not yet freed: exact, unlike allocatedBytes (callers may free without a size). */
export let liveAllocations: u32 = 0;

/** Zeroed allocation, 0 on failure. `point` names an injection site (0 = none). */
export function kzalloc(size: usize, point: i32 = 0): usize {
  if (point != 0 && injected(point) != 0) return 0;
  if (size == 0) size = 1;
  const room = (<u64>(WASM_MAX_PAGES - memory.size()) << 16);
  if (<u64>size + ALLOC_SLACK > room && <u64>size > (16 << 20)) {
    // Large requests only succeed when growth is possible; TLSF traps otherwise.
    return 0;
  }
  if (<u64>size > room + (64 << 20)) return 0;
  const p = heap.alloc(size);
  memory.fill(p, 0, size);
  allocatedBytes += <u64>size;
  liveAllocations++;
  return p;
}

export function kfree(p: usize, size: usize = 0): void {
  if (p == 0) return;
  // Debug core: freed memory reads as a pattern no structure holds, so a use
  // after free trips an invariant instead of reading the old values. The
  // block's payload size sits in the heap's header word before p (the runtime's
  // BLOCK.mmInfo, low two bits tags).
  if (WEBKVM_DEBUG) memory.fill(p, 0xa5, <usize>(load<u32>(p - 4) & ~3));
  heap.free(p);
  allocatedBytes -= <u64>size;
  liveAllocations--;
}
