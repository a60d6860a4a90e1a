// The A extension: LR/SC and their reservation (set by LR, consumed by SC,
// dropped by traps and sret), every AMO in both widths with the 32-bit
// forms' sign extension and signed/unsigned min/max, alignment traps, AMO
// reads being checked as stores, and the illegal encodings.

import { describe, it, expect, beforeEach } from "vitest";
import { Cpu, RAM_BASE, CAUSE } from "./harness";
import * as A from "./asm";
import { AMO, CSR } from "./asm";

const T0 = 5, T1 = 6, T2 = 7, RA = 1;
const EXITK_FAIL = 5; // assembly/mmu/exit.ts
const HANDLER = RAM_BASE + 0x1000n;
const DATA = RAM_BASE + 0x8000n;
const u = (v: bigint) => BigInt.asUintN(64, v);
const s = (v: bigint) => BigInt.asIntN(64, v);

let cpu: Cpu;
beforeEach(async () => {
  cpu = await Cpu.create(1 << 20);
  cpu.setCsr(CSR.stvec, HANDLER);
  cpu.load([A.ecall()], HANDLER);
});

function exec(words: number[], budget = words.length): number {
  return cpu.exec(words, budget);
}

describe("LR/SC", () => {
  it("lr.d then sc.d to the same address succeeds once", () => {
    cpu.setU64(DATA, 10n);
    cpu.setX(T0, DATA);
    cpu.setX(T1, 77n);
    exec([A.lr_d(T2, T0), A.sc_d(RA, T0, T1), A.sc_d(8, T0, T1)]);
    expect(cpu.x(T2)).toBe(10n);
    expect(cpu.x(RA)).toBe(0n); // success
    expect(cpu.x(8)).toBe(1n); // the reservation was consumed
    expect(cpu.u64(DATA)).toBe(77n);
  });

  it("sc without a reservation fails and does not write", () => {
    cpu.setU64(DATA, 10n);
    cpu.setX(T0, DATA);
    cpu.setX(T1, 77n);
    cpu.ex.memLogReset();
    exec([A.sc_d(T2, T0, T1)]);
    expect(cpu.x(T2)).toBe(1n);
    expect(cpu.u64(DATA)).toBe(10n);
    expect(cpu.ex.memLogCount()).toBe(0); // no memory access at all
  });

  it("sc to another address or of another width fails", () => {
    cpu.setX(T0, DATA);
    cpu.setX(T1, DATA + 8n);
    cpu.setX(T2, 5n);
    exec([A.lr_d(8, T0), A.sc_d(9, T1, T2), A.lr_d(8, T0), A.sc_w(9, T0, T2)]);
    expect(cpu.x(9)).toBe(1n);
    expect(cpu.u64(DATA + 8n)).toBe(0n);
    expect(cpu.u64(DATA)).toBe(0n);
  });

  it("lr.w sign-extends; sc.w writes 32 bits", () => {
    cpu.setU64(DATA, 0x1111_1111_8000_0001n);
    cpu.setX(T0, DATA);
    cpu.setX(T1, 0xaaaa_aaaa_5555_5555n);
    exec([A.lr_w(T2, T0), A.sc_w(RA, T0, T1)]);
    expect(cpu.x(T2)).toBe(0xffff_ffff_8000_0001n);
    expect(cpu.x(RA)).toBe(0n);
    expect(cpu.u64(DATA)).toBe(0x1111_1111_5555_5555n);
  });

  it("a trap between lr and sc drops the reservation", () => {
    // lr; ecall from U-mode -> handler: sepc += 4; sret -> sc fails.
    cpu.load([A.csrrs(T1, CSR.sepc, 0), A.addi(T1, T1, 4), A.csrrw(0, CSR.sepc, T1), A.sret()], HANDLER);
    cpu.setX(T0, DATA);
    cpu.setX(T2, 9n);
    cpu.priv = 0;
    exec([A.lr_d(8, T0), A.ecall(), A.sc_d(9, T0, T2)], 7);
    expect(cpu.priv).toBe(0);
    expect(cpu.pc).toBe(RAM_BASE + 12n);
    expect(cpu.x(9)).toBe(1n);
    expect(cpu.u64(DATA)).toBe(0n);
  });

  it("an ordinary store by the same hart does not break the reservation", () => {
    cpu.setX(T0, DATA);
    cpu.setX(T2, 9n);
    exec([A.lr_d(8, T0), A.sd(T2, T0, 0), A.sc_d(9, T0, T2)]);
    expect(cpu.x(9)).toBe(0n);
  });

  it("aq/rl bits are accepted", () => {
    cpu.setX(T0, DATA);
    cpu.setX(T2, 3n);
    exec([A.amo(AMO.lr, 64, 8, T0, 0, 1, 1), A.amo(AMO.sc, 64, 9, T0, T2, 1, 0)]);
    expect(cpu.x(9)).toBe(0n);
    expect(cpu.u64(DATA)).toBe(3n);
  });
});

