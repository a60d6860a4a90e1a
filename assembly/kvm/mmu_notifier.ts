// KVM's MMU-notifier callbacks (kvm_mmu_notifier_invalidate_range_start/end):
// the host mm calls them around every change of what an hva maps to. Each live
// VM counts the invalidation in flight (so memslot swaps and faults can tell),
// and finds the slots of every address space whose host range intersects the
// range (kvm_handle_hva_range) — the sptes and pfn caches built on them are
// what the MMU and pfn caches drop there.

import { vmCount, vmAt, vmOf, Vm, activeSet } from "./kvm_host";
import { slotOf, slotHvaEnd } from "../memslots/slot";
import { forEachSlotInHvaRange } from "../memslots/search";
import { runReaderHook, HOOK_MN_INVALIDATING } from "../debug/hooks";
import { PAGE_SHIFT } from "../layout";
import { zapGfnRange } from "../mmu/mmu";
import { gpcInvalidateStart } from "../pfncache";
import { mmuInvalidateBegin, mmuInvalidateRangeAdd, mmuInvalidateEnd } from "./mmu_invalidate";

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

export function mmuNotifierInvalidateRangeStart(start: u64, end: u64): void {
  rangeStart = start;
  rangeEnd = end;
  for (let i = 0; i < vmCount(); i++) {
    const vm = vmOf(vmAt(i));
    // The count rises before the pfn caches are visited: a refresh that
    // resolved the page before this point sees it when it re-takes gpc->lock
    // and retries (pfncache.ts's retryCache), rather than publishing a frame
    // about to be freed. Then the pfn caches, before the MMU proper
    // (kvm_mmu_notifier_invalidate_range_start).
    if (WEBKVM_THREADS) atomic.add<u32>(changetype<usize>(vm) + offsetof<Vm>("mnActiveInvalidateCount"), 1);
    else vm.mnActiveInvalidateCount++;
    gpcInvalidateStart(vm, start, end);
    mmuInvalidateBegin(vm);
    for (let as: u32 = 0; as < vm.nrAs; as++) {
      forEachSlotInHvaRange(activeSet(vm, as), start, end, unmapSlotRange, changetype<usize>(vm));
    }
  }
  for (let i = 0; i < vmCount(); i++) runReaderHook(vmAt(i), HOOK_MN_INVALIDATING, 0);
}

export function mmuNotifierInvalidateRangeEnd(start: u64, end: u64): void {
  for (let i = 0; i < vmCount(); i++) {
    const vm = vmOf(vmAt(i));
    mmuInvalidateEnd(vm);
    if (WEBKVM_THREADS) atomic.sub<u32>(changetype<usize>(vm) + offsetof<Vm>("mnActiveInvalidateCount"), 1);
    else vm.mnActiveInvalidateCount--;
  }
}
