// Sv39 translation (mmu/paging.ts, reached through the memory layer): 4 KiB
// pages and both superpage sizes, the permission rules for R/W/X, U/S, SUM
// and MXR, A/D bits managed by the guest (Svade), malformed PTEs and addresses, and
// sfence.vma / satp flushing the memory layer's cached translations.

import { describe, it, expect, beforeEach } from "vitest";
import { Cpu, RAM_BASE, CAUSE } from "./harness";
import * as A from "./asm";
import { CSR } from "./asm";
import { MMU_STAT } from "../../src/abi.gen";

const V = 1n, R = 2n, W = 4n, X = 8n, U = 16n, G = 32n, AC = 64n, D = 128n;
const RWX = R | W | X | AC | D;
const T0 = 5, T1 = 6, T2 = 7;
const SUM = 1n << 18n, MXR = 1n << 19n, SPP = 1n << 8n;
const SV39 = 8n << 60n;

const PT_BASE = RAM_BASE + 0x10_0000n; // page tables are bump-allocated from here
const CODE_VA = 0x1000_0000n, CODE_PA = RAM_BASE + 0x20_0000n;
const HANDLER_VA = 0x1000_1000n, HANDLER_PA = RAM_BASE + 0x20_1000n;
const DATA_VA = 0x2000_0000n, DATA_PA = RAM_BASE + 0x30_0000n;

let cpu: Cpu;
let nextTable: bigint;
let root: bigint;

function newTable(): bigint {
  const t = nextTable;
  nextTable += 0x1000n;
  for (let i = 0n; i < 512n; i++) cpu.setU64(t + i * 8n, 0n);
  return t;
}

const pte = (pa: bigint, flags: bigint) => ((pa >> 12n) << 10n) | flags;

/** Address of the PTE for va at `level` (2 = root), creating pointer tables on the way. */
function pteAddr(va: bigint, level: number): bigint {
  let table = root;
  for (let l = 2; l > level; l--) {
    const slot = table + ((va >> BigInt(12 + 9 * l)) & 511n) * 8n;
    let e = cpu.u64(slot);
    if ((e & V) === 0n) {
      e = pte(newTable(), V);
      cpu.setU64(slot, e);
    }
    table = ((e >> 10n) & ((1n << 44n) - 1n)) << 12n;
  }
  return table + ((va >> BigInt(12 + 9 * level)) & 511n) * 8n;
}

function map(va: bigint, pa: bigint, flags: bigint, level = 0): bigint {
  const at = pteAddr(va, level);
  cpu.setU64(at, pte(pa, flags | V));
  return at;
}

beforeEach(async () => {
  cpu = await Cpu.create(8 << 20);
  nextTable = PT_BASE;
  root = newTable();
  map(CODE_VA, CODE_PA, R | X | AC | D | G);
  map(HANDLER_VA, HANDLER_PA, R | X | AC | D);
  map(DATA_VA, DATA_PA, R | W | AC | D);
  cpu.load([A.ecall()], HANDLER_PA);
  cpu.setCsr(CSR.stvec, HANDLER_VA);
  cpu.setCsr(CSR.satp, SV39 | (root >> 12n));
});

/** Runs words placed at CODE_VA (physically at CODE_PA) until the handler's or a direct ecall. */
function runAt(words: number[], priv = 1, budget = 100): number {
  cpu.load(words, CODE_PA);
  cpu.pc = CODE_VA;
  cpu.priv = priv;
  cpu.setCsr(CSR.scause, 0n);
  return cpu.run(budget);
}

function expectFault(cause: bigint, tval: bigint, sepc = CODE_VA): void {
  expect(cpu.csr(CSR.scause)).toBe(cause);
  expect(cpu.csr(CSR.stval)).toBe(tval);
  expect(cpu.csr(CSR.sepc)).toBe(sepc);
  expect(cpu.pc).toBe(HANDLER_VA); // stopped at the handler's ecall
}

