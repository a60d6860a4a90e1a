// The memslot update protocol: kvm_set_memslot with the
// INVALID phase for DELETE/MOVE, prepare, install, commit, and the rollback of
// a failed prepare. Generations change only in swapActiveMemslots.

import { Vm, activeSet, inactiveSet, setLiveGeneration, flipActiveSet, assertSlotsLockHeld } from "./kvm_host";
import { synchronizeSrcu } from "./srcu";
import { mnInvalidateLock, mnInvalidateUnlock } from "./mmu_notifier";
import { P, waitWhileEquals } from "../threads";
import { slotOf, allocSlot, freeSlot, copySlot, KVM_MEMSLOT_INVALID, KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY } from "../memslots/slot";
import { setOf } from "../memslots/set";
import { replaceMemslot } from "../memslots/replace";
import { allocBitmap, freeBitmap } from "../dirty/bitmap";
import { injected, INJECT_ALLOC_INVALID_SLOT, INJECT_ARCH_PREPARE } from "../debug/inject";
import { runReaderHook, HOOK_INVALID_PUBLISHED, HOOK_INVALIDATED, HOOK_PUBLISHED } from "../debug/hooks";
import { checkAfterUpdate, warn, WARN_GEN_IN_PROGRESS, WARN_MN_ACTIVE_DURING_SWAP } from "../debug/invariants";
import { maxGfn } from "./config";
import { flushShadowMemslot, invalidateMmioSptes, writeProtectSlot } from "../mmu/mmu";
import { allocSlotArch, freeSlotArch } from "../mmu/rmap";
import { gmemUnbind } from "../gmem/bind";
import { writeTrackingEnabled, allocWriteTrack, notifyTrackRemoveRegion } from "../mmu/page_track";
import { fail, EINVAL, ENOMEM, CHECK_ALLOC_INVALID_SLOT, CHECK_ALLOC_BITMAP, CHECK_ARCH_PREPARE,
  CHECK_MAX_GFN, CHECK_MOVE_WITH_TRACKER } from "../errno";

export const KVM_MR_CREATE: i32 = 0;
export const KVM_MR_DELETE: i32 = 1;
export const KVM_MR_MOVE: i32 = 2;
export const KVM_MR_FLAGS_ONLY: i32 = 3;

export const KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS: u64 = <u64>1 << 63;
export const KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE: u32 = 1;
export const KVM_DIRTY_LOG_INITIALLY_SET: u32 = 2;
const KVM_MIN_ALLOC_MMU_PAGES: u64 = 64;
const KVM_MEMSLOT_PAGES_TO_MMU_PAGES_RATIO: u64 = 50;

/** Observers of a settled generation change (x86: MMIO-spte wrap check, kicks). */
export let memslotsUpdatedCount: u32 = 0;

/** kvm_swap_active_memslots: publish the inactive set of as_id. */
export function swapActiveMemslots(vm: Vm, asId: u32): void {
  const active = setOf(activeSet(vm, asId));
  const next = setOf(inactiveSet(vm, asId));
  const gen = active.generation;
  warn(WARN_GEN_IN_PROGRESS, (gen & KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS) != 0);
  const settled = (gen & ~KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS) + <u64>vm.nrAs;
  // (Debug lever: without the in-progress bit, seed 003's stale MMIO spte comes back.)
  next.generation = WEBKVM_DEBUG && P.genInProgressOff != 0 ? settled : gen | KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS;
  // Wait for in-flight MMU-notifier invalidations to end, so a set never
  // changes between range_start and range_end. With one thread none can be in
  // flight now (they run to completion inside one host call); in the threads
  // build another thread's may be, and the check and the publication happen
  // under mn_invalidate_lock so none starts in between.
  mnInvalidateLock(vm);
  if (WEBKVM_THREADS) {
    const count = changetype<usize>(vm) + offsetof<Vm>("mnActiveInvalidateCount");
    let c = atomic.load<i32>(count);
    while (c != 0) {
      mnInvalidateUnlock(vm);
      waitWhileEquals(count, c, changetype<usize>(vm) + offsetof<Vm>("mnSwapWaiting"));
      mnInvalidateLock(vm);
      c = atomic.load<i32>(count);
    }
  }
  warn(WARN_MN_ACTIVE_DURING_SWAP, vm.mnActiveInvalidateCount != 0);
  flipActiveSet(vm, asId);
  setLiveGeneration(vm, asId, next.generation);
  mnInvalidateUnlock(vm);
  runReaderHook(changetype<usize>(vm), HOOK_PUBLISHED, asId);
  // synchronize_srcu_expedited: no reader still uses the old set when it is reused.
  synchronizeSrcu(vm);
  archMemslotsUpdated(vm, settled);
  next.generation = settled;
  setLiveGeneration(vm, asId, settled);
}

