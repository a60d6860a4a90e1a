// Traps: synchronous exceptions (ecall, ebreak, illegal instructions), trap
// entry and sret state changes, the S-mode ecall that exits to the host as
// an SBI call, interrupts (timer, software, external) with their enables,
// priorities and vectoring, wfi, the host signal and the run budget.

import { describe, it, expect, beforeEach } from "vitest";
import { Cpu, RAM_BASE, CAUSE, INTERRUPT } from "./harness";
import * as A from "./asm";
import { CSR, Program } from "./asm";

const EXITK_FAIL = 5; // assembly/mmu/exit.ts

const T0 = 5, T1 = 6, A0 = 10, A1 = 11;
const SIE = 1n << 1n, SPIE = 1n << 5n, SPP = 1n << 8n;
const SSIP = 1n << 1n, STIP = 1n << 5n, SEIP = 1n << 9n;
const HANDLER = RAM_BASE + 0x1000n;
const M64 = (1n << 64n) - 1n;

let cpu: Cpu;
beforeEach(async () => {
  cpu = await Cpu.create(1 << 20);
  cpu.setCsr(CSR.stvec, HANDLER);
  // The handler stops the run: an S-mode ecall exits to the host.
  cpu.load([A.ecall()], HANDLER);
});

const sstatus = () => cpu.csr(CSR.sstatus);
const nops = (n: number) => Array<number>(n).fill(A.nop());

describe("exceptions", () => {
  it("ecall from U-mode enters the S-mode handler with cause 8", () => {
    cpu.setCsr(CSR.sstatus, SIE);
    cpu.priv = 0;
    cpu.load([A.nop(), A.ecall()]);
    cpu.pc = RAM_BASE;
    expect(cpu.run(100)).toBe(cpu.EXIT_SBI); // stopped at the handler's ecall
    expect(cpu.pc).toBe(HANDLER);
    expect(cpu.priv).toBe(1);
    expect(cpu.csr(CSR.scause)).toBe(CAUSE.ecallU);
    expect(cpu.csr(CSR.sepc)).toBe(RAM_BASE + 4n);
    expect(cpu.csr(CSR.stval)).toBe(0n);
    expect(sstatus() & (SIE | SPIE | SPP)).toBe(SPIE); // SPIE = old SIE, SIE off, SPP = U
    expect(cpu.instret).toBe(1n); // the ecall did not retire
  });

  it("ebreak: cause 3 with the pc in stval; SPP records S-mode", () => {
    cpu.load([A.nop(), A.ebreak()]);
    cpu.pc = RAM_BASE;
    expect(cpu.run(100)).toBe(cpu.EXIT_SBI);
    expect(cpu.csr(CSR.scause)).toBe(CAUSE.breakpoint);
    expect(cpu.csr(CSR.stval)).toBe(RAM_BASE + 4n);
    expect(cpu.csr(CSR.sepc)).toBe(RAM_BASE + 4n);
    expect(sstatus() & (SIE | SPIE | SPP)).toBe(SPP);
  });

  it("illegal instructions: cause 2 with the instruction bits in stval", () => {
    const bad = [
      0x00000000, // all zeros
      0xffffffff, // all ones
      A.mret(), // no M-mode
      A.rType(0x33, 0, 0x02, 5, 6, 7), // OP with funct7 = 2
      A.rType(0x3b, 1, 0x01, 5, 6, 7), // OP-32 with M funct3 1 (mulhw does not exist)
      A.iType(0x13, 1, 5, 6, 0x400 | 3), // slli with funct6 = 0x10
      A.iType(0x1b, 1, 5, 6, 32), // slliw with shamt[5] set
      A.iType(0x03, 7, 5, 6, 0), // load funct3 7
      A.sType(0x23, 4, 5, 6, 0), // store funct3 4
      A.bType(0x63, 2, 5, 6, 8), // branch funct3 2
      A.iType(0x67, 1, 5, 6, 0), // jalr funct3 1
      A.iType(0x0f, 2, 0, 0, 0), // misc-mem funct3 2
      A.iType(0x73, 4, 5, 0, 0), // system funct3 4
      0x10200073 | (1 << 7), // sret with rd != 0
      0x0000007b, // custom-3 opcode
    ];
    for (const inst of bad) {
      cpu.load([inst >>> 0]);
      cpu.pc = RAM_BASE;
      cpu.setCsr(CSR.scause, 0n);
      expect(cpu.run(100)).toBe(cpu.EXIT_SBI);
      expect([inst.toString(16), cpu.csr(CSR.scause)]).toEqual([inst.toString(16), CAUSE.illegal]);
      expect(cpu.csr(CSR.stval)).toBe(BigInt(inst >>> 0));
      expect(cpu.csr(CSR.sepc)).toBe(RAM_BASE);
    }
  });

  it("a host-set odd pc traps with cause 0 before anything executes (IALIGN 16)", () => {
    cpu.pc = RAM_BASE + 1n;
    expect(cpu.run(100)).toBe(cpu.EXIT_SBI);
    expect(cpu.csr(CSR.scause)).toBe(CAUSE.fetchMisaligned);
    expect(cpu.csr(CSR.stval)).toBe(RAM_BASE + 1n);
  });

  it("fetching outside RAM takes no trap: the run exits with EOPNOTSUPP at that pc (gstage_page_fault)", () => {
    const scause = cpu.csr(CSR.scause);
    cpu.pc = 0x1000n;
    expect(cpu.run(100)).toBe(cpu.EXIT_MEM);
    expect([cpu.ex.memExitKind(), cpu.ex.memExitErrno()]).toEqual([EXITK_FAIL, 95]);
    expect(cpu.pc).toBe(0x1000n);
    expect(cpu.csr(CSR.scause)).toBe(scause);
  });

  it("a trap whose handler traps again keeps trapping but still ends at the budget", () => {
    cpu.setCsr(CSR.stvec, RAM_BASE); // the handler is the ebreak itself
    cpu.load([A.ebreak()]);
    cpu.pc = RAM_BASE;
    expect(cpu.run(50)).toBe(cpu.EXIT_BUDGET);
    expect(cpu.csr(CSR.scause)).toBe(CAUSE.breakpoint);
    expect(cpu.instret).toBe(0n);
  });
});

