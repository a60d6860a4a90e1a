// Zicsr: the six CSR instructions, each supervisor CSR's WARL rules, the
// counters and their scounteren gating, and the accesses that must be
// illegal (unknown, M/H-level, too privileged, writes to read-only ones).

import { describe, it, expect, beforeEach } from "vitest";
import { Cpu, RAM_BASE, CAUSE } from "./harness";
import * as A from "./asm";
import { CSR } from "./asm";

const T0 = 5, T1 = 6, T2 = 7;
const M64 = (1n << 64n) - 1n;
const SSTATUS_SIE = 1n << 1n, SSTATUS_SPIE = 1n << 5n, SSTATUS_SPP = 1n << 8n;
const SSTATUS_SUM = 1n << 18n, SSTATUS_MXR = 1n << 19n, SSTATUS_UXL64 = 2n << 32n;
const HANDLER = RAM_BASE + 0x1000n;

let cpu: Cpu;
beforeEach(async () => {
  cpu = await Cpu.create(1 << 20);
  cpu.setCsr(CSR.stvec, HANDLER);
});

/** Runs the words from RAM_BASE for exactly words.length steps (retired or trapped). */
function run(words: number[]): number {
  return cpu.exec(words, words.length);
}

function expectIllegal(inst: number): void {
  const before = cpu.instret;
  cpu.exec([inst], 1);
  expect(cpu.csr(CSR.scause)).toBe(CAUSE.illegal);
  expect(cpu.csr(CSR.stval)).toBe(BigInt(inst >>> 0));
  expect(cpu.csr(CSR.sepc)).toBe(RAM_BASE);
  expect(cpu.pc).toBe(HANDLER);
  expect(cpu.instret).toBe(before);
}

describe("the CSR instructions", () => {
  it("csrrw swaps; rd = x0 only writes", () => {
    cpu.setCsr(CSR.sscratch, 0x1111n);
    cpu.setX(T0, 0x2222n);
    run([A.csrrw(T1, CSR.sscratch, T0), A.csrrw(0, CSR.sscratch, T1)]);
    expect(cpu.x(T1)).toBe(0x1111n);
    expect(cpu.csr(CSR.sscratch)).toBe(0x1111n);
    expect(cpu.pc).toBe(RAM_BASE + 8n);
  });

  it("csrrs / csrrc set and clear the bits of rs1 and return the old value", () => {
    cpu.setCsr(CSR.sscratch, 0xf0n);
    cpu.setX(T0, 0x0fn);
    cpu.setX(T1, 0x30n);
    run([A.csrrs(T2, CSR.sscratch, T0), A.csrrc(8, CSR.sscratch, T1), A.csrrs(9, CSR.sscratch, 0)]);
    expect(cpu.x(T2)).toBe(0xf0n);
    expect(cpu.x(8)).toBe(0xffn);
    expect(cpu.x(9)).toBe(0xcfn);
    expect(cpu.csr(CSR.sscratch)).toBe(0xcfn);
  });

  it("immediate forms take a zero-extended 5-bit value", () => {
    cpu.setCsr(CSR.sscratch, M64);
    run([A.csrrwi(T0, CSR.sscratch, 31), A.csrrsi(T1, CSR.sscratch, 0x40 >> 2), A.csrrci(T2, CSR.sscratch, 1)]);
    expect(cpu.x(T0)).toBe(M64);
    expect(cpu.x(T1)).toBe(31n);
    expect(cpu.x(T2)).toBe(31n);
    expect(cpu.csr(CSR.sscratch)).toBe(30n);
  });

  it("rd = rs1 reads the old value before the write", () => {
    cpu.setCsr(CSR.sscratch, 5n);
    cpu.setX(T0, 9n);
    run([A.csrrw(T0, CSR.sscratch, T0)]);
    expect(cpu.x(T0)).toBe(5n);
    expect(cpu.csr(CSR.sscratch)).toBe(9n);
  });
});

