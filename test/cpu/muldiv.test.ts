// The M extension: multiplication (low and all three high forms), division
// and remainder including the defined results for a zero divisor and for
// signed overflow, and the 32-bit W forms with their sign extension.

import { describe, it, expect, beforeAll } from "vitest";
import { Cpu, RAM_BASE } from "./harness";
import * as A from "./asm";

const T0 = 5, T1 = 6, T2 = 7;
const M64 = (1n << 64n) - 1n;
const MIN64 = 1n << 63n;
const u = (v: bigint) => BigInt.asUintN(64, v);
const s = (v: bigint) => BigInt.asIntN(64, v);
const w = (v: bigint) => BigInt.asUintN(64, BigInt.asIntN(32, v));
const s32 = (v: bigint) => BigInt.asIntN(32, v);
const u32 = (v: bigint) => BigInt.asUintN(32, v);

let cpu: Cpu;
beforeAll(async () => { cpu = await Cpu.create(1 << 16); });

function run1(inst: number, a: bigint, b: bigint): bigint {
  cpu.setX(T0, a);
  cpu.setX(T1, b);
  expect(cpu.exec([inst])).toBe(cpu.EXIT_BUDGET);
  expect(cpu.pc).toBe(RAM_BASE + 4n); // retired, no trap
  return cpu.x(T2);
}

// Reference semantics in BigInt (truncating division, as RISC-V specifies).
const tdiv = (a: bigint, b: bigint) => a / b; // BigInt division truncates toward zero
const ref = {
  mul: (a: bigint, b: bigint) => u(a * b),
  mulh: (a: bigint, b: bigint) => u((s(a) * s(b)) >> 64n),
  mulhsu: (a: bigint, b: bigint) => u((s(a) * b) >> 64n),
  mulhu: (a: bigint, b: bigint) => u((a * b) >> 64n),
  div: (a: bigint, b: bigint) => (b === 0n ? M64 : s(a) === -MIN64 && s(b) === -1n ? MIN64 : u(tdiv(s(a), s(b)))),
  divu: (a: bigint, b: bigint) => (b === 0n ? M64 : a / b),
  rem: (a: bigint, b: bigint) => (b === 0n ? a : s(b) === -1n ? 0n : u(s(a) - tdiv(s(a), s(b)) * s(b))),
  remu: (a: bigint, b: bigint) => (b === 0n ? a : a % b),
  mulw: (a: bigint, b: bigint) => w(a * b),
  divw: (a: bigint, b: bigint) => (u32(b) === 0n ? M64 : s32(a) === -(1n << 31n) && s32(b) === -1n ? w(1n << 31n) : w(tdiv(s32(a), s32(b)))),
  divuw: (a: bigint, b: bigint) => (u32(b) === 0n ? M64 : w(u32(a) / u32(b))),
  remw: (a: bigint, b: bigint) => (u32(b) === 0n ? w(a) : s32(b) === -1n ? 0n : w(s32(a) - tdiv(s32(a), s32(b)) * s32(b))),
  remuw: (a: bigint, b: bigint) => (u32(b) === 0n ? w(a) : w(u32(a) % u32(b))),
};

describe("multiplication", () => {
  it("mul keeps the low 64 bits", () => {
    expect(run1(A.mul(T2, T0, T1), 6n, 7n)).toBe(42n);
    expect(run1(A.mul(T2, T0, T1), u(-3n), 5n)).toBe(u(-15n));
    expect(run1(A.mul(T2, T0, T1), 0x1_0000_0001n, 0x1_0000_0001n)).toBe(0x2_0000_0001n);
    expect(run1(A.mul(T2, T0, T1), 6364136223846793005n, 0xc0ffeen)).toBe(u(6364136223846793005n * 0xc0ffeen));
  });

  it("mulh / mulhsu / mulhu give the high 64 bits for each signedness", () => {
    expect(run1(A.mulhu(T2, T0, T1), M64, M64)).toBe(M64 - 1n);
    expect(run1(A.mulh(T2, T0, T1), M64, M64)).toBe(0n); // -1 * -1 = 1
    expect(run1(A.mulhsu(T2, T0, T1), M64, M64)).toBe(M64); // -1 * (2^64-1) = -(2^64-1)
    expect(run1(A.mulh(T2, T0, T1), MIN64, MIN64)).toBe(1n << 62n);
    expect(run1(A.mulh(T2, T0, T1), MIN64, 1n)).toBe(M64);
    expect(run1(A.mulhu(T2, T0, T1), 1n << 32n, 1n << 32n)).toBe(1n);
    expect(run1(A.mulhsu(T2, T0, T1), u(-2n), 3n)).toBe(M64); // -6 sign-extends
  });

  it("mulw sign-extends the low 32 bits of the product", () => {
    expect(run1(A.mulw(T2, T0, T1), 0x10000n, 0x8000n)).toBe(0xffff_ffff_8000_0000n);
    expect(run1(A.mulw(T2, T0, T1), 0xffff_ffff_0000_0003n, 5n)).toBe(15n);
  });
});