/** kvm_arch_memslots_updated: runs before the new generation is visible. */
function archMemslotsUpdated(vm: Vm, gen: u64): void {
  memslotsUpdatedCount++;
  invalidateMmioSptes(vm, gen);
}

/** kvm_activate_memslot: swap, then make the now-inactive set agree. */
function activateMemslot(vm: Vm, asId: u32, old: usize, nw: usize): void {
  swapActiveMemslots(vm, asId);
  replaceMemslot(inactiveSet(vm, asId), old, nw);
}

/** kvm_invalidate_memslot: publish an INVALID copy of old in its place (pass 1). */
function invalidateMemslot(vm: Vm, old: usize, invalid: usize): void {
  const asId = slotOf(old).asId;
  copySlot(invalid, old);
  const inv = slotOf(invalid);
  inv.flags |= KVM_MEMSLOT_INVALID;
  // The guest_memfd binding is not copied: gmem lookups through the INVALID copy fail.
  inv.gmemFile = 0;
  inv.gmemPgoff = 0;
  replaceMemslot(inactiveSet(vm, asId), old, invalid);
  swapActiveMemslots(vm, asId);
  runReaderHook(changetype<usize>(vm), HOOK_INVALID_PUBLISHED, asId);
  flushShadowMemslot(vm, old);
  runReaderHook(changetype<usize>(vm), HOOK_INVALIDATED, asId);
}

/** kvm_use_dirty_bitmap: no dirty ring (ring-with-bitmap never applies on x86). */
function useDirtyBitmap(vm: Vm): bool {
  return vm.dirtyRingSize == 0;
}

/** kvm_arch_prepare_memory_region [x86] */
function archPrepareMemoryRegion(vm: Vm, old: usize, nw: usize, change: i32): i32 {
  if (change == KVM_MR_MOVE && vm.externalTrackers != 0) return fail(CHECK_MOVE_WITH_TRACKER, EINVAL);
  if (change == KVM_MR_CREATE || change == KVM_MR_MOVE) {
    const n = slotOf(nw);
    if (n.baseGfn + n.npages - 1 > maxGfn) return fail(CHECK_MAX_GFN, EINVAL);
    // Fresh per-slot metadata: a MOVE must not reuse the old rmap (a stale rmap would keep sptes of the old gfns alive).
    const e = injected(INJECT_ARCH_PREPARE);
    if (e != 0) return fail(CHECK_ARCH_PREPARE, e);
    n.arch = allocSlotArch(changetype<usize>(vm));
    if (n.arch == 0) return fail(CHECK_ARCH_PREPARE, ENOMEM);
    // Fresh (zero) write-track counters at the new location while tracking is on.
    if (writeTrackingEnabled(vm) && !allocWriteTrack(nw)) {
      freeSlotArch(n.arch);
      n.arch = 0;
      return fail(CHECK_ARCH_PREPARE, ENOMEM);
    }
  } else if (change == KVM_MR_FLAGS_ONLY) {
    slotOf(nw).arch = slotOf(old).arch;
  }
  return 0;
}

/** kvm_prepare_memory_region */
function prepareMemoryRegion(vm: Vm, old: usize, nw: usize, change: i32): i32 {
  if (change != KVM_MR_DELETE) {
    const n = slotOf(nw);
    if ((n.flags & KVM_MEM_LOG_DIRTY_PAGES) == 0) {
      n.dirtyBitmap = 0;
    } else if (old != 0 && slotOf(old).dirtyBitmap != 0) {
      n.dirtyBitmap = slotOf(old).dirtyBitmap;
    } else if (useDirtyBitmap(vm)) {
      n.dirtyBitmap = allocBitmap(n.npages, (vm.manualDirtyLogProtect & KVM_DIRTY_LOG_INITIALLY_SET) != 0);
      if (n.dirtyBitmap == 0) return fail(CHECK_ALLOC_BITMAP, ENOMEM);
    } else {
      n.dirtyBitmap = 0;
    }
  }
  const r = archPrepareMemoryRegion(vm, old, nw, change);
  if (r != 0 && change != KVM_MR_DELETE) {
    const n = slotOf(nw);
    if (n.dirtyBitmap != 0 && (old == 0 || slotOf(old).dirtyBitmap == 0)) {
      freeBitmap(n.dirtyBitmap, n.npages);
      n.dirtyBitmap = 0;
    }
  }
  return r;
}

