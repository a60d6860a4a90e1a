// KVM's MMU-notifier callbacks (kvm_mmu_notifier_invalidate_range_start/end):
// the host mm calls them around every change of what an hva maps to. Each live
// VM counts the invalidation in flight (so memslot swaps and faults can tell),
// and finds the slots of every address space whose host range intersects the
// range (kvm_handle_hva_range) — the sptes and pfn caches built on them are
// what the MMU and pfn caches drop there.

import { vmCount, vmAt, vmOf, Vm, activeSet, mmuLock, mmuUnlock } from "./kvm_host";
import { srcuReadLock, srcuReadUnlock } from "./srcu";
import { P, Process, mutexLock, mutexUnlock, futexWakeAll } from "../threads";
import { slotOf, slotHvaEnd } from "../memslots/slot";
import { forEachSlotInHvaRange } from "../memslots/search";
import { runReaderHook, HOOK_MN_INVALIDATING } from "../debug/hooks";
import { PAGE_SHIFT } from "../layout";
import { zapGfnRange } from "../mmu/mmu";
import { gpcInvalidateStart } from "../pfncache";
import { mmuInvalidateBegin, mmuInvalidateRangeAdd, mmuInvalidateEnd, invalidationEnter, invalidationLeave } from "./mmu_invalidate";

/** Slots reached by invalidations so far (for tests of hva -> slot routing). */
export let mnSlotHits: u32 = 0;
/** The gfn range of the last slot reached. */
export let mnLastGfnStart: u64 = 0;
export let mnLastGfnEnd: u64 = 0;

let rangeStart: u64 = 0;
let rangeEnd: u64 = 0;

function unmapSlotRange(slot: usize, ctx: usize): void {
  const s = slotOf(slot);
  const hvaEnd = slotHvaEnd(s);
  const lo = rangeStart > s.userspaceAddr ? rangeStart : s.userspaceAddr;
  const hi = rangeEnd < hvaEnd ? rangeEnd : hvaEnd;
  mnLastGfnStart = s.baseGfn + ((lo - s.userspaceAddr) >> PAGE_SHIFT);
  mnLastGfnEnd = s.baseGfn + ((hi - s.userspaceAddr + (1 << PAGE_SHIFT) - 1) >> PAGE_SHIFT);
  mnSlotHits++;
  // The invalidation's gfn range is one min/max range across slots and address
  // spaces; a fault on a gfn inside it while it is in progress retries.
  mmuInvalidateRangeAdd(vmOf(ctx), mnLastGfnStart, mnLastGfnEnd);
  zapGfnRange(slot, mnLastGfnStart, mnLastGfnEnd);
}

// kvm->mn_invalidate_lock: the count of invalidations in flight changes, and a
// memslot swap checks it and publishes, under it (kvm_swap_active_memslots).
// @ts-ignore: decorator
@inline function mnLockWord(vm: Vm): usize { return changetype<usize>(vm) + offsetof<Vm>("mnInvalidateLock"); }
// @ts-ignore: decorator
@inline function mnCountWord(vm: Vm): usize { return changetype<usize>(vm) + offsetof<Vm>("mnActiveInvalidateCount"); }

export function mnInvalidateLock(vm: Vm): void {
  if (WEBKVM_THREADS) mutexLock(mnLockWord(vm), changetype<usize>(P) + offsetof<Process>("mmuLockSleeps"));
}

export function mnInvalidateUnlock(vm: Vm): void {
  if (WEBKVM_THREADS) mutexUnlock(mnLockWord(vm));
}

export function mmuNotifierInvalidateRangeStart(start: u64, end: u64): void {
  invalidationEnter();
  rangeStart = start;
  rangeEnd = end;
  for (let i = 0; i < vmCount(); i++) {
    const vm = vmOf(vmAt(i));
    // The count rises before the pfn caches are visited: a refresh that
    // resolved the page before this point sees it when it re-takes gpc->lock
    // and retries (pfncache.ts's retryCache), rather than publishing a frame
    // about to be freed. Then the pfn caches, before the MMU proper
    // (kvm_mmu_notifier_invalidate_range_start).
    // (Under mn_invalidate_lock: a memslot swap checks the count and publishes under it.)
    mnInvalidateLock(vm);
    vm.mnActiveInvalidateCount++;
    mnInvalidateUnlock(vm);
    gpcInvalidateStart(vm, start, end);
    // kvm_handle_hva_range: the slots under kvm->srcu, the sptes under mmu_lock.
    const idx = srcuReadLock(vm);
    mmuLock(vm);
    mmuInvalidateBegin(vm);
    for (let as: u32 = 0; as < vm.nrAs; as++) {
      forEachSlotInHvaRange(activeSet(vm, as), start, end, unmapSlotRange, changetype<usize>(vm));
    }
    mmuUnlock(vm);
    srcuReadUnlock(vm, idx);
  }
  for (let i = 0; i < vmCount(); i++) runReaderHook(vmAt(i), HOOK_MN_INVALIDATING, 0);
}

export function mmuNotifierInvalidateRangeEnd(start: u64, end: u64): void {
  for (let i = 0; i < vmCount(); i++) {
    const vm = vmOf(vmAt(i));
    mmuLock(vm);
    mmuInvalidateEnd(vm);
    mmuUnlock(vm);
    mnInvalidateLock(vm);
    const left = --vm.mnActiveInvalidateCount;
    mnInvalidateUnlock(vm);
    // The last one out wakes a memslot swap waiting for it.
    if (WEBKVM_THREADS && left == 0 && atomic.load<u32>(changetype<usize>(vm) + offsetof<Vm>("mnSwapWaiting")) != 0)
      futexWakeAll(mnCountWord(vm));
  }
  invalidationLeave();
}
