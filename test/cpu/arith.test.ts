// RV64I computational instructions: register and immediate forms, the
// 32-bit W forms with their sign extension, shifts, comparisons, LUI/AUIPC,
// and x0 staying zero.

import { describe, it, expect, beforeEach } from "vitest";
import { Cpu, RAM_BASE } from "./harness";
import * as A from "./asm";

const T0 = 5, T1 = 6, T2 = 7;
const M64 = (1n << 64n) - 1n;
const u = (v: bigint) => BigInt.asUintN(64, v);
const s = (v: bigint) => BigInt.asIntN(64, v);
const w = (v: bigint) => BigInt.asUintN(64, BigInt.asIntN(32, v)); // sign-extend a 32-bit result

let cpu: Cpu;
beforeEach(async () => { cpu = await Cpu.create(); });

/** Runs one instruction with t0 = a, t1 = b and returns t2 (unsigned). */
function run1(inst: number, a: bigint, b = 0n): bigint {
  cpu.setX(T0, a);
  cpu.setX(T1, b);
  cpu.setX(T2, 0xdeadn);
  expect(cpu.exec([inst])).toBe(cpu.EXIT_BUDGET);
  expect(cpu.pc).toBe(RAM_BASE + 4n);
  return cpu.x(T2);
}

describe("register-register", () => {
  it("add and sub wrap at 64 bits", () => {
    expect(run1(A.add(T2, T0, T1), 5n, 7n)).toBe(12n);
    expect(run1(A.add(T2, T0, T1), M64, 2n)).toBe(1n);
    expect(run1(A.sub(T2, T0, T1), 5n, 7n)).toBe(u(-2n));
    expect(run1(A.sub(T2, T0, T1), 1n << 63n, 1n)).toBe((1n << 63n) - 1n);
  });

  it("logic ops", () => {
    const a = 0xf0f0_1234_5678_9abcn, b = 0x0ff0_ffff_0000_1111n;
    expect(run1(A.and(T2, T0, T1), a, b)).toBe(a & b);
    expect(run1(A.or(T2, T0, T1), a, b)).toBe(a | b);
    expect(run1(A.xor(T2, T0, T1), a, b)).toBe(a ^ b);
  });

  it("shifts use only the low 6 bits of rs2", () => {
    expect(run1(A.sll(T2, T0, T1), 1n, 63n)).toBe(1n << 63n);
    expect(run1(A.sll(T2, T0, T1), 3n, 64n + 4n)).toBe(48n);
    expect(run1(A.srl(T2, T0, T1), 1n << 63n, 63n)).toBe(1n);
    expect(run1(A.sra(T2, T0, T1), 1n << 63n, 63n)).toBe(M64);
    expect(run1(A.sra(T2, T0, T1), 0x4000n, 0xffff_ff04n)).toBe(0x400n);
  });

  it("slt is signed, sltu unsigned", () => {
    expect(run1(A.slt(T2, T0, T1), u(-1n), 0n)).toBe(1n);
    expect(run1(A.sltu(T2, T0, T1), u(-1n), 0n)).toBe(0n);
    expect(run1(A.slt(T2, T0, T1), 3n, 3n)).toBe(0n);
    expect(run1(A.sltu(T2, T0, T1), 0n, 1n)).toBe(1n);
    // sltu rd, x0, rs: "rs != 0"
    expect(run1(A.sltu(T2, 0, T1), 0n, 9n)).toBe(1n);
  });
});

describe("register-immediate", () => {
  it("addi sign-extends its immediate", () => {
    expect(run1(A.addi(T2, T0, -1), 0n)).toBe(M64);
    expect(run1(A.addi(T2, T0, 2047), 1n)).toBe(2048n);
    expect(run1(A.addi(T2, T0, -2048), 0n)).toBe(u(-2048n));
  });

  it("logic immediates are sign-extended too", () => {
    expect(run1(A.andi(T2, T0, -16), 0x1234_5678_9abc_def7n)).toBe(0x1234_5678_9abc_def0n);
    expect(run1(A.ori(T2, T0, -2048), 1n)).toBe(u(-2047n));
    expect(run1(A.xori(T2, T0, -1), 0n)).toBe(M64); // not
  });

  it("slti / sltiu compare with the sign-extended immediate", () => {
    expect(run1(A.slti(T2, T0, -1), u(-2n))).toBe(1n);
    expect(run1(A.slti(T2, T0, 0), 0n)).toBe(0n);
    // sltiu with -1 compares against 2^64-1: true for everything but all ones
    expect(run1(A.sltiu(T2, T0, -1), u(-2n))).toBe(1n);
    expect(run1(A.sltiu(T2, T0, -1), M64)).toBe(0n);
    expect(run1(A.sltiu(T2, T0, 1), 0n)).toBe(1n); // seqz
  });

  it("shift immediates take 6-bit amounts", () => {
    expect(run1(A.slli(T2, T0, 63), 1n)).toBe(1n << 63n);
    expect(run1(A.srli(T2, T0, 32), 0xffff_ffff_0000_0000n)).toBe(0xffff_ffffn);
    expect(run1(A.srai(T2, T0, 32), 0x8000_0000_0000_0000n)).toBe(0xffff_ffff_8000_0000n);
    expect(run1(A.srai(T2, T0, 0), 5n)).toBe(5n);
  });
});