describe("sret", () => {
  it("returns to U-mode at sepc and restores SIE from SPIE", () => {
    cpu.setCsr(CSR.sepc, RAM_BASE + 0x100n);
    cpu.setCsr(CSR.sstatus, SPIE); // SPP = U
    cpu.load([A.sret()]);
    cpu.pc = RAM_BASE;
    expect(cpu.run(1)).toBe(cpu.EXIT_BUDGET);
    expect(cpu.pc).toBe(RAM_BASE + 0x100n);
    expect(cpu.priv).toBe(0);
    expect(sstatus() & (SIE | SPIE | SPP)).toBe(SIE | SPIE);
    expect(cpu.instret).toBe(1n);
  });

  it("returns to S-mode when SPP is set, and clears SPP", () => {
    cpu.setCsr(CSR.sepc, RAM_BASE + 0x100n);
    cpu.setCsr(CSR.sstatus, SPP);
    cpu.load([A.sret()]);
    cpu.pc = RAM_BASE;
    cpu.run(1);
    expect(cpu.priv).toBe(1);
    expect(sstatus() & (SIE | SPIE | SPP)).toBe(SPIE);
  });

  it("trap entry and sret round-trip a U-mode program", () => {
    // U-mode: ecall; handler: skip it (sepc += 4) and sret; U-mode continues.
    const p = new Program();
    p.emit(A.addi(T0, 0, 1), A.ecall(), A.addi(T0, T0, 1), A.ecall(), A.ebreak());
    const h = new Program(HANDLER);
    h.emit(A.csrrs(T1, CSR.scause, 0), A.addi(A0, 0, 8))
      .to("sbi", (off) => A.bne(T1, A0, off))
      .emit(A.csrrs(T1, CSR.sepc, 0), A.addi(T1, T1, 4), A.csrrw(0, CSR.sepc, T1), A.sret())
      .label("sbi").emit(A.ecall());
    cpu.load(p);
    cpu.load(h);
    cpu.pc = RAM_BASE;
    cpu.priv = 0;
    // Both system calls return to U-mode; the ebreak ends the run through the handler's SBI call.
    expect(cpu.run(1000)).toBe(cpu.EXIT_SBI);
    expect(cpu.x(T0)).toBe(2n);
    expect(cpu.csr(CSR.scause)).toBe(CAUSE.breakpoint);
    expect(cpu.csr(CSR.sepc)).toBe(RAM_BASE + 16n);
    expect(sstatus() & SPP).toBe(0n);
  });

  it("is illegal in U-mode", () => {
    cpu.priv = 0;
    cpu.load([A.sret()]);
    cpu.pc = RAM_BASE;
    expect(cpu.run(100)).toBe(cpu.EXIT_SBI);
    expect(cpu.csr(CSR.scause)).toBe(CAUSE.illegal);
    expect(cpu.csr(CSR.stval)).toBe(BigInt(A.sret()));
  });
});

