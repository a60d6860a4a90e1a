// Control transfer: the six conditional branches (signed and unsigned
// comparisons, taken and not taken, forward and backward), jal and jalr with
// their links, and targets that are only 2-aligned, which the C extension
// makes legal (IALIGN 16; compressed code itself is in rvc.test.ts).

import { describe, it, expect, beforeEach } from "vitest";
import { Cpu, RAM_BASE } from "./harness";
import * as A from "./asm";
import { CSR, Program } from "./asm";

const T0 = 5, T1 = 6, T2 = 7, RA = 1;
const M64 = (1n << 64n) - 1n;
const HANDLER = RAM_BASE + 0x1000n;

let cpu: Cpu;
beforeEach(async () => {
  cpu = await Cpu.create(4 << 20);
  cpu.setCsr(CSR.stvec, HANDLER);
  cpu.load([A.ecall()], HANDLER);
});

/** One branch at RAM_BASE with offset 12: returns the pc after it. */
function branch(enc: (a: number, b: number, off: number) => number, a: bigint, b: bigint): bigint {
  cpu.setX(T0, a);
  cpu.setX(T1, b);
  cpu.exec([enc(T0, T1, 12)], 1);
  return cpu.pc - RAM_BASE;
}

describe("conditional branches", () => {
  const TAKEN = 12n, NOT = 4n;
  it("beq / bne", () => {
    expect(branch(A.beq, 5n, 5n)).toBe(TAKEN);
    expect(branch(A.beq, 5n, 6n)).toBe(NOT);
    expect(branch(A.bne, 5n, 6n)).toBe(TAKEN);
    expect(branch(A.bne, M64, M64)).toBe(NOT);
  });

  it("blt / bge compare signed", () => {
    expect(branch(A.blt, M64, 0n)).toBe(TAKEN); // -1 < 0
    expect(branch(A.blt, 0n, M64)).toBe(NOT);
    expect(branch(A.blt, 3n, 3n)).toBe(NOT);
    expect(branch(A.bge, 3n, 3n)).toBe(TAKEN);
    expect(branch(A.bge, 1n << 63n, 0n)).toBe(NOT); // MIN >= 0 is false
    expect(branch(A.bge, 0n, 1n << 63n)).toBe(TAKEN);
  });

  it("bltu / bgeu compare unsigned", () => {
    expect(branch(A.bltu, 0n, M64)).toBe(TAKEN);
    expect(branch(A.bltu, M64, 0n)).toBe(NOT);
    expect(branch(A.bgeu, M64, 0n)).toBe(TAKEN);
    expect(branch(A.bgeu, 4n, 5n)).toBe(NOT);
    expect(branch(A.bgeu, 5n, 5n)).toBe(TAKEN);
  });

  it("backward branches make loops", () => {
    const p = new Program();
    p.emit(A.addi(T0, 0, 10), A.addi(T1, 0, 0))
      .label("loop").emit(A.addi(T1, T1, 3), A.addi(T0, T0, -1))
      .to("loop", (off) => A.bne(T0, 0, off))
      .emit(A.ecall());
    cpu.load(p);
    cpu.pc = RAM_BASE;
    expect(cpu.run(1000)).toBe(cpu.EXIT_SBI);
    expect(cpu.x(T1)).toBe(30n);
    expect(cpu.instret).toBe(2n + 30n);
  });

  it("the largest offsets reach +-4 KiB", () => {
    cpu.setX(T0, 0n);
    cpu.load([A.beq(T0, 0, 4094 - 2)], RAM_BASE + 0x2000n);
    cpu.pc = RAM_BASE + 0x2000n;
    cpu.run(1);
    expect(cpu.pc).toBe(RAM_BASE + 0x2000n + 4092n);
    cpu.load([A.beq(T0, 0, -4096)], RAM_BASE + 0x2000n);
    cpu.pc = RAM_BASE + 0x2000n;
    cpu.run(1);
    expect(cpu.pc).toBe(RAM_BASE + 0x1000n);
  });
});

