// KVM_SET_USER_MEMORY_REGION{,2} validation in the kernel's order and change
// classification (KVM_MR_CREATE / DELETE / MOVE / FLAGS_ONLY):
// kvm_set_memory_region, plus the x86 internal slots (__x86_set_memory_region /
// kvm_set_internal_memslot).

import { Vm, activeSet, inactiveSet, slotsLock, slotsUnlock, assertSlotsLockHeld } from "./kvm_host";
import { slotOf, allocSlot, freeSlot, KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY, KVM_MEM_GUEST_MEMFD,
  KVM_USER_MEM_SLOTS, KVM_MEM_SLOTS_NUM, KVM_MEM_MAX_NR_PAGES } from "../memslots/slot";
import { setOf, idLookup, reserveSet } from "../memslots/set";
import { overlappingSlot } from "../memslots/search";
import { touchForReplace } from "../memslots/replace";
import { setMemslot, KVM_MR_CREATE, KVM_MR_DELETE, KVM_MR_MOVE, KVM_MR_FLAGS_ONLY } from "./set_memslot";
import { typeHasProtectedState } from "./config";
import { accessOk, mmap, munmap, PROT_READ, PROT_WRITE, MAP_SHARED } from "../hostmm/mm";
import { gmemBind, gmemUnbind } from "../gmem/bind";
import { INJECT_ALLOC_SLOT } from "../debug/inject";
import { PAGE_MASK, PAGE_SHIFT } from "../layout";
import { fail, EINVAL, EEXIST, ENOMEM, EIO, CHECK_FLAGS, CHECK_SIZE_ALIGN, CHECK_GPA_ALIGN, CHECK_HVA_ALIGN,
  CHECK_HVA_RANGE, CHECK_GMEM_OFFSET, CHECK_AS_ID, CHECK_GPA_WRAP, CHECK_MAX_PAGES, CHECK_DELETE_ABSENT,
  CHECK_NR_PAGES_UNDERFLOW, CHECK_MODIFY_GMEM, CHECK_MODIFY_IMMUTABLE, CHECK_OVERLAP, CHECK_ALLOC_SLOT,
  CHECK_INTERNAL_SLOT_ID, CHECK_INTERNAL_EXISTS } from "../errno";

/** Where touchUpdate's reads go (so they are not dropped). */
let touchSink: u64 = 0;

/**
 * An update (not a no-op) of id edits its records in both sets (with `hva`
 * the hva order's too: CREATE, DELETE) and old's arch data: with 32k slots
 * each is likely a cache miss. Reading them all here lets the misses overlap
 * instead of coming one after another deep in the update.
 */
function touchUpdate(vm: Vm, asId: u32, id: u32, old: usize, hva: bool): void {
  let v = touchForReplace(activeSet(vm, asId), id, hva) + touchForReplace(inactiveSet(vm, asId), id, hva);
  if (old != 0 && slotOf(old).arch != 0) v += load<u64>(slotOf(old).arch);
  touchSink += v;
}

/** check_memory_region_flags */
function validFlags(vm: Vm, flags: u32): u32 {
  let valid = KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_GUEST_MEMFD;
  if (flags & KVM_MEM_GUEST_MEMFD) valid &= ~KVM_MEM_LOG_DIRTY_PAGES;
  if (!typeHasProtectedState(vm.type) && (flags & KVM_MEM_GUEST_MEMFD) == 0) valid |= KVM_MEM_READONLY;
  return valid;
}

/**
 * kvm_set_memory_region: its checks in order, after the ones the ioctl
 * dispatcher made (argument copy, v1 flags, user slot id), and the update.
 * Returns 0 or -errno with the failed check recorded.
 */
