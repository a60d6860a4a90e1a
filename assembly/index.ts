// The ABI: every export of the core, and nothing else. Hot-path exports take
// i32/f64; i64 (BigInt in JS) appears only on cold paths.

import { ioctlBuf, IOCTL_BUF_SIZE, ioBuf, IO_BUF_SIZE } from "./layout";
import { failedCheck } from "./errno";
import * as errno from "./errno";
import { kzalloc, kfree, allocatedBytes, heapBlockBytes, liveAllocations, setMemoryMaximum } from "./kalloc";
import { framesInUse } from "./hostmm/frames";
import * as threads from "./threads";
import * as mm from "./hostmm/mm";
import * as uffd from "./hostmm/userfaultfd";
import { configure as kvmConfigure } from "./kvm/config";
import { ioctl as kvmIoctl, closeFd as kvmCloseFd, openKvm as kvmOpen, kvmCreateVm, vmFromFd, vcpuFromFd, vmHold, vmRelease } from "./kvm/ioctl";
import { Vm, vmOf, activeSet, inactiveSet, vcpuOf, vcpuGfnToHva, gfnToHvaMemslot } from "./kvm/kvm_host";
import { setOf, idLookup } from "./memslots/set";
import { slotOf, KVM_USER_MEM_SLOTS, KVM_MEMSLOT_INVALID } from "./memslots/slot";
import { searchMemslots, gfnToMemslotInSet } from "./memslots/search";
import { indexRebuilds } from "./memslots/gfn_index";
import { accessGuest } from "./kvm/read_write_guest";
import { x86SetMemoryRegion as setInternal, internalSlotHva as internalHva } from "./kvm/set_memory_region";
import { injectFault as inject } from "./debug/inject";
import * as intro from "./debug/introspect";
import * as sel from "./selectors";
import { setHooksEnabled } from "./debug/hooks";
import { mnSlotHits, mnLastGfnStart, mnLastGfnEnd, mmuNotifierInvalidateRangeStart, mmuNotifierInvalidateRangeEnd } from "./kvm/mmu_notifier";
import { memslotsUpdatedCount } from "./kvm/set_memslot";
import { vcpuInstret as runInstret, vcpuLoaded } from "./kvm/vcpu_run";
import { makeRequest, REQ_SIGNAL } from "./kvm/requests";
import { threadGone as threadExitGone } from "./kvm/thread_exit";
import { cpuSignal } from "./cpu/execute";
import { setJitThreshold, jitCompiled, jitStale, jitFailed, jitRetired, jitChained } from "./cpu/jit/tier";
import { mmuStatOf } from "./mmu/stats";
import { rmapCount } from "./mmu/rmap";
import { registerExternalUser, unregisterExternalUser, changeWriteTracking, trackCount, trackWarnings } from "./mmu/page_track";
import * as gmem from "./gmem/file";
import { gfnAttributes, memAttributeRanges } from "./gmem/attributes";
import { gpcInit, gpcActivate, gpcActivateHva, gpcCheckLocked, gpcAccess, gpcRefresh, gpcDeactivate, gpcDestroy, gpcMarkDirty, gpcOf } from "./pfncache";

// ---- start-up: the host mm reaches KVM only through these callbacks ----
mm.registerMmuNotifier(mmuNotifierInvalidateRangeStart, mmuNotifierInvalidateRangeEnd);
mm.registerFileOps(gmem.gmemFileGet, gmem.gmemFilePut, gmem.gmemUserFault);

// ---- buffers and build ----
export function ioctlBuffer(): usize { return ioctlBuf(); }
export function ioctlBufferSize(): i32 { return IOCTL_BUF_SIZE; }
export function ioBuffer(): usize { return ioBuf(); }
export function ioBufferSize(): i32 { return IO_BUF_SIZE; }
export function isDebugBuild(): bool { return WEBKVM_DEBUG != 0; }
export function isThreadsBuild(): bool { return WEBKVM_THREADS != 0; }
// The threads build (threads.ts): the first instance sets the process block up
// and returns its address; every later instance over the same memory attaches to
// it before any other call. The default builds set it up at start-up.
export function processSetup(): usize { return threads.processSetup(); }
export function processAttach(p: usize): void { if (WEBKVM_THREADS) threads.processAttach(p); }
/** The threads build over a shared memory with a smaller maximum than the module's: that maximum, in 64 KiB pages. */
export function memoryMaximum(pages: i32): void { setMemoryMaximum(pages); }
export function lastFailedCheck(): i32 { return failedCheck; }
export function kmalloc(size: usize): usize { return kzalloc(size); }
export function kmfree(p: usize): void { kfree(p); }
export function statFramesInUse(): u32 { return framesInUse(); }
export function statHeapBytes(): u64 { return allocatedBytes(); }
export function statLiveAllocations(): u32 { return liveAllocations(); }
export function statHeapBlockBytes(): u64 { return heapBlockBytes(); }
export function statIndexRebuilds(): u32 { return indexRebuilds; }
export function statMemslotsUpdated(): u32 { return memslotsUpdatedCount; }