describe("translation", () => {
  it("4 KiB pages: fetch, load and store go to the mapped frames", () => {
    cpu.setU64(DATA_PA + 0x10n, 0x1234n);
    cpu.setX(T0, DATA_VA);
    expect(runAt([A.ld(T1, T0, 0x10), A.addi(T1, T1, 1), A.sd(T1, T0, 0x18), A.ecall()])).toBe(cpu.EXIT_SBI);
    expect(cpu.x(T1)).toBe(0x1235n);
    expect(cpu.u64(DATA_PA + 0x18n)).toBe(0x1235n);
    expect(cpu.pc).toBe(CODE_VA + 12n);
  });

  it("the guest turns paging on itself from identity-mapped code", () => {
    cpu.setCsr(CSR.satp, 0n);
    map(RAM_BASE, RAM_BASE, RWX, 1); // 2 MiB identity megapage over the boot code
    cpu.setX(T0, SV39 | (root >> 12n));
    cpu.setX(T1, DATA_VA);
    cpu.setU64(DATA_PA, 99n);
    cpu.load([A.csrrw(0, CSR.satp, T0), A.sfence_vma(), A.ld(T2, T1, 0), A.ecall()]);
    cpu.pc = RAM_BASE;
    expect(cpu.run(100)).toBe(cpu.EXIT_SBI);
    expect(cpu.x(T2)).toBe(99n);
    expect(cpu.pc).toBe(RAM_BASE + 12n);
  });

  it("code in the first page (pc below 4 KiB) is fetched through its own translation, interpreter alone", () => {
    const LOW_PA = RAM_BASE + 0x26_0000n;
    map(0n, LOW_PA, R | X | AC | D);
    cpu.load([A.addi(T0, 0, 7), A.ecall()], LOW_PA + 0x100n);
    cpu.ex.jitSetThreshold(0);
    cpu.pc = 0x100n;
    expect(cpu.run(10)).toBe(cpu.EXIT_SBI);
    expect(cpu.x(T0)).toBe(7n);
    expect(cpu.pc).toBe(0x104n);
  });

  it("2 MiB megapages keep the low 21 bits of the address", () => {
    map(0x4020_0000n, RAM_BASE + 0x40_0000n, R | W | AC | D, 1);
    cpu.setU64(RAM_BASE + 0x41_2340n, 0xabcdn);
    cpu.setX(T0, 0x4021_2340n);
    runAt([A.ld(T1, T0, 0), A.ecall()]);
    expect(cpu.x(T1)).toBe(0xabcdn);
  });

  it("1 GiB gigapages keep the low 30 bits", () => {
    map(0xc000_0000n, RAM_BASE, R | W | AC | D, 2);
    cpu.setU64(RAM_BASE + 0x12_3458n, 0x5555n);
    cpu.setX(T0, 0xc012_3458n);
    runAt([A.ld(T1, T0, 0), A.ecall()]);
    expect(cpu.x(T1)).toBe(0x5555n);
  });

  it("the upper half of the address space (bit 38 set, sign-extended) works", () => {
    const hi = 0xffff_ffc0_0000_0000n;
    map(hi + 0x5000n, DATA_PA, R | W | AC | D);
    cpu.setU64(DATA_PA, 0x77n);
    cpu.setX(T0, hi + 0x5000n);
    runAt([A.ld(T1, T0, 0), A.ecall()]);
    expect(cpu.x(T1)).toBe(0x77n);
  });

  it("a page-crossing access translates each page on its own", () => {
    const p1 = 0x3000_0000n, p2 = p1 + 0x1000n;
    const f1 = RAM_BASE + 0x50_0000n, f2 = RAM_BASE + 0x60_7000n; // not adjacent
    map(p1, f1, R | W | AC | D);
    map(p2, f2, R | W | AC | D);
    cpu.setU32(f1 + 0xffcn, 0x4433_2211);
    cpu.setU32(f2, 0x8877_6655);
    cpu.setX(T0, p1 + 0xffcn);
    runAt([A.ld(T1, T0, 0), A.ecall()]);
    expect(cpu.x(T1)).toBe(0x8877_6655_4433_2211n);
    // Unmap the second page (and fence, as the ISA requires): the upper part faults with its own address.
    cpu.setU64(pteAddr(p2, 0), 0n);
    runAt([A.sfence_vma(), A.ld(T1, T0, 0), A.ecall()]);
    expectFault(CAUSE.loadPage, p2, CODE_VA + 4n);
  });
});

