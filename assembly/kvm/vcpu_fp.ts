// The F/D state through KVM_GET/SET_ONE_REG (kvm_riscv_vcpu_get_reg_fp /
// kvm_riscv_vcpu_set_reg_fp) and its reset (kvm_riscv_vcpu_fp_reset).
//
// RISC-V KVM keeps a vCPU's FP state in a union of struct __riscv_f_ext_state
// (u32 f[32], u32 fcsr) and struct __riscv_d_ext_state (u64 f[32], u32 fcsr),
// and a D-capable host saves it in the D layout. So the FP_D registers are the
// registers, while FP_F register n is the u32 at byte 4n of that union: f[n]
// for n < 32 reads half of d.f[n / 2], and FP_F's fcsr (n = 32) is the low
// half of d.f[16]. The state block keeps f0..f31 and fcsr in that same D
// layout (cpu/state.ts), so both views are plain byte ranges of it.

import { cpuState, OFF_FREGS, OFF_FCSR, OFF_SSTATUS, SSTATUS_FS, SSTATUS_FS_INITIAL } from "../cpu/state";
import { EINVAL } from "../errno";

export const KVM_REG_RISCV_FP_F: u64 = 5;
export const KVM_REG_RISCV_FP_D: u64 = 6;
const KVM_REG_SIZE_MASK: u64 = 0x00f0000000000000;
const KVM_REG_SIZE_U32: u64 = 0x0020000000000000;
const KVM_REG_SIZE_U64: u64 = 0x0030000000000000;
/** The fcsr index of both views (after f[31]). */
const FCSR_INDEX: i32 = 32;
/** Registers of each view: f0..f31 and fcsr. */
export const FP_REGS: i32 = FCSR_INDEX + 1;

/** The size of the register fpRegAddr last resolved (4 or 8 bytes). */
export let fpRegSize: i32 = 0;

/** Where FP register id (of type `type`) lives in the state block; 0 when it is no such register (FP_REG_ERRNO). */
export function fpRegAddr(id: u64, type: u64): usize {
  const size = id & KVM_REG_SIZE_MASK;
  const index = <i32>(id & 0xffffff);
  if (type == KVM_REG_RISCV_FP_F) {
    if (size != KVM_REG_SIZE_U32 || index > FCSR_INDEX) return 0;
    fpRegSize = 4;
    return cpuState() + OFF_FREGS + (<usize>index << 2);
  }
  if (index == FCSR_INDEX) {
    if (size != KVM_REG_SIZE_U32) return 0;
    fpRegSize = 4;
    return cpuState() + OFF_FCSR;
  }
  if (index > FCSR_INDEX || size != KVM_REG_SIZE_U64) return 0;
  fpRegSize = 8;
  return cpuState() + OFF_FREGS + (<usize>index << 3);
}

/** The errno of an FP register id fpRegAddr answered 0 for. */
export const FP_REG_ERRNO: i32 = EINVAL;

/** kvm_riscv_vcpu_fp_reset: a vCPU with F or D starts with sstatus.FS = Initial. */
export function fpReset(): void {
  const p = cpuState() + OFF_SSTATUS;
  store<u64>(p, (load<u64>(p) & ~SSTATUS_FS) | SSTATUS_FS_INITIAL);
}
