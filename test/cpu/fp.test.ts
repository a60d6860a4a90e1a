// The F and D extensions as the guest sees them (assembly/cpu/fpu/): one test
// per rule of sstatus.FS, fcsr, rounding-mode decoding, NaN boxing and
// canonical NaNs, the min/max, compare, convert and move rules, the FP loads
// and stores and their compressed forms, FP code in a translated region, and
// a randomized run of decoded instructions against the reference model
// (test/model/ieee754.ts) covering decode, frm and fflags accrual.

import { describe, it, expect, beforeEach } from "vitest";
import { Cpu, RAM_BASE, CAUSE } from "./harness";
import * as A from "./asm";
import { CSR, halves, w32 } from "./asm";
import * as F from "./fp-asm";
import { S, D, DYN, RNE, RTZ, RDN, RUP, CSR_FFLAGS, CSR_FRM, CSR_FCSR, FS, SD, NX, UF, OF, DZ, NV } from "./fp-asm";
import * as M from "../model/ieee754";
import { F32, F64 } from "../model/ieee754";
import { Rng } from "../rng";
import { JIT_STAT } from "../../src/abi.gen";

const T0 = 5, T1 = 6, S0 = 8, S1 = 9, A0 = 10, A1 = 11, SP = 2;
const HANDLER = RAM_BASE + 0x8000n;
const DATA = RAM_BASE + 0x10000n;
const BOX = 0xffff_ffff_0000_0000n;
const QNAN_S = 0x7fc00000n, QNAN_D = 0x7ff8_0000_0000_0000n;
const ONE_S = 0x3f800000n, ONE_D = 0x3ff0_0000_0000_0000n, TWO_D = 0x4000_0000_0000_0000n;
const FS_OFF = 0n, FS_INITIAL = 1n << 13n, FS_CLEAN = 2n << 13n, FS_DIRTY = 3n << 13n;

let cpu: Cpu;
beforeEach(async () => {
  cpu = await Cpu.create(1 << 20);
  cpu.setCsr(CSR.stvec, HANDLER);
  cpu.load([A.ecall()], HANDLER);
  cpu.setCsr(CSR.sstatus, FS_INITIAL);
});

const f = (r: number) => BigInt.asUintN(64, cpu.ex.cpuGetF(r));
const setF = (r: number, v: bigint) => cpu.ex.cpuSetF(r, BigInt.asIntN(64, v));
const fs = () => cpu.csr(CSR.sstatus) & FS;
const fcsr = () => cpu.csr(CSR_FCSR);
const setFs = (v: bigint) => cpu.setCsr(CSR.sstatus, (cpu.csr(CSR.sstatus) & ~FS) | v);

/** Runs words then an ecall from RAM_BASE; true when it reached the ecall (no trap). */
function run(words: number[]): boolean {
  cpu.setCsr(CSR.scause, 0n);
  const r = cpu.exec([...words, A.ecall()], 10_000);
  expect(r).toBe(cpu.EXIT_SBI);
  return cpu.pc === RAM_BASE + BigInt(words.length * 4);
}

function expectIllegal(inst: number, tval = BigInt(inst >>> 0)): void {
  expect([cpu.pc, cpu.csr(CSR.scause), cpu.csr(CSR.sepc), cpu.csr(CSR.stval)]).toEqual([HANDLER, CAUSE.illegal, RAM_BASE, tval]);
}