describe("division", () => {
  it("div / rem truncate toward zero", () => {
    expect(run1(A.div(T2, T0, T1), u(-7n), 2n)).toBe(u(-3n));
    expect(run1(A.rem(T2, T0, T1), u(-7n), 2n)).toBe(u(-1n));
    expect(run1(A.div(T2, T0, T1), 7n, u(-2n))).toBe(u(-3n));
    expect(run1(A.rem(T2, T0, T1), 7n, u(-2n))).toBe(1n);
    expect(run1(A.divu(T2, T0, T1), u(-7n), 2n)).toBe((M64 - 6n) / 2n);
    expect(run1(A.remu(T2, T0, T1), u(-7n), 2n)).toBe(1n);
  });

  it("division by zero: quotient all ones, remainder the dividend", () => {
    expect(run1(A.div(T2, T0, T1), 1234n, 0n)).toBe(M64);
    expect(run1(A.divu(T2, T0, T1), 1234n, 0n)).toBe(M64);
    expect(run1(A.rem(T2, T0, T1), u(-1234n), 0n)).toBe(u(-1234n));
    expect(run1(A.remu(T2, T0, T1), 1234n, 0n)).toBe(1234n);
    expect(run1(A.divw(T2, T0, T1), 1234n, 0x1_0000_0000n)).toBe(M64); // low word of divisor is 0
    expect(run1(A.divuw(T2, T0, T1), 1234n, 0n)).toBe(M64);
    expect(run1(A.remw(T2, T0, T1), 0x5_8000_0000n, 0n)).toBe(0xffff_ffff_8000_0000n);
    expect(run1(A.remuw(T2, T0, T1), 0x5_8000_0001n, 0n)).toBe(0xffff_ffff_8000_0001n);
  });

  it("signed overflow: MIN / -1 = MIN, MIN % -1 = 0", () => {
    expect(run1(A.div(T2, T0, T1), MIN64, M64)).toBe(MIN64);
    expect(run1(A.rem(T2, T0, T1), MIN64, M64)).toBe(0n);
    expect(run1(A.divw(T2, T0, T1), 0x8000_0000n, 0xffff_ffffn)).toBe(0xffff_ffff_8000_0000n);
    expect(run1(A.remw(T2, T0, T1), 0x8000_0000n, 0xffff_ffffn)).toBe(0n);
  });

  it("W forms use only the low words and sign-extend", () => {
    expect(run1(A.divw(T2, T0, T1), 0xabcd_0000_0000_0064n, 0x1234_0000_ffff_fff6n)).toBe(u(-10n));
    expect(run1(A.divuw(T2, T0, T1), 0xffff_fffen, 1n)).toBe(0xffff_ffff_ffff_fffen);
    expect(run1(A.remw(T2, T0, T1), u(-7n), 2n)).toBe(M64);
    expect(run1(A.remuw(T2, T0, T1), 0x8000_0007n, 0x10n)).toBe(7n);
  });
});

describe("reference model", () => {
  it("agrees on random and edge operands", () => {
    let seed = 0x2545_f491_4f6c_dd1dn;
    const next = () => (seed = u(seed * 6364136223846793005n + 1442695040888963407n));
    const edges = [0n, 1n, 2n, M64, M64 - 1n, MIN64, MIN64 - 1n, 0x8000_0000n, 0xffff_ffffn, 0x7fff_ffffn, 0xffff_ffff_8000_0000n];
    const ops: [keyof typeof ref, (rd: number, a: number, b: number) => number][] = [
      ["mul", A.mul], ["mulh", A.mulh], ["mulhsu", A.mulhsu], ["mulhu", A.mulhu],
      ["div", A.div], ["divu", A.divu], ["rem", A.rem], ["remu", A.remu],
      ["mulw", A.mulw], ["divw", A.divw], ["divuw", A.divuw], ["remw", A.remw], ["remuw", A.remuw],
    ];
    const pairs: [bigint, bigint][] = [];
    for (const a of edges) for (const b of edges) pairs.push([a, b]);
    for (let i = 0; i < 60; i++) pairs.push([next(), next() >> BigInt(i % 64)]);
    for (const [name, enc] of ops) {
      for (const [a, b] of pairs) {
        const got = run1(enc(T2, T0, T1), a, b);
        if (got !== ref[name](a, b)) throw new Error(`${name}(0x${a.toString(16)}, 0x${b.toString(16)}) = 0x${got.toString(16)}, want 0x${ref[name](a, b).toString(16)}`);
      }
    }
  });
});
