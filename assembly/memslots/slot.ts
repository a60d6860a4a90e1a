// struct kvm_memory_slot. Slot objects are shared by the active and inactive
// sets of an address space and are never edited while reachable from the
// active set: an update builds a new object and swaps (kvm/set_memslot.ts).

import { kzalloc, kfree } from "../kalloc";
import { PAGE_SHIFT } from "../layout";

export const KVM_MEM_LOG_DIRTY_PAGES: u32 = 1 << 0;
export const KVM_MEM_READONLY: u32 = 1 << 1;
export const KVM_MEM_GUEST_MEMFD: u32 = 1 << 2;
export const KVM_MEMSLOT_INVALID: u32 = 1 << 16;
export const KVM_MEMSLOT_GMEM_ONLY: u32 = 1 << 17;

export const KVM_MEM_SLOTS_NUM: i32 = 32767;
export const KVM_INTERNAL_MEM_SLOTS: i32 = 3; // [x86]
export const KVM_USER_MEM_SLOTS: i32 = KVM_MEM_SLOTS_NUM - KVM_INTERNAL_MEM_SLOTS;
export const KVM_MEM_MAX_NR_PAGES: u64 = (1 << 31) - 1;

@unmanaged export class Slot {
  baseGfn: u64;
  npages: u64;
  userspaceAddr: u64;
  gmemPgoff: u64;
  flags: u32;
  id: u32;
  asId: u32;
  /** Dirty bitmap (dirty/bitmap.ts), shared with the old slot across MOVE / FLAGS_ONLY. */
  dirtyBitmap: usize;
  /** The guest_memfd file this slot is bound to (0: none). */
  gmemFile: usize;
  /** Arch metadata (mmu/rmap.ts SlotArch): fresh on CREATE/MOVE, shared on FLAGS_ONLY. */
  arch: usize;
}

export const SLOT_BYTES: usize = offsetof<Slot>();

@inline export function slotOf(p: usize): Slot {
  return changetype<Slot>(p);
}

@inline export function slotEnd(s: Slot): u64 {
  return s.baseGfn + s.npages;
}

/** The end of s's host range (userspace_addr + size). */
@inline export function slotHvaEnd(s: Slot): u64 {
  return s.userspaceAddr + (s.npages << PAGE_SHIFT);
}

/** __gfn_to_hva_memslot: the hva of a gfn inside s (no flag checks). */
@inline export function slotGfnToHva(s: Slot, gfn: u64): u64 {
  return s.userspaceAddr + ((gfn - s.baseGfn) << PAGE_SHIFT);
}

export function allocSlot(point: i32): usize {
  return kzalloc(SLOT_BYTES, point);
}

export function freeSlot(p: usize): void {
  kfree(p, SLOT_BYTES);
}

/** Copies identity and state, as kvm_invalidate_memslot does for the INVALID copy. */
export function copySlot(dst: usize, src: usize): void {
  // Word by word (SLOT_BYTES is a multiple of 4): cheaper than memory.copy's call for 56 bytes.
  let o: usize = 0;
  for (; o + 8 <= SLOT_BYTES; o += 8) store<u64>(dst + o, load<u64>(src + o));
  if (o < SLOT_BYTES) store<u32>(dst + o, load<u32>(src + o));
}
