// guest_memfd in the fault path (kvm_gmem_get_pfn, kvm_faultin_pfn_private): which page a
// guest access to a gfn uses when private memory or a guest_memfd slot is
// involved, and the KVM_EXIT_MEMORY_FAULT cases.
//
//   private gfn (PRIVATE attribute on a VM with private memory)
//     no slot                   -> memory fault, flags PRIVATE (kvm_handle_noslot_fault)
//     slot without guest_memfd  -> memory fault, flags PRIVATE (kvm_mmu_faultin_pfn_private)
//     file released             -> memory fault, flags PRIVATE (kvm_gmem_get_pfn: EFAULT)
//     else                      -> the file's page for the gfn
//   shared gfn in a GMEM_ONLY slot -> the file's page (memory fault, flags 0, if released)
//   anything else               -> the slot's hva (mm.ts), as for any slot
//   access private-ness differs from the gfn's attribute -> memory fault (kvm_mmu_faultin_pfn)
//
// Whether an access is private: on a software-protected VM, exactly when its
// gfn is (so a mismatch needs a race with a conversion, and conversions run
// between guest instructions here); on SNP / TDX the guest's page tables say
// (C / S bit), and this CPU has no such bit: every access is shared there.

import { Vm } from "../kvm/kvm_host";
import { KVM_X86_SW_PROTECTED_VM } from "../kvm/config";
import { slotOf, KVM_MEM_GUEST_MEMFD, KVM_MEMSLOT_GMEM_ONLY } from "../memslots/slot";
import { gfnIsPrivate } from "./attributes";
import { gmemGetPage } from "./file";
import { EFAULT, ENOMEM } from "../errno";

export const KVM_MEMORY_EXIT_FLAG_PRIVATE: u64 = 1 << 3;

/** gmemFaultIn: not served by guest_memfd, use the slot's hva (or MMIO without a slot). */
export const GMEM_FAULT_HVA: usize = 0;
/** gmemFaultIn: a memory-fault exit with gmemExitFlags, and KVM_RUN fails with gmemExitErrno. */
export const GMEM_FAULT_EXIT: usize = 1;

/** The memory_fault flags and KVM_RUN errno of the last fault that needs an exit (0 / EFAULT otherwise). */
export let gmemExitFlags: u64 = 0;
export let gmemExitErrno: i32 = EFAULT;

/** kvm_mmu_page_fault: PFERR_PRIVATE_ACCESS from the gfn's attribute on software-protected VMs only. */
// @ts-ignore: decorator
@inline function accessIsPrivate(vm: Vm, gfnPrivate: bool): bool {
  return vm.type == KVM_X86_SW_PROTECTED_VM && gfnPrivate;
}

/**
 * The guest_memfd part of a guest fault on gfn in slot (0: no slot): the
 * linear address of the page frame to map, GMEM_FAULT_HVA, or GMEM_FAULT_EXIT.
 * Called after the INVALID-slot retry; never allocates for the hva path.
 */
export function gmemFaultIn(vm: Vm, slot: usize, gfn: u64): usize {
  gmemExitFlags = 0;
  gmemExitErrno = EFAULT;
  const gfnPrivate = gfnIsPrivate(vm, gfn); // kvm_mem_is_private (only VMs with private memory have any)
  const isPrivate = accessIsPrivate(vm, gfnPrivate);
  if (isPrivate) gmemExitFlags = KVM_MEMORY_EXIT_FLAG_PRIVATE;
  if (isPrivate != gfnPrivate) return GMEM_FAULT_EXIT;
  if (slot == 0) return isPrivate ? GMEM_FAULT_EXIT : GMEM_FAULT_HVA;
  const s = slotOf(slot);
  if (!isPrivate && (s.flags & KVM_MEMSLOT_GMEM_ONLY) == 0) return GMEM_FAULT_HVA;
  if ((s.flags & KVM_MEM_GUEST_MEMFD) == 0 || s.gmemFile == 0) return GMEM_FAULT_EXIT;
  const frame = gmemGetPage(s.gmemFile, gfn - s.baseGfn + s.gmemPgoff, true);
  if (frame == 0) {
    gmemExitErrno = ENOMEM;
    return GMEM_FAULT_EXIT;
  }
  return frame;
}

/** Whether a present spte of slot for gfn maps a guest_memfd page (for the debug MMU invariants). */
export function gmemServes(vm: Vm, slot: usize, gfn: u64): bool {
  return (slotOf(slot).flags & KVM_MEMSLOT_GMEM_ONLY) != 0 || accessIsPrivate(vm, gfnIsPrivate(vm, gfn));
}

/** The frame of slot's guest_memfd page for gfn without allocating (0: none or unbound). */
export function gmemFrameNoFault(slot: usize, gfn: u64): usize {
  const s = slotOf(slot);
  return s.gmemFile == 0 ? 0 : gmemGetPage(s.gmemFile, gfn - s.baseGfn + s.gmemPgoff, false);
}