describe("permissions", () => {
  it("store to a read-only page: store page fault", () => {
    map(0x3000_0000n, DATA_PA, R | AC | D);
    cpu.setX(T0, 0x3000_0008n);
    runAt([A.sd(T0, T0, 0), A.ecall()]);
    expectFault(CAUSE.storePage, 0x3000_0008n);
    expect(cpu.u64(DATA_PA + 8n)).toBe(0n);
  });

  it("AMOs need write permission even for their read", () => {
    map(0x3000_0000n, DATA_PA, R | AC | D);
    cpu.setX(T0, 0x3000_0000n);
    runAt([A.amo(A.AMO.add, 64, T1, T0, T0), A.ecall()]);
    expectFault(CAUSE.storePage, 0x3000_0000n);
  });

  it("fetch from a page without X: instruction page fault at the target", () => {
    cpu.setX(T0, DATA_VA);
    runAt([A.jalr(0, T0, 0)]);
    expectFault(CAUSE.fetchPage, DATA_VA, DATA_VA);
  });

  it("load from an execute-only page faults unless MXR is set", () => {
    map(0x3000_0000n, DATA_PA, X | AC | D);
    cpu.setU64(DATA_PA, 42n);
    cpu.setX(T0, 0x3000_0000n);
    runAt([A.ld(T1, T0, 0), A.ecall()]);
    expectFault(CAUSE.loadPage, 0x3000_0000n);
    cpu.setCsr(CSR.sstatus, MXR);
    runAt([A.ld(T1, T0, 0), A.ecall()]);
    expect(cpu.csr(CSR.scause)).toBe(0n);
    expect(cpu.x(T1)).toBe(42n);
  });

  it("W without R is a reserved encoding: faults even for stores", () => {
    map(0x3000_0000n, DATA_PA, W | AC | D);
    cpu.setX(T0, 0x3000_0000n);
    runAt([A.sd(T0, T0, 0), A.ecall()]);
    expectFault(CAUSE.storePage, 0x3000_0000n);
  });

  it("S-mode reaches U pages only with SUM, and never executes them", () => {
    map(0x3000_0000n, DATA_PA, R | W | X | U | AC | D);
    cpu.setX(T0, 0x3000_0000n);
    runAt([A.ld(T1, T0, 0), A.ecall()]);
    expectFault(CAUSE.loadPage, 0x3000_0000n);
    runAt([A.sd(T1, T0, 0), A.ecall()]);
    expectFault(CAUSE.storePage, 0x3000_0000n);
    cpu.setCsr(CSR.sstatus, SUM);
    cpu.setU64(DATA_PA, 7n);
    runAt([A.ld(T1, T0, 0), A.sd(T1, T0, 8), A.ecall()]);
    expect(cpu.csr(CSR.scause)).toBe(0n);
    expect(cpu.u64(DATA_PA + 8n)).toBe(7n);
    cpu.load([A.ecall()], DATA_PA);
    runAt([A.jalr(0, T0, 0)]);
    expectFault(CAUSE.fetchPage, 0x3000_0000n, 0x3000_0000n);
  });

  it("U-mode may use U pages only", () => {
    const UCODE_VA = 0x5000_0000n, UCODE_PA = RAM_BASE + 0x70_0000n;
    map(UCODE_VA, UCODE_PA, R | X | U | AC | D);
    map(0x3000_0000n, DATA_PA, R | W | U | AC | D);
    cpu.setU64(DATA_PA, 5n);
    const run = (words: number[]) => {
      cpu.load(words, UCODE_PA);
      cpu.pc = UCODE_VA;
      cpu.priv = 0;
      cpu.setCsr(CSR.scause, 0n);
      return cpu.run(100);
    };
    cpu.setX(T0, 0x3000_0000n);
    cpu.setX(T2, DATA_VA); // an S page
    expect(run([A.ld(T1, T0, 0), A.ebreak()])).toBe(cpu.EXIT_SBI);
    expect(cpu.csr(CSR.scause)).toBe(CAUSE.breakpoint);
    expect(cpu.x(T1)).toBe(5n);
    run([A.ld(T1, T2, 0)]);
    expectFault(CAUSE.loadPage, DATA_VA, UCODE_VA);
    expect(cpu.csr(CSR.sstatus) & SPP).toBe(0n);
    run([A.sd(T1, T2, 0)]);
    expectFault(CAUSE.storePage, DATA_VA, UCODE_VA);
    cpu.setX(T2, CODE_VA); // S-mode code
    run([A.jalr(0, T2, 0)]);
    expectFault(CAUSE.fetchPage, CODE_VA, CODE_VA);
  });
});

