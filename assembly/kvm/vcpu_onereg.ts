// KVM_GET_REG_LIST (kvm_riscv_vcpu_num_regs, kvm_riscv_vcpu_copy_reg_indices):
// every id KVM_GET/SET_ONE_REG answers for this vCPU, in the kernel's order.
// This vCPU has no config, vector, ISA_EXT or SBI registers (ONE_REG answers
// ENOENT for those types), so the list is: core, the general CSRs, the timer,
// then FP_F and FP_D — both, as the kernel lists them for an ISA with F and D.

import { ioctlBuf } from "../layout";
import { CORE_REGS, TIMER_REGS, csrRegs } from "./vcpu_run";
import { FP_REGS, KVM_REG_RISCV_FP_F, KVM_REG_RISCV_FP_D } from "./vcpu_fp";
import { fail, E2BIG, EFAULT, CHECK_COPY_FROM_USER, CHECK_REG_LIST_E2BIG, CHECK_REG_LIST_FAULT } from "../errno";

const KVM_REG_RISCV: u64 = 0x8000000000000000;
const KVM_REG_SIZE_U32: u64 = 0x0020000000000000;
const KVM_REG_SIZE_U64: u64 = 0x0030000000000000;
const TYPE_CORE: u64 = 2, TYPE_CSR: u64 = 3, TYPE_TIMER: u64 = 4;
/** struct kvm_reg_list's fixed part: u64 n. */
const REG_LIST_BYTES: i32 = 8;

/** kvm_riscv_vcpu_num_regs. */
export function numRegs(): i32 {
  return CORE_REGS + csrRegs() + TIMER_REGS + 2 * FP_REGS;
}

@inline function regId(size: u64, type: u64, index: i32): u64 {
  return KVM_REG_RISCV | size | (type << 24) | <u64>index;
}

/** The i-th id of the list (0 <= i < numRegs()). */
function regAt(i: i32): u64 {
  if (i < CORE_REGS) return regId(KVM_REG_SIZE_U64, TYPE_CORE, i);
  i -= CORE_REGS;
  if (i < csrRegs()) return regId(KVM_REG_SIZE_U64, TYPE_CSR, i); // KVM_REG_RISCV_CSR_GENERAL is subtype 0
  i -= csrRegs();
  if (i < TIMER_REGS) return regId(KVM_REG_SIZE_U64, TYPE_TIMER, i);
  i -= TIMER_REGS;
  if (i < FP_REGS) return regId(KVM_REG_SIZE_U32, KVM_REG_RISCV_FP_F, i);
  i -= FP_REGS;
  // FP_D: f0..f31 are u64, fcsr (the last) a u32.
  return regId(i < FP_REGS - 1 ? KVM_REG_SIZE_U64 : KVM_REG_SIZE_U32, KVM_REG_RISCV_FP_D, i);
}

/**
 * KVM_GET_REG_LIST on struct kvm_reg_list { u64 n; u64 reg[]; }: the caller's
 * argLen bytes are in ioctlBuf(). n (read as the kernel's unsigned int) is
 * replaced by the register count; a smaller n is E2BIG with only that written
 * back; otherwise the ids go to reg[], EFAULT where the caller's bytes end.
 */
export function getRegList(argLen: i32): i32 {
  if (argLen < REG_LIST_BYTES) return fail(CHECK_COPY_FROM_USER, EFAULT);
  const buf = ioctlBuf();
  const n = <u32>load<u64>(buf);
  const count = numRegs();
  store<u64>(buf, <u64>count);
  if (n < <u32>count) return fail(CHECK_REG_LIST_E2BIG, E2BIG);
  for (let i = 0; i < count; i++) {
    const at = REG_LIST_BYTES + (i << 3);
    if (at + 8 > argLen) return fail(CHECK_REG_LIST_FAULT, EFAULT); // put_user of reg[i] faults
    store<u64>(buf + <usize>at, regAt(i));
  }
  return 0;
}
