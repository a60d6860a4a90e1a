// The C extension (assembly/cpu/rvc.ts): every compressed instruction group
// computes what its 32-bit expansion does, the next pc after one is pc + 2
// and C.JALR links pc + 2, 32-bit jumps and branches may land on any even pc
// (IALIGN 16), the decode cache keeps compressed and 32-bit records apart,
// reserved encodings (and F/D ones while sstatus.FS is Off: the CPU harness
// resets it to Off; fp.test.ts runs them with it on) are illegal with the halfword in stval, and
// HINTs execute as no-ops. Pages crossing is in sv39.test.ts.

import { describe, it, expect, beforeEach } from "vitest";
import { Cpu, RAM_BASE, CAUSE } from "./harness";
import * as A from "./asm";
import { CSR, w32, halves } from "./asm";

const RA = 1, SP = 2, T0 = 5, T1 = 6, S0 = 8, S1 = 9, A0 = 10, A1 = 11, A2 = 12, A3 = 13, A4 = 14, A5 = 15;
const M64 = (1n << 64n) - 1n;
const HANDLER = RAM_BASE + 0x8000n;
const DATA = RAM_BASE + 0x4000n;

let cpu: Cpu;
beforeEach(async () => {
  cpu = await Cpu.create(4 << 20);
  cpu.setCsr(CSR.stvec, HANDLER);
  cpu.load([A.ecall()], HANDLER);
});

/** Places halfwords at RAM_BASE and runs them from there for `budget` instructions. */
function runC(hs: number[], budget = hs.length): number {
  cpu.writeBytes(RAM_BASE, halves(...hs));
  cpu.pc = RAM_BASE;
  cpu.setCsr(CSR.scause, 0n);
  return cpu.run(budget);
}

function expectTrap(cause: bigint, sepc: bigint, tval: bigint): void {
  expect([cpu.csr(CSR.scause), cpu.csr(CSR.sepc), cpu.csr(CSR.stval)]).toEqual([cause, sepc, tval]);
  expect(cpu.pc).toBe(HANDLER);
}