describe("sstatus.FS", () => {
  it("FS Off: F/D instructions, FP loads and stores, and fflags/frm/fcsr accesses are illegal", () => {
    const insts = [F.fadd(S, 1, 2, 3), F.fadd(D, 1, 2, 3, RNE), F.fld(1, T0, 0), F.fsd(1, T0, 0), F.fmv_x_d(A0, 1),
      F.fmv_d_x(1, A0), F.fma4(F.FMADD, D, 1, 2, 3, 4), F.fsgnj(D, 1, 2, 2), A.csrrs(A0, CSR_FCSR, 0),
      A.csrrw(0, CSR_FRM, A0), A.csrrs(A0, CSR_FFLAGS, 0), A.csrrwi(0, CSR_FFLAGS, 1)];
    cpu.setX(T0, DATA);
    cpu.setX(A0, 0x1234n);
    for (const inst of insts) {
      setFs(FS_OFF);
      setF(1, 0x55n);
      expect(run([inst]), inst.toString(16)).toBe(false);
      expectIllegal(inst);
      expect([f(1), cpu.x(A0), fs()]).toEqual([0x55n, 0x1234n, FS_OFF]);
    }
    // and from the same encodings with FS on, none traps
    for (const inst of insts) {
      setFs(FS_INITIAL);
      cpu.setX(A0, 0x1234n);
      expect(run([inst]), inst.toString(16)).toBe(true);
    }
  });

  it("an instruction that writes an f register, fflags or fcsr makes FS Dirty; others leave it", () => {
    cpu.setX(T0, DATA);
    setF(1, ONE_D);
    setF(2, QNAN_D);
    // [instruction, dirties?] from FS = Clean
    const cases: [string, number, boolean][] = [
      ["feq (no exception)", F.feq(D, A0, 1, 1), false],
      ["fclass", F.fclass(D, A0, 1), false],
      ["fmv.x.d", F.fmv_x_d(A0, 1), false],
      ["fsd", F.fsd(1, T0, 0), false],
      ["fcvt.l.d (exact)", F.fcvtToInt(D, 2, A0, 1), false],
      ["csrr fcsr", A.csrrs(A0, CSR_FCSR, 0), false],
      ["flt with a NaN (NV accrues)", F.flt(D, A0, 1, 2), true],
      ["fadd.d", F.fadd(D, 3, 1, 1), true],
      ["fld", F.fld(3, T0, 0), true],
      ["fmv.d.x", F.fmv_d_x(3, A0), true],
      ["fsgnj.d", F.fsgnj(D, 3, 1, 1), true],
      ["csrw fflags", A.csrrw(0, CSR_FFLAGS, 0), true],
      ["csrwi frm", A.csrrwi(0, CSR_FRM, 0), true],
    ];
    for (const [name, inst, dirty] of cases) {
      setFs(FS_CLEAN);
      expect(run([inst]), name).toBe(true);
      expect([name, fs()]).toEqual([name, dirty ? FS_DIRTY : FS_CLEAN]);
    }
  });

  it("SD reads as FS == Dirty and is not writable", () => {
    for (const [v, sd] of [[FS_OFF, 0n], [FS_INITIAL, 0n], [FS_CLEAN, 0n], [FS_DIRTY, SD]] as const) {
      setFs(v);
      expect(run([A.csrrs(A0, CSR.sstatus, 0)])).toBe(true);
      expect([cpu.x(A0) & FS, cpu.x(A0) & SD]).toEqual([v, sd]);
    }
    cpu.setCsr(CSR.sstatus, SD); // SD alone: FS stays Off, SD reads 0
    expect(cpu.csr(CSR.sstatus) & (SD | FS)).toBe(0n);
  });
});

describe("fcsr", () => {
  it("fflags (bits 4:0), frm (bits 7:5) and fcsr (bits 7:0) are views of one register; other bits are dropped", () => {
    cpu.setX(T0, -1n);
    expect(run([A.csrrw(0, CSR_FCSR, T0), A.csrrs(A0, CSR_FCSR, 0), A.csrrs(A1, CSR_FFLAGS, 0), A.csrrs(S0, CSR_FRM, 0)])).toBe(true);
    expect([cpu.x(A0), cpu.x(A1), cpu.x(S0)]).toEqual([0xffn, 0x1fn, 7n]);
    cpu.setX(T0, 0x1a5n);
    expect(run([A.csrrw(0, CSR_FCSR, 0), A.csrrw(0, CSR_FFLAGS, T0), A.csrrs(A0, CSR_FCSR, 0)])).toBe(true);
    expect(cpu.x(A0)).toBe(0x05n);
    expect(run([A.csrrw(0, CSR_FRM, T0), A.csrrs(A0, CSR_FCSR, 0), A.csrrs(A1, CSR_FRM, 0)])).toBe(true);
    expect([cpu.x(A0), cpu.x(A1)]).toEqual([0xa5n, 5n]);
  });

  it("reserved rounding modes are illegal: rm 5 and 6, and DYN while frm is 5, 6 or 7", () => {
    setF(1, ONE_D);
    for (const rm of [5, 6]) {
      const inst = F.fadd(D, 2, 1, 1, rm);
      expect(run([inst])).toBe(false);
      expectIllegal(inst);
    }
    for (const frm of [5n, 6n, 7n]) {
      cpu.setCsr(CSR_FRM, frm);
      for (const inst of [F.fadd(D, 2, 1, 1), F.fcvtToInt(D, 0, A0, 1), F.fcvt_d_s(2, 1), F.fma4(F.FMSUB, S, 2, 1, 1, 1)]) {
        expect(run([inst])).toBe(false);
        expectIllegal(inst);
      }
      // static modes and instructions without a rounding mode still run
      expect(run([F.fadd(D, 2, 1, 1, RTZ), F.fsgnj(D, 3, 1, 1), F.fmin(D, 3, 1, 1), F.feq(D, A0, 1, 1)])).toBe(true);
    }
    cpu.setCsr(CSR_FRM, 4n);
    expect(run([F.fadd(D, 2, 1, 1)])).toBe(true);
    expect(f(2)).toBe(TWO_D);
  });

  it("fflags accrue: an instruction ORs its exceptions in and never clears any", () => {
    setF(1, ONE_D);
    setF(2, 0n); // +0
    setF(3, 0x3fb999999999999an); // 0.1: 1/0.1 is inexact
    cpu.setCsr(CSR_FCSR, 0n);
    expect(run([F.fdiv(D, 4, 1, 2)])).toBe(true); // 1/0: DZ
    expect(fcsr()).toBe(BigInt(DZ));
    expect(run([F.fdiv(D, 4, 1, 3), F.fadd(D, 5, 1, 1)])).toBe(true); // inexact, then exact
    expect(fcsr()).toBe(BigInt(DZ | NX));
  });
});