describe("A and D bits (Svade, RISC-V KVM's default vCPU: henvcfg.ADUE stays clear)", () => {
  it("a walk that finds A clear, or D clear for a store or AMO, raises that access's page fault and writes no PTE", () => {
    const [noA, noD] = [map(0x3000_0000n, DATA_PA, R | W | X), map(0x3000_1000n, DATA_PA + 0x1000n, R | W | X | AC)];
    cpu.load([A.ecall()], DATA_PA + 0x1000n);
    cpu.setX(T0, 0x3000_0000n);
    cpu.setX(T1, 0x3000_1000n);
    for (const [words, cause, tval] of [
      [[A.ld(8, T0, 0)], CAUSE.loadPage, 0x3000_0000n],
      [[A.sd(8, T0, 0)], CAUSE.storePage, 0x3000_0000n],
      [[A.jalr(0, T0, 0)], CAUSE.fetchPage, 0x3000_0000n],
      [[A.sd(8, T1, 0)], CAUSE.storePage, 0x3000_1000n],
      [[A.amo(A.AMO.add, 64, 8, T1, 8)], CAUSE.storePage, 0x3000_1000n],
    ] as [number[], bigint, bigint][]) {
      runAt(words);
      expectFault(cause, tval, words[0] === A.jalr(0, T0, 0) ? 0x3000_0000n : CODE_VA);
    }
    // With A set, loads and fetches go through while D is clear.
    runAt([A.ld(9, T1, 0), A.jalr(0, T1, 0)]);
    expect(cpu.pc).toBe(0x3000_1000n); // stopped at the ecall there
    expect(cpu.csr(CSR.scause)).toBe(0n);
    expect([cpu.u64(noA), cpu.u64(noD)]).toEqual([pte(DATA_PA, V | R | W | X), pte(DATA_PA + 0x1000n, V | R | W | X | AC)]);
  });

  it("a faulting access sets nothing", () => {
    const at = map(0x3000_0000n, DATA_PA, R);
    cpu.setX(T0, 0x3000_0000n);
    runAt([A.sd(T0, T0, 0), A.ecall()]);
    expectFault(CAUSE.storePage, 0x3000_0000n);
    expect(cpu.u64(at)).toBe(pte(DATA_PA, V | R));
  });
});

