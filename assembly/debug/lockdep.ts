// The threads build's lock levers and lockdep probes (test/threads-slots-lock.test.ts):
// turn slots_lock off to show the concurrency test catches its absence, count
// how often a thread slept on it, and run the memslot update protocol without
// it to show the lockdep check fails loudly; hold kvm->lock and read its word
// (test/threads-dirty.test.ts: which ioctls wait for it).

import { P, threadId } from "../threads";
import { Vm, vmOf, kvmLock, kvmUnlock } from "../kvm/kvm_host";
import { vmFromFd } from "../kvm/ioctl";
import { setMemoryRegion } from "../kvm/set_memory_region";

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

/**
 * Takes (take) or releases kvm->lock of the VM behind fd on this thread, so a
 * test can hold it while another thread's ioctl must wait for it (threads
 * build). -1 when fd is no VM's.
 */
export function debugKvmLock(fd: i32, take: bool): i32 {
  const p = vmFromFd(fd);
  if (p == 0) return -1;
  if (take) kvmLock(vmOf(p)); else kvmUnlock(vmOf(p));
  return 0;
}

/** kvm->lock's word (0 free, 1 held, 2 held with a thread sleeping on it; the default builds have none: 0), -1 when fd is no VM's. */
export function debugKvmLockWord(fd: i32): i32 {
  const p = vmFromFd(fd);
  if (p == 0) return -1;
  return WEBKVM_THREADS ? atomic.load<i32>(p + offsetof<Vm>("lock")) : 0;
}
