// Fault injection: the debug API that makes the next allocation or prepare step
// at a named point fail with a chosen errno, so tests can prove rollback. The
// armed point is in the process block: it fires on whichever thread gets there.

import { P } from "../threads";

export const INJECT_NONE: i32 = 0;
export const INJECT_ALLOC_SLOT: i32 = 1;         // kvm_set_memory_region: new slot object (check 19)
export const INJECT_ALLOC_INVALID_SLOT: i32 = 2; // kvm_set_memslot: the INVALID copy
export const INJECT_ALLOC_BITMAP: i32 = 3;       // kvm_prepare_memory_region: dirty bitmap
export const INJECT_ARCH_PREPARE: i32 = 4;       // kvm_arch_prepare_memory_region: per-slot metadata
export const INJECT_FRAME: i32 = 5;              // host memory: the next page frame
export const INJECT_RUN_ABORT: i32 = 6;          // KVM_RUN traps (any errno) inside its read section, vcpu->mutex held

/** Arms point `p`: the (n+1)-th time it is reached it fails with `e`. */
export function injectFault(p: i32, e: i32, n: i32): void {
  P.injectErrno = e;
  P.injectSkip = n;
  P.injectPoint = p;
}

/** Returns the errno to fail with at point `p`, or 0. Fires once. */
export function injected(p: i32): i32 {
  if (P.injectPoint != p) return 0;
  if (P.injectSkip > 0) {
    P.injectSkip--;
    return 0;
  }
  P.injectPoint = INJECT_NONE;
  return P.injectErrno;
}
