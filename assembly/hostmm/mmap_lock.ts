// mmap_lock: the lock of the host address space (mm.ts).
//
// The threads build's VMAs and host page table change under one lock, taken by
// every entry point of mm.ts (a page fault too: two threads faulting one page in
// would otherwise each install a frame). The kernel's is a rwsem with faults
// as readers; a mutex is enough here, faults are off the hot path. Taken
// before kvm's mmu_lock (the MMU notifiers run under it), never after it; its
// owner may take it again (notifier callbacks may come back into the mm).

import { P, Process, threadId, mutexLock, mutexUnlock } from "../threads";

export function mmapLock(): void {
  if (!WEBKVM_THREADS) return;
  const owner = changetype<usize>(P) + offsetof<Process>("mmapLockOwner");
  if (atomic.load<i32>(owner) == threadId) { P.mmapLockDepth++; return; }
  mutexLock(changetype<usize>(P) + offsetof<Process>("mmapLock"), changetype<usize>(P) + offsetof<Process>("mmapLockSleeps"));
  atomic.store<i32>(owner, threadId);
  P.mmapLockDepth = 1;
}

export function mmapUnlock(): void {
  if (!WEBKVM_THREADS) return;
  if (--P.mmapLockDepth != 0) return;
  atomic.store<i32>(changetype<usize>(P) + offsetof<Process>("mmapLockOwner"), 0);
  mutexUnlock(changetype<usize>(P) + offsetof<Process>("mmapLock"));
}