describe("jal and jalr", () => {
  it("jal links pc + 4 and jumps relative", () => {
    cpu.load([A.nop(), A.jal(RA, 0x100)]);
    cpu.pc = RAM_BASE;
    cpu.run(2);
    expect(cpu.x(RA)).toBe(RAM_BASE + 8n);
    expect(cpu.pc).toBe(RAM_BASE + 4n + 0x100n);
  });

  it("jal backwards and with the largest offset", () => {
    cpu.load([A.jal(0, -0x100000)], RAM_BASE + 0x100000n);
    cpu.pc = RAM_BASE + 0x100000n;
    cpu.run(1);
    expect(cpu.pc).toBe(RAM_BASE);
    expect(cpu.x(0)).toBe(0n);
  });

  it("jalr clears bit 0 of the target and links pc + 4", () => {
    cpu.setX(T0, RAM_BASE + 0x201n);
    cpu.load([A.jalr(RA, T0, -1 + 0x10)]);
    cpu.pc = RAM_BASE;
    cpu.run(1);
    expect(cpu.pc).toBe(RAM_BASE + 0x210n);
    expect(cpu.x(RA)).toBe(RAM_BASE + 4n);
  });

  it("jalr with rd = rs1 uses the old value for the target", () => {
    cpu.setX(T0, RAM_BASE + 0x300n);
    cpu.load([A.jalr(T0, T0, 8)]);
    cpu.pc = RAM_BASE;
    cpu.run(1);
    expect(cpu.pc).toBe(RAM_BASE + 0x308n);
    expect(cpu.x(T0)).toBe(RAM_BASE + 4n);
  });

  it("a call and return", () => {
    const p = new Program();
    p.to("f", (off) => A.jal(RA, off)).emit(A.addi(T2, T2, 100), A.ecall())
      .label("f").emit(A.addi(T2, 0, 1), A.jalr(0, RA, 0));
    cpu.load(p);
    cpu.pc = RAM_BASE;
    expect(cpu.run(100)).toBe(cpu.EXIT_SBI);
    expect(cpu.x(T2)).toBe(101n);
    expect(cpu.pc).toBe(RAM_BASE + 8n);
  });
});

describe("2-aligned targets (IALIGN 16: the C extension)", () => {
  it("jal to a 2-aligned target jumps there and links pc + 4", () => {
    cpu.setX(RA, 77n);
    cpu.load([A.nop(), A.jal(RA, 6), A.c_li(T2, 5) << 16]);
    cpu.pc = RAM_BASE;
    cpu.run(3);
    expect(cpu.x(RA)).toBe(RAM_BASE + 8n);
    expect(cpu.x(T2)).toBe(5n);
    expect(cpu.pc).toBe(RAM_BASE + 12n);
  });

  it("every branch kind decides taken-ness, then a taken one lands on the 2-aligned target", () => {
    const cases: [(a: number, b: number, o: number) => number, bigint, bigint, boolean][] = [
      [A.beq, 1n, 1n, true], [A.bne, 1n, 1n, false], [A.blt, M64, 0n, true], [A.bge, M64, 0n, false],
      [A.bltu, M64, 0n, false], [A.bgeu, M64, 0n, true],
    ];
    for (const [enc, a, b, taken] of cases) {
      cpu.setX(T0, a);
      cpu.setX(T1, b);
      cpu.exec([enc(T0, T1, 6)], 1);
      expect(cpu.pc).toBe(RAM_BASE + (taken ? 6n : 4n));
    }
  });

  it("jalr clears only bit 0 of the target: bit 1 set is fine", () => {
    cpu.setX(T0, RAM_BASE + 0x103n);
    cpu.setX(RA, 5n);
    cpu.load([A.jalr(RA, T0, 0)]);
    cpu.pc = RAM_BASE;
    cpu.run(1);
    expect(cpu.pc).toBe(RAM_BASE + 0x102n);
    expect(cpu.x(RA)).toBe(RAM_BASE + 4n);
  });
});