describe("supervisor CSR write rules", () => {
  it("sstatus keeps SIE, SPIE, SPP, FS, SUM, MXR; UXL reads 2; SD reads FS == Dirty; nothing else sticks", () => {
    cpu.setX(T0, M64);
    run([A.csrrw(0, CSR.sstatus, T0), A.csrrs(T1, CSR.sstatus, 0)]);
    expect(cpu.x(T1)).toBe(SSTATUS_SIE | SSTATUS_SPIE | SSTATUS_SPP | (3n << 13n) | SSTATUS_SUM | SSTATUS_MXR | SSTATUS_UXL64 |
      (1n << 63n));
    cpu.setX(T0, 0n);
    run([A.csrrw(0, CSR.sstatus, T0), A.csrrs(T1, CSR.sstatus, 0)]);
    expect(cpu.x(T1)).toBe(SSTATUS_UXL64);
  });

  it("sie holds SSIE, STIE, SEIE only", () => {
    cpu.setX(T0, M64);
    run([A.csrrw(0, CSR.sie, T0), A.csrrs(T1, CSR.sie, 0)]);
    expect(cpu.x(T1)).toBe((1n << 1n) | (1n << 5n) | (1n << 9n));
  });

  it("sip: only SSIP is writable; STIP follows the timer", () => {
    cpu.setX(T0, M64);
    cpu.setCsr(CSR.stimecmp, M64); // no timer
    run([A.csrrw(0, CSR.sip, T0), A.csrrs(T1, CSR.sip, 0)]);
    expect(cpu.x(T1)).toBe(1n << 1n);
    cpu.setCsr(CSR.stimecmp, 0n); // deadline already reached
    run([A.csrrc(0, CSR.sip, T0), A.csrrs(T1, CSR.sip, 0)]);
    expect(cpu.x(T1)).toBe(1n << 5n);
  });

  it("stvec keeps direct or vectored mode; sepc drops bit 0 (IALIGN 16)", () => {
    cpu.setX(T0, 0x8000_1003n); // mode 3 is reserved
    cpu.setX(T1, 0x8000_2007n);
    run([A.csrrw(0, CSR.stvec, T0), A.csrrw(0, CSR.sepc, T1), A.csrrs(T2, CSR.stvec, 0), A.csrrs(8, CSR.sepc, 0)]);
    expect(cpu.x(T2)).toBe(0x8000_1001n);
    expect(cpu.x(8)).toBe(0x8000_2006n);
  });

  it("scause, stval and sscratch hold any value; senvcfg only FIOM; scounteren 32 bits", () => {
    for (const [csr, want] of [[CSR.scause, M64], [CSR.stval, M64], [CSR.sscratch, M64], [CSR.senvcfg, 1n],
      [CSR.scounteren, 0xffff_ffffn]] as const) {
      cpu.setX(T0, M64);
      run([A.csrrw(0, csr, T0), A.csrrs(T1, csr, 0)]);
      expect(cpu.x(T1)).toBe(want);
    }
  });

  it("satp accepts Bare and Sv39, ignores other modes entirely, and flushes translations", () => {
    const sv39 = (8n << 60n) | (0x1234n << 44n) | 0x80100n;
    const flushes = cpu.ex.memFlushCount();
    cpu.setX(T0, (9n << 60n) | 0x5n); // Sv48: not implemented
    cpu.setX(T1, sv39);
    run([A.csrrw(T2, CSR.satp, T0), A.csrrw(8, CSR.satp, T1)]);
    expect(cpu.x(T2)).toBe(0n);
    expect(cpu.x(8)).toBe(0n); // the Sv48 write left satp as it was
    expect(cpu.csr(CSR.satp)).toBe(sv39);
    expect(cpu.ex.memFlushCount()).toBe(flushes + 1);
    cpu.setCsr(CSR.satp, (10n << 60n) | 5n);
    expect(cpu.csr(CSR.satp)).toBe(sv39);
    cpu.setCsr(CSR.satp, 0n);
    expect(cpu.csr(CSR.satp)).toBe(0n);
    expect(cpu.ex.memFlushCount()).toBe(flushes + 2);
  });

  it("stimecmp reads back what was written", () => {
    cpu.setX(T0, 0x1234_5678n);
    run([A.csrrw(0, CSR.stimecmp, T0), A.csrrs(T1, CSR.stimecmp, 0)]);
    expect(cpu.x(T1)).toBe(0x1234_5678n);
    expect(BigInt.asUintN(64, cpu.ex.cpuGetTimer())).toBe(0x1234_5678n);
  });
});