// ---- configuration (host-dependent values) ----
export function configure(nrAs: u32, maxGfn: u64, vmTypes: u32, memAttrs: bool, preFault: bool, ringRsvd: u32, taskSize: u64): void {
  kvmConfigure(nrAs, maxGfn, vmTypes, memAttrs, preFault, ringRsvd);
  mm.taskSize = taskSize;
}

// ---- file descriptors and ioctls ----
export function openKvm(): i32 { return kvmOpen(); }
export function ioctl(fd: i32, nr: u32, argLen: i32, arg: u64): i32 { return kvmIoctl(fd, nr, argLen, arg); }
export function closeFd(fd: i32): i32 { return kvmCloseFd(fd); }
export function createVm(type: u64, nrAs: u32): i32 { errno.clearFailedCheck(); return kvmCreateVm(type, nrAs); }

// ---- host memory (the VMM's address space) ----
export function mmap(addr: u64, len: u64, prot: u32, flags: u32): i64 { errno.clearFailedCheck(); return mm.mmap(addr, len, prot, flags); }
export function munmap(addr: u64, len: u64): i32 { errno.clearFailedCheck(); return mm.munmap(addr, len); }
export function mprotect(addr: u64, len: u64, prot: u32): i32 { errno.clearFailedCheck(); return mm.mprotect(addr, len, prot); }
export function mappingCount(): i32 { return mm.mappingCount(); }
export function mappingAt(i: i32, out: usize): void { mm.mappingAt(i, out); }
export function hvaResident(hva: u64): bool { return mm.hvaResident(hva); }

// userfaultfd's MISSING mode over the host memory (hostmm/userfaultfd.ts)
export function uffdRegister(hva: u64, len: u64): i32 { errno.clearFailedCheck(); return uffd.registerMissing(hva, len); }
export function uffdUnregister(hva: u64, len: u64): i32 { errno.clearFailedCheck(); return uffd.unregisterMissing(hva, len); }
/** UFFDIO_COPY of the first n bytes of ioBuf() (n <= IO_BUF_SIZE) into [hva, hva + len): bytes placed or -errno. */
export function uffdCopy(hva: u64, len: u64, n: u32): i64 { errno.clearFailedCheck(); return uffd.copyPages(hva, len, ioBuf(), n); }
/** UFFDIO_ZEROPAGE: bytes placed or -errno. */
export function uffdZeroPage(hva: u64, len: u64): i64 { errno.clearFailedCheck(); return uffd.zeroPages(hva, len); }
export function hvaMissing(hva: u64): bool { return uffd.hvaMissing(hva); }

/** Host-side copy between hva and ioBuf() (write: ioBuf() -> hva). 0 or -errno. */
export function hostAccess(hva: u64, len: u32, write: bool): i32 {
  errno.clearFailedCheck();
  const ok = mm.copyUser(ioBuf(), hva, len, write);
  return ok ? 0 : -errno.EFAULT;
}

// ---- VM memory ----
@inline function vmOfFd(fd: i32): Vm { return vmOf(vmFromFd(fd)); }

/** The VM fd is live (the host checks before every call below). */
export function vmLive(fd: i32): bool { return vmFromFd(fd) != 0; }
export function vmNrAs(fd: i32): u32 { return vmOfFd(fd).nrAs; }
export function generation(fd: i32, asId: u32): u64 { return setOf(activeSet(vmOfFd(fd), asId)).generation; }
export function inactiveGeneration(fd: i32, asId: u32): u64 { return setOf(inactiveSet(vmOfFd(fd), asId)).generation; }

/** kvm_read_guest / kvm_write_guest through ioBuf() (len <= IO_BUF_SIZE). */
export function accessGuestMemory(fd: i32, asId: u32, gpa: u64, len: u32, write: bool): i32 {
  errno.clearFailedCheck();
  return accessGuest(vmOfFd(fd), asId, gpa, ioBuf(), len, write);
}