describe("malformed addresses and PTEs", () => {
  it("non-canonical addresses fault with the address in stval", () => {
    for (const va of [0x0000_0040_0000_0000n, 0x8000_0000_0000_0000n, 0xffff_ff80_0000_0000n]) {
      cpu.setX(T0, va);
      runAt([A.ld(T1, T0, 0), A.ecall()]);
      expectFault(CAUSE.loadPage, va);
      runAt([A.sb(T1, T0, 0), A.ecall()]);
      expectFault(CAUSE.storePage, va);
    }
  });

  it("a misaligned superpage faults", () => {
    map(0x4020_0000n, RAM_BASE + 0x40_1000n, R | W | AC | D, 1);
    cpu.setX(T0, 0x4020_0000n);
    runAt([A.ld(T1, T0, 0), A.ecall()]);
    expectFault(CAUSE.loadPage, 0x4020_0000n);
    map(0xc000_0000n, RAM_BASE + 0x20_0000n, R | W | AC | D, 2);
    cpu.setX(T0, 0xc000_0000n);
    runAt([A.ld(T1, T0, 0), A.ecall()]);
    expectFault(CAUSE.loadPage, 0xc000_0000n);
  });

  it("invalid, reserved-bit and malformed pointer PTEs fault", () => {
    const va = 0x3000_0000n;
    cpu.setX(T0, va);
    const at = map(va, DATA_PA, R | W | AC | D);
    const bad = [
      pte(DATA_PA, R | W | AC | D), // V = 0
      pte(DATA_PA, V | R | W | AC | D) | (1n << 54n), // reserved bit
      pte(DATA_PA, V | R | W | AC | D) | (1n << 61n), // PBMT (Svpbmt not implemented)
      pte(DATA_PA, V | R | W | AC | D) | (1n << 63n), // N (Svnapot not implemented)
      pte(PT_BASE + 0x8000n, V), // a pointer at level 0
    ];
    for (const e of bad) {
      cpu.setU64(at, e);
      runAt([A.ld(T1, T0, 0), A.ecall()]);
      expectFault(CAUSE.loadPage, va);
    }
    // A pointer PTE with A, D or U set (reserved for non-leaf PTEs).
    const l1 = pteAddr(va, 1);
    const ptr = cpu.u64(l1);
    for (const flag of [AC, D, U]) {
      cpu.setU64(l1, ptr | flag);
      runAt([A.ld(T1, T0, 0), A.ecall()]);
      expectFault(CAUSE.loadPage, va);
    }
  });

  it("a page table outside RAM gives the access fault of the access", () => {
    const va = 0x3000_0000n;
    cpu.setU64(pteAddr(va, 1), pte(0x1000_0000n, V)); // the level-0 table is not RAM
    cpu.setX(T0, va);
    runAt([A.ld(T1, T0, 0), A.ecall()]);
    expectFault(CAUSE.loadAccess, va);
    runAt([A.sd(T1, T0, 0), A.ecall()]);
    expectFault(CAUSE.storeAccess, va);
  });
});

