// kvm_read_guest / kvm_write_guest: copies between guest memory and the core's
// linear memory for ioctls and device emulation, marking written pages dirty.

import { Vm, activeSet, gfnToHvaMemslot, isErrorHva, KVM_HVA_ERR_RO_BAD } from "./kvm_host";
import { gfnToMemslotInSet } from "../memslots/search";
import { srcuReadLock, srcuReadUnlock } from "./srcu";
import { mmapLock, mmapUnlock } from "../hostmm/mmap_lock";
import { hvaToLinear } from "../hostmm/mm";
import { markPageDirtyInSlot } from "../dirty/mark";
import { PAGE_SHIFT, PAGE_SIZE, PAGE_MASK } from "../layout";
import { fail, failedCheck, EFAULT, CHECK_GUEST_NO_SLOT, CHECK_GUEST_INVALID_SLOT, CHECK_GUEST_READONLY, CHECK_HVA_FAULT,
  CHECK_UFFD_MISSING } from "../errno";

/** The linear address for guest page access, or 0 with EFAULT and the reason recorded. */
function guestPageLinear(vm: Vm, asId: u32, gpa: u64, write: bool): usize {
  const gfn = gpa >> PAGE_SHIFT;
  const slot = gfnToMemslotInSet(activeSet(vm, asId), gfn);
  if (slot == 0) { fail(CHECK_GUEST_NO_SLOT, EFAULT); return 0; }
  const hva = gfnToHvaMemslot(slot, gfn, write);
  if (isErrorHva(hva)) {
    fail(hva == KVM_HVA_ERR_RO_BAD ? CHECK_GUEST_READONLY : CHECK_GUEST_INVALID_SLOT, EFAULT);
    return 0;
  }
  const lin = hvaToLinear(hva + (gpa & PAGE_MASK), write);
  // A missing page keeps its own check (the VMM asks for that page); any other failure is the hva's.
  if (lin == 0) { if (failedCheck != CHECK_UFFD_MISSING) fail(CHECK_HVA_FAULT, EFAULT); return 0; }
  if (write) markPageDirtyInSlot(vm, slot, gfn);
  return lin;
}

/**
 * kvm_read_guest (write=false) / kvm_write_guest (write=true) between guest
 * memory at gpa and linear memory at buf, page segment by page segment. Pages
 * before a failing one have been copied, as in the kernel.
 */
export function accessGuest(vm: Vm, asId: u32, gpa: u64, buf: usize, len: u32, write: bool): i32 {
  // Memslot readers hold kvm->srcu (a memslot update on another thread waits for them).
  // The mm's lock throughout, so no munmap frees a page between its lookup and the copy.
  const idx = srcuReadLock(vm);
  mmapLock();
  const r = accessGuestLocked(vm, asId, gpa, buf, len, write);
  mmapUnlock();
  srcuReadUnlock(vm, idx);
  return r;
}

function accessGuestLocked(vm: Vm, asId: u32, gpa: u64, buf: usize, len: u32, write: bool): i32 {
  let done: u32 = 0;
  while (done < len) {
    const seg = min<u32>(len - done, <u32>(<u64>PAGE_SIZE - (gpa & PAGE_MASK)));
    const lin = guestPageLinear(vm, asId, gpa, write);
    if (lin == 0) return -EFAULT;
    if (write) memory.copy(lin, buf + <usize>done, seg);
    else memory.copy(buf + <usize>done, lin, seg);
    done += seg;
    gpa += <u64>seg;
  }
  return 0;
}
