// Loads and stores of every width: sign and zero extension, misaligned
// accesses (performed, not trapped), accesses that cross a page boundary
// (split into two memory-layer calls, lower address first, seen through the
// stand-in's debug access log), access faults, memory-layer exits (MMIO), and
// instruction fetch coherence after code is rewritten.

import { describe, it, expect, beforeEach } from "vitest";
import { Cpu, RAM_BASE, CAUSE } from "./harness";
import * as A from "./asm";
import { CSR, Program } from "./asm";

const T0 = 5, T1 = 6, T2 = 7;
const HANDLER = RAM_BASE + 0x1000n;
const DATA = RAM_BASE + 0x10000n;
const RAM_SIZE = 1n << 20n;
const RAM_END = RAM_BASE + RAM_SIZE;
const MMIO = 0x1000_0000n;

let cpu: Cpu;
beforeEach(async () => {
  cpu = await Cpu.create(Number(RAM_SIZE));
  cpu.setCsr(CSR.stvec, HANDLER);
  cpu.load([A.ecall()], HANDLER);
});

/** The memory-layer calls since the last reset of the log: [va, size, kind] (kind 0 load, 1 AMO read, 2 store). */
function accessLog(): [bigint, number, number][] {
  const out: [bigint, number, number][] = [];
  const n = cpu.ex.memLogCount();
  for (let i = 0; i < n; i++) out.push([BigInt.asUintN(64, cpu.ex.memLogVa(i)), cpu.ex.memLogSize(i), cpu.ex.memLogKind(i)]);
  return out;
}

/** Executes one load or store with t0 = base address; returns the exit code. */
function access(inst: number, base: bigint): number {
  cpu.setX(T0, base);
  cpu.ex.memLogReset();
  cpu.load([inst, A.ecall()]);
  cpu.pc = RAM_BASE;
  return cpu.run(10);
}

function fill(at: bigint, bytes: number[]): void {
  cpu.writeBytes(at, Uint8Array.from(bytes));
}

describe("widths and extension", () => {
  beforeEach(() => fill(DATA, [0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88]));

  it("signed loads sign-extend, unsigned ones zero-extend", () => {
    const cases: [number, bigint][] = [
      [A.lb(T1, T0, 0), 0xffff_ffff_ffff_ff81n],
      [A.lbu(T1, T0, 0), 0x81n],
      [A.lh(T1, T0, 0), 0xffff_ffff_ffff_8281n],
      [A.lhu(T1, T0, 0), 0x8281n],
      [A.lw(T1, T0, 0), 0xffff_ffff_8483_8281n],
      [A.lwu(T1, T0, 0), 0x8483_8281n],
      [A.ld(T1, T0, 0), 0x8887_8685_8483_8281n],
    ];
    for (const [inst, want] of cases) {
      expect(access(inst, DATA)).toBe(cpu.EXIT_SBI);
      expect(cpu.x(T1)).toBe(want);
    }
    fill(DATA, [0x7f, 0x7f, 0x7f, 0x7f]);
    access(A.lb(T1, T0, 0), DATA);
    expect(cpu.x(T1)).toBe(0x7fn);
    access(A.lw(T1, T0, 0), DATA);
    expect(cpu.x(T1)).toBe(0x7f7f7f7fn);
  });

  it("the offset is sign-extended", () => {
    access(A.lbu(T1, T0, -1), DATA + 4n);
    expect(cpu.x(T1)).toBe(0x84n);
    access(A.lbu(T1, T0, 2047), DATA - 2047n);
    expect(cpu.x(T1)).toBe(0x81n);
  });

  it("stores write exactly their width", () => {
    cpu.setX(T1, 0x1122_3344_5566_7788n);
    const cases: [number, bigint][] = [
      [A.sb(T1, T0, 0), 0x8887_8685_8483_8288n],
      [A.sh(T1, T0, 0), 0x8887_8685_8483_7788n],
      [A.sw(T1, T0, 0), 0x8887_8685_5566_7788n],
      [A.sd(T1, T0, 0), 0x1122_3344_5566_7788n],
    ];
    for (const [inst, want] of cases) {
      fill(DATA, [0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88]);
      access(inst, DATA);
      expect(cpu.u64(DATA)).toBe(want);
    }
  });

  it("a load into x0 still performs the access (and can exit)", () => {
    expect(access(A.ld(0, T0, 0), 0x100n)).toBe(cpu.EXIT_MEM);
    expect([BigInt(cpu.ex.memMmioVa()), cpu.ex.memMmioSize()]).toEqual([0x100n, 8]);
    cpu.ex.memCompleteMmio(0x1234n);
    expect(cpu.run(1)).toBe(cpu.EXIT_BUDGET);
    expect(cpu.x(0)).toBe(0n);
  });
});