describe("compressed instruction groups", () => {
  it("immediates: C.ADDI4SPN, C.ADDI16SP, C.ADDI, C.ADDIW, C.LI, C.LUI", () => {
    cpu.setX(SP, 0x10000n);
    cpu.setX(A3, 0x7fffffffn);
    runC([A.c_addi4spn(S0, 1020), A.c_addi16sp(-512), A.c_li(A0, -32), A.c_addi(A0, 31), A.c_lui(A1, -1),
      A.c_lui(A2, 31), A.c_addiw(A3, 1), A.c_addi4spn(S1, 4)]);
    expect(cpu.x(S0)).toBe(0x10000n + 1020n);
    expect(cpu.x(SP)).toBe(0x10000n - 512n);
    expect(cpu.xs(A0)).toBe(-1n);
    expect(cpu.x(A1)).toBe(M64 - 0xfffn); // 0xffff_ffff_ffff_f000
    expect(cpu.x(A2)).toBe(0x1f000n);
    expect(cpu.x(A3)).toBe(0xffff_ffff_8000_0000n); // addiw sign-extends the 32-bit sum
    expect(cpu.x(S1)).toBe(0x10000n - 512n + 4n);
    expect(cpu.pc).toBe(RAM_BASE + 16n);
    expect(cpu.instret).toBe(8n);
  });

  it("shifts and masks: C.SRLI, C.SRAI, C.ANDI, C.SLLI with 6-bit shift amounts", () => {
    cpu.setX(S0, 1n << 63n);
    cpu.setX(S1, 1n << 63n);
    cpu.setX(A0, 0xff5n);
    cpu.setX(A1, 1n);
    runC([A.c_srli(S0, 63), A.c_srai(S1, 60), A.c_andi(A0, -12), A.c_slli(A1, 40)]);
    expect(cpu.x(S0)).toBe(1n);
    expect(cpu.x(S1)).toBe(M64 - 7n); // 0xffff_ffff_ffff_fff8
    expect(cpu.x(A0)).toBe(0xff4n);
    expect(cpu.x(A1)).toBe(1n << 40n);
  });

  it("register-register: C.SUB, C.XOR, C.OR, C.AND, C.SUBW, C.ADDW, C.MV, C.ADD", () => {
    const set = () => { cpu.setX(S0, 0x1_0000_0005n); cpu.setX(S1, 0x0_8000_0003n); };
    const cases: [number, bigint][] = [
      [A.c_sub(S0, S1), 0x0_8000_0002n], [A.c_xor(S0, S1), 0x1_8000_0006n], [A.c_or(S0, S1), 0x1_8000_0007n],
      [A.c_and(S0, S1), 1n], [A.c_subw(S0, S1), 0xffff_ffff_8000_0002n], [A.c_addw(S0, S1), 0xffff_ffff_8000_0008n],
      [A.c_mv(S0, S1), 0x8000_0003n], [A.c_add(S0, S1), 0x1_8000_0008n],
    ];
    for (const [inst, want] of cases) {
      set();
      runC([inst], 1);
      expect([inst.toString(16), cpu.x(S0)]).toEqual([inst.toString(16), want]);
      expect(cpu.pc).toBe(RAM_BASE + 2n);
    }
  });

  it("loads and stores: C.LW, C.LD, C.SW, C.SD and the sp-relative C.LWSP, C.LDSP, C.SWSP, C.SDSP", () => {
    cpu.setU64(DATA + 0x48n, 0x8765_4321_fedc_ba98n);
    cpu.setU64(DATA + 0x1f8n, 0x1122_3344_5566_7788n);
    cpu.setX(S0, DATA);
    cpu.setX(SP, DATA);
    cpu.setX(A5, 0xaaaa_bbbb_cccc_ddddn);
    runC([A.c_lw(A0, S0, 0x48), A.c_ld(A1, S0, 0x48), A.c_sw(A5, S0, 0x7c), A.c_sd(A5, S0, 0xf8),
      A.c_lwsp(A2, 0x48), A.c_ldsp(A3, 0x1f8), A.c_swsp(A5, 0xf4), A.c_sdsp(A5, 0x1f0)]);
    expect(cpu.x(A0)).toBe(0xffff_ffff_fedc_ba98n); // lw sign-extends
    expect(cpu.x(A1)).toBe(0x8765_4321_fedc_ba98n);
    expect(cpu.u32(DATA + 0x7cn)).toBe(0xccccdddd);
    expect(cpu.u64(DATA + 0xf8n)).toBe(0xaaaa_bbbb_cccc_ddddn);
    expect(cpu.x(A2)).toBe(0xffff_ffff_fedc_ba98n);
    expect(cpu.x(A3)).toBe(0x1122_3344_5566_7788n);
    expect(cpu.u32(DATA + 0xf4n)).toBe(0xccccdddd);
    expect(cpu.u64(DATA + 0x1f0n)).toBe(0xaaaa_bbbb_cccc_ddddn);
  });

  it("a faulting compressed load traps at its own pc and leaves rd alone", () => {
    cpu.setX(S0, 0x1000n); // not RAM: the run exits without retiring it
    cpu.setX(A0, 7n);
    expect(runC([A.c_nop(), A.c_lw(A0, S0, 0)], 2)).toBe(cpu.EXIT_MEM);
    expect(cpu.pc).toBe(RAM_BASE + 2n);
    expect(cpu.x(A0)).toBe(7n);
    expect(cpu.instret).toBe(1n);
  });
});