describe("AMOs", () => {
  const memOld = 0x8000_0000_0000_0005n; // negative as i64
  const src = 0x0000_0000_ffff_fff0n; // as i32: -16; as i64: positive
  const ops64: [keyof typeof AMO, (a: bigint, b: bigint) => bigint][] = [
    ["swap", (_a, b) => b],
    ["add", (a, b) => u(a + b)],
    ["xor", (a, b) => a ^ b],
    ["and", (a, b) => a & b],
    ["or", (a, b) => a | b],
    ["min", (a, b) => (s(a) < s(b) ? a : b)],
    ["max", (a, b) => (s(a) > s(b) ? a : b)],
    ["minu", (a, b) => (a < b ? a : b)],
    ["maxu", (a, b) => (a > b ? a : b)],
  ];

  it("64-bit: rd gets the old value, memory the result", () => {
    for (const [name, f] of ops64) {
      cpu.setU64(DATA, memOld);
      cpu.setX(T0, DATA);
      cpu.setX(T1, src);
      exec([A.amo(AMO[name], 64, T2, T0, T1)]);
      expect([name, cpu.x(T2)]).toEqual([name, memOld]);
      expect([name, cpu.u64(DATA)]).toEqual([name, f(memOld, src)]);
    }
  });

  it("32-bit: operate on the low word, sign-extend the old value, leave the high word", () => {
    const s32 = (v: bigint) => BigInt.asIntN(32, v), u32 = (v: bigint) => BigInt.asUintN(32, v);
    const ops32: [keyof typeof AMO, (a: bigint, b: bigint) => bigint][] = [
      ["swap", (_a, b) => b], ["add", (a, b) => a + b], ["xor", (a, b) => a ^ b], ["and", (a, b) => a & b],
      ["or", (a, b) => a | b],
      ["min", (a, b) => (s32(a) < s32(b) ? a : b)], ["max", (a, b) => (s32(a) > s32(b) ? a : b)],
      ["minu", (a, b) => (u32(a) < u32(b) ? a : b)], ["maxu", (a, b) => (u32(a) > u32(b) ? a : b)],
    ];
    const high = 0x1234_5678n << 32n;
    for (const [memLow, srcVal] of [[0x8000_0005n, 0xdead_beef_ffff_fff0n], [0x0000_0007n, 0x0000_0000_7fff_ffffn]]) {
      for (const [name, f] of ops32) {
        cpu.setU64(DATA, high | memLow);
        cpu.setX(T0, DATA);
        cpu.setX(T1, srcVal);
        exec([A.amo(AMO[name], 32, T2, T0, T1)]);
        expect([name, cpu.x(T2)]).toEqual([name, u(s32(memLow))]);
        expect([name, cpu.u64(DATA)]).toEqual([name, high | u32(f(memLow, srcVal))]);
      }
    }
  });

  it("the read half is checked as a store and the pair is two memory-layer calls", () => {
    cpu.setX(T0, DATA);
    cpu.setX(T1, 1n);
    cpu.ex.memLogReset();
    exec([A.amo(AMO.add, 64, T2, T0, T1)]);
    expect(cpu.ex.memLogCount()).toBe(2);
    expect([cpu.ex.memLogKind(0), cpu.ex.memLogKind(1)]).toEqual([1, 2]);
  });

  it("rd = x0 discards the old value", () => {
    cpu.setU64(DATA, 5n);
    cpu.setX(T0, DATA);
    cpu.setX(T1, 6n);
    exec([A.amo(AMO.add, 64, 0, T0, T1)]);
    expect(cpu.x(0)).toBe(0n);
    expect(cpu.u64(DATA)).toBe(11n);
  });

  it("an AMO or LR outside RAM ends the run with EOPNOTSUPP (kvm_riscv_vcpu_mmio_load/_store do not decode them); nothing retires", () => {
    for (const inst of [A.amo(AMO.or, 32, T2, T0, T0), A.amo(AMO.swap, 64, T2, T0, T1), A.lr_d(T2, T0), A.lr_w(T2, T0)]) {
      cpu.setX(T0, 0x3000n);
      cpu.setX(T2, 123n);
      const instret = cpu.instret, scause = cpu.csr(CSR.scause);
      expect(exec([inst], 2)).toBe(cpu.EXIT_MEM);
      expect([cpu.ex.memExitKind(), cpu.ex.memExitErrno(), BigInt(cpu.ex.memMmioVa())]).toEqual([EXITK_FAIL, 95, 0x3000n]);
      expect([cpu.x(T2), cpu.pc, cpu.instret, cpu.csr(CSR.scause)]).toEqual([123n, RAM_BASE, instret, scause]);
    }
  });
});

