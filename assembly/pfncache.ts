// gfn_to_pfn_cache (virt/kvm/pfncache.c): a persistent mapping of one guest page
// for host-side users (pvclock, runstate areas). Valid only while the AS 0
// memslot generation it was resolved under is current and no MMU-notifier
// invalidation has hit its hva; a stale cache must be refreshed, never used.
//
// The threads build locks it as the kernel does. gpc->lock is a reader-writer
// lock (rwlock.ts): a user checks the cache and touches the page it maps while
// holding it for read (gpcAccess: check, copy, unlock in one core call), so the
// invalidation, which takes it for write, cannot return (and munmap cannot free
// the frame) while a user is inside. A rwlock rather than a mutex because the
// users are many and read-mostly (every vCPU publishing through one shared
// cache) and the writers rare; and the invalidation's read-then-write re-check
// (gfn_to_pfn_cache_invalidate_start) only means something with one.
// gpc->refresh_lock (a mutex) serialises refresh, activate and deactivate, so a
// refresh that dropped gpc->lock to resolve the page cannot revive a cache that
// a deactivate took down meanwhile (xen_shinfo_test's race). kvm->gpc_lock
// guards the VM's list of active caches against the invalidation walking it.
// Lock order: mmap_lock (an invalidation runs under it) -> gpc_lock -> gpc->lock;
// refresh_lock -> gpc_lock -> gpc->lock; refresh_lock -> mmap_lock with
// gpc->lock dropped (hvaToPfnRetry), as the lookup may itself invalidate.

import { Vm, vmOf, activeSet, gfnToHvaMemslot, isErrorHva, KVM_HVA_ERR_BAD } from "./kvm/kvm_host";
import { setOf } from "./memslots/set";
import { gfnToMemslotInSet } from "./memslots/search";
import { hvaToLinear, accessOk } from "./hostmm/mm";
import { mmapLock, mmapUnlock } from "./hostmm/mmap_lock";
import { markPageDirtyInSlot } from "./dirty/mark";
import { kzalloc, kfree } from "./kalloc";
import { PAGE_SHIFT, PAGE_MASK, PAGE_SIZE } from "./layout";
import { P, Process, threadId, mutexLock, mutexUnlock } from "./threads";
import { readLock, readUnlock, writeLock, writeUnlock, heldForWrite } from "./rwlock";
import { fail, EINVAL, EFAULT, EAGAIN, CHECK_GPC_INVALID_GPA, CHECK_GPC_LEN, CHECK_GPC_INACTIVE, CHECK_GPC_NO_PAGE, CHECK_GPC_OWN_INVALIDATION } from "./errno";
import { runReaderHook, HOOK_GPC_RESOLVED } from "./debug/hooks";
import { invalidationsHere } from "./kvm/mmu_invalidate";

export const INVALID_GPA: u64 = <u64>-1;

@unmanaged export class Gpc {
  gpa: u64;
  generation: u64;
  /** User address including the page offset, or an error hva. */
  uhva: u64;
  vm: usize;
  memslot: usize;
  /** Linear address of the page (0 = error pfn) and of the cached byte. */
  pfn: usize;
  khva: usize;
  active: u32;
  valid: u32;
  next: usize;
  /** gpc->lock: rwlock.ts's four words (state, seq, sleepers, writer). Threads build. */
  lock: i32;
  lockSeq: i32;
  lockSleepers: i32;
  lockWriter: i32;
  /** gpc->refresh_lock (threads.ts's mutex) and its holder, lockdep's owner. */
  refreshLock: i32;
  refreshOwner: i32;
}

@inline export function gpcOf(p: usize): Gpc {
  return changetype<Gpc>(p);
}

// ---- the locks: nothing in the default builds, nothing with the debug lever pulled ----

@inline function locksOff(): bool {
  return !WEBKVM_THREADS || P.gpcLockOff != 0;
}

@inline function sleepsAt(): usize {
  return changetype<usize>(P) + offsetof<Process>("gpcLockSleeps");
}

/** The cache this thread holds for read (debug threads build): kvm_gpc_check's lockdep. */
let readHeld: usize = 0;

function gpcReadLock(p: usize): void {
  if (locksOff()) return;
  readLock(p + offsetof<Gpc>("lock"), sleepsAt());
  if (WEBKVM_DEBUG) readHeld = p;
}

function gpcReadUnlock(p: usize): void {
  if (locksOff()) return;
  if (WEBKVM_DEBUG) readHeld = 0;
  readUnlock(p + offsetof<Gpc>("lock"));
}

function gpcWriteLock(p: usize): void {
  if (locksOff()) return;
  writeLock(p + offsetof<Gpc>("lock"), sleepsAt());
}