describe("SBI calls (ecall from S-mode)", () => {
  it("exit to the host with pc at the ecall; completion retires it", () => {
    cpu.load([A.addi(A0, 0, 5), A.ecall(), A.addi(A1, A0, 1)]);
    cpu.pc = RAM_BASE;
    expect(cpu.run(100)).toBe(cpu.EXIT_SBI);
    expect(cpu.pc).toBe(RAM_BASE + 4n);
    expect(cpu.instret).toBe(1n);
    expect(cpu.csr(CSR.scause)).toBe(0n); // no trap was taken
    cpu.setX(A0, 42n); // the host's answer
    expect(cpu.ex.cpuCompleteEcall()).toBe(1);
    expect(cpu.ex.cpuCompleteEcall()).toBe(0); // nothing pending any more
    expect(cpu.pc).toBe(RAM_BASE + 8n);
    expect(cpu.instret).toBe(2n);
    expect(cpu.run(1)).toBe(cpu.EXIT_BUDGET);
    expect(cpu.x(A1)).toBe(43n);
  });

  it("the pending call lives in the state block, so vCPUs can be swapped in between", () => {
    cpu.load([A.addi(A0, 0, 5), A.ecall(), A.addi(A1, A0, 1)]);
    cpu.pc = RAM_BASE;
    expect(cpu.run(100)).toBe(cpu.EXIT_SBI);
    const block = () => new Uint8Array(cpu.ex.memory.buffer, cpu.ex.cpuState(), cpu.ex.cpuStateSize());
    const saved = block().slice();
    // Another vCPU runs in the meantime and makes an SBI call of its own, left unanswered.
    cpu.ex.cpuReset(RAM_BASE + 4n);
    expect(cpu.run(100)).toBe(cpu.EXIT_SBI);
    cpu.ex.cpuSignal(); // also leaves a signal pending in its block
    block().set(saved);
    cpu.setX(A0, 42n);
    expect(cpu.ex.cpuCompleteEcall()).toBe(1);
    expect(cpu.run(1)).toBe(cpu.EXIT_BUDGET);
    expect(cpu.x(A1)).toBe(43n);
  });

  it("re-executes when the host runs again without completing it", () => {
    cpu.load([A.ecall()]);
    cpu.pc = RAM_BASE;
    expect(cpu.run(100)).toBe(cpu.EXIT_SBI);
    expect(cpu.run(100)).toBe(cpu.EXIT_SBI);
    expect(cpu.pc).toBe(RAM_BASE);
    expect(cpu.instret).toBe(0n);
  });
});

