// Fault injection: the debug API that makes the next allocation or prepare step
// at a named point fail with a chosen errno, so tests can prove rollback.

export const INJECT_NONE: i32 = 0;
export const INJECT_ALLOC_SLOT: i32 = 1;         // kvm_set_memory_region: new slot object (check 19)
export const INJECT_ALLOC_INVALID_SLOT: i32 = 2; // kvm_set_memslot: the INVALID copy
export const INJECT_ALLOC_BITMAP: i32 = 3;       // kvm_prepare_memory_region: dirty bitmap
export const INJECT_ARCH_PREPARE: i32 = 4;       // kvm_arch_prepare_memory_region: per-slot metadata
export const INJECT_FRAME: i32 = 5;              // host memory: the next page frame

let point: i32 = INJECT_NONE;
let errno: i32 = 0;
let skip: i32 = 0;

/** Arms point `p`: the (n+1)-th time it is reached it fails with `e`. */
export function injectFault(p: i32, e: i32, n: i32): void {
  point = p;
  errno = e;
  skip = n;
}

/** Returns the errno to fail with at point `p`, or 0. Fires once. */
export function injected(p: i32): i32 {
  if (point != p) return 0;
  if (skip > 0) {
    skip--;
    return 0;
  }
  point = INJECT_NONE;
  return errno;
}