function gpcWriteUnlock(p: usize): void {
  if (locksOff()) return;
  writeUnlock(p + offsetof<Gpc>("lock"));
}

function refreshLock(p: usize): void {
  if (locksOff()) return;
  mutexLock(p + offsetof<Gpc>("refreshLock"), sleepsAt());
  gpcOf(p).refreshOwner = threadId;
}

function refreshUnlock(p: usize): void {
  if (locksOff()) return;
  gpcOf(p).refreshOwner = 0;
  mutexUnlock(p + offsetof<Gpc>("refreshLock"));
}

/** spin_lock(&kvm->gpc_lock) */
function gpcListLock(vm: Vm): void {
  if (locksOff()) return;
  mutexLock(changetype<usize>(vm) + offsetof<Vm>("gpcListLock"), sleepsAt());
}

function gpcListUnlock(vm: Vm): void {
  if (locksOff()) return;
  mutexUnlock(changetype<usize>(vm) + offsetof<Vm>("gpcListLock"));
}

/** lockdep_assert_held(&gpc->refresh_lock): the debug threads build traps when this thread does not hold it. */
function assertRefreshLockHeld(p: usize): void {
  if (!WEBKVM_THREADS || !WEBKVM_DEBUG || locksOff()) return;
  if (atomic.load<i32>(p + offsetof<Gpc>("refreshOwner")) != threadId) abort("lockdep: gpc refresh_lock not held by this thread");
}

/** lockdep_assert_held_write(&gpc->lock) */
function assertWriteLockHeld(p: usize): void {
  if (!WEBKVM_THREADS || !WEBKVM_DEBUG || locksOff()) return;
  if (!heldForWrite(p + offsetof<Gpc>("lock"))) abort("lockdep: gpc->lock not held for write by this thread");
}

/** A user checks the cache only under gpc->lock (debug threads build). */
function assertLockHeld(p: usize): void {
  if (!WEBKVM_THREADS || !WEBKVM_DEBUG || locksOff()) return;
  if (readHeld != p && !heldForWrite(p + offsetof<Gpc>("lock"))) abort("lockdep: gpc->lock not held by this thread");
}

/** kvm_gpc_init */
export function gpcInit(vm: Vm): usize {
  const p = kzalloc(offsetof<Gpc>());
  if (p == 0) return 0;
  const g = gpcOf(p);
  g.vm = changetype<usize>(vm);
  g.gpa = INVALID_GPA;
  g.uhva = KVM_HVA_ERR_BAD;
  return p;
}

@inline function lenFits(off: u64, len: u64): bool {
  return off + len <= <u64>PAGE_SIZE;
}

@inline function isHvaCache(g: Gpc): bool {
  return g.gpa == INVALID_GPA;
}

/**
 * mmu_notifier_retry_cache: an invalidation ran, or runs, since seq was read.
 * The count first: it rises before an invalidation takes gpc->lock and falls
 * only after the sequence moved on (mmu_notifier.ts).
 */
function retryCache(vm: Vm, seq: u64): bool {
  if (WEBKVM_THREADS) {
    if (atomic.load<u32>(changetype<usize>(vm) + offsetof<Vm>("mnActiveInvalidateCount")) != 0) return true;
    return atomic.load<u64>(changetype<usize>(vm) + offsetof<Vm>("mmuInvalidateSeq")) != seq;
  }
  return vm.mnActiveInvalidateCount != 0 || vm.mmuInvalidateSeq != seq;
}

/**
 * hva_to_pfn_retry: resolves the page writable with gpc->lock dropped (the
 * lookup takes mmap_lock and may itself fire an invalidation that needs
 * gpc->lock), and resolves it again for as long as an invalidation ran or runs
 * meanwhile, as the kernel does: the page might be the one going away. Returns
 * the linear address of the page's byte, 0 when no page backs it, or -errno.
 * One way the loop could not end: this thread is itself inside an
 * invalidation (a reader hook at HOOK_MN_INVALIDATING called the refresh),
 * which cannot finish while the refresh waits; in the kernel that invalidation
 * runs on another CPU and ends. That refresh fails instead of spinning.
 */
