// RISC-V KVM's FP registers through KVM_GET/SET_ONE_REG (kvm_riscv_vcpu_get_reg_fp
// / kvm_riscv_vcpu_set_reg_fp, assembly/kvm/vcpu_fp.ts) and the F/D reset
// (kvm_riscv_vcpu_fp_reset): the FP_D view is the registers, FP_F the u32
// view of the kernel's union over the same bytes; every mismatch is EINVAL.
import { describe, it, expect, beforeEach } from "vitest";
import { Kvm, Vm, Vcpu, KVM_EXIT, KVM_GET_ONE_REG, KVM_SET_ONE_REG, kvm_one_reg, riscv } from "../src/index.js";
import { openKvm, code } from "./helpers.js";

let kvm: Kvm, vm: Vm, vcpu: Vcpu;
const RAM = 0x80000000n;
const ECALL = 0x00000073;
const FS = 3n << 13n, FS_INITIAL = 1n << 13n, FS_DIRTY = 3n << 13n;
// fmv.x.d a0, f5 | fadd.d f6, f5, f5 (rne) | csrrs a1, fcsr, x0 | ecall
const GUEST = [0xe2028553, 0x02528353, 0x003025f3, ECALL];

function program(words: number[]): void {
  const b = new Uint8Array(words.length * 4);
  const dv = new DataView(b.buffer);
  words.forEach((w, i) => dv.setUint32(i * 4, w, true));
  vm.writeGuest(RAM, b);
  vcpu.pc = RAM;
}

beforeEach(async () => {
  kvm = await openKvm();
  vm = kvm.createVm();
  vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: RAM, memorySize: 1n << 20n, userspaceAddr: kvm.memory.mmap(1n << 20n) });
  vcpu = vm.createVcpu(0);
});

describe("F/D state through KVM_GET/SET_ONE_REG", () => {
  it("a new vCPU has sstatus.FS = Initial (kvm_riscv_vcpu_fp_reset) and zeroed f registers and fcsr", () => {
    expect(vcpu.getCsr("sstatus") & FS).toBe(FS_INITIAL);
    for (let n = 0; n < 32; n++) expect(vcpu.getOneReg(riscv.fpDReg(n))).toBe(0n);
    expect(vcpu.getOneReg(riscv.REG_FP_D_FCSR)).toBe(0n);
  });

  it("FP_D: f0..f31 as u64 and fcsr as u32 are what the guest computes with and leaves", () => {
    vcpu.setOneReg(riscv.fpDReg(5), 0x3ff8_0000_0000_0000n); // 1.5
    vcpu.setOneReg(riscv.REG_FP_D_FCSR, 0x20n); // frm = 1 (RTZ), no flags
    program(GUEST);
    expect(vcpu.run().reason).toBe(KVM_EXIT.RISCV_SBI); // the ecall
    expect([vcpu.getReg(10), vcpu.getReg(11)]).toEqual([0x3ff8_0000_0000_0000n, 0x20n]);
    expect(vcpu.getOneReg(riscv.fpDReg(6))).toBe(0x4008_0000_0000_0000n); // 3.0
    expect(vcpu.getCsr("sstatus") & FS).toBe(FS_DIRTY);
  });

  it("FP_F: the u32 at byte 4n of the kernel's f/d union: f[n] halves of the D registers, its fcsr the low half of f16", () => {
    vcpu.setOneReg(riscv.fpDReg(1), 0x1111_2222_3333_4444n);
    vcpu.setOneReg(riscv.fpDReg(16), 0x5555_6666_7777_8888n);
    vcpu.setOneReg(riscv.REG_FP_D_FCSR, 0xe5n);
    expect([vcpu.getOneReg(riscv.fpFReg(2)), vcpu.getOneReg(riscv.fpFReg(3)), vcpu.getOneReg(riscv.REG_FP_F_FCSR)])
      .toEqual([0x3333_4444n, 0x1111_2222n, 0x7777_8888n]);
    vcpu.setOneReg(riscv.fpFReg(3), 0xabcd_ef01n);
    expect(vcpu.getOneReg(riscv.fpDReg(1))).toBe(0xabcd_ef01_3333_4444n);
    expect(vcpu.getOneReg(riscv.REG_FP_D_FCSR)).toBe(0xe5n);
  });

  it("errnos: a size other than the register's, an index past fcsr: EINVAL; a bad address: EFAULT", () => {
    const U32 = riscv.KVM_REG_SIZE_U32, U64 = riscv.KVM_REG_SIZE_U64;
    const retype = (id: bigint, size: bigint) => (id & ~0x00f0_0000_0000_0000n) | size;
    const bad = [
      retype(riscv.fpFReg(0), U64), // FP_F registers are u32
      retype(riscv.REG_FP_F_FCSR, U64),
      retype(riscv.fpDReg(0), U32), // FP_D f registers are u64
      retype(riscv.REG_FP_D_FCSR, U64), // its fcsr is u32
      riscv.fpDReg(0) + 33n, // past fcsr: EINVAL, not ENOENT
      riscv.fpFReg(0) + 33n,
      retype(riscv.fpFReg(0), 0n) + 40n, // u8 size and a bad index: the size is checked first, EINVAL either way
    ];
    for (const id of bad) {
      expect([id.toString(16), code(() => vcpu.getOneReg(id))]).toEqual([id.toString(16), "EINVAL"]);
      expect([id.toString(16), code(() => vcpu.setOneReg(id, 0n))]).toEqual([id.toString(16), "EINVAL"]);
    }
    for (const id of [riscv.fpDReg(3), riscv.REG_FP_D_FCSR, riscv.fpFReg(3)]) {
      const arg = kvm_one_reg.encode({ id, addr: 0x10n });
      expect([vcpu.ioctl(KVM_GET_ONE_REG, arg), vcpu.ioctl(KVM_SET_ONE_REG, arg)]).toEqual([-14, -14]);
    }
    // an FP register the host cannot copy stays as it was
    expect(vcpu.getOneReg(riscv.fpDReg(3))).toBe(0n);
  });
});