describe("flushing", () => {
  it("sfence.vma flushes; a remapped code page runs its new code after it", () => {
    const PAGE_VA = 0x6000_0000n, OLD = RAM_BASE + 0x71_0000n, NEW = RAM_BASE + 0x72_0000n;
    const at = map(PAGE_VA, OLD, R | X | AC | D);
    cpu.load([A.addi(T2, 0, 1), A.ecall()], OLD);
    cpu.load([A.addi(T2, 0, 2), A.ecall()], NEW);
    cpu.setX(T0, PAGE_VA);
    runAt([A.jalr(0, T0, 0)]);
    expect(cpu.x(T2)).toBe(1n);
    cpu.setU64(at, pte(NEW, V | R | X | AC | D));
    const flushes = cpu.ex.memFlushCount();
    runAt([A.sfence_vma(), A.jalr(0, T0, 0)]);
    expect(cpu.ex.memFlushCount()).toBe(flushes + 1);
    expect(cpu.x(T2)).toBe(2n);
  });

  // The guest rewrites a PTE itself, through PTW_VA (a window on the page table's
  // page), and flushes. Every page used has its own index in the memory layer's
  // direct-mapped table (the low bits of the page number; CODE_VA's is 0), so
  // only a flush can make one fault again.
  const PTW_VA = 0x7000_7000n, DATA2_VA = 0x2000_3000n;
  const window = (at: bigint) => {
    map(PTW_VA, at & ~0xfffn, R | W | AC | D);
    return Number(at & 0xfffn);
  };

  it("sfence.vma with an address drops that page's translation and keeps every other page's (kvm_mmu_invlpg)", () => {
    const PAGE_VA = 0x6000_5000n, OLD = RAM_BASE + 0x71_0000n, NEW = RAM_BASE + 0x72_0000n;
    const off = window(map(PAGE_VA, OLD, R | W | AC | D));
    map(DATA2_VA, DATA_PA, R | W | AC | D);
    cpu.setU64(OLD, 1n);
    cpu.setU64(NEW, 2n);
    cpu.setU64(DATA_PA, 7n);
    cpu.setX(T0, PAGE_VA);
    cpu.setX(8, DATA2_VA);
    cpu.setX(9, PTW_VA);
    cpu.setX(10, pte(NEW, V | R | W | AC | D));
    const faults = cpu.ex.mmuStat(MMU_STAT.FAULTS);
    runAt([A.ld(T1, T0, 0), A.ld(T2, 8, 0), A.sd(10, 9, off), A.sfence_vma(T0, 0),
      A.ld(11, T0, 0), A.ld(12, 8, 0), A.ecall()]);
    expect([cpu.x(T1), cpu.x(T2), cpu.x(11), cpu.x(12)]).toEqual([1n, 7n, 2n, 7n]);
    // The code page, PAGE_VA, DATA2_VA and the window, then PAGE_VA again: the others kept their entries.
    expect(cpu.ex.mmuStat(MMU_STAT.FAULTS) - faults).toBe(4 + 1);
  });

  it("sfence.vma with an address in a 2 MiB superpage drops the translations of all its pages", () => {
    const SUPER_VA = 0x4000_0000n, OLD = RAM_BASE + 0x40_0000n, NEW = RAM_BASE + 0x60_0000n;
    const off = window(map(SUPER_VA, OLD, R | W | AC | D, 1));
    cpu.setU64(OLD + 0x5008n, 1n);
    cpu.setU64(NEW + 0x5008n, 2n);
    cpu.setX(T0, SUPER_VA + 0x1000n);
    cpu.setX(8, SUPER_VA + 0x5000n);
    cpu.setX(9, PTW_VA);
    cpu.setX(10, pte(NEW, V | R | W | AC | D));
    // The flush names the superpage's second page; its sixth page's translation goes too.
    runAt([A.ld(T1, T0, 0), A.ld(T2, 8, 8), A.sd(10, 9, off), A.sfence_vma(T0, 0), A.ld(11, 8, 8), A.ecall()]);
    expect([cpu.x(T2), cpu.x(11)]).toEqual([1n, 2n]);
  });

  it("sfence.vma with address and ASID operands is accepted", () => {
    cpu.setX(T0, DATA_VA);
    const flushes = cpu.ex.memFlushCount();
    runAt([A.sfence_vma(T0, T1), A.ecall()]);
    expect(cpu.pc).toBe(CODE_VA + 4n);
    expect(cpu.ex.memFlushCount()).toBe(flushes + 1);
  });

  it("a satp write switches address spaces for fetches too", () => {
    // A second root mapping CODE_VA to different code.
    const root1 = root;
    root = newTable();
    const OTHER = RAM_BASE + 0x73_0000n;
    map(CODE_VA, OTHER, R | X | AC | D);
    map(HANDLER_VA, HANDLER_PA, R | X | AC | D);
    cpu.load([A.addi(T2, 0, 2), A.ecall()], OTHER);
    const satp2 = SV39 | (root >> 12n);
    root = root1;
    cpu.setX(T0, satp2);
    // Old space: csrw satp at CODE_VA; the next fetch, CODE_VA + 4, comes from the new space.
    cpu.load([A.csrrw(0, CSR.satp, T0), A.addi(T2, 0, 1), A.ecall()], CODE_PA);
    cpu.load([A.addi(T2, 0, 2), A.addi(T2, T2, 40), A.ecall()], OTHER);
    cpu.pc = CODE_VA;
    expect(cpu.run(100)).toBe(cpu.EXIT_SBI);
    expect(cpu.x(T2)).toBe(40n); // executed OTHER + 4, not CODE_PA + 4
  });

  it("a page S-mode was executing from is not executable after sret to U-mode", () => {
    // sret to CODE_VA + 12, an S-only page whose translation the S-mode fetches just used.
    cpu.setX(T0, CODE_VA + 12n);
    runAt([A.csrrw(0, CSR.sepc, T0), A.csrrci(0, CSR.sstatus, 0), A.sret(), A.nop()]);
    expectFault(CAUSE.fetchPage, CODE_VA + 12n, CODE_VA + 12n);
    expect(cpu.csr(CSR.sstatus) & SPP).toBe(0n); // the fault came from U-mode
  });

  it("sfence.vma is illegal in U-mode", () => {
    const UCODE_VA = 0x5000_0000n, UCODE_PA = RAM_BASE + 0x70_0000n;
    map(UCODE_VA, UCODE_PA, R | X | U | AC | D);
    cpu.load([A.sfence_vma()], UCODE_PA);
    cpu.pc = UCODE_VA;
    cpu.priv = 0;
    cpu.run(100);
    expectFault(CAUSE.illegal, BigInt(A.sfence_vma()), UCODE_VA);
  });
});