/** gfn_to_hva (write) / gfn_to_hva_prot (read) in an address space: hva or an error hva. */
export function gfnToHva(fd: i32, asId: u32, gfn: u64, write: bool): u64 {
  const slot = gfnToMemslotInSet(activeSet(vmOfFd(fd), asId), gfn);
  return gfnToHvaMemslot(slot, gfn, write);
}

/** Copies the slots of a set, in gfn order, to a new buffer: u32 count, then records. */
export function snapshotMemslots(fd: i32, asId: u32, inactive: bool): usize { return intro.snapshotMemslots(vmOfFd(fd), asId, inactive); }
/** Looks gfn up (mode: LOOKUP_* of selectors.ts; LOOKUP_VCPU takes a vCPU fd); a hit's record goes to ioBuf(). */
export function lookupGfn(fd: i32, asId: u32, gfn: u64, mode: i32): i32 {
  return mode == sel.LOOKUP_VCPU ? intro.lookupGfn(changetype<Vm>(0), vcpuFromFd(fd), asId, gfn, mode)
    : intro.lookupGfn(vmOfFd(fd), 0, asId, gfn, mode);
}
/** Ids of the slots whose host range intersects [start, end), into ioBuf(); returns the count. */
export function hvaToSlots(fd: i32, asId: u32, start: u64, end: u64): i32 { return intro.hvaToSlots(vmOfFd(fd), asId, start, end); }
/** Pages of user slot `id` of address space asId (active set), -1 when there is none: the dirty-log ioctls' own lookup. */
export function memslotNpages(fd: i32, asId: u32, id: u32): i64 {
  const vm = vmOfFd(fd);
  if (asId >= vm.nrAs || id >= <u32>KVM_USER_MEM_SLOTS) return -1;
  const p = idLookup(setOf(activeSet(vm, asId)), <i32>id);
  return p == 0 ? -1 : <i64>slotOf(p).npages;
}
export function vcpuLive(fd: i32): bool { return vcpuFromFd(fd) != 0; }

/** kvm_is_visible_gfn: a user slot (id < 32764) that is not INVALID covers gfn (AS 0). */
export function isVisibleGfn(fd: i32, gfn: u64): bool {
  const p = gfnToMemslotInSet(activeSet(vmOfFd(fd), 0), gfn);
  return p != 0 && slotOf(p).id < <u32>KVM_USER_MEM_SLOTS && (slotOf(p).flags & KVM_MEMSLOT_INVALID) == 0;
}

/** __x86_set_memory_region; the new slot's hva via internalSlotHva(). */
export function x86SetMemoryRegion(fd: i32, id: u32, gpa: u64, size: u64): i32 {
  errno.clearFailedCheck();
  const vm = vmOfFd(fd);
  vmHold(vm); // a page-track callback at DELETE commit may close the VM
  const r = setInternal(vm, id, gpa, size);
  vmRelease(vm);
  return r;
}
export function internalSlotHva(): u64 { return internalHva; }

/** A VM counter: which is a VM_STAT_* of selectors.ts. */
export function vmStat(fd: i32, which: i32): u64 {
  const vm = vmOfFd(fd);
  switch (which) {
    case sel.VM_STAT_NR_MEMSLOT_PAGES: return vm.nrMemslotPages;
    case sel.VM_STAT_NR_DIRTY_LOGGING: return vm.nrMemslotsDirtyLogging;
    case sel.VM_STAT_N_MAX_MMU_PAGES: return vm.nMaxMmuPages;
    case sel.VM_STAT_MMU_INVALIDATE_SEQ: return vm.mmuInvalidateSeq;
    case sel.VM_STAT_MN_ACTIVE: return vm.mnActiveInvalidateCount;
    case sel.VM_STAT_MANUAL_PROTECT: return vm.manualDirtyLogProtect;
  }
  return 0;
}
export function statMnSlotHits(): u32 { return mnSlotHits; }
export function statMnLastGfnStart(): u64 { return mnLastGfnStart; }
export function statMnLastGfnEnd(): u64 { return mnLastGfnEnd; }