describe("counters", () => {
  it("instret and cycle count retired instructions exactly", () => {
    run([A.nop(), A.nop(), A.nop(), A.csrrs(T0, CSR.instret, 0), A.csrrs(T1, CSR.cycle, 0)]);
    expect(cpu.x(T0)).toBe(3n);
    expect(cpu.x(T1)).toBe(4n);
    expect(cpu.instret).toBe(5n);
  });

  it("time advances one tick per instrPerTick retired instructions", () => {
    cpu.ex.cpuSetInstrPerTick(4n);
    cpu.ex.cpuSetTime(1000n);
    const prog = Array(11).fill(A.nop()).concat([A.csrrs(T0, CSR.time, 0)]);
    run(prog);
    expect(cpu.x(T0)).toBe(1002n); // 11 retired: 2 whole ticks
    expect(cpu.time).toBe(1003n); // 12 retired
  });

  it("hpmcounters read zero in S-mode", () => {
    run([A.csrrs(T0, CSR.hpmcounter3, 0), A.csrrs(T1, 0xc1f, 0)]);
    expect(cpu.x(T0)).toBe(0n);
    expect(cpu.x(T1)).toBe(0n);
    expect(cpu.pc).toBe(RAM_BASE + 8n);
  });

  it("U-mode reads counters only where scounteren allows", () => {
    cpu.setCsr(CSR.scounteren, 0b101n); // CY and IR, not TM
    cpu.priv = 0;
    run([A.csrrs(T0, CSR.cycle, 0), A.csrrs(T1, CSR.instret, 0)]);
    expect(cpu.pc).toBe(RAM_BASE + 8n);
    expect(cpu.x(T1)).toBe(1n);
    cpu.priv = 0;
    expectIllegal(A.csrrs(T0, CSR.time, 0));
    cpu.priv = 0;
    expectIllegal(A.csrrs(T0, CSR.hpmcounter3, 0));
  });

  it("writing a read-only counter is illegal, even with rs1 = x0 for csrrw", () => {
    expectIllegal(A.csrrw(T0, CSR.cycle, 0));
    expectIllegal(A.csrrs(T0, CSR.instret, T1));
    expectIllegal(A.csrrci(T0, CSR.time, 1));
  });
});

describe("illegal CSR accesses", () => {
  it("unknown CSRs", () => {
    expectIllegal(A.csrrs(T0, 0x5c0, 0));
    expectIllegal(A.csrrw(0, 0x101, T0));
    expectIllegal(A.csrrs(T0, 0x14e, 0));
  });

  it("M- and H-level CSRs do not exist for a KVM guest", () => {
    expectIllegal(A.csrrs(T0, CSR.mstatus, 0));
    expectIllegal(A.csrrs(T0, CSR.mepc, 0));
    expectIllegal(A.csrrs(T0, CSR.hstatus, 0));
    expectIllegal(A.csrrs(T0, 0xf14, 0)); // mhartid
  });

  it("supervisor CSRs from U-mode", () => {
    for (const csr of [CSR.sstatus, CSR.sscratch, CSR.satp, CSR.stimecmp]) {
      cpu.priv = 0;
      expectIllegal(A.csrrs(T0, csr, 0));
      expect(cpu.priv).toBe(1);
    }
  });

  it("a trapped CSR write changes nothing", () => {
    cpu.setCsr(CSR.sscratch, 7n);
    cpu.priv = 0;
    cpu.setX(T0, 99n);
    expectIllegal(A.csrrw(T1, CSR.sscratch, T0));
    expect(cpu.csr(CSR.sscratch)).toBe(7n);
  });
});