describe("instruction fetch across a page boundary (the C extension)", () => {
  const LAST = 0x1100_0ffen; // a 32-bit instruction in a page's last halfword
  const CODE2_PA = RAM_BASE + 0x25_0000n, NEXT_PA = RAM_BASE + 0x27_0000n; // not adjacent frames

  function place(): void {
    map(LAST & ~0xfffn, CODE2_PA, R | X | AC | D);
    const inst = A.addi(T0, T0, 0x123);
    cpu.writeBytes(CODE2_PA + 0xffcn, A.halves(A.c_nop(), inst & 0xffff));
    // The next frame (physically, and in host memory: written, so backed, right after) holds
    // another upper half: a fetch reading on past the page would find it.
    cpu.writeBytes(CODE2_PA + 0x1000n, A.halves(A.addi(T0, T0, 0x456) >>> 16));
    cpu.writeBytes(NEXT_PA, A.halves(inst >>> 16, A.c_nop()));
    cpu.pc = LAST - 2n;
    cpu.setX(T0, 0n);
    cpu.setCsr(CSR.scause, 0n);
  }

  it("a 32-bit instruction straddling two pages is fetched in two halves, each through its own translation", () => {
    place();
    map(LAST + 2n, NEXT_PA, R | X | AC | D);
    cpu.run(3);
    expect(cpu.x(T0)).toBe(0x123n);
    expect(cpu.pc).toBe(LAST + 6n);
  });

  it("a fetch page fault on the second half reports that half's address in stval, the instruction's in sepc", () => {
    place();
    expect(cpu.run(10)).toBe(cpu.EXIT_SBI);
    expectFault(CAUSE.fetchPage, LAST + 2n, LAST);
    expect(cpu.x(T0)).toBe(0n);
  });

  it("a compressed instruction in a page's last halfword needs no second page", () => {
    map(LAST & ~0xfffn, CODE2_PA, R | X | AC | D);
    cpu.writeBytes(CODE2_PA + 0xffcn, A.halves(A.c_nop(), A.c_li(T0, 9)));
    cpu.pc = LAST - 2n;
    cpu.run(2);
    expect(cpu.x(T0)).toBe(9n);
    expect(cpu.pc).toBe(LAST + 2n);
  });
});
