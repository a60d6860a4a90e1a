// The threads build's lock levers and lockdep probes (test/threads-slots-lock.test.ts,
// test/threads-pfncache.test.ts): turn a lock off to show the concurrency test
// catches its absence, count how often a thread slept on it, and run the
// protocol it guards without it to show the lockdep check fails loudly.

import { P, threadId } from "../threads";
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