export function setMemoryRegion(vm: Vm, slot: u32, flags: u32, gpa: u64, size: u64, uaddr: u64,
                                gmemOffset: u64, gmemFd: i32): i32 {
  assertSlotsLockHeld(vm);
  if (flags & ~validFlags(vm, flags)) return fail(CHECK_FLAGS, EINVAL);
  const asId = slot >> 16;
  const id = slot & 0xffff;
  if (size & PAGE_MASK) return fail(CHECK_SIZE_ALIGN, EINVAL);
  if (gpa & PAGE_MASK) return fail(CHECK_GPA_ALIGN, EINVAL);
  if (uaddr & PAGE_MASK) return fail(CHECK_HVA_ALIGN, EINVAL);
  if (!accessOk(uaddr, size)) return fail(CHECK_HVA_RANGE, EINVAL);
  if ((flags & KVM_MEM_GUEST_MEMFD) != 0 && ((gmemOffset & PAGE_MASK) != 0 || gmemOffset + size < gmemOffset))
    return fail(CHECK_GMEM_OFFSET, EINVAL);
  if (asId >= vm.nrAs || id >= <u32>KVM_MEM_SLOTS_NUM) return fail(CHECK_AS_ID, EINVAL);
  if (gpa + size < gpa) return fail(CHECK_GPA_WRAP, EINVAL);
  const npages = size >> PAGE_SHIFT;
  if (id < <u32>KVM_USER_MEM_SLOTS && npages > KVM_MEM_MAX_NR_PAGES) return fail(CHECK_MAX_PAGES, EINVAL);

  const old = idLookup(setOf(activeSet(vm, asId)), <i32>id);
  if (size == 0) {
    if (old == 0) return fail(CHECK_DELETE_ABSENT, EINVAL);
    if (vm.nrMemslotPages < slotOf(old).npages) return fail(CHECK_NR_PAGES_UNDERFLOW, EIO);
    touchUpdate(vm, asId, id, old, true);
    return setMemslot(vm, old, 0, KVM_MR_DELETE);
  }

  const baseGfn = gpa >> PAGE_SHIFT;
  let change: i32;
  if (old == 0) {
    change = KVM_MR_CREATE;
    // nr_memslot_pages + npages cannot overflow a u64 (the kernel checks it before adding).
  } else {
    const o = slotOf(old);
    if (flags & KVM_MEM_GUEST_MEMFD) return fail(CHECK_MODIFY_GMEM, EINVAL);
    if (uaddr != o.userspaceAddr || npages != o.npages ||
        ((flags ^ o.flags) & (KVM_MEM_READONLY | KVM_MEM_GUEST_MEMFD)) != 0)
      return fail(CHECK_MODIFY_IMMUTABLE, EINVAL);
    if (baseGfn != o.baseGfn) change = KVM_MR_MOVE;
    else if (flags != o.flags) change = KVM_MR_FLAGS_ONLY;
    else return 0;
  }

  touchUpdate(vm, asId, id, old, change == KVM_MR_CREATE);
  if ((change == KVM_MR_CREATE || change == KVM_MR_MOVE) &&
      overlappingSlot(activeSet(vm, asId), id, baseGfn, baseGfn + npages) != 0)
    return fail(CHECK_OVERLAP, EEXIST);

  // The new slot object, and for a CREATE room for one more in both sets:
  // every allocation the update needs that cannot be undone later happens
  // here, before any change. MOVE and FLAGS_ONLY replace a record in place or
  // remove it before inserting it again, so they need no room (and, as in
  // the kernel, fail only for want of the slot object).
  const nw = allocSlot(INJECT_ALLOC_SLOT);
  const need = setOf(activeSet(vm, asId)).count + 1;
  if (nw == 0 || (change == KVM_MR_CREATE &&
      (!reserveSet(activeSet(vm, asId), need) || !reserveSet(inactiveSet(vm, asId), need)))) {
    freeSlot(nw);
    return fail(CHECK_ALLOC_SLOT, ENOMEM);
  }
  const n = slotOf(nw);
  n.asId = asId;
  n.id = id;
  n.baseGfn = baseGfn;
  n.npages = npages;
  n.flags = flags;
  n.userspaceAddr = uaddr;
  if (flags & KVM_MEM_GUEST_MEMFD) {
    const r = gmemBind(vm, nw, gmemFd, gmemOffset);
    if (r != 0) { freeSlot(nw); return r; }
  }
  const r = setMemslot(vm, old, nw, change);
  if (r != 0) { gmemUnbind(nw); freeSlot(nw); } // a failed update frees the file range again
  return r;
}

/** kvm_set_internal_memslot: ids 32764.. only, no flags. */
function setInternalMemslot(vm: Vm, asId: u32, id: u32, gpa: u64, size: u64, uaddr: u64): i32 {
  if (id < <u32>KVM_USER_MEM_SLOTS || id >= <u32>KVM_MEM_SLOTS_NUM) return fail(CHECK_INTERNAL_SLOT_ID, EINVAL);
  return setMemoryRegion(vm, (asId << 16) | id, 0, gpa, size, uaddr, 0, -1);
}

/**
 * __x86_set_memory_region: creates (size > 0) or deletes (size 0) a private
 * slot in every address space, backed by fresh shared anonymous memory.
 * Returns 0 / -errno; the created hva is in internalSlotHva.
 */
export let internalSlotHva: u64 = 0;
export function x86SetMemoryRegion(vm: Vm, id: u32, gpa: u64, size: u64): i32 {
  // x86_set_memory_region: the internal slots change under slots_lock too.
  slotsLock(vm);
  const r = x86SetMemoryRegionLocked(vm, id, gpa, size);
  slotsUnlock(vm);
  return r;
}

function x86SetMemoryRegionLocked(vm: Vm, id: u32, gpa: u64, size: u64): i32 {
  if (id < <u32>KVM_USER_MEM_SLOTS || id >= <u32>KVM_MEM_SLOTS_NUM) return fail(CHECK_INTERNAL_SLOT_ID, EINVAL);
  const existing = idLookup(setOf(activeSet(vm, 0)), <i32>id);
  let hva: u64;
  let oldSize: u64 = 0;
  if (size != 0) {
    if (existing != 0) return fail(CHECK_INTERNAL_EXISTS, EEXIST);
    const m = mmap(0, size, PROT_READ | PROT_WRITE, MAP_SHARED);
    if (m < 0) return <i32>m;
    hva = <u64>m;
  } else {
    if (existing == 0) return 0;
    hva = slotOf(existing).userspaceAddr;
    oldSize = slotOf(existing).npages << PAGE_SHIFT;
  }
  for (let as: u32 = 0; as < vm.nrAs; as++) {
    // Like the kernel, a failure here leaves earlier address spaces and the mapping as they are.
    const r = setInternalMemslot(vm, as, id, gpa, size, hva);
    if (r != 0) return r;
  }
  if (size == 0) munmap(hva, oldSize);
  internalSlotHva = hva;
  return 0;
}