describe("alignment and encodings", () => {
  it("misaligned LR is a load-misaligned exception; SC and AMOs store-misaligned", () => {
    const cases: [number, bigint][] = [
      [A.lr_w(T2, T0), CAUSE.loadMisaligned],
      [A.lr_d(T2, T0), CAUSE.loadMisaligned],
      [A.sc_w(T2, T0, T1), CAUSE.storeMisaligned],
      [A.amo(AMO.swap, 64, T2, T0, T1), CAUSE.storeMisaligned],
      [A.amo(AMO.maxu, 32, T2, T0, T1), CAUSE.storeMisaligned],
    ];
    for (const [inst, cause] of cases) {
      cpu.setX(T0, DATA + 2n);
      exec([inst], 1);
      expect(cpu.csr(CSR.scause)).toBe(cause);
      expect(cpu.csr(CSR.stval)).toBe(DATA + 2n);
      expect(cpu.pc).toBe(HANDLER);
    }
    cpu.setX(T0, DATA + 4n); // 4-aligned is enough for .w, not for .d
    exec([A.amo(AMO.add, 32, T2, T0, T1), A.amo(AMO.add, 64, T2, T0, T1)], 2);
    expect(cpu.csr(CSR.sepc)).toBe(RAM_BASE + 4n);
  });

  it("illegal: lr with rs2 != 0, unknown funct5, widths other than w and d", () => {
    const bad = [
      A.amo(AMO.lr, 64, T2, T0, T1),
      A.amo(0x05, 64, T2, T0, T1),
      A.amo(0x1f, 32, T2, T0, T1),
      A.rType(0x2f, 0, AMO.add << 2, T2, T0, T1), // .b
      A.rType(0x2f, 4, AMO.add << 2, T2, T0, T1),
    ];
    for (const inst of bad) {
      cpu.setX(T0, DATA);
      exec([inst], 1);
      expect(cpu.csr(CSR.scause)).toBe(CAUSE.illegal);
      expect(cpu.csr(CSR.stval)).toBe(BigInt(inst));
    }
  });
});