describe("32-bit W forms", () => {
  it("addw / subw / addiw truncate and sign-extend", () => {
    expect(run1(A.addw(T2, T0, T1), 0x7fff_ffffn, 1n)).toBe(0xffff_ffff_8000_0000n);
    expect(run1(A.addw(T2, T0, T1), 0x1_0000_0005n, 0x2_0000_0003n)).toBe(8n);
    expect(run1(A.subw(T2, T0, T1), 0n, 1n)).toBe(M64);
    expect(run1(A.addiw(T2, T0, 0), 0x1234_5678_8000_0000n)).toBe(0xffff_ffff_8000_0000n); // sext.w
    expect(run1(A.addiw(T2, T0, -1), 0x1_0000_0000n)).toBe(M64);
  });

  it("sllw / srlw / sraw use 5-bit amounts on the low word", () => {
    expect(run1(A.sllw(T2, T0, T1), 1n, 31n)).toBe(0xffff_ffff_8000_0000n);
    expect(run1(A.sllw(T2, T0, T1), 1n, 32n)).toBe(1n);
    expect(run1(A.srlw(T2, T0, T1), 0xffff_ffff_8000_0000n, 31n)).toBe(1n);
    expect(run1(A.srlw(T2, T0, T1), 0xffff_ffff_8000_0000n, 0n)).toBe(0xffff_ffff_8000_0000n);
    expect(run1(A.sraw(T2, T0, T1), 0x0000_0000_8000_0000n, 4n)).toBe(0xffff_ffff_f800_0000n);
    expect(run1(A.sraw(T2, T0, T1), 0xffff_0000_7fff_ffffn, 4n)).toBe(0x07ff_ffffn);
  });

  it("slliw / srliw / sraiw", () => {
    expect(run1(A.slliw(T2, T0, 4), 0x0fff_ffffn)).toBe(0xffff_ffff_ffff_fff0n);
    expect(run1(A.srliw(T2, T0, 4), 0xffff_ffff_ffff_fff0n)).toBe(0x0fff_ffffn);
    expect(run1(A.sraiw(T2, T0, 4), 0x0000_0000_8000_0000n)).toBe(0xffff_ffff_f800_0000n);
  });

  it("matches a reference model on random operands", () => {
    let seed = 0x1234_5678_9abc_def1n;
    const next = () => (seed = u(seed * 6364136223846793005n + 1442695040888963407n));
    const cases: [number, (a: bigint, b: bigint) => bigint][] = [
      [A.add(T2, T0, T1), (a, b) => u(a + b)],
      [A.sub(T2, T0, T1), (a, b) => u(a - b)],
      [A.sll(T2, T0, T1), (a, b) => u(a << (b & 63n))],
      [A.srl(T2, T0, T1), (a, b) => a >> (b & 63n)],
      [A.sra(T2, T0, T1), (a, b) => u(s(a) >> (b & 63n))],
      [A.slt(T2, T0, T1), (a, b) => (s(a) < s(b) ? 1n : 0n)],
      [A.sltu(T2, T0, T1), (a, b) => (a < b ? 1n : 0n)],
      [A.addw(T2, T0, T1), (a, b) => w(a + b)],
      [A.subw(T2, T0, T1), (a, b) => w(a - b)],
      [A.sllw(T2, T0, T1), (a, b) => w(a << (b & 31n))],
      [A.srlw(T2, T0, T1), (a, b) => w((a & 0xffff_ffffn) >> (b & 31n))],
      [A.sraw(T2, T0, T1), (a, b) => w(BigInt.asIntN(32, a) >> (b & 31n))],
    ];
    for (let i = 0; i < 40; i++) {
      const a = next(), b = next();
      for (const [inst, f] of cases) expect(run1(inst, a, b)).toBe(f(a, b));
    }
  });
});

describe("upper immediates", () => {
  it("lui sign-extends bit 31", () => {
    expect(run1(A.lui(T2, 0x12345), 0n)).toBe(0x1234_5000n);
    expect(run1(A.lui(T2, 0x80000), 0n)).toBe(0xffff_ffff_8000_0000n);
  });

  it("auipc adds to the instruction's own pc", () => {
    cpu.load([A.nop(), A.auipc(T2, 1), A.auipc(T1, 0xfffff)]);
    cpu.pc = RAM_BASE;
    cpu.run(3);
    expect(cpu.x(T2)).toBe(RAM_BASE + 4n + 0x1000n);
    expect(cpu.x(T1)).toBe(RAM_BASE + 8n - 0x1000n);
  });
});

describe("x0", () => {
  it("writes to x0 are discarded and it reads as zero", () => {
    cpu.load([A.addi(0, 0, 5), A.lui(0, 1), A.add(T2, 0, 0), A.addi(T1, 0, 1)]);
    cpu.pc = RAM_BASE;
    cpu.run(4);
    expect(cpu.x(0)).toBe(0n);
    expect(cpu.x(T2)).toBe(0n);
    expect(cpu.x(T1)).toBe(1n);
  });
});

describe("li (the test assembler's own pseudo-instruction)", () => {
  it("materialises arbitrary 64-bit constants", async () => {
    const values = [0n, 1n, -1n, 2047n, -2048n, 2048n, 0x7fff_ffffn, -0x8000_0000n, 0x8000_0000n,
      0xdead_beef_cafe_f00dn, 0x8000_0000_0000_0000n, 0x0000_0001_0000_0001n, 0x9e37_79b9_7f4a_7c15n];
    for (const v of values) {
      cpu = await Cpu.create(1 << 16);
      const { Program } = await import("./asm");
      const p = new Program().li(T2, v);
      const n = p.words.length;
      cpu.load(p);
      cpu.pc = RAM_BASE;
      cpu.run(n);
      expect(cpu.x(T2)).toBe(u(v));
    }
  });
});