function hvaToPfnRetry(p: usize): i64 {
  assertRefreshLockHeld(p);
  assertWriteLockHeld(p);
  const g = gpcOf(p);
  const vm = vmOf(g.vm);
  // Invalid while the lock is dropped: uhva and generation are already the
  // new ones, so a concurrent check would not fail otherwise.
  g.valid = 0;
  let lin: usize;
  let retry: bool;
  do {
    const seq = WEBKVM_THREADS ? atomic.load<u64>(changetype<usize>(vm) + offsetof<Vm>("mmuInvalidateSeq")) : vm.mmuInvalidateSeq;
    gpcWriteUnlock(p);
    mmapLock();
    lin = hvaToLinear(g.uhva, true); // uhva changes only under refresh_lock, which this thread holds
    mmapUnlock();
    // Debug: the window where another CPU's invalidation races with the refresh.
    runReaderHook(g.vm, HOOK_GPC_RESOLVED, 0);
    gpcWriteLock(p);
    if (lin == 0) return 0;
    retry = retryCache(vm, seq);
    if (retry && invalidationsHere != 0) return <i64>fail(CHECK_GPC_OWN_INVALIDATION, EAGAIN);
  } while (retry);
  return <i64>lin;
}

/** __kvm_gpc_refresh: resolves the stored address under refresh_lock (held by the caller); 0 or -errno. */
export function gpcRefreshHeld(p: usize, gpa: u64, uhva: u64): i32 {
  assertRefreshLockHeld(p);
  const g = gpcOf(p);
  gpcWriteLock(p);
  if (g.active == 0) {
    gpcWriteUnlock(p);
    return fail(CHECK_GPC_INACTIVE, EINVAL);
  }
  const vm = vmOf(g.vm);
  const oldPageHva = g.uhva & ~PAGE_MASK;
  let hvaChanged = false;
  let off: u64;
  let r = 0;
  if (gpa == INVALID_GPA) {
    g.gpa = INVALID_GPA;
    g.memslot = 0;
    g.uhva = uhva & ~PAGE_MASK;
    hvaChanged = g.uhva != oldPageHva;
    off = uhva & PAGE_MASK;
  } else {
    const gen = setOf(activeSet(vm, 0)).generation;
    off = gpa & PAGE_MASK;
    if (gpa != g.gpa || g.generation != gen || isErrorHva(g.uhva)) {
      g.gpa = gpa;
      g.generation = gen;
      const slot = gfnToMemslotInSet(activeSet(vm, 0), gpa >> PAGE_SHIFT);
      g.memslot = slot;
      g.uhva = gfnToHvaMemslot(slot, gpa >> PAGE_SHIFT, true);
      hvaChanged = g.uhva != oldPageHva;
    } else {
      g.uhva = g.uhva & ~PAGE_MASK;
    }
  }
  if (isErrorHva(g.uhva)) {
    r = refreshFailed(g, fail(CHECK_GPC_NO_PAGE, EFAULT));
  } else {
    g.uhva |= off;
    if (g.valid == 0 || hvaChanged) {
      const lin = hvaToPfnRetry(p);
      if (lin <= 0) r = refreshFailed(g, lin == 0 ? fail(CHECK_GPC_NO_PAGE, EFAULT) : <i32>lin);
      else {
        g.pfn = <usize>lin & ~<usize>PAGE_MASK;
        g.khva = <usize>lin;
        g.valid = 1;
      }
    } else {
      g.khva = g.pfn + <usize>off;
    }
  }
  gpcWriteUnlock(p);
  return r;
}

/** The cache maps nothing after a failed refresh; returns r (-errno). */
function refreshFailed(g: Gpc, r: i32): i32 {
  g.valid = 0;
  g.pfn = 0;
  g.khva = 0;
  return r;
}

function activate(p: usize, gpa: u64, uhva: u64, len: u64): i32 {
  const g = gpcOf(p);
  const off = gpa != INVALID_GPA ? gpa & PAGE_MASK : uhva & PAGE_MASK;
  if (!lenFits(off, len)) return fail(CHECK_GPC_LEN, EINVAL);
  refreshLock(p);
  if (g.active == 0) {
    const vm = vmOf(g.vm);
    gpcListLock(vm);
    g.next = vm.gpcList;
    vm.gpcList = p;
    gpcListUnlock(vm);
    // Active only once on the list: a refresh must not map a page before
    // invalidations can reach the cache.
    gpcWriteLock(p);
    g.active = 1;
    gpcWriteUnlock(p);
  }
  const r = gpcRefreshHeld(p, gpa, uhva);
  refreshUnlock(p);
  return r;
}

/** kvm_gpc_activate */
export function gpcActivate(p: usize, gpa: u64, len: u64): i32 {
  if (gpa == INVALID_GPA) return fail(CHECK_GPC_INVALID_GPA, EINVAL);
  return activate(p, gpa, KVM_HVA_ERR_BAD, len);
}

/** kvm_gpc_activate_hva */
export function gpcActivateHva(p: usize, uhva: u64, len: u64): i32 {
  if (!accessOk(uhva, len)) return fail(CHECK_GPC_INVALID_GPA, EINVAL);
  return activate(p, INVALID_GPA, uhva, len);
}