describe("interrupts", () => {
  beforeEach(() => {
    cpu.ex.cpuSetInstrPerTick(1n);
    cpu.ex.cpuSetTime(0n);
  });

  it("the timer interrupt is taken at the exact instruction where time reaches stimecmp", () => {
    cpu.setCsr(CSR.stimecmp, 10n);
    cpu.setCsr(CSR.sie, STIP);
    cpu.setCsr(CSR.sstatus, SIE);
    cpu.load(nops(100));
    cpu.pc = RAM_BASE;
    expect(cpu.run(1000)).toBe(cpu.EXIT_SBI);
    expect(cpu.csr(CSR.scause)).toBe(INTERRUPT | 5n);
    expect(cpu.csr(CSR.sepc)).toBe(RAM_BASE + 40n);
    expect(cpu.csr(CSR.stval)).toBe(0n);
    expect(cpu.instret).toBe(10n);
    expect(sstatus() & (SIE | SPIE | SPP)).toBe(SPIE | SPP);
  });

  it("a budget that ends at the deadline leaves the interrupt for the next run", () => {
    cpu.setCsr(CSR.stimecmp, 10n);
    cpu.setCsr(CSR.sie, STIP);
    cpu.setCsr(CSR.sstatus, SIE);
    cpu.load(nops(100));
    cpu.pc = RAM_BASE;
    expect(cpu.run(10)).toBe(cpu.EXIT_BUDGET);
    expect(cpu.csr(CSR.scause)).toBe(0n);
    expect(cpu.csr(CSR.sip) & STIP).toBe(STIP);
    expect(cpu.run(1000)).toBe(cpu.EXIT_SBI);
    expect(cpu.csr(CSR.sepc)).toBe(RAM_BASE + 40n);
  });

  it("is held pending while sstatus.SIE is clear in S-mode, then taken when set", () => {
    cpu.setCsr(CSR.stimecmp, 3n);
    cpu.setCsr(CSR.sie, STIP);
    cpu.load([...nops(20), A.csrrsi(0, CSR.sstatus, 2), ...nops(5)]);
    cpu.pc = RAM_BASE;
    expect(cpu.run(20)).toBe(cpu.EXIT_BUDGET);
    expect(cpu.csr(CSR.scause)).toBe(0n);
    expect(cpu.csr(CSR.sip)).toBe(STIP);
    expect(cpu.run(100)).toBe(cpu.EXIT_SBI);
    expect(cpu.csr(CSR.scause)).toBe(INTERRUPT | 5n);
    expect(cpu.csr(CSR.sepc)).toBe(RAM_BASE + 84n); // right after the csrrsi
  });

  it("is not taken when sie.STIE is clear", () => {
    cpu.setCsr(CSR.stimecmp, 3n);
    cpu.setCsr(CSR.sstatus, SIE);
    cpu.load(nops(50));
    cpu.pc = RAM_BASE;
    expect(cpu.run(50)).toBe(cpu.EXIT_BUDGET);
    expect(cpu.pc).toBe(RAM_BASE + 200n);
  });

  it("is always enabled in U-mode, whatever sstatus.SIE says", () => {
    cpu.setCsr(CSR.stimecmp, 5n);
    cpu.setCsr(CSR.sie, STIP);
    cpu.priv = 0;
    cpu.load(nops(50));
    cpu.pc = RAM_BASE;
    expect(cpu.run(100)).toBe(cpu.EXIT_SBI);
    expect(cpu.csr(CSR.scause)).toBe(INTERRUPT | 5n);
    expect(cpu.csr(CSR.sepc)).toBe(RAM_BASE + 20n);
    expect(sstatus() & SPP).toBe(0n);
  });

  it("moving stimecmp into the future clears STIP", () => {
    cpu.setCsr(CSR.stimecmp, 0n);
    expect(cpu.csr(CSR.sip)).toBe(STIP);
    cpu.setX(T0, 1000n);
    cpu.load([A.csrrw(0, CSR.stimecmp, T0), A.csrrs(T1, CSR.sip, 0)]);
    cpu.pc = RAM_BASE;
    cpu.run(2);
    expect(cpu.x(T1)).toBe(0n);
  });

  it("SBI set_timer (the host's cpuSetTimer) sets the same deadline", () => {
    cpu.ex.cpuSetTimer(7n);
    expect(cpu.csr(CSR.stimecmp)).toBe(7n);
    cpu.setCsr(CSR.sie, STIP);
    cpu.setCsr(CSR.sstatus, SIE);
    cpu.load(nops(50));
    cpu.pc = RAM_BASE;
    expect(cpu.run(100)).toBe(cpu.EXIT_SBI);
    expect(cpu.instret).toBe(7n);
  });

  it("a software interrupt (sip.SSIP) is taken after the write that raises it", () => {
    cpu.setCsr(CSR.sie, SSIP);
    cpu.setCsr(CSR.sstatus, SIE);
    cpu.load([A.nop(), A.csrrsi(0, CSR.sip, 2), A.nop()]);
    cpu.pc = RAM_BASE;
    expect(cpu.run(100)).toBe(cpu.EXIT_SBI);
    expect(cpu.csr(CSR.scause)).toBe(INTERRUPT | 1n);
    expect(cpu.csr(CSR.sepc)).toBe(RAM_BASE + 8n);
  });

  it("priority: external, then software, then timer", () => {
    cpu.setCsr(CSR.stimecmp, 0n);
    cpu.setCsr(CSR.sip, SSIP);
    cpu.setCsr(CSR.sie, SSIP | STIP | SEIP);
    cpu.ex.cpuSetExternalIrq(1);
    expect(cpu.csr(CSR.sip)).toBe(SSIP | STIP | SEIP);
    cpu.load(nops(10));
    const take = () => {
      cpu.setCsr(CSR.sstatus, SIE);
      cpu.pc = RAM_BASE;
      expect(cpu.run(100)).toBe(cpu.EXIT_SBI);
      return cpu.csr(CSR.scause);
    };
    expect(take()).toBe(INTERRUPT | 9n);
    cpu.ex.cpuSetExternalIrq(0);
    expect(take()).toBe(INTERRUPT | 1n);
    cpu.setCsr(CSR.sip, 0n);
    expect(take()).toBe(INTERRUPT | 5n);
  });

  it("vectored stvec sends interrupts to base + 4 * cause and exceptions to base", () => {
    cpu.setCsr(CSR.stvec, HANDLER | 1n);
    cpu.load([A.ecall()], HANDLER + 20n);
    cpu.setCsr(CSR.stimecmp, 2n);
    cpu.setCsr(CSR.sie, STIP);
    cpu.setCsr(CSR.sstatus, SIE);
    cpu.load(nops(10));
    cpu.pc = RAM_BASE;
    expect(cpu.run(100)).toBe(cpu.EXIT_SBI);
    expect(cpu.pc).toBe(HANDLER + 20n);
    cpu.setCsr(CSR.stimecmp, M64);
    cpu.load([A.ebreak()]);
    cpu.pc = RAM_BASE;
    expect(cpu.run(100)).toBe(cpu.EXIT_SBI);
    expect(cpu.pc).toBe(HANDLER);
    expect(cpu.csr(CSR.scause)).toBe(CAUSE.breakpoint);
  });
});