/** kvm_commit_memory_region */
function commitMemoryRegion(vm: Vm, old: usize, nw: usize, change: i32): void {
  if (change == KVM_MR_DELETE) vm.nrMemslotPages -= slotOf(old).npages;
  else if (change == KVM_MR_CREATE) vm.nrMemslotPages += slotOf(nw).npages;
  const oldFlags = old != 0 ? slotOf(old).flags : 0;
  const newFlags = nw != 0 ? slotOf(nw).flags : 0;
  if ((oldFlags ^ newFlags) & KVM_MEM_LOG_DIRTY_PAGES) {
    if (newFlags & KVM_MEM_LOG_DIRTY_PAGES) vm.nrMemslotsDirtyLogging++;
    else vm.nrMemslotsDirtyLogging--;
  }
  // [x86] kvm_arch_commit_memory_region: the shadow-MMU page budget follows the
  // memslot pages unless userspace fixed it with KVM_SET_NR_MMU_PAGES.
  if ((change == KVM_MR_CREATE || change == KVM_MR_DELETE) && vm.nrMmuPagesSet == 0) {
    const want = vm.nrMemslotPages / KVM_MEMSLOT_PAGES_TO_MMU_PAGES_RATIO;
    vm.nMaxMmuPages = want > KVM_MIN_ALLOC_MMU_PAGES ? want : KVM_MIN_ALLOC_MMU_PAGES;
  }
  // kvm_mmu_slot_apply_flags: turning logging on for an existing slot makes
  // every mapping read-only, so each page's next write is logged — unless
  // INITIALLY_SET already reports every page dirty.
  if (change == KVM_MR_FLAGS_ONLY && (newFlags & KVM_MEM_LOG_DIRTY_PAGES) != 0 &&
      (oldFlags & KVM_MEM_LOG_DIRTY_PAGES) == 0 && (newFlags & KVM_MEM_READONLY) == 0 &&
      (vm.manualDirtyLogProtect & KVM_DIRTY_LOG_INITIALLY_SET) == 0) {
    writeProtectSlot(nw);
  }
  if (change == KVM_MR_MOVE) freeSlotArch(slotOf(old).arch);
  if (change == KVM_MR_DELETE) {
    // Trackers hear of the deletion only now, when it can no longer fail.
    notifyTrackRemoveRegion(vm, old);
    freeMemslot(old);
  } else if (change == KVM_MR_MOVE || change == KVM_MR_FLAGS_ONLY) {
    const o = slotOf(old);
    if (o.dirtyBitmap != 0 && slotOf(nw).dirtyBitmap == 0) freeBitmap(o.dirtyBitmap, o.npages);
    freeSlot(old);
  }
}

/** kvm_free_memslot: the slot and all it owns (guest_memfd binding, bitmap, rmaps). */
export function freeMemslot(slot: usize): void {
  gmemUnbind(slot); // guest_memfd files outlive the slot; their ranges come free
  freeBitmap(slotOf(slot).dirtyBitmap, slotOf(slot).npages);
  freeSlotArch(slotOf(slot).arch);
  freeSlot(slot);
}

/**
 * kvm_set_memslot. Validation (set_memory_region.ts) has passed and nw (except for DELETE)
 * is allocated and filled. On failure nothing the caller owns has been freed.
 */
export function setMemslot(vm: Vm, old: usize, nw: usize, change: i32): i32 {
  assertSlotsLockHeld(vm);
  const asId = old != 0 ? slotOf(old).asId : slotOf(nw).asId;
  let invalid: usize = 0;
  if (change == KVM_MR_DELETE || change == KVM_MR_MOVE) {
    invalid = allocSlot(INJECT_ALLOC_INVALID_SLOT);
    if (invalid == 0) return fail(CHECK_ALLOC_INVALID_SLOT, ENOMEM);
    invalidateMemslot(vm, old, invalid);
  }
  const r = prepareMemoryRegion(vm, old, nw, change);
  if (r != 0) {
    if (invalid != 0) {
      // Revert: the original object was kept in the inactive set; swap it back.
      activateMemslot(vm, asId, invalid, old);
      freeSlot(invalid);
    }
    checkAfterUpdate(vm);
    return r;
  }
  // kvm_{create,delete,move,update_flags}_memslot: nw (0 for DELETE) takes
  // old's place (0 for CREATE) in the inactive set, then the sets swap; for
  // DELETE and MOVE the active set holds the INVALID copy in old's place.
  replaceMemslot(inactiveSet(vm, asId), old, nw);
  activateMemslot(vm, asId, invalid != 0 ? invalid : old, nw);
  if (invalid != 0) freeSlot(invalid);
  commitMemoryRegion(vm, old, nw, change);
  checkAfterUpdate(vm);
  return 0;
}