describe("NaN boxing and canonical NaNs", () => {
  it("NaN boxing on read: a binary32 operand whose upper 32 bits are not all ones is the canonical NaN", () => {
    setF(1, ONE_S); // 1.0f, not boxed
    setF(2, BOX | ONE_S);
    expect(run([F.fadd(S, 3, 1, 2), F.fsgnj(S, 4, 2, 1), F.feq(S, A0, 1, 1), F.fclass(S, A1, 1)])).toBe(true);
    expect(f(3)).toBe(BOX | QNAN_S);
    expect(f(4)).toBe(BOX | ONE_S); // the sign of the canonical NaN (+) injected into 1.0
    expect([cpu.x(A0), cpu.x(A1)]).toEqual([0n, 1n << 9n]); // quiet NaN: feq false without NV
    expect(fcsr() & BigInt(NV)).toBe(0n);
    // as binary64 the same register is an ordinary value
    expect(run([F.fclass(D, A0, 1)])).toBe(true);
    expect(cpu.x(A0)).toBe(1n << 5n); // positive subnormal
  });

  it("NaN boxing on write: binary32 results, FLW and FMV.W.X set the upper 32 bits", () => {
    setF(1, BOX | ONE_S);
    cpu.setX(T0, DATA);
    cpu.setU64(DATA, 0x1234_5678_4040_0000n);
    cpu.setX(A0, 0xdead_beef_c000_0000n);
    expect(run([F.fadd(S, 2, 1, 1), F.flw(3, T0, 0), F.fmv_w_x(4, A0), F.fcvt_s_d(5, 6), F.fsgnjx(S, 6, 1, 1)])).toBe(true);
    expect([f(2), f(3), f(4), f(5) >> 32n, f(6)]).toEqual([BOX | 0x40000000n, BOX | 0x40400000n, BOX | 0xc0000000n,
      0xffffffffn, BOX | ONE_S]);
  });

  it("canonical NaN: arithmetic returns 0x7fc00000 / 0x7ff8000000000000; sign injection, moves, loads and stores move NaN bits", () => {
    const payloadD = 0xfff0_0000_0000_1234n; // a negative signaling NaN with a payload
    const payloadS = BOX | 0xff80_1234n;
    setF(1, payloadD);
    setF(2, payloadS);
    setF(3, ONE_D);
    cpu.setX(T0, DATA);
    expect(run([F.fadd(D, 4, 1, 3), F.fmul(S, 5, 2, 2), F.fcvt_d_s(6, 2), F.fcvt_s_d(7, 1), F.fsgnj(D, 8, 1, 1),
      F.fsgnjn(S, 9, 2, 2), F.fsd(1, T0, 0), F.fld(10, T0, 0), F.fmv_x_d(A0, 1), F.fsqrt(D, 11, 1), F.fma4(F.FMADD, D, 12, 3, 3, 1)])).toBe(true);
    expect([f(4), f(5), f(6), f(7), f(8), f(9), f(10), cpu.x(A0), f(11), f(12)]).toEqual([QNAN_D, BOX | QNAN_S, QNAN_D,
      BOX | QNAN_S, payloadD, BOX | 0x7f80_1234n, payloadD, payloadD, QNAN_D, QNAN_D]);
    expect(fcsr() & BigInt(NV)).toBe(BigInt(NV)); // signaling inputs
  });
});