describe("control transfer", () => {
  it("the next pc after a compressed instruction is pc + 2", () => {
    runC([A.c_nop(), A.c_li(A0, 1), ...w32(A.addi(A0, A0, 2)), A.c_addi(A0, 4)], 4);
    expect(cpu.x(A0)).toBe(7n);
    expect(cpu.pc).toBe(RAM_BASE + 10n);
  });

  it("C.J, C.BEQZ and C.BNEZ are relative to the compressed instruction", () => {
    cpu.setX(S0, 0n);
    cpu.setX(S1, 3n);
    // 0: c.j +6 | 2: c.li a0,1 | 4: c.li a0,2 | 6: c.beqz s0,+4 | 8: c.li a1,1 | 10: c.bnez s1,-6 (to 4)... once
    runC([A.c_j(6), A.c_li(A0, 1), A.c_li(A0, 2), A.c_beqz(S0, 4), A.c_li(A1, 1), A.c_bnez(S1, 4),
      A.c_li(A2, 9), A.c_li(A3, 5), A.c_beqz(S1, -2)], 5);
    // c.j, c.beqz (taken to 10), c.bnez (taken to 14), c.li a3, c.beqz s1 (not taken)
    expect([cpu.x(A0), cpu.x(A1), cpu.x(A2), cpu.x(A3)]).toEqual([0n, 0n, 0n, 5n]);
    expect(cpu.pc).toBe(RAM_BASE + 18n);
  });

  it("C.JR jumps without linking; C.JALR links pc + 2 and reads rs1 before writing ra", () => {
    cpu.setX(T0, RAM_BASE + 6n);
    cpu.setX(RA, RAM_BASE + 11n); // bit 0 is cleared from the target
    // 0: c.jr t0 | 2: c.li a0,1 | 4: c.li a0,2 | 6: c.jalr ra | 8: c.li a1,1 | 10: c.li a2,3
    runC([A.c_jr(T0), A.c_li(A0, 1), A.c_li(A0, 2), A.c_jalr(RA), A.c_li(A1, 1), A.c_li(A2, 3)], 3);
    expect([cpu.x(A0), cpu.x(A1), cpu.x(A2)]).toEqual([0n, 0n, 3n]);
    expect(cpu.x(RA)).toBe(RAM_BASE + 8n);
    expect(cpu.x(T0)).toBe(RAM_BASE + 6n);
  });

  it("32-bit jal and jalr from a 2-aligned pc link pc + 4", () => {
    cpu.setX(T0, RAM_BASE + 0x40n);
    runC([A.c_nop(), ...w32(A.jal(RA, 0x20)), A.c_nop()], 2);
    expect(cpu.x(RA)).toBe(RAM_BASE + 6n);
    expect(cpu.pc).toBe(RAM_BASE + 0x22n);
    runC([A.c_nop(), ...w32(A.jalr(RA, T0, 2))], 2);
    expect(cpu.x(RA)).toBe(RAM_BASE + 6n);
    expect(cpu.pc).toBe(RAM_BASE + 0x42n);
  });

  it("C.EBREAK raises a breakpoint at its pc", () => {
    expect(runC([A.c_nop(), A.c_ebreak()], 10)).toBe(cpu.EXIT_SBI);
    expect(cpu.csr(CSR.scause)).toBe(CAUSE.breakpoint);
    expect(cpu.csr(CSR.sepc)).toBe(RAM_BASE + 2n);
  });

  it("sret returns to a 2-aligned sepc", () => {
    cpu.setCsr(CSR.sepc, RAM_BASE + 0x102n);
    cpu.writeBytes(RAM_BASE + 0x100n, halves(A.c_nop(), A.c_li(A0, 3), A.c_nop()));
    cpu.load([A.sret()]);
    cpu.pc = RAM_BASE;
    cpu.run(2);
    expect(cpu.x(A0)).toBe(3n);
    expect(cpu.pc).toBe(RAM_BASE + 0x104n);
  });
});

