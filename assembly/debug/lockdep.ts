// The threads build's lock levers and lockdep probes (test/threads-slots-lock.test.ts,
// test/threads-vcpus.test.ts, test/threads-dirty.test.ts): turn a protection
// off to show the concurrency test catches its absence, count how often a
// thread slept on a lock, run a path without its lock to show the lockdep check
// fails loudly, and hold kvm->lock to see which ioctls wait for it
// (also test/threads-pfncache.test.ts: the pfn caches' locks and rwlock.ts on its own).

import { P, Process, threadId } from "../threads";
import { Vm, Vcpu, vmOf, vcpuOf, vcpuAt, mmuLock, mmuUnlock, kvmLock, kvmUnlock } from "../kvm/kvm_host";
import { rmapAdd } from "../mmu/rmap";
import { slotOf } from "../memslots/slot";
import { searchMemslots } from "../memslots/search";
import { activeSet } from "../kvm/kvm_host";
import { vcpuTables, mmioSpteValid } from "../mmu/mmu";
import { spteFor, SPTE_GFN } from "../mmu/spte";
import { setOf } from "../memslots/set";
import { vmFromFd, vcpuFromFd } from "../kvm/ioctl";
import { RWLOCK_BYTES, readLock, readUnlock, writeLock, writeUnlock } from "../rwlock";
import { kzalloc } from "../kalloc";
import { OFF_PC } from "../cpu/state";
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

/** Debug lever: mmu_lock off (1) for every VM and thread. */
export function debugMmuLockOff(off: bool): void { P.mmuLockOff = off ? 1 : 0; }

/** Debug lever: synchronize_srcu returns without waiting for readers (1). */
export function debugSrcuOff(off: bool): void { P.srcuOff = off ? 1 : 0; }

/** Debug lever: memslot sets are published with their settled generation, no in-progress bit (1). */
export function debugGenInProgressOff(off: bool): void { P.genInProgressOff = off ? 1 : 0; }

/** Sleeps on: 0 mmu_lock (and mn_invalidate_lock), 1 vcpu->mutex, 2 mmap_lock, 3 srcu's grace-period mutex; 4: MMIO sptes made across a generation change. */
export function debugLockSleeps(which: i32): u32 {
  if (which == 0) return P.mmuLockSleeps;
  if (which == 1) return P.vcpuMutexSleeps;
  if (which == 2) return P.mmapLockSleeps;
  if (which == 4) return P.mmioGenRaces;
  return P.srcuGpSleeps;
}

/** An rmap change without mmu_lock (the spte of gfn in the vCPU's first table): must trap in the debug threads build. */
export function debugRmapAddUnlocked(vcpuFd: i32, gfn: u64): void {
  const p = vcpuFromFd(vcpuFd);
  const vm = vmOf(vcpuOf(p).vm);
  const slot = searchMemslots(activeSet(vm, 0), gfn);
  rmapAdd(slotOf(slot).arch, vcpuTables(p));
}

/** Debug lever: the fault path spins n iterations between its memslot lookup and the spte install. */
export function debugFaultWindowSpin(n: i32): void { P.faultWindowSpin = n; }

/**
 * The lock words of a VM and of the process, for tests that check nothing is
 * left held (and to see what a hung test waits on): 0 slots_lock, 1 mmu_lock,
 * 2 srcu index, 3 srcu readers of index 0, 4 of index 1, 5 mn_invalidate_lock,
 * 6 invalidations in flight, 7 the heap lock, 8 the mmap_lock; 9 + 4i.. 12 + 4i: vCPU i's mode,
 * requests, SRCU index held (+1) and vcpu->mutex.
 */
export function debugLockWord(vmFd: i32, which: i32): i32 {
  if (!WEBKVM_THREADS) return -1;
  const vm = vmOf(vmFromFd(vmFd));
  switch (which) {
    case 0: return atomic.load<i32>(changetype<usize>(vm) + offsetof<Vm>("slotsLock"));
    case 1: return atomic.load<i32>(changetype<usize>(vm) + offsetof<Vm>("mmuLock"));
    case 2: return atomic.load<i32>(changetype<usize>(vm) + offsetof<Vm>("srcuIdx"));
    case 3: return atomic.load<i32>(changetype<usize>(vm) + offsetof<Vm>("srcuReaders0"));
    case 4: return atomic.load<i32>(changetype<usize>(vm) + offsetof<Vm>("srcuReaders1"));
    case 5: return atomic.load<i32>(changetype<usize>(vm) + offsetof<Vm>("mnInvalidateLock"));
    case 6: return atomic.load<i32>(changetype<usize>(vm) + offsetof<Vm>("mnActiveInvalidateCount"));
    case 7: return atomic.load<i32>(changetype<usize>(P) + offsetof<Process>("heapLock"));
    case 8: return atomic.load<i32>(changetype<usize>(P) + offsetof<Process>("mmapLock"));
  }
  if (which >= 100) { // 100 + i: the pc (low 32 bits) of vCPU i where a thread has it loaded
    const v = vcpuOf(vcpuAt(vm, which - 100));
    return v.loadedIn == 0 ? -1 : load<i32>(v.loadedIn + OFF_PC);
  }
  // 9 + 4i ..: vCPU i's mode, requests, SRCU index held (+1), vcpu->mutex
  const i = <u32>(which - 9) >> 2;
  if (which < 9 || i >= vm.createdVcpus) return -1;
  const v = vcpuAt(vm, i);
  switch ((which - 9) & 3) {
    case 0: return atomic.load<i32>(v + offsetof<Vcpu>("mode"));
    case 1: return atomic.load<i32>(v + offsetof<Vcpu>("requests"));
    case 2: return atomic.load<i32>(v + offsetof<Vcpu>("srcuHeld"));
    default: return atomic.load<i32>(v + offsetof<Vcpu>("mutex"));
  }
  return -1;
}

/**
 * Whether the vCPU's bare-mode shadow entry for gfn is an MMIO spte valid for
 * the current generation: the next guest access there would be MMIO without a
 * memslot lookup (seed 003's stale entry when a slot exists there).
 */
export function debugValidMmioSpte(vcpuFd: i32, gfn: u64): bool {
  const p = vcpuFromFd(vcpuFd);
  const v = vcpuOf(p);
  if (v.sptTables == 0) return false;
  const vm = vmOf(v.vm);
  mmuLock(vm);
  const e = spteFor(v.sptTables, gfn << 12);
  const r = load<u64>(e + SPTE_GFN) == gfn && mmioSpteValid(e, setOf(activeSet(vm, v.asId)).generation);
  mmuUnlock(vm);
  return r;
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