describe("instruction rules", () => {
  it("fmin/fmax: -0 < +0, one NaN operand returns the other, a signaling NaN raises NV, two NaNs give the canonical NaN", () => {
    const NEG0 = 1n << 63n, SNAN_D = 0x7ff0_0000_0000_0001n, ONE = ONE_D;
    const cases: [bigint, bigint, bigint, bigint, number][] = [ // a, b, min, max, flags
      [NEG0, 0n, NEG0, 0n, 0], [0n, NEG0, NEG0, 0n, 0], [QNAN_D, ONE, ONE, ONE, 0], [ONE, QNAN_D, ONE, ONE, 0],
      [SNAN_D, ONE, ONE, ONE, NV], [QNAN_D, SNAN_D, QNAN_D, QNAN_D, NV], [QNAN_D | 5n, QNAN_D | 7n, QNAN_D, QNAN_D, 0],
      [ONE, TWO_D, ONE, TWO_D, 0], [ONE | NEG0, TWO_D, ONE | NEG0, TWO_D, 0],
    ];
    for (const [a, b, lo, hi, flags] of cases) {
      setF(1, a); setF(2, b);
      cpu.setCsr(CSR_FCSR, 0n);
      expect(run([F.fmin(D, 3, 1, 2), F.fmax(D, 4, 1, 2)])).toBe(true);
      expect([a, b, f(3), f(4), fcsr()]).toEqual([a, b, lo, hi, BigInt(flags)]);
    }
  });

  it("feq is quiet (NV only for a signaling NaN), flt and fle signal NV for any NaN", () => {
    const SNAN_S = BOX | 0x7f800001n;
    for (const [nan, feqNv] of [[BOX | QNAN_S, 0], [SNAN_S, NV]] as const) {
      setF(1, nan); setF(2, BOX | ONE_S);
      for (const [inst, nv] of [[F.feq(S, A0, 1, 2), feqNv], [F.flt(S, A0, 1, 2), NV], [F.fle(S, A0, 2, 1), NV]] as const) {
        cpu.setCsr(CSR_FCSR, 0n);
        cpu.setX(A0, 7n);
        expect(run([inst])).toBe(true);
        expect([cpu.x(A0), fcsr()]).toEqual([0n, BigInt(nv)]);
      }
    }
    setF(1, 1n << 63n); setF(2, 0n); // -0 == +0, not less
    expect(run([F.feq(D, A0, 1, 2), F.flt(D, A1, 1, 2), F.fle(D, S0, 1, 2)])).toBe(true);
    expect([cpu.x(A0), cpu.x(A1), cpu.x(S0)]).toEqual([1n, 0n, 1n]);
  });

  it("fcvt to integers saturates per the table with NV (NaN converts to the largest value); 32-bit results sign-extend", () => {
    const INF_D = 0x7ff0_0000_0000_0000n, NEG = 1n << 63n;
    const NEG_HALF = 0xbfe0_0000_0000_0000n, BIG = 0x43e0_0000_0000_0000n; // -0.5, 2^63
    const u = (v: bigint) => BigInt.asUintN(64, v);
    const cases: [string, bigint, number, number, bigint, number][] = [ // name, value, kind, rm, result, flags
      ["w NaN", QNAN_D, 0, RNE, 0x7fffffffn, NV], ["w +inf", INF_D, 0, RNE, 0x7fffffffn, NV],
      ["w -inf", INF_D | NEG, 0, RNE, u(-(2n ** 31n)), NV], ["wu NaN", QNAN_D, 1, RNE, u(-1n), NV],
      ["wu -1", ONE_D | NEG, 1, RNE, 0n, NV], ["wu -0.5 rtz", NEG_HALF, 1, RTZ, 0n, NX],
      ["wu -0.5 rdn", NEG_HALF, 1, RDN, 0n, NV], ["l 2^63", BIG, 2, RNE, 2n ** 63n - 1n, NV],
      ["l -2^63", BIG | NEG, 2, RNE, 2n ** 63n, 0], ["lu NaN", QNAN_D, 3, RNE, u(-1n), NV],
      ["lu 2^63", BIG, 3, RNE, 2n ** 63n, 0], ["lu -inf", INF_D | NEG, 3, RNE, 0n, NV],
      ["w 2.5 rne", 0x4004_0000_0000_0000n, 0, RNE, 2n, NX], ["w 2.5 rup", 0x4004_0000_0000_0000n, 0, RUP, 3n, NX],
      ["wu 2^32-1", 0x41ef_ffff_ffe0_0000n, 1, RNE, u(-1n), 0],
    ];
    for (const [name, v, kind, rm, want, flags] of cases) {
      setF(1, v);
      cpu.setCsr(CSR_FCSR, 0n);
      expect(run([F.fcvtToInt(D, kind, A0, 1, rm)])).toBe(true);
      expect([name, cpu.x(A0), fcsr()]).toEqual([name, want, BigInt(flags)]);
    }
  });

  it("fmv.x.w sign-extends bit 31 of the register's low half, boxed or not; fmv.x.d moves all 64 bits", () => {
    setF(1, BOX | 0x8000_0001n);
    setF(2, 0x0000_1111_7fff_ffffn);
    expect(run([F.fmv_x_w(A0, 1), F.fmv_x_w(A1, 2), F.fmv_x_d(S0, 2)])).toBe(true);
    expect([cpu.x(A0), cpu.x(A1), cpu.x(S0)]).toEqual([0xffff_ffff_8000_0001n, 0x7fff_ffffn, 0x0000_1111_7fff_ffffn]);
  });

  it("FP loads and stores go through the memory path: misaligned ones are performed, across a page too", () => {
    const at = DATA + 0xffdn; // 3 bytes on the first page, 5 on the next
    cpu.setX(T0, at);
    setF(1, 0x0102_0304_0506_0708n);
    setF(2, BOX | 0xa1b2c3d4n);
    expect(run([F.fsd(1, T0, 0), F.fld(3, T0, 0), F.fsw(2, T0, 9), F.flw(4, T0, 9)])).toBe(true);
    expect([cpu.u64(at), f(3), cpu.u32(at + 9n), f(4)]).toEqual([0x0102_0304_0506_0708n, 0x0102_0304_0506_0708n,
      0xa1b2c3d4, BOX | 0xa1b2c3d4n]);
  });

  it("an FP load or store aimed at MMIO is not emulated (RISC-V KVM decodes integer accesses only): the run fails with EOPNOTSUPP", () => {
    const EXITK_FAIL = 5; // assembly/mmu/exit.ts
    cpu.setX(T0, 0x3000n); // no slot there: MMIO
    setF(3, 0x77n);
    for (const inst of [F.fld(3, T0, 8), F.fsw(3, T0, 0)]) {
      setFs(FS_CLEAN);
      expect(cpu.exec([inst, A.ecall()], 10)).toBe(cpu.EXIT_MEM);
      expect([cpu.ex.memExitKind(), cpu.ex.memExitErrno(), cpu.pc, f(3), fs()]).toEqual([EXITK_FAIL, 95, RAM_BASE, 0x77n, FS_CLEAN]);
    }
  });

  it("C.FLD, C.FSD, C.FLDSP and C.FSDSP move 64 bits between f registers and memory", () => {
    cpu.setX(S0, DATA);
    cpu.setX(SP, DATA + 0x100n);
    setF(9, 0x1111_2222_3333_4444n);
    setF(31, 0x5555_6666_7777_8888n);
    cpu.writeBytes(RAM_BASE, halves(F.c_fsd(9, S0, 248), F.c_fld(10, S0, 248), F.c_fsdsp(31, 504), F.c_fldsp(0, 504),
      F.c_fld(11, S0, 8), ...w32(A.ecall())));
    cpu.setU64(DATA + 8n, 0xabcdn);
    cpu.pc = RAM_BASE;
    expect(cpu.run(100)).toBe(cpu.EXIT_SBI);
    expect(cpu.pc).toBe(RAM_BASE + 10n);
    expect([cpu.u64(DATA + 248n), f(10), cpu.u64(DATA + 0x100n + 504n), f(0), f(11), fs()]).toEqual([
      0x1111_2222_3333_4444n, 0x1111_2222_3333_4444n, 0x5555_6666_7777_8888n, 0x5555_6666_7777_8888n, 0xabcdn, FS_DIRTY]);
    // with FS Off they are illegal, stval the 16-bit word
    setFs(FS_OFF);
    cpu.writeBytes(RAM_BASE, halves(F.c_fldsp(0, 8), ...w32(A.ecall())));
    cpu.pc = RAM_BASE;
    expect(cpu.run(100)).toBe(cpu.EXIT_SBI);
    expectIllegal(0, BigInt(F.c_fldsp(0, 8)));
  });

  it("FP ops inside a translated region compute what the interpreter does, and FS Off still traps there", () => {
    cpu.ex.jitSetThreshold(1);
    // a0 = 0; f1 = 0; loop 100 times: f1 += f2 (0.1); f3 = f1 * f1; store f1; reload into f4
    setF(2, 0x3fb999999999999an);
    cpu.setX(T0, DATA);
    const loop = [A.addi(A0, 0, 100), F.fmv_d_x(1, 0), // 0, 4
      F.fadd(D, 1, 1, 2), F.fmul(D, 3, 1, 1, RTZ), F.fsd(1, T0, 0), F.fld(4, T0, 0), F.feq(D, A1, 1, 4), // 8..24
      A.addi(A0, A0, -1), A.bne(A0, 0, -24), A.ecall()];
    cpu.load(loop);
    cpu.pc = RAM_BASE;
    expect(cpu.run(100_000)).toBe(cpu.EXIT_SBI);
    expect(cpu.ex.jitStat(JIT_STAT.COMPILED)).toBeGreaterThan(0);
    let sum = 0n, flags = 0;
    for (let i = 0; i < 100; i++) { const r = M.add(sum, 0x3fb999999999999an, F64, RNE); sum = r.bits; flags |= r.flags; }
    const sq = M.mul(sum, sum, F64, RTZ);
    expect([f(1), f(3), f(4), cpu.x(A1), fcsr()]).toEqual([sum, sq.bits, sum, 1n, BigInt(flags | sq.flags)]);
    // FS Off: the translated fadd leaves the region; the interpreter raises the trap
    setFs(FS_OFF);
    cpu.pc = RAM_BASE + 8n;
    cpu.setX(A0, 5n);
    expect(cpu.run(100)).toBe(cpu.EXIT_SBI);
    expect([cpu.csr(CSR.scause), cpu.csr(CSR.sepc), cpu.csr(CSR.stval)]).toEqual([CAUSE.illegal, RAM_BASE + 8n,
      BigInt(F.fadd(D, 1, 1, 2))]);
    // and so does a translated FP load (its inline probe path)
    cpu.pc = RAM_BASE + 20n;
    expect(cpu.run(100)).toBe(cpu.EXIT_SBI);
    expect([cpu.csr(CSR.scause), cpu.csr(CSR.sepc), cpu.csr(CSR.stval)]).toEqual([CAUSE.illegal, RAM_BASE + 20n,
      BigInt(F.fld(4, T0, 0))]);
  });
});

