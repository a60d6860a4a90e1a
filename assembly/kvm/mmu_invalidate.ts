// The VM's invalidation window (kvm_mmu_invalidate_begin / _range_add / _end):
// MMU-notifier invalidations (mmu_notifier.ts) and memory-attribute changes
// (gmem/attributes.ts) open it; a fault that overlaps it, or began before it
// closed, retries (mmu/fault.ts).

import { Vm } from "./kvm_host";

/** kvm_mmu_invalidate_begin: the gfn range starts empty and grows per range added. */
export function mmuInvalidateBegin(vm: Vm): void {
  vm.mmuInvalidateInProgress++;
  if (vm.mmuInvalidateInProgress == 1) {
    vm.mmuInvalidateRangeStart = <u64>-1;
    vm.mmuInvalidateRangeEnd = 0;
  }
}

/** kvm_mmu_invalidate_range_add */
export function mmuInvalidateRangeAdd(vm: Vm, start: u64, end: u64): void {
  if (start < vm.mmuInvalidateRangeStart) vm.mmuInvalidateRangeStart = start;
  if (end > vm.mmuInvalidateRangeEnd) vm.mmuInvalidateRangeEnd = end;
}

/** kvm_mmu_invalidate_end: a fault that began before sees the new sequence and retries. */
export function mmuInvalidateEnd(vm: Vm): void {
  vm.mmuInvalidateSeq++;
  vm.mmuInvalidateInProgress--;
}

/**
 * MMU-notifier invalidations this thread is inside (per instance, so per
 * thread; mmu_notifier.ts counts them): a reader hook run from one may call
 * back into the core, which then must not wait for that invalidation to end
 * (pfncache.ts's hvaToPfnRetry).
 */
export let invalidationsHere: i32 = 0;

export function invalidationEnter(): void { invalidationsHere++; }
export function invalidationLeave(): void { invalidationsHere--; }