describe("decode cache", () => {
  it("a compressed instruction followed by a zero halfword matches its own record, not a 32-bit one", () => {
    // The 32-bit fetch at pc reads c.li's halfword and 0x0000: the same bits as a
    // zero-extended compressed tag, so the record must say it is compressed.
    expect(runC([A.c_li(A0, 5), 0x0000], 10)).toBe(cpu.EXIT_SBI);
    expect(cpu.x(A0)).toBe(5n);
    expectTrap(CAUSE.illegal, RAM_BASE + 2n, 0n);
    // Again, now that both records are cached.
    cpu.setX(A0, 0n);
    expect(runC([A.c_li(A0, 5), 0x0000], 10)).toBe(cpu.EXIT_SBI);
    expect(cpu.x(A0)).toBe(5n);
    expectTrap(CAUSE.illegal, RAM_BASE + 2n, 0n);
  });

  it("a compressed instruction at pc and a 32-bit one at pc + 2 keep separate records in a loop", () => {
    cpu.setX(S0, 10n);
    // 0: c.addi a0,1 | 2: addi a1,a1,3 (32-bit) | 6: c.addi s0,-1 | 8: c.bnez s0,-8
    runC([A.c_addi(A0, 1), ...w32(A.addi(A1, A1, 3)), A.c_addi(S0, -1), A.c_bnez(S0, -8)], 40);
    expect([cpu.x(A0), cpu.x(A1), cpu.x(S0)]).toEqual([10n, 30n, 0n]);
    expect(cpu.pc).toBe(RAM_BASE + 10n);
  });

  it("the same pc holding a compressed, then a 32-bit, then a compressed instruction runs each", () => {
    runC([A.c_li(A0, 7), A.c_nop()], 1);
    expect(cpu.x(A0)).toBe(7n);
    runC([...w32(A.addi(A0, 0, 100))], 1);
    expect(cpu.x(A0)).toBe(100n);
    expect(cpu.pc).toBe(RAM_BASE + 4n);
    runC([A.c_li(A0, 9), A.c_nop()], 1);
    expect(cpu.x(A0)).toBe(9n);
    expect(cpu.pc).toBe(RAM_BASE + 2n);
  });
});

describe("illegal and HINT encodings", () => {
  it("reserved, F/D (sstatus.FS Off) and all-zero encodings are illegal with the 16-bit instruction in stval", () => {
    const bad: [string, number][] = [
      ["all zeros", 0x0000], ["c.addi4spn with imm 0", 0x0004], ["c.lui with imm 0", 0x6281],
      ["c.addi16sp with imm 0", 0x6101], ["c.addiw with rd 0", 0x2005], ["c.lwsp with rd 0", 0x4002],
      ["c.ldsp with rd 0", 0x6002], ["c.jr with rs1 0", 0x8002], ["c.fld", 0x2000], ["c.fsd", 0xa000],
      ["quadrant 0 funct3 4", 0x8000], ["c.fldsp", 0x2402], ["c.fsdsp", 0xa002], ["CA funct 10 with bit 12", 0x9c41],
      ["CA funct 11 with bit 12", 0x9c61],
    ];
    for (const [name, h] of bad) {
      cpu.setX(A0, 0n);
      expect(runC([A.c_li(A0, 1), h, 0xffff], 10)).toBe(cpu.EXIT_SBI);
      expect([name, cpu.x(A0), cpu.csr(CSR.scause), cpu.csr(CSR.sepc), cpu.csr(CSR.stval)])
        .toEqual([name, 1n, CAUSE.illegal, RAM_BASE + 2n, BigInt(h)]);
    }
  });

  it("HINTs execute as no-ops and retire", () => {
    const regs = [S0, S1, A0, T0];
    regs.forEach((r, i) => cpu.setX(r, 0x1234n + BigInt(i)));
    const hints = [A.c_addi(0, 5), A.c_addi(A0, 0), A.c_li(0, 3), A.c_lui(0, 1), A.c_mv(0, A0), A.c_add(0, A0),
      A.c_slli(0, 3), A.c_slli(T0, 0), A.c_srli(S0, 0), A.c_srai(S1, 0)];
    runC(hints, hints.length);
    regs.forEach((r, i) => expect(cpu.x(r)).toBe(0x1234n + BigInt(i)));
    expect(cpu.x(0)).toBe(0n);
    expect(cpu.pc).toBe(RAM_BASE + BigInt(2 * hints.length));
    expect(cpu.instret).toBe(BigInt(hints.length));
  });
});