describe("decoded instructions against the reference model", () => {
  it("random F/D instructions with random operands, static and dynamic rounding modes: results and fflags", () => {
    const rng = new Rng(0xfd17);
    const vals = (fmt: number) => {
      const w = fmt === D ? 64 : 32;
      const sign = 1n << BigInt(w - 1);
      const pick = [0n, 1n, ONE_D, TWO_D, 0x7ff0_0000_0000_0000n, QNAN_D, 0x7ff0_0000_0000_0001n, 0x0010_0000_0000_0000n,
        0x7fef_ffff_ffff_ffffn, 0x3fb999999999999an, 0x43e0_0000_0000_0000n, 0x41e0_0000_0000_0000n];
      const pickS = [0n, 1n, ONE_S, 0x40000000n, 0x7f800000n, QNAN_S, 0x7f800001n, 0x00800000n, 0x7f7fffffn, 0x3dcccccdn,
        0x5f000000n, 0x4f000000n];
      let v: bigint;
      const r = rng.int(3);
      if (r === 0) v = rng.pick(fmt === D ? pick : pickS);
      else if (r === 1) v = (BigInt(rng.u32()) << 32n | BigInt(rng.u32())) & ((1n << BigInt(w)) - 1n);
      else v = (BigInt(fmt === D ? 1023 + rng.range(-30, 30) : 127 + rng.range(-30, 30)) << BigInt(fmt === D ? 52 : 23)) |
        (BigInt(rng.u32()) & ((1n << BigInt(fmt === D ? 32 : 23)) - 1n));
      if (rng.chance(0.5)) v ^= sign;
      return v;
    };
    let checked = 0;
    for (let i = 0; i < 3000; i++) {
      const fmt = rng.pick([S, D]);
      const fm = fmt === D ? F64 : F32;
      const box = (v: bigint) => (fmt === D ? v : BOX | v);
      const a = vals(fmt), b = vals(fmt), c = vals(fmt);
      setF(1, box(a)); setF(2, box(b)); setF(3, box(c));
      const frm = rng.int(5);
      const useDyn = rng.chance(0.5);
      const rm = useDyn ? frm : rng.int(5);
      const instRm = useDyn ? DYN : rm;
      cpu.setCsr(CSR_FCSR, BigInt(frm << 5));
      const x = BigInt.asUintN(64, BigInt(rng.u32()) << BigInt(rng.int(33)) ^ (rng.chance(0.3) ? -1n : 0n));
      cpu.setX(A0, x);
      const op = rng.int(13);
      let inst: number, want: M.Res, toX = false;
      switch (op) {
        case 0: inst = F.fadd(fmt, 4, 1, 2, instRm); want = M.add(a, b, fm, rm); break;
        case 1: inst = F.fsub(fmt, 4, 1, 2, instRm); want = M.add(a, b, fm, rm, true); break;
        case 2: inst = F.fmul(fmt, 4, 1, 2, instRm); want = M.mul(a, b, fm, rm); break;
        case 3: inst = F.fdiv(fmt, 4, 1, 2, instRm); want = M.div(a, b, fm, rm); break;
        case 4: inst = F.fsqrt(fmt, 4, 1, instRm); want = M.sqrt(a, fm, rm); break;
        case 5: {
          const k = rng.int(4), opc = [F.FMADD, F.FMSUB, F.FNMSUB, F.FNMADD][k];
          inst = F.fma4(opc, fmt, 4, 1, 2, 3, instRm);
          want = M.fma(a, b, c, fm, rm, k >= 2, k === 1 || k === 3);
          break;
        }
        case 6: { const k = rng.int(4); inst = F.fcvtToInt(fmt, k, A1, 1, instRm); want = M.cvtToInt(a, fm, rm, k); toX = true; break; }
        case 7: { const k = rng.int(4); inst = F.fcvtFromInt(fmt, k, 4, A0, instRm); want = M.cvtFromInt(x, fm, rm, k); break; }
        case 8: { const w = rng.int(3); inst = [F.feq, F.flt, F.fle][w](fmt, A1, 1, 2); want = M.compare(a, b, fm, w); toX = true; break; }
        case 9: { const mx = rng.chance(0.5); inst = (mx ? F.fmax : F.fmin)(fmt, 4, 1, 2); want = M.minmax(a, b, fm, mx); break; }
        case 10: inst = F.fclass(fmt, A1, 1); want = { bits: M.fclass(a, fm), flags: 0 }; toX = true; break;
        case 11: {
          // FCVT between the formats: the source register holds the other format's value
          const src = fmt === D ? vals(S) : vals(D);
          setF(1, fmt === D ? BOX | src : src);
          inst = fmt === D ? F.fcvt_d_s(4, 1, instRm) : F.fcvt_s_d(4, 1, instRm);
          want = M.cvtFF(src, fmt === D ? F32 : F64, fm, rm);
          break;
        }
        default: {
          // a reserved static rounding mode: illegal, nothing written
          inst = F.fadd(fmt, 4, 1, 2, rng.pick([5, 6]));
          setF(4, 0x4242n);
          expect(run([inst])).toBe(false);
          expectIllegal(inst);
          expect([f(4), fcsr()]).toEqual([0x4242n, BigInt(frm << 5)]);
          continue;
        }
      }
      expect(run([inst]), `case ${i}`).toBe(true);
      const got = toX ? cpu.x(A1) : f(4);
      const exp = toX ? want.bits : box(want.bits);
      if (got !== exp || fcsr() !== BigInt((frm << 5) | want.flags)) {
        expect({ i, inst: inst.toString(16), a, b, c, x, got, flags: fcsr() })
          .toEqual({ i, inst: inst.toString(16), a, b, c, x, got: exp, flags: BigInt((frm << 5) | want.flags) });
      }
      checked++;
    }
    expect(checked).toBeGreaterThan(2500);
  });
});
