// mmap_lock: the lock of the host address space (mm.ts).
//
// The threads build's VMAs and host page table change under one lock, taken by
// every entry point of mm.ts (a page fault too: two threads faulting one page in
// would otherwise each install a frame). The kernel's is a rwsem with faults
// as readers; a mutex is enough here, faults are off the hot path. Taken
// before kvm's mmu_lock (the MMU notifiers run under it), never after it; its
// owner may take it again (notifier callbacks may come back into the mm).

import { P, Process, ownedLock, ownedUnlock } from "../threads";

// @ts-ignore: decorator
@inline function word(): usize { return changetype<usize>(P) + offsetof<Process>("mmapLock"); }

export function mmapLock(): void {
  if (!WEBKVM_THREADS) return;
  ownedLock(word(), changetype<usize>(P) + offsetof<Process>("mmapLockSleeps"));
}

export function mmapUnlock(): void {
  if (!WEBKVM_THREADS) return;
  ownedUnlock(word());
}