// ---- vCPUs: kvm_run, budget, counters ----
export function vcpuRunStruct(fd: i32): usize { return vcpuOf(vcpuFromFd(fd)).kvmRun; }
/** The vCPU's dirty ring (kvm_dirty_gfn entries; 0 without a ring) and its entry count. */
export function vcpuDirtyRing(fd: i32): usize { return vcpuOf(vcpuFromFd(fd)).ring; }
export function vcpuDirtyRingEntries(fd: i32): u32 { return vcpuOf(vcpuFromFd(fd)).ringEntries; }
export function vcpuSetBudget(fd: i32, n: u64): void { vcpuOf(vcpuFromFd(fd)).budget = n; }
export function vcpuInstret(fd: i32): u64 { return runInstret(vcpuFromFd(fd)); }
/** vcpu->pid: the thread id (threadIdOf) that issued the vCPU's last KVM_RUN; 0 before any. */
export function vcpuPid(fd: i32): i32 { const p = vcpuFromFd(fd); return p == 0 ? 0 : vcpuOf(p).pid; }
/** A vCPU counter: which is a VCPU_STAT_* of selectors.ts. */
export function vcpuStat(fd: i32, which: i32): u64 {
  const p = vcpuFromFd(fd);
  if (p == 0) return 0;
  const v = vcpuOf(p);
  switch (which) {
    case sel.VCPU_STAT_MEMSLOT_LOOKUPS: return v.memslotLookups;
    case sel.VCPU_STAT_MEMSLOT_CACHE_HITS: return v.memslotCacheHits;
  }
  return 0;
}
/** kvm_vcpu_gfn_to_hva through the vCPU's last-used cache. */
export function vcpuGfnToHvaOf(fd: i32, gfn: u64): u64 { return vcpuGfnToHva(vcpuFromFd(fd), gfn); }
/** The id of vCPU fd vcpuFd if it is a vCPU of the VM behind vmFd, else -1. */
export function vcpuIdOf(vmFd: i32, vcpuFd: i32): i32 {
  const p = vcpuFromFd(vcpuFd);
  if (p == 0 || vcpuOf(p).vm != vmFromFd(vmFd)) return -1;
  return <i32>vcpuOf(p).vcpuId;
}

/** A thread of the process is gone (its Worker terminated): releases what it held (kvm/thread_exit.ts). */
export function threadGone(tid: i32): i32 { return threadExitGone(tid); }

/** This instance's thread id in its process (threads build; 0 in the others). */
export function threadIdOf(): i32 { return threads.threadId; }

/**
 * A signal to the vCPU's thread: its KVM_RUN returns EINTR (exit INTR) at the
 * next instruction boundary. In the threads build from any thread, and a vCPU
 * not in KVM_RUN keeps it pending, so its next KVM_RUN returns at once.
 */
export function vcpuKick(fd: i32): void {
  const p = vcpuFromFd(fd);
  if (p == 0) return;
  if (WEBKVM_THREADS) makeRequest(p, REQ_SIGNAL);
  else if (vcpuLoaded(p)) cpuSignal();
}

/** A shadow-MMU counter of the process: which is a MMU_STAT_* of selectors.ts. */
export function mmuStat(which: i32): u32 { return which >= 0 && which < sel.MMU_STATS ? mmuStatOf(which) : 0; }
/** Present sptes on the rmap of the slot holding gfn (AS 0), or -1 without a slot. */
export function slotRmapCount(fd: i32, gfn: u64): i32 {
  const p = searchMemslots(activeSet(vmOfFd(fd), 0), gfn);
  return p == 0 ? -1 : <i32>rmapCount(slotOf(p).arch);
}

// ---- page tracking (x86 write tracking, external users as KVMGT) ----
export function pageTrackRegister(fd: i32): i32 { errno.clearFailedCheck(); return registerExternalUser(vmOfFd(fd)); }
export function pageTrackUnregister(fd: i32): void { unregisterExternalUser(vmOfFd(fd)); }
export function writeTrackChange(fd: i32, gfn: u64, delta: i32): i32 { errno.clearFailedCheck(); return changeWriteTracking(vmOfFd(fd), gfn, delta); }
export function writeTrackCount(fd: i32, gfn: u64): i32 {
  const p = gfnToMemslotInSet(activeSet(vmOfFd(fd), 0), gfn);
  return p == 0 ? -1 : <i32>trackCount(p, gfn);
}
export function statTrackWarnings(): u32 { return trackWarnings; }