/** kvm_gpc_check: the caller holds gpc->lock (gpcAccess, gpcCheckLocked). */
export function gpcCheck(p: usize, len: u64): bool {
  assertLockHeld(p);
  const g = gpcOf(p);
  if (g.active == 0) return false;
  if (!isHvaCache(g) && g.generation != setOf(activeSet(vmOf(g.vm), 0)).generation) return false;
  if (isErrorHva(g.uhva)) return false;
  if (!lenFits(g.uhva & PAGE_MASK, len)) return false;
  return g.valid != 0;
}

/** kvm_gpc_check under read_lock, for a caller that only asks. */
export function gpcCheckLocked(p: usize, len: u64): bool {
  gpcReadLock(p);
  const ok = gpcCheck(p, len);
  gpcReadUnlock(p);
  return ok;
}

/**
 * A user's access through the cache, as the kernel's users do it: under
 * read_lock, check, then copy len bytes between buf and the cached address
 * (write: buf -> page, then mark the page dirty), then unlock. 1 when done,
 * 0 when the cache is stale (the caller refreshes and tries again).
 */
export function gpcAccess(p: usize, buf: usize, len: u64, write: bool): i32 {
  gpcReadLock(p);
  if (!gpcCheck(p, len)) {
    gpcReadUnlock(p);
    return 0;
  }
  const g = gpcOf(p);
  if (write) {
    memory.copy(g.khva, buf, <usize>len);
    gpcMarkDirty(p);
  } else {
    memory.copy(buf, g.khva, <usize>len);
  }
  gpcReadUnlock(p);
  return 1;
}

/** kvm_gpc_refresh */
export function gpcRefresh(p: usize, len: u64): i32 {
  const g = gpcOf(p);
  refreshLock(p);
  const off = isHvaCache(g) ? g.uhva & PAGE_MASK : g.gpa & PAGE_MASK;
  let r: i32;
  if (!lenFits(off, len)) r = fail(CHECK_GPC_LEN, EINVAL);
  else r = gpcRefreshHeld(p, isHvaCache(g) ? INVALID_GPA : g.gpa, isHvaCache(g) ? g.uhva : KVM_HVA_ERR_BAD);
  refreshUnlock(p);
  return r;
}

/** kvm_gpc_deactivate: gpa / generation / memslot / uhva are kept on purpose. */
export function gpcDeactivate(p: usize): void {
  const g = gpcOf(p);
  refreshLock(p);
  if (g.active != 0) {
    // Inactive before it leaves the list: invalidations keep reaching it until
    // no user can hold the page (gpc->lock) and no refresh can map one again.
    gpcWriteLock(p);
    g.active = 0;
    g.valid = 0;
    g.khva = 0;
    g.pfn = 0;
    gpcWriteUnlock(p);
    const vm = vmOf(g.vm);
    gpcListLock(vm);
    if (vm.gpcList == p) vm.gpcList = g.next;
    else for (let q = vm.gpcList; q != 0; q = gpcOf(q).next) {
      if (gpcOf(q).next == p) { gpcOf(q).next = g.next; break; }
    }
    g.next = 0;
    gpcListUnlock(vm);
  }
  refreshUnlock(p);
}

export function gpcDestroy(p: usize): void {
  gpcDeactivate(p);
  kfree(p);
}

/** kvm_gpc_mark_dirty_in_slot: HVA caches never log. */
export function gpcMarkDirty(p: usize): void {
  const g = gpcOf(p);
  if (g.memslot != 0) markPageDirtyInSlot(vmOf(g.vm), g.memslot, g.gpa >> PAGE_SHIFT);
}

@inline function invalidates(g: Gpc, start: u64, end: u64): bool {
  return g.valid != 0 && g.pfn != 0 && g.uhva >= start && g.uhva < end;
}

/**
 * gfn_to_pfn_cache_invalidate_start: caches whose uhva lies in [start, end)
 * stop being valid. Looks under read_lock, and re-checks under write_lock, as
 * a refresh may have changed the cache in between; returns only when no user
 * is inside any of them.
 */
export function gpcInvalidateStart(vm: Vm, start: u64, end: u64): void {
  gpcListLock(vm);
  for (let p = vm.gpcList; p != 0; p = gpcOf(p).next) {
    const g = gpcOf(p);
    gpcReadLock(p);
    const hit = invalidates(g, start, end);
    gpcReadUnlock(p);
    if (!hit) continue;
    gpcWriteLock(p);
    if (invalidates(g, start, end)) g.valid = 0;
    gpcWriteUnlock(p);
  }
  gpcListUnlock(vm);
}
