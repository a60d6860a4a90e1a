// Host-dependent values: what differs between kernels and hosts. Defaults are
// the host the conformance goldens were recorded on: x86-64, 4-level paging,
// no SMM, shadow paging (largest gfn 2^40 - 1), only the default VM type.

export let maxNrAddressSpaces: u32 = 1;   // KVM_MAX_NR_ADDRESS_SPACES: 2 with SMM
export let maxGfn: u64 = (<u64>1 << 40) - 1;
export let vmTypes: u32 = 1;               // KVM_CAP_VM_TYPES
export let memoryAttributesCompiled: bool = false;
export let preFaultMemory: bool = false;   // KVM_CAP_PRE_FAULT_MEMORY (TDP only)
export let dirtyRingReserved: u32 = 64;    // KVM_DIRTY_RING_RSVD_ENTRIES (+ PML buffer on PML hosts)

export function configure(nrAs: u32, gfnMax: u64, types: u32, attrs: bool, preFault: bool, ringRsvd: u32): void {
  maxNrAddressSpaces = nrAs;
  maxGfn = gfnMax;
  vmTypes = types;
  memoryAttributesCompiled = attrs;
  preFaultMemory = preFault;
  dirtyRingReserved = ringRsvd;
}

export const KVM_X86_DEFAULT_VM: u32 = 0;
export const KVM_X86_SW_PROTECTED_VM: u32 = 1;
export const KVM_X86_SEV_VM: u32 = 2;
export const KVM_X86_SEV_ES_VM: u32 = 3;
export const KVM_X86_SNP_VM: u32 = 4;
export const KVM_X86_TDX_VM: u32 = 5;

/** [x86] kvm_arch_has_private_mem */
export function typeHasPrivateMem(type: u32): bool {
  return type == KVM_X86_SW_PROTECTED_VM || type == KVM_X86_SNP_VM || type == KVM_X86_TDX_VM;
}

/** [x86] protected state: SEV-ES, SNP, TDX (no read-only memory). */
export function typeHasProtectedState(type: u32): bool {
  return type == KVM_X86_SEV_ES_VM || type == KVM_X86_SNP_VM || type == KVM_X86_TDX_VM;
}