// ---- gfn -> pfn caches ----
export function gpcCreate(fd: i32): usize { return gpcInit(vmOfFd(fd)); }
export function gpcActivateGpa(p: usize, gpa: u64, len: u64): i32 { errno.clearFailedCheck(); return gpcActivate(p, gpa, len); }
export function gpcActivateUhva(p: usize, uhva: u64, len: u64): i32 { errno.clearFailedCheck(); return gpcActivateHva(p, uhva, len); }
export function gpcIsValid(p: usize, len: u64): bool { return gpcCheckLocked(p, len); }
/** Under the cache's read lock: check, then copy len bytes between it and ioBuf() (write: ioBuf() -> page, marked dirty). 1 done, 0 stale. */
export function gpcAccessIo(p: usize, len: u64, write: bool): i32 { return gpcAccess(p, ioBuf(), len, write); }
export function gpcDoRefresh(p: usize, len: u64): i32 { errno.clearFailedCheck(); return gpcRefresh(p, len); }
export function gpcStop(p: usize): void { gpcDeactivate(p); }
export function gpcFree(p: usize): void { gpcDestroy(p); }
export function gpcDirty(p: usize): void { gpcMarkDirty(p); }
/** The linear address of the cached byte: a snapshot for tests; only gpcAccessIo touches the page under the lock that keeps it mapped. */
export function gpcHostAddress(p: usize): usize { return gpcOf(p).khva; }
export function gpcGpa(p: usize): u64 { return gpcOf(p).gpa; }
export function gpcUhva(p: usize): u64 { return gpcOf(p).uhva; }
export function gpcFlags(p: usize): u32 { return gpcOf(p).active | (gpcOf(p).valid << 1); }

// ---- guest_memfd file operations and memory attributes (gmem/) ----
export function gmemFallocate(fd: i32, mode: u32, offset: u64, len: u64): i32 { errno.clearFailedCheck(); return gmem.gmemFallocate(fd, mode, offset, len); }
export function gmemMmap(fd: i32, addr: u64, len: u64, prot: u32, flags: u32, offset: u64): i64 { errno.clearFailedCheck(); return gmem.gmemMmap(fd, addr, len, prot, flags, offset); }
export function gmemTruncate(fd: i32, size: u64): i32 { errno.clearFailedCheck(); return gmem.gmemTruncate(fd, size); }
export function gmemReadWrite(fd: i32): i32 { errno.clearFailedCheck(); return gmem.gmemReadWrite(fd); }
/** A guest_memfd counter (GMEM_STAT_* of selectors.ts); -1 if fd is not a guest_memfd. */
export function gmemFileStat(fd: i32, which: i32): u64 { return gmem.gmemFileStat(fd, which); }
export function gmemPagePresent(fd: i32, index: u64): bool { return gmem.gmemPagePresent(fd, index); }
export function statGmemFilesLive(): u32 { return gmem.gmemFilesLive; }
export function vmMemoryAttributes(fd: i32, gfn: u64): u64 { return gfnAttributes(vmOfFd(fd), gfn); }
export function vmMemoryAttributeRanges(fd: i32): u32 { return memAttributeRanges(vmOfFd(fd)); }

/** A host page migration of [addr, addr + len): frames move, contents stay (MMU notifiers fire). */
export function migratePages(addr: u64, len: u64): i32 { errno.clearFailedCheck(); return mm.migratePages(addr, len); }

// ---- debug: fault injection, reader hooks, and a way to prove the invariant checks fire ----
export function debugSetGeneration(fd: i32, asId: u32, gen: u64): bool { return intro.debugSetGeneration(vmOfFd(fd), asId, gen); }
export function debugCheckInvariants(fd: i32): bool { return intro.debugCheckInvariants(vmOfFd(fd)); }
export function debugInvariantStride(stride: u32): bool { return intro.debugInvariantStride(stride); }
export function debugCorruptForTest(fd: i32, what: i32): bool { return intro.debugCorruptForTest(vmOfFd(fd), what); }
export function injectFault(point: i32, err: i32, skip: i32): void { inject(point, err, skip); }
export function enableReaderHooks(on: bool): void { setHooksEnabled(on); }

// ---- the translation tier: what translated code imports, and its controls ----
export { jitFpOp } from "./cpu/jit/tier";
export function jitSetThreshold(n: i32): void { setJitThreshold(n); }
/** Regions compiled, translations found stale, translations that failed, instructions retired translated, chains taken (JIT_STAT_* of selectors.ts). */
export function jitStat(which: i32): u32 {
  if (which == sel.JIT_STAT_RETIRED) return jitRetired;
  if (which == sel.JIT_STAT_CHAINED) return jitChained();
  return which == sel.JIT_STAT_COMPILED ? jitCompiled : which == sel.JIT_STAT_STALE ? jitStale : jitFailed;
}