describe("wfi", () => {
  beforeEach(() => {
    cpu.ex.cpuSetInstrPerTick(1n);
    cpu.ex.cpuSetTime(0n);
  });

  it("exits to the host past the wfi when nothing can wake it", () => {
    cpu.load([A.nop(), A.wfi(), A.nop()]);
    cpu.pc = RAM_BASE;
    expect(cpu.run(100)).toBe(cpu.EXIT_WFI);
    expect(cpu.pc).toBe(RAM_BASE + 8n);
    expect(cpu.instret).toBe(2n);
  });

  it("the host may jump time to the deadline; the interrupt is taken on the next run", () => {
    cpu.setCsr(CSR.stimecmp, 1_000_000n);
    cpu.setCsr(CSR.sie, STIP);
    cpu.setCsr(CSR.sstatus, SIE);
    cpu.load([A.wfi(), A.nop()]);
    cpu.pc = RAM_BASE;
    expect(cpu.run(100)).toBe(cpu.EXIT_WFI);
    cpu.ex.cpuSetTime(cpu.ex.cpuGetTimer());
    expect(cpu.time).toBe(1_000_000n);
    expect(cpu.run(100)).toBe(cpu.EXIT_SBI);
    expect(cpu.csr(CSR.scause)).toBe(INTERRUPT | 5n);
    expect(cpu.csr(CSR.sepc)).toBe(RAM_BASE + 4n);
  });

  it("is a nop when an interrupt enabled in sie is pending, even with SIE clear", () => {
    cpu.setCsr(CSR.sie, SSIP);
    cpu.setCsr(CSR.sip, SSIP);
    cpu.load([A.wfi(), A.nop()]);
    cpu.pc = RAM_BASE;
    expect(cpu.run(2)).toBe(cpu.EXIT_BUDGET);
    expect(cpu.pc).toBe(RAM_BASE + 8n);
    expect(cpu.csr(CSR.scause)).toBe(0n);
  });

  it("is illegal in U-mode", () => {
    cpu.priv = 0;
    cpu.load([A.wfi()]);
    cpu.pc = RAM_BASE;
    expect(cpu.run(100)).toBe(cpu.EXIT_SBI);
    expect(cpu.csr(CSR.scause)).toBe(CAUSE.illegal);
  });
});

describe("run loop", () => {
  it("retires exactly the budget", () => {
    const p = new Program();
    p.label("top").emit(A.addi(T0, T0, 1)).to("top", (off) => A.jal(0, off));
    cpu.load(p);
    cpu.pc = RAM_BASE;
    expect(cpu.run(1001)).toBe(cpu.EXIT_BUDGET);
    expect(cpu.instret).toBe(1001n);
    expect(cpu.x(T0)).toBe(501n);
    expect(cpu.run(3)).toBe(cpu.EXIT_BUDGET);
    expect(cpu.instret).toBe(1004n);
  });

  it("a pending host signal returns EXIT_INTR before executing anything", () => {
    cpu.load(nops(10));
    cpu.pc = RAM_BASE;
    cpu.ex.cpuSignal();
    expect(cpu.run(100)).toBe(cpu.EXIT_INTR);
    expect(cpu.instret).toBe(0n);
    expect(cpu.run(5)).toBe(cpu.EXIT_BUDGET); // the signal was consumed
    expect(cpu.instret).toBe(5n);
  });

  it("cpuRun(0) does nothing", () => {
    cpu.load(nops(10));
    cpu.pc = RAM_BASE;
    expect(cpu.run(0)).toBe(cpu.EXIT_BUDGET);
    expect(cpu.pc).toBe(RAM_BASE);
  });
});
