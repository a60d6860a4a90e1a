// RISC-V KVM's FP registers through KVM_GET/SET_ONE_REG (kvm_riscv_vcpu_get_reg_fp
// / kvm_riscv_vcpu_set_reg_fp, assembly/kvm/vcpu_fp.ts) and the F/D reset
// (kvm_riscv_vcpu_fp_reset): the FP_D view is the registers, FP_F the u32
// view of the kernel's union over the same bytes; every mismatch is EINVAL.
import { describe, it, expect, beforeEach } from "vitest";
import { Kvm, Vm, Vcpu, KVM_EXIT, KVM_GET_ONE_REG, KVM_SET_ONE_REG, kvm_one_reg, riscv } from "../src/index.js";
import { code, loadProgram, vmWithVcpu } from "./helpers.js";
import { Rng } from "./rng.js";
import * as M from "./model/ieee754.js";
import { F32, F64 } from "./model/ieee754.js";
import * as P from "./cpu/fp-asm.js";

let kvm: Kvm, vm: Vm, vcpu: Vcpu;
const RAM = 0x80000000n;
const ECALL = 0x00000073;
const FS = 3n << 13n, FS_INITIAL = 1n << 13n, FS_DIRTY = 3n << 13n;
// fmv.x.d a0, f5 | fadd.d f6, f5, f5 (rne) | csrrs a1, fcsr, x0 | ecall
const GUEST = [0xe2028553, 0x02528353, 0x003025f3, ECALL];
const BOX = 0xffff_ffff_0000_0000n;
const SPECIAL_D = [0n, 1n << 63n, 1n, 0x3ff0_0000_0000_0000n, 0x7ff0_0000_0000_0000n, 0x7ff8_0000_0000_0000n,
  0x7ff0_0000_0000_0001n, 0x0010_0000_0000_0000n, 0x7fef_ffff_ffff_ffffn, 0x000f_ffff_ffff_ffffn];
const SPECIAL_S = [0n, 0x80000000n, 1n, 0x3f800000n, 0x7f800000n, 0x7fc00000n, 0x7f800001n, 0x00800000n, 0x7f7fffffn, 0x007fffffn];

const program = (words: number[]) => loadProgram(vm, vcpu, words, RAM);

beforeEach(async () => {
  ({ kvm, vm, vcpu } = await vmWithVcpu(RAM));
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

describe("F/D through KVM_RUN, randomized against the reference model", () => {
  it("random straight-line F/D programs: every f register and fcsr read back through ONE_REG match the model", () => {
    const rng = new Rng(0x6b766d);
    const NREG = 8;
    const fmtOf = (d: boolean) => (d ? F64 : F32);
    for (let round = 0; round < 30; round++) {
      // one format per round, so results feed later instructions (the other format's values read as NaNs)
      const dbl = round % 2 === 1, fm = fmtOf(dbl), fmt = dbl ? P.D : P.S;
      const f: bigint[] = [];
      for (let r = 0; r < NREG; r++) {
        // mostly ordinary numbers of either format (exponents near 0), some special values
        const sign = rng.chance(0.5);
        const pick = rng.int(10);
        const d = (sign ? 1n << 63n : 0n) | (BigInt(1023 + rng.range(-20, 20)) << 52n) | (BigInt(rng.u32()) << 20n) | BigInt(rng.u32() & 0xfffff);
        const sgl = BOX | (sign ? 0x80000000n : 0n) | (BigInt(127 + rng.range(-20, 20)) << 23n) | BigInt(rng.u32() & 0x7fffff);
        f.push(dbl ? (pick < 8 ? d : rng.pick(SPECIAL_D)) : pick < 8 ? sgl : BOX | rng.pick(SPECIAL_S));
        vcpu.setOneReg(riscv.fpDReg(r), f[r]);
      }
      const frm = rng.int(5);
      let flags = 0;
      vcpu.setOneReg(riscv.REG_FP_D_FCSR, BigInt(frm << 5));
      const words: number[] = [];
      for (let i = 0; i < 40; i++) {
        const rd = rng.int(NREG), a = rng.int(NREG), b = rng.int(NREG), c = rng.int(NREG);
        const rm = rng.int(6) === 5 ? P.DYN : rng.int(5);
        const mode = rm === P.DYN ? frm : rm;
        const get = (r: number) => (dbl ? f[r] : (f[r] >> 32n) === 0xffffffffn ? f[r] & 0xffffffffn : 0x7fc00000n);
        let res: { bits: bigint; flags: number };
        switch (rng.int(7)) {
          case 0: words.push(P.fadd(fmt, rd, a, b, rm)); res = M.add(get(a), get(b), fm, mode); break;
          case 1: words.push(P.fsub(fmt, rd, a, b, rm)); res = M.add(get(a), get(b), fm, mode, true); break;
          case 2: words.push(P.fmul(fmt, rd, a, b, rm)); res = M.mul(get(a), get(b), fm, mode); break;
          case 3: words.push(P.fdiv(fmt, rd, a, b, rm)); res = M.div(get(a), get(b), fm, mode); break;
          case 4: words.push(P.fsqrt(fmt, rd, a, rm)); res = M.sqrt(get(a), fm, mode); break;
          case 5: {
            const k = rng.int(4);
            words.push(P.fma4([P.FMADD, P.FMSUB, P.FNMSUB, P.FNMADD][k], fmt, rd, a, b, c, rm));
            res = M.fma(get(a), get(b), get(c), fm, mode, k >= 2, k === 1 || k === 3);
            break;
          }
          default: {
            const mx = rng.chance(0.5);
            words.push((mx ? P.fmax : P.fmin)(fmt, rd, a, b));
            res = M.minmax(get(a), get(b), fm, mx);
          }
        }
        f[rd] = dbl ? res.bits : BOX | res.bits;
        flags |= res.flags;
      }
      program([...words, ECALL]);
      expect(vcpu.run().reason).toBe(KVM_EXIT.RISCV_SBI);
      expect(vcpu.pc).toBe(RAM + BigInt(words.length * 4));
      const got = Array.from({ length: NREG }, (_, r) => vcpu.getOneReg(riscv.fpDReg(r)));
      expect([round, got, vcpu.getOneReg(riscv.REG_FP_D_FCSR)]).toEqual([round, f, BigInt((frm << 5) | flags)]);
    }
  });
});
