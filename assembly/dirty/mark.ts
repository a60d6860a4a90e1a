// mark_page_dirty_in_slot: record a write to gfn of a logged slot — on the
// running vCPU's dirty ring when the VM has one, else in the slot's bitmap.

import { Vm } from "../kvm/kvm_host";
import { slotOf, KVM_MEM_LOG_DIRTY_PAGES } from "../memslots/slot";
import { bitmapSet } from "./bitmap";
import { ringPush } from "./ring";

/** vcpu: the vCPU running on this thread, or 0 (ioctl context). Returns false if the ring became soft-full. */
export function markPageDirtyInSlot(vm: Vm, slot: usize, gfn: u64, vcpu: usize = 0): bool {
  const s = slotOf(slot);
  if ((s.flags & KVM_MEM_LOG_DIRTY_PAGES) == 0) return true;
  const rel = gfn - s.baseGfn;
  if (vm.dirtyRingSize != 0) {
    // Without a running vCPU a ring cannot log the write (x86 warns; the page is lost to logging).
    if (vcpu == 0) return true;
    return ringPush(vcpu, (s.asId << 16) | s.id, rel);
  }
  if (s.dirtyBitmap != 0) bitmapSet(s.dirtyBitmap, s.npages, rel);
  return true;
}
