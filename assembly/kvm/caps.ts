// KVM_CHECK_EXTENSION answers (kvm_vm_ioctl_check_extension_generic, then the arch answers) for /dev/kvm (vm = 0) and VM fds.

import { vmOf } from "./kvm_host";
import { KVM_USER_MEM_SLOTS } from "../memslots/slot";
import { KVM_X86_VALID_QUIRKS } from "../mmu/mmu";
import { maxNrAddressSpaces, vmTypes, memoryAttributesCompiled, preFaultMemory, typeHasProtectedState,
  typeHasPrivateMem } from "./config";

export const KVM_CAP_USER_MEMORY: i64 = 3;
export const KVM_CAP_NR_MEMSLOTS: i64 = 10;
export const KVM_CAP_SYNC_MMU: i64 = 16;
export const KVM_CAP_DESTROY_MEMORY_REGION_WORKS: i64 = 21;
export const KVM_CAP_JOIN_MEMORY_REGIONS_WORKS: i64 = 30;
export const KVM_CAP_READONLY_MEM: i64 = 81;
export const KVM_CAP_ENABLE_CAP_VM: i64 = 98;
export const KVM_CAP_CHECK_EXTENSION_VM: i64 = 105;
export const KVM_CAP_MULTI_ADDRESS_SPACE: i64 = 118;
export const KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2: i64 = 168;
export const KVM_CAP_HALT_POLL: i64 = 182;
export const KVM_CAP_DIRTY_LOG_RING: i64 = 192;
export const KVM_CAP_BINARY_STATS_FD: i64 = 203;
export const KVM_CAP_DIRTY_LOG_RING_ACQ_REL: i64 = 223;
export const KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP: i64 = 225;
export const KVM_CAP_USER_MEMORY2: i64 = 231;
export const KVM_CAP_MEMORY_FAULT_INFO: i64 = 232;
export const KVM_CAP_MEMORY_ATTRIBUTES: i64 = 233;
export const KVM_CAP_GUEST_MEMFD: i64 = 234;
export const KVM_CAP_VM_TYPES: i64 = 235;
export const KVM_CAP_PRE_FAULT_MEMORY: i64 = 236;
export const KVM_CAP_GUEST_MEMFD_FLAGS: i64 = 244;
export const KVM_CAP_DISABLE_QUIRKS2: i64 = 213;

export const KVM_DIRTY_LOG_MANUAL_CAPS: i32 = 3;      // [x86] ENABLE | INITIALLY_SET
export const KVM_DIRTY_RING_MAX_BYTES: i32 = 65536 * 16;
export const KVM_MEMORY_ATTRIBUTE_PRIVATE: i32 = 1 << 3;
export const GUEST_MEMFD_FLAG_MMAP: i32 = 1 << 0;
export const GUEST_MEMFD_FLAG_INIT_SHARED: i32 = 1 << 1;

export function checkExtension(vmp: usize, cap: i64): i32 {
  const hasVm = vmp != 0;
  if (cap < 0 || cap > 0x7fffffff) return 0; // the ioctl argument is a full long
  switch (<i32>cap) {
    case <i32>KVM_CAP_USER_MEMORY:
    case <i32>KVM_CAP_SYNC_MMU:
    case <i32>KVM_CAP_DESTROY_MEMORY_REGION_WORKS:
    case <i32>KVM_CAP_JOIN_MEMORY_REGIONS_WORKS:
    case <i32>KVM_CAP_ENABLE_CAP_VM:
    case <i32>KVM_CAP_CHECK_EXTENSION_VM:
    case <i32>KVM_CAP_HALT_POLL:
    case <i32>KVM_CAP_USER_MEMORY2:
    case <i32>KVM_CAP_MEMORY_FAULT_INFO:
    case <i32>KVM_CAP_GUEST_MEMFD:
      return 1;
    case <i32>KVM_CAP_DISABLE_QUIRKS2:
      return <i32>KVM_X86_VALID_QUIRKS;
    case <i32>KVM_CAP_NR_MEMSLOTS:
      return KVM_USER_MEM_SLOTS;
    case <i32>KVM_CAP_READONLY_MEM:
      return hasVm && typeHasProtectedState(vmOf(vmp).type) ? 0 : 1;
    case <i32>KVM_CAP_MULTI_ADDRESS_SPACE:
      if (hasVm) return vmOf(vmp).nrAs > 1 ? <i32>vmOf(vmp).nrAs : 0;
      return maxNrAddressSpaces > 1 ? <i32>maxNrAddressSpaces : 0;
    case <i32>KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2:
      return KVM_DIRTY_LOG_MANUAL_CAPS;
    case <i32>KVM_CAP_DIRTY_LOG_RING:
    case <i32>KVM_CAP_DIRTY_LOG_RING_ACQ_REL:
      return KVM_DIRTY_RING_MAX_BYTES;
    case <i32>KVM_CAP_MEMORY_ATTRIBUTES:
      if (!memoryAttributesCompiled) return 0;
      // kvm_supported_mem_attributes: /dev/kvm always offers PRIVATE; a VM only with private memory.
      if (hasVm) return typeHasPrivateMem(vmOf(vmp).type) ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0;
      return KVM_MEMORY_ATTRIBUTE_PRIVATE;
    case <i32>KVM_CAP_VM_TYPES:
      return <i32>vmTypes;
    case <i32>KVM_CAP_PRE_FAULT_MEMORY:
      return preFaultMemory ? 1 : 0;
    case <i32>KVM_CAP_BINARY_STATS_FD:
      // Linux answers 1, but this build has no KVM_GET_STATS_FD (ENOTTY): a
      // capability is advertised only when the ioctl behind it exists.
      return 0;
    case <i32>KVM_CAP_GUEST_MEMFD_FLAGS:
      if (hasVm && typeHasPrivateMem(vmOf(vmp).type)) return GUEST_MEMFD_FLAG_MMAP;
      return GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED;
  }
  return 0;
}
