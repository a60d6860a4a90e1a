// RISC-V KVM's register ABI (KVM_GET/SET_ONE_REG ids, arch/riscv/include/uapi/asm/kvm.h)
// and the integer registers' ABI names.

export const KVM_REG_RISCV = 0x8000000000000000n;
export const KVM_REG_SIZE_U64 = 0x0030000000000000n;
export const KVM_REG_RISCV_TYPE_SHIFT = 24n;
export const KVM_REG_RISCV_CONFIG = 1n;
export const KVM_REG_RISCV_CORE = 2n;
export const KVM_REG_RISCV_CSR = 3n;
export const KVM_REG_RISCV_TIMER = 4n;
export const KVM_REG_RISCV_FP_F = 5n;
export const KVM_REG_RISCV_FP_D = 6n;
export const KVM_REG_SIZE_U32 = 0x0020000000000000n;

const reg = (type: bigint, index: number) => KVM_REG_RISCV | KVM_REG_SIZE_U64 | (type << KVM_REG_RISCV_TYPE_SHIFT) | BigInt(index);

/** struct kvm_riscv_core: pc, x1..x31, mode. */
export const coreReg = (index: number) => reg(KVM_REG_RISCV_CORE, index);
export const REG_PC = coreReg(0);
export const xReg = (n: number) => {
  if (!Number.isInteger(n) || n < 1 || n > 31) throw new RangeError(`x${n} is not a writable register`);
  return coreReg(n);
};
export const REG_MODE = coreReg(32);
export const RISCV_MODE_S = 1n, RISCV_MODE_U = 0n;

/** struct kvm_riscv_csr, in order. */
export const CSR_NAMES = ["sstatus", "sie", "stvec", "sscratch", "sepc", "scause", "stval", "sip", "satp", "scounteren", "senvcfg"] as const;
export type CsrName = (typeof CSR_NAMES)[number];
export const csrReg = (name: CsrName) => reg(KVM_REG_RISCV_CSR, CSR_NAMES.indexOf(name));

/** struct kvm_riscv_timer: frequency, time, compare, state. */
export const REG_TIMER_FREQUENCY = reg(KVM_REG_RISCV_TIMER, 0);
export const REG_TIMER_TIME = reg(KVM_REG_RISCV_TIMER, 1);
export const REG_TIMER_COMPARE = reg(KVM_REG_RISCV_TIMER, 2);
export const REG_TIMER_STATE = reg(KVM_REG_RISCV_TIMER, 3);

/**
 * struct __riscv_d_ext_state: f0..f31 (u64) and fcsr (u32, index 32). The
 * FP_F view (u32 registers) is struct __riscv_f_ext_state over the same
 * union in the kernel: see assembly/kvm/vcpu_fp.ts.
 */
const fpIndex = (n: number) => {
  if (!Number.isInteger(n) || n < 0 || n > 31) throw new RangeError(`f${n} is not a register`);
  return BigInt(n);
};
const fpId = (type: bigint, size: bigint, index: bigint) => KVM_REG_RISCV | size | (type << KVM_REG_RISCV_TYPE_SHIFT) | index;
export const fpDReg = (n: number) => fpId(KVM_REG_RISCV_FP_D, KVM_REG_SIZE_U64, fpIndex(n));
export const REG_FP_D_FCSR = fpId(KVM_REG_RISCV_FP_D, KVM_REG_SIZE_U32, 32n);
export const fpFReg = (n: number) => fpId(KVM_REG_RISCV_FP_F, KVM_REG_SIZE_U32, fpIndex(n));
export const REG_FP_F_FCSR = fpId(KVM_REG_RISCV_FP_F, KVM_REG_SIZE_U32, 32n);

export const ABI_NAMES = ["zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2", "a3", "a4", "a5",
  "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4", "t5", "t6"] as const;

/**
 * The ids KVM_GET_REG_LIST reports for a vCPU of this core, in its order
 * (assembly/kvm/vcpu_onereg.ts: core, general CSRs, timer, FP_F, FP_D; the
 * ISA is fixed): what a saved vCPU must hold, checked without a vCPU at hand.
 * test/machine-state.test.ts holds it equal to the core's answer.
 */
export const REG_LIST: readonly bigint[] = [
  ...Array.from({ length: 33 }, (_, i) => coreReg(i)),
  ...CSR_NAMES.map(csrReg),
  REG_TIMER_FREQUENCY, REG_TIMER_TIME, REG_TIMER_COMPARE, REG_TIMER_STATE,
  ...Array.from({ length: 32 }, (_, i) => fpFReg(i)), REG_FP_F_FCSR,
  ...Array.from({ length: 32 }, (_, i) => fpDReg(i)), REG_FP_D_FCSR,
];

/** The bytes KVM_GET/SET_ONE_REG copies for id: KVM_REG_SIZE, 4 for a u32 register, else 8 (wider ones are not offered). */
export function oneRegBytes(id: bigint | number): 4 | 8 {
  return ((BigInt(id) >> 52n) & 0xfn) === 2n ? 4 : 8;
}
