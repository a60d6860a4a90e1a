// The threads build's lock levers and lockdep probes (test/threads-slots-lock.test.ts,
// test/threads-pfncache.test.ts): turn a lock off to show the concurrency test
// catches its absence, count how often a thread slept on it, and run the
// protocol it guards without it to show the lockdep check fails loudly.

import { P, Process, threadId } from "../threads";
import { RWLOCK_BYTES, readLock, readUnlock, writeLock, writeUnlock } from "../rwlock";
import { kzalloc } from "../kalloc";
import { vmOf } from "../kvm/kvm_host";
import { vmFromFd } from "../kvm/ioctl";
import { setMemoryRegion } from "../kvm/set_memory_region";
import { gpcOf, gpcCheck, gpcRefreshHeld, INVALID_GPA } from "../pfncache";
import { KVM_HVA_ERR_BAD } from "../kvm/kvm_host";

/** Debug lever: turns every VM's slots_lock (and its lockdep check) off (1) or on (0) for every thread. */
export function debugSlotsLockOff(off: bool): void { P.slotsLockOff = off ? 1 : 0; }

/** How many times a thread slept on a slots_lock (the slow path ran). */
export function debugSlotsLockSleeps(): u32 { return P.slotsLockSleeps; }

/** This instance's thread id (the lock owner lockdep compares with). */
export function debugThreadId(): i32 { return threadId; }

/** kvm_set_memory_region called without slots_lock: must trap in the debug threads build. */
export function debugSetMemoryRegionUnlocked(fd: i32, slot: u32, gpa: u64, size: u64, uaddr: u64): i32 {
  return setMemoryRegion(vmOf(vmFromFd(fd)), slot, 0, gpa, size, uaddr, 0, -1);
}

// ---- pfn caches (test/threads-pfncache.test.ts) ----

/** Debug lever: turns every pfn cache's gpc->lock, refresh_lock and the VMs' gpc_lock (and their lockdep checks) off (1) or on (0). */
export function debugGpcLockOff(off: bool): void { P.gpcLockOff = off ? 1 : 0; }

/** How many times a thread slept on a pfn cache lock. */
export function debugGpcLockSleeps(): u32 { return P.gpcLockSleeps; }

/** __kvm_gpc_refresh called without refresh_lock: must trap in the debug threads build. */
export function debugGpcRefreshUnlocked(p: usize): i32 {
  const g = gpcOf(p);
  return gpcRefreshHeld(p, g.gpa, g.gpa == INVALID_GPA ? g.uhva : KVM_HVA_ERR_BAD);
}

/** kvm_gpc_check called without gpc->lock: must trap in the debug threads build. */
export function debugGpcCheckUnlocked(p: usize, len: u64): bool { return gpcCheck(p, len); }

// ---- rwlock.ts on its own (test/threads-pfncache.test.ts) ----
// A block of a lock and three counters: a writer bumps the first, dawdles, then
// sets the second to match; a reader must always find them equal; and the
// first must end equal to the third, which every write section bumps
// atomically (writers exclude each other: no bump of the first is lost).

/** A zeroed block for debugRwlockStress (never freed: a test's process is short-lived). */
export function debugRwlockBlock(): usize { return kzalloc(RWLOCK_BYTES + 12); }

/** `iters` random read (3 in 4) or write sections on the block's lock (`locked` false: no lock); returns the torn reads seen, or -1. */
export function debugRwlockStress(block: usize, iters: i32, seed: u32, locked: bool): i32 {
  if (!WEBKVM_THREADS) return -1;
  const a = block + RWLOCK_BYTES, b = a + 4;
  const sleeps = changetype<usize>(P) + offsetof<Process>("gpcLockSleeps");
  let x = seed * 2654435761 + 1;
  let torn = 0;
  for (let i = 0; i < iters; i++) {
    x ^= x << 13; x ^= x >> 17; x ^= x << 5;
    if ((x & 3) == 0) {
      if (locked) writeLock(block, sleeps);
      const v = load<u32>(a) + 1;
      store<u32>(a, v);
      for (let n = (x >> 4) & 63; n > 0; n--) atomic.load<u32>(a);
      store<u32>(b, v);
      if (locked) writeUnlock(block);
      atomic.add<u32>(b + 4, 1);
    } else {
      if (locked) readLock(block, sleeps);
      const v = load<u32>(a);
      for (let n = (x >> 4) & 15; n > 0; n--) atomic.load<u32>(a);
      if (load<u32>(b) != v) torn++;
      if (locked) readUnlock(block);
    }
  }
  return torn;
}

/** Whether the block's write count (the first counter) is the number of write sections run. */
export function debugRwlockWritesAdd(block: usize): bool {
  if (!WEBKVM_THREADS) return false;
  return load<u32>(block + RWLOCK_BYTES) == atomic.load<u32>(block + RWLOCK_BYTES + 8);
}
