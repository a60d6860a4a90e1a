// The entry of the debug and bench builds: every export of the KVM API
// (index.ts) plus the surfaces only tests and benchmarks use, so the release
// build (index.ts alone) lacks them: the CPU's instruction-level harness
// (debug/cpu_harness.ts: test/cpu/, bench/guest.js) and the batched lookup
// loop (bench/lookup.js). The bench build is the release build's flags with
// this entry (asconfig.json), so it times the same optimized code.

import { Vm, vmOf } from "./kvm/kvm_host";
import { vmFromFd, vcpuFromFd } from "./kvm/ioctl";
import { benchLookup as lookupLoop, gfnIndexImage } from "./debug/introspect";
import { LOOKUP_VCPU } from "./selectors";

export * from "./index";

// ---- the CPU's instruction-level test surface (test/cpu/) ----
export * from "./debug/cpu_harness";
export { EXIT_BUDGET, EXIT_SBI, EXIT_WFI, EXIT_MEM, EXIT_INTR } from "./cpu/execute";

// ---- benchmarks: batched lookups over gfns (u64[n] at ptr), returning a checksum of hvas ----
export function benchLookup(fd: i32, asId: u32, ptr: usize, n: i32, mode: i32, rounds: i32): u64 {
  return mode == LOOKUP_VCPU ? lookupLoop(changetype<Vm>(0), vcpuFromFd(fd), asId, ptr, n, mode, rounds)
    : lookupLoop(vmOf(vmFromFd(fd)), 0, asId, ptr, n, mode, rounds);
}

/** The active set's gfn order and bucket index, for bench/native/gfnindex.c (debug/introspect.ts gfnIndexImage). */
export function benchGfnIndexImage(fd: i32, asId: u32): usize {
  return gfnIndexImage(vmOf(vmFromFd(fd)), asId);
}

// ---- the threads build's allocator stress (test/threads.test.ts) ----
export { debugHeapStress, debugHeapLockOff, debugHeapLockSleeps } from "./debug/heap_stress";

// ---- the threads build's lock levers and lockdep probes (test/threads-slots-lock.test.ts, test/threads-vcpus.test.ts), kvm->lock probes ----
export { debugSlotsLockOff, debugSlotsLockSleeps, debugThreadId, debugSetMemoryRegionUnlocked, debugMmuLockOff, debugSrcuOff,
  debugGenInProgressOff, debugLockSleeps, debugRmapAddUnlocked, debugFaultWindowSpin, debugLockWord, debugValidMmioSpte,
  debugKvmLock, debugKvmLockWord } from "./debug/lockdep";

// ---- the threads build's dirty-log race surface (test/threads-dirty.test.ts) ----
export { debugVcpuMarkPageDirty } from "./debug/dirty_race";
export { debugDirtyAtomicOff } from "./debug/dirty_levers";

// ---- the threads build's pfn-cache lock lever and lockdep probes (test/threads-pfncache.test.ts) ----
export { debugGpcLockOff, debugGpcLockSleeps, debugGpcRefreshUnlocked, debugGpcCheckUnlocked,
  debugRwlockBlock, debugRwlockStress, debugRwlockWritesAdd } from "./debug/lockdep";