describe("misaligned accesses", () => {
  it("within a page are one memory-layer call and just work", () => {
    fill(DATA, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    access(A.ld(T1, T0, 3), DATA);
    expect(cpu.x(T1)).toBe(0x0a09_0807_0605_0403n);
    expect(accessLog()).toEqual([[DATA + 3n, 8, 0]]);
    cpu.setX(T1, 0xaabb_ccddn);
    access(A.sw(T1, T0, 1), DATA + 0x100n);
    expect(cpu.u64(DATA + 0x100n)).toBe(0xaa_bbcc_dd00n);
    expect(accessLog()).toEqual([[DATA + 0x101n, 4, 2]]);
    access(A.lh(T1, T0, 0), DATA + 0x103n);
    expect(cpu.x(T1)).toBe(0xffff_ffff_ffff_aabbn);
  });

  it("across a page boundary are split there, lower part first", () => {
    const page = DATA + 0x1000n;
    fill(page - 8n, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
    access(A.ld(T1, T0, 0), page - 3n);
    expect(cpu.x(T1)).toBe(0x0d0c_0b0a_0908_0706n);
    expect(accessLog()).toEqual([[page - 3n, 3, 0], [page, 5, 0]]);

    access(A.lw(T1, T0, 0), page - 2n);
    expect(cpu.x(T1)).toBe(0x0a09_0807n);
    expect(accessLog()).toEqual([[page - 2n, 2, 0], [page, 2, 0]]);

    access(A.lh(T1, T0, 0), page - 1n);
    expect(cpu.x(T1)).toBe(0x0908n);
    expect(accessLog()).toEqual([[page - 1n, 1, 0], [page, 1, 0]]);

    cpu.setX(T1, 0x8877_6655_4433_2211n);
    access(A.sd(T1, T0, 0), page - 7n);
    expect(accessLog()).toEqual([[page - 7n, 7, 2], [page, 1, 2]]);
    expect(cpu.u64(page - 8n)).toBe(0x7766_5544_3322_1101n);
    expect(cpu.u64(page)).toBe(0x100f_0e0d_0c0b_0a88n);
  });

  it("split loads sign-extend the whole value", () => {
    const page = DATA + 0x2000n;
    fill(page - 2n, [0x34, 0x12, 0xff, 0xff]);
    access(A.lw(T1, T0, 0), page - 2n);
    expect(cpu.x(T1)).toBe(0xffff_ffff_ffff_1234n);
    access(A.lwu(T1, T0, 0), page - 2n);
    expect(cpu.x(T1)).toBe(0xffff_1234n);
  });

  it("a split access whose upper part is not RAM exits for the upper part only", () => {
    cpu.setX(T1, 0x1111_1111_2222_2222n);
    fill(RAM_END - 4n, [0x11, 0x22, 0x33, 0x44]);
    expect(access(A.ld(T2, T0, 0), RAM_END - 4n)).toBe(cpu.EXIT_MEM);
    expect(accessLog()).toEqual([[RAM_END - 4n, 4, 0], [RAM_END, 4, 0]]);
    expect([BigInt(cpu.ex.memMmioVa()), cpu.ex.memMmioSize(), cpu.ex.memMmioIsWrite()]).toEqual([RAM_END, 4, 0]);
    cpu.ex.memCompleteMmio(0x8877_6655n);
    expect(cpu.run(2)).toBe(cpu.EXIT_SBI);
    expect(cpu.x(T2)).toBe(0x8877_6655_4433_2211n);
    expect(access(A.sd(T1, T0, 0), RAM_END - 4n)).toBe(cpu.EXIT_MEM);
    expect([BigInt(cpu.ex.memMmioVa()), cpu.ex.memMmioSize(), cpu.ex.memMmioIsWrite()]).toEqual([RAM_END, 4, 1]);
    expect(BigInt(cpu.ex.memMmioValue())).toBe(0x1111_1111n);
    // Misaligned stores are not atomic: the lower part is already written.
    expect(cpu.u32(RAM_END - 4n)).toBe(0x2222_2222);
  });
});

describe("faults and exits", () => {
  it("loads and stores where no memslot is are MMIO exits that do not retire", () => {
    cpu.setX(T1, 99n);
    expect(access(A.lw(T1, T0, 4), 0x2000n)).toBe(cpu.EXIT_MEM);
    expect([BigInt(cpu.ex.memMmioVa()), cpu.ex.memMmioSize(), cpu.ex.memMmioIsWrite()]).toEqual([0x2004n, 4, 0]);
    expect(cpu.pc).toBe(RAM_BASE);
    expect(cpu.x(T1)).toBe(99n);
    expect(cpu.instret).toBe(0n);
    expect(access(A.sb(T1, T0, 0), RAM_BASE - 1n)).toBe(cpu.EXIT_MEM);
    expect([BigInt(cpu.ex.memMmioVa()), cpu.ex.memMmioSize(), cpu.ex.memMmioIsWrite()]).toEqual([RAM_BASE - 1n, 1, 1]);
    expect(BigInt(cpu.ex.memMmioValue())).toBe(99n);
  });

  it("the last bytes of RAM are reachable with every width", () => {
    fill(RAM_END - 8n, [1, 2, 3, 4, 5, 6, 7, 8]);
    access(A.ld(T1, T0, 0), RAM_END - 8n);
    expect(cpu.x(T1)).toBe(0x0807_0605_0403_0201n);
    access(A.lbu(T1, T0, 0), RAM_END - 1n);
    expect(cpu.x(T1)).toBe(8n);
    cpu.setX(T1, 0xeen);
    access(A.sb(T1, T0, 0), RAM_END - 1n);
    expect(cpu.u8(RAM_END - 1n)).toBe(0xee);
  });

  it("a memory-layer exit stops the run without retiring; completion re-executes the load", () => {
    cpu.ex.memSetExitWindow(MMIO, 0x100n);
    cpu.setX(T1, 0n);
    expect(access(A.lb(T1, T0, 5), MMIO)).toBe(cpu.EXIT_MEM);
    expect(cpu.pc).toBe(RAM_BASE);
    expect(cpu.instret).toBe(0n);
    expect(BigInt(cpu.ex.memMmioVa())).toBe(MMIO + 5n);
    expect(cpu.ex.memMmioSize()).toBe(1);
    expect(cpu.ex.memMmioIsWrite()).toBe(0);
    cpu.ex.memCompleteMmio(0xabn);
    expect(cpu.run(10)).toBe(cpu.EXIT_SBI);
    expect(cpu.x(T1)).toBe(0xffff_ffff_ffff_ffabn);
    expect(cpu.instret).toBe(1n);
  });

  it("a memory-layer exit on a store carries the data", () => {
    cpu.ex.memSetExitWindow(MMIO, 0x100n);
    cpu.setX(T1, 0x1234_5678n);
    expect(access(A.sw(T1, T0, 8), MMIO)).toBe(cpu.EXIT_MEM);
    expect(cpu.ex.memMmioIsWrite()).toBe(1);
    expect(BigInt(cpu.ex.memMmioValue())).toBe(0x1234_5678n);
    expect(cpu.ex.memMmioSize()).toBe(4);
    cpu.ex.memCompleteMmio(0n);
    expect(cpu.run(10)).toBe(cpu.EXIT_SBI); // the ecall after the store
    expect(cpu.pc).toBe(RAM_BASE + 4n);
    expect(cpu.instret).toBe(1n);
    expect(cpu.csr(CSR.scause)).toBe(0n);
  });
});

describe("fences and code changes", () => {
  it("fence and fence.i retire as no-ops", () => {
    cpu.load([A.fence(), A.fence_i(), A.ecall()]);
    cpu.pc = RAM_BASE;
    expect(cpu.run(10)).toBe(cpu.EXIT_SBI);
    expect(cpu.pc).toBe(RAM_BASE + 8n);
    expect(cpu.instret).toBe(2n);
  });

  it("code the guest rewrites runs after fence.i", () => {
    // Loop twice over `target`; between the passes, overwrite it with addi t2, t2, 100.
    const p = new Program();
    p.emit(A.addi(T0, 0, 2))
      .label("again")
      .label("target").emit(A.addi(T2, T2, 1))
      .emit(A.addi(T0, T0, -1))
      .to("done", (off) => A.beq(T0, 0, off))
      .emit(A.sw(T1, 8, 0), A.fence_i())
      .to("again", (off) => A.jal(0, off))
      .label("done").emit(A.ecall());
    cpu.setX(8, p.addr("target"));
    cpu.setX(T1, BigInt(A.addi(T2, T2, 100)));
    cpu.load(p);
    cpu.pc = RAM_BASE;
    expect(cpu.run(100)).toBe(cpu.EXIT_SBI);
    expect(cpu.x(T2)).toBe(101n);
  });

  it("code the guest rewrites in a page's last halfword (a word fetched in halves) runs after fence.i", () => {
    // `target` straddles a page boundary, so its word is fetched in two halves.
    // Three passes over it, each rewriting it with a new immediate (100, then
    // 101): every pass must fetch both halves again, not reuse an earlier pass's word.
    const base = RAM_BASE + 0x2000n - 6n; // target at RAM_BASE + 0x1ffe
    const p = new Program(base);
    p.emit(A.addi(T0, 0, 3))
      .label("again")
      .label("target").emit(A.addi(T2, T2, 1))
      .emit(A.addi(T0, T0, -1))
      .to("done", (off) => A.beq(T0, 0, off))
      .emit(A.add(T1, T1, 9), A.sw(T1, 8, 0), A.fence_i())
      .to("again", (off) => A.jal(0, off))
      .label("done").emit(A.ecall());
    expect(p.addr("target") & 0xfffn).toBe(0xffen);
    cpu.setX(8, p.addr("target"));
    cpu.setX(9, 1n << 20n); // adds 1 to an I-type immediate
    cpu.setX(T1, BigInt(A.addi(T2, T2, 100)) - (1n << 20n));
    cpu.load(p);
    cpu.pc = base;
    expect(cpu.run(100)).toBe(cpu.EXIT_SBI);
    expect(cpu.x(T2)).toBe(1n + 100n + 101n);
  });

  it("code the host rewrites between runs is what runs next", () => {
    cpu.load([A.addi(T2, 0, 1), A.ecall()]);
    cpu.pc = RAM_BASE;
    cpu.run(10);
    expect(cpu.x(T2)).toBe(1n);
    cpu.load([A.addi(T2, 0, 2), A.ecall()]);
    cpu.pc = RAM_BASE;
    cpu.run(10);
    expect(cpu.x(T2)).toBe(2n);
  });
});
