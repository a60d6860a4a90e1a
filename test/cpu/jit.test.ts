// The translation tier (assembly/cpu/jit/): translated regions must be
// indistinguishable from the interpreter. A randomized differential test runs
// the same programs with the tier off (threshold 0) and translating every
// region on first sight (threshold 1) and compares everything architectural;
// the rules tests cover what a region's contract promises: words checked at
// entry, FENCE.I visibility, exact budgets, MMIO exits and traps before the
// access retires, timer interrupts at the same instruction.

import { describe, it, expect } from "vitest";
import { Cpu, RAM_BASE, CAUSE, INTERRUPT } from "./harness";
import * as A from "./asm";
import { CSR, Program } from "./asm";
import { JIT_STAT } from "../../src/abi.gen";

const HANDLER = RAM_BASE + 0x3000n;
const DATA = RAM_BASE + 0x10000n; // two pages of data; accesses near 0x1000 cross between them
const MMIO = 0x1000_0000n;
const { COMPILED: STAT_COMPILED, STALE: STAT_STALE, FAILED: STAT_FAILED, CHAINED: STAT_CHAINED } = JIT_STAT;

async function cpuWith(threshold: number): Promise<Cpu> {
  const cpu = await Cpu.create(1 << 20);
  cpu.ex.jitSetThreshold(threshold);
  cpu.setCsr(CSR.stvec, HANDLER);
  cpu.load([A.ecall()], HANDLER);
  return cpu;
}

/** A small deterministic PRNG (xorshift32) so every failure names a seed. */
function rng(seed: number) {
  let s = seed >>> 0 || 1;
  const next = () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s; };
  return {
    int: (n: number) => next() % n,
    big: () => (BigInt(next()) << 32n) | BigInt(next()),
    pick: <T>(a: readonly T[]) => a[next() % a.length],
  };
}

const R_TYPE = [A.add, A.sub, A.sll, A.slt, A.sltu, A.xor, A.srl, A.sra, A.or, A.and, A.addw, A.subw, A.sllw, A.srlw,
  A.sraw, A.mul, A.mulh, A.mulhsu, A.mulhu, A.div, A.divu, A.rem, A.remu, A.mulw, A.divw, A.divuw, A.remw, A.remuw];
const I_TYPE = [A.addi, A.slti, A.sltiu, A.xori, A.ori, A.andi, A.addiw];
const SHIFT64 = [A.slli, A.srli, A.srai];
const SHIFT32 = [A.slliw, A.srliw, A.sraiw];
const LOADS = [[A.lb, 1], [A.lh, 2], [A.lw, 4], [A.ld, 8], [A.lbu, 1], [A.lhu, 2], [A.lwu, 4]] as const;
const STORES = [[A.sb, 1], [A.sh, 2], [A.sw, 4], [A.sd, 8]] as const;
const BRANCHES = [A.beq, A.bne, A.blt, A.bge, A.bltu, A.bgeu];
const LOOP = 16, BASE = 20, MMIO_BASE = 21, LINK = 17;

/**
 * A random program: a loop (x16 counts down) around a body of ALU, M, loads
 * and stores (aligned, misaligned, page-crossing; some to MMIO when asked),
 * forward branches and jumps, and a computed jalr; ends with ecall.
 */
function randomProgram(r: ReturnType<typeof rng>, mmio: boolean): Program {
  const p = new Program();
  const reg = () => 1 + r.int(15);
  const body = 20 + r.int(60);
  p.label("top");
  for (let i = 0; i < body; i++) {
    const k = r.int(100);
    if (k < 30) p.emit(r.pick(R_TYPE)(reg(), reg(), reg()));
    else if (k < 45) p.emit(r.pick(I_TYPE)(reg(), reg(), r.int(4096) - 2048));
    else if (k < 50) p.emit(r.int(2) ? r.pick(SHIFT64)(reg(), reg(), r.int(64)) : r.pick(SHIFT32)(reg(), reg(), r.int(32)));
    else if (k < 53) p.emit(r.int(2) ? A.lui(reg(), r.int(1 << 20) - (1 << 19)) : A.auipc(reg(), r.int(256)));
    else if (k < 65) {
      const [op, size] = r.pick(LOADS);
      const base = mmio && r.int(8) === 0 ? MMIO_BASE : BASE;
      p.emit(op(reg(), base, r.int(2) ? 2048 - size + r.int(size) : r.int(4000) - 2048));
    } else if (k < 77) {
      const [op, size] = r.pick(STORES);
      const base = mmio && r.int(8) === 0 ? MMIO_BASE : BASE;
      p.emit(op(reg(), base, r.int(2) ? 2048 - size + r.int(size) : r.int(4000) - 2048));
    } else if (k < 90 && i + 2 < body) {
      const skip = 1 + r.int(Math.min(6, body - i - 1));
      p.emit(r.pick(BRANCHES)(reg(), reg(), 4 * (skip + 1)));
    } else if (k < 94 && i + 2 < body) {
      p.emit(A.jal(r.int(3) ? 0 : reg(), 8)).emit(r.pick(R_TYPE)(reg(), reg(), reg()));
      i++;
    } else if (k < 97 && i + 4 < body) {
      // jalr to pc + 12 through a computed address (sometimes off by 2: the trap the interpreter raises)
      p.emit(A.auipc(LINK, 0), A.addi(LINK, LINK, r.int(6) ? 12 : 14), A.jalr(reg(), LINK, 0));
      i += 2;
    } else p.emit(A.nop());
  }
  p.emit(A.addi(LOOP, LOOP, -1));
  p.to("top", (off) => A.bne(LOOP, 0, off));
  p.emit(A.ecall());
  return p;
}

/** Everything architectural a run can change. */
function state(cpu: Cpu, exit: number) {
  const mem: bigint[] = [];
  for (let off = 0n; off < 0x2000n; off += 8n) mem.push(cpu.u64(DATA + off));
  return {
    exit, pc: cpu.pc, instret: cpu.instret, regs: Array.from({ length: 32 }, (_, i) => cpu.x(i)),
    sepc: cpu.csr(CSR.sepc), scause: cpu.csr(CSR.scause), stval: cpu.csr(CSR.stval), mem,
    mmio: exit === cpu.EXIT_MEM ? [cpu.ex.memMmioVa(), cpu.ex.memMmioSize(), Boolean(cpu.ex.memMmioIsWrite())] : null,
  };
}

async function runProgram(threshold: number, seed: number, mmio: boolean, budget: number) {
  const r = rng(seed);
  const cpu = await cpuWith(threshold);
  const p = randomProgram(r, mmio);
  cpu.load(p);
  const init = Array.from({ length: 16 }, () => r.big());
  for (let i = 1; i < 16; i++) cpu.setX(i, init[i]);
  cpu.setX(LOOP, 2 + r.int(6));
  cpu.setX(BASE, DATA + 2048n); // offsets 2048 - size + 1 .. 2047 cross into DATA's second page
  cpu.setX(MMIO_BASE, MMIO);
  for (let off = 0n; off < 0x2000n; off += 8n) cpu.setU64(DATA + off, r.big());
  cpu.pc = RAM_BASE;
  const exits: ReturnType<typeof state>[] = [];
  // Several runs: MMIO exits are answered and the instruction re-executes.
  for (let i = 0; i < 6; i++) {
    const exit = cpu.run(budget);
    exits.push(state(cpu, exit));
    if (exit !== cpu.EXIT_MEM) break;
    cpu.ex.memCompleteMmio(BigInt.asIntN(64, 0x1122334455667788n * BigInt(i + 1)));
  }
  return { exits, cpu };
}

describe("translation tier: randomized against the interpreter", () => {
  const SEEDS = 60;
  it(`${SEEDS} random programs end in the same state translated and interpreted`, async () => {
    let compiled = 0;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const budget = seed % 3 === 0 ? 37 + seed * 11 : 100_000;
      const mmio = seed % 4 === 0;
      const interp = await runProgram(0, seed, mmio, budget);
      const jit = await runProgram(1, seed, mmio, budget);
      expect(jit.exits, `seed ${seed}`).toEqual(interp.exits);
      expect(interp.cpu.ex.jitStat(STAT_COMPILED), `seed ${seed}: the interpreter-only run translated`).toBe(0);
      expect(jit.cpu.ex.jitStat(STAT_FAILED), `seed ${seed}`).toBe(0);
      compiled += jit.cpu.ex.jitStat(STAT_COMPILED);
    }
    expect(compiled).toBeGreaterThan(SEEDS);
  });
});

// ---- mixed 16/32-bit streams (the C extension) ----

const C_ALU = [A.c_sub, A.c_xor, A.c_or, A.c_and, A.c_subw, A.c_addw];
/** x2 (sp) and x9 point into DATA for the compressed loads and stores; the other registers are random. */
const CSP = 2, CBASE = 9;
const MIXED_REGS = [1, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15];
const MIXED_CREGS = [8, 10, 11, 12, 13, 14, 15];

/** One instruction of a mixed program: its halfwords once the byte offsets of every item are known. */
type Item = { size: 2 | 4; encode: (at: (item: number) => number, self: number) => number[] };
const i32 = (w: number): Item => ({ size: 4, encode: () => A.w32(w) });
const i16 = (h: number): Item => ({ size: 2, encode: () => [h] });

/**
 * A random program of 32-bit and compressed instructions mixed (so 32-bit
 * ones sit at 2-aligned pcs, and some straddle the page boundary the
 * program is placed across): the 32-bit mix of randomProgram, every
 * compressed group, compressed loads and stores crossing pages, forward
 * C.BEQZ / C.BNEZ / C.J and 32-bit branches over both kinds, computed jumps
 * through JALR / C.JR / C.JALR (sometimes landing mid-instruction), a rare
 * C.EBREAK; looped by x16 and ended with ecall.
 */
function randomMixedProgram(r: ReturnType<typeof rng>): Item[] {
  const reg = () => r.pick(MIXED_REGS);
  const creg = () => r.pick(MIXED_CREGS);
  const nz6 = () => (r.int(2) ? 1 : -32) + r.int(31);
  const items: Item[] = [];
  const body = 20 + r.int(60);
  /** A forward control transfer over `skip` items to the item after them. */
  const forward = (size: 2 | 4, make: (off: number) => number, skip: number): Item => ({
    size, encode: (at, self) => { const w = make(at(self + skip + 1) - at(self)); return size === 4 ? A.w32(w) : [w]; },
  });
  for (let i = 0; i < body; i++) {
    const k = r.int(100);
    const left = body - i - 1;
    if (k < 14) items.push(i32(r.pick(R_TYPE)(reg(), reg(), reg())));
    else if (k < 20) items.push(i32(r.pick(I_TYPE)(reg(), reg(), r.int(4096) - 2048)));
    else if (k < 23) items.push(i32(r.int(2) ? r.pick(SHIFT64)(reg(), reg(), r.int(64)) : A.auipc(reg(), r.int(256))));
    else if (k < 29) {
      const [op, size] = r.pick(LOADS);
      items.push(i32(op(reg(), BASE, r.int(2) ? 2048 - size + r.int(size) : r.int(4000) - 2048)));
    } else if (k < 34) {
      const [op, size] = r.pick(STORES);
      items.push(i32(op(reg(), BASE, r.int(2) ? 2048 - size + r.int(size) : r.int(4000) - 2048)));
    } else if (k < 50) {
      const c = r.int(11);
      if (c === 0) items.push(i16(A.c_addi(reg(), nz6())));
      else if (c === 1) items.push(i16(A.c_addiw(reg(), r.int(64) - 32)));
      else if (c === 2) items.push(i16(A.c_li(reg(), r.int(64) - 32)));
      else if (c === 3) items.push(i16(A.c_lui(reg(), nz6())));
      else if (c === 4) items.push(i16(r.pick([A.c_srli, A.c_srai])(creg(), r.int(64))));
      else if (c === 5) items.push(i16(A.c_andi(creg(), r.int(64) - 32)));
      else if (c === 6) items.push(i16(r.pick(C_ALU)(creg(), creg())));
      else if (c === 7) items.push(i16(A.c_slli(reg(), r.int(64))));
      else if (c === 8) items.push(i16(r.int(2) ? A.c_mv(reg(), reg()) : A.c_add(reg(), reg())));
      else if (c === 9) items.push(i16(A.c_addi4spn(creg(), 4 * (1 + r.int(255)))));
      else items.push(i16(A.c_nop()));
    } else if (k < 62) {
      const c = r.int(8);
      if (c === 0) items.push(i16(A.c_lw(creg(), CBASE, 4 * r.int(32))));
      else if (c === 1) items.push(i16(A.c_ld(creg(), CBASE, 8 * r.int(32))));
      else if (c === 2) items.push(i16(A.c_sw(creg(), CBASE, 4 * r.int(32))));
      else if (c === 3) items.push(i16(A.c_sd(creg(), CBASE, 8 * r.int(32))));
      else if (c === 4) items.push(i16(A.c_lwsp(reg(), 4 * r.int(64))));
      else if (c === 5) items.push(i16(A.c_ldsp(reg(), 8 * r.int(64))));
      else if (c === 6) items.push(i16(A.c_swsp(reg(), 4 * r.int(64))));
      else items.push(i16(A.c_sdsp(reg(), 8 * r.int(64))));
    } else if (k < 80 && left > 2) {
      const skip = 1 + r.int(Math.min(6, left - 1));
      const c = r.int(4);
      if (c === 0) items.push(forward(4, (off) => r.pick(BRANCHES)(reg(), reg(), off), skip));
      else if (c === 1) { const rs = creg(); items.push(forward(2, (off) => A.c_beqz(rs, off), skip)); }
      else if (c === 2) { const rs = creg(); items.push(forward(2, (off) => A.c_bnez(rs, off), skip)); }
      else items.push(forward(2, (off) => A.c_j(off), skip));
    } else if (k < 86 && left > 4) {
      // auipc x17; addi x17, x17, (target - auipc) [+2 now and then: mid-instruction]; a jalr of some kind
      const miss = r.int(16) === 0 ? 2 : 0;
      const target = items.length + 3 + r.int(2);
      const self = items.length;
      items.push(i32(A.auipc(LINK, 0)));
      items.push({ size: 4, encode: (at) => A.w32(A.addi(LINK, LINK, at(target) - at(self) + miss)) });
      const c = r.int(3);
      items.push(c === 0 ? i32(A.jalr(reg(), LINK, 0)) : i16(c === 1 ? A.c_jr(LINK) : A.c_jalr(LINK)));
      i += 2;
    } else if (k < 87 && r.int(8) === 0) items.push(i16(A.c_ebreak()));
    else items.push(i32(A.nop()));
  }
  items.push(i16(A.c_addi(LOOP, -1)));
  const top = 0, self = items.length;
  items.push({ size: 4, encode: (at) => A.w32(A.bne(LOOP, 0, at(top) - at(self))) });
  items.push(i32(A.ecall()));
  return items;
}

function assemble(items: Item[]): Uint8Array {
  const offsets: number[] = [];
  let off = 0;
  for (const it of items) { offsets.push(off); off += it.size; }
  offsets.push(off);
  return A.halves(...items.flatMap((it, i) => it.encode((j) => offsets[Math.min(j, items.length)], i)));
}

async function runMixedProgram(threshold: number, seed: number, budget: number) {
  const r = rng(seed);
  const cpu = await cpuWith(threshold);
  // Placed across the page boundary at RAM_BASE + 0x1000, starting at any 2-aligned offset before it.
  const base = RAM_BASE + 0x1000n - BigInt(2 * (16 + r.int(100)));
  cpu.writeBytes(base, assemble(randomMixedProgram(r)));
  const init = Array.from({ length: 16 }, () => r.big());
  for (let i = 1; i < 16; i++) cpu.setX(i, init[i]);
  cpu.setX(LOOP, 2 + r.int(6));
  cpu.setX(BASE, DATA + 2048n);
  cpu.setX(CBASE, DATA + 0xf80n + BigInt(r.int(8))); // c.lw/c.ld offsets reach across DATA's page boundary
  cpu.setX(CSP, DATA + 0xf00n + BigInt(r.int(8)));
  for (let off = 0n; off < 0x2000n; off += 8n) cpu.setU64(DATA + off, r.big());
  cpu.pc = base;
  const exit = cpu.run(budget);
  return { end: state(cpu, exit), cpu };
}

describe("translation tier: randomized mixed 16/32-bit code against the interpreter", () => {
  const SEEDS = 80;
  it(`${SEEDS} random programs of compressed and 32-bit instructions end in the same state translated and interpreted`, async () => {
    let compiled = 0;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const budget = seed % 3 === 0 ? 29 + seed * 7 : 100_000;
      const interp = await runMixedProgram(0, seed, budget);
      const jit = await runMixedProgram(1, seed, budget);
      expect(jit.end, `seed ${seed}`).toEqual(interp.end);
      expect(interp.cpu.ex.jitStat(STAT_COMPILED), `seed ${seed}: the interpreter-only run translated`).toBe(0);
      expect(jit.cpu.ex.jitStat(STAT_FAILED), `seed ${seed}`).toBe(0);
      compiled += jit.cpu.ex.jitStat(STAT_COMPILED);
    }
    expect(compiled).toBeGreaterThan(SEEDS);
  });
});

/**
 * A loop across two regions on two pages: at PAGE_A "x5 += 3" and a jal to
 * the next page, where "x7 += x5; x6--" and a bne back; then ecall. Each
 * region's exit is its successor's entry: they chain.
 */
const PAGE_A = RAM_BASE + 0x800n, PAGE_B = RAM_BASE + 0x1000n;
function twoPageLoop(): { a: number[]; b: number[] } {
  return {
    a: [A.addi(5, 5, 3), A.jal(0, 0x800 - 4)],
    b: [A.add(7, 7, 5), A.addi(6, 6, -1), A.bne(6, 0, -(0x800 + 8)), A.ecall()],
  };
}

async function twoPageCpu(threshold: number, iterations: bigint): Promise<Cpu> {
  const cpu = await cpuWith(threshold);
  const { a, b } = twoPageLoop();
  cpu.load(a, PAGE_A);
  cpu.load(b, PAGE_B);
  cpu.setX(6, iterations);
  cpu.pc = PAGE_A;
  return cpu;
}

describe("translation tier: chaining", () => {
  it("a loop across two regions on two pages runs chained (no return to the tier between them), as interpreted", async () => {
    const ends = [];
    for (const threshold of [0, 1]) {
      const cpu = await twoPageCpu(threshold, 1000n);
      expect(cpu.run(1_000_000)).toBe(cpu.EXIT_SBI);
      ends.push([cpu.pc, cpu.instret, cpu.x(5), cpu.x(6), cpu.x(7)]);
      if (threshold === 1) {
        expect(cpu.ex.jitStat(STAT_COMPILED)).toBe(2);
        // every pass but the first enters A by a chain from B, and B by one from A
        expect(cpu.ex.jitStat(STAT_CHAINED)).toBeGreaterThanOrEqual(2 * 999);
      } else expect(cpu.ex.jitStat(STAT_CHAINED)).toBe(0);
    }
    expect(ends[1]).toEqual(ends[0]);
    expect(ends[0][4]).toBe(3n * (1000n * 1001n / 2n));
  });

  it("a budget ends a chained loop at exactly that instruction, as the interpreter does", async () => {
    for (const budget of [1, 2, 3, 4, 5, 6, 7, 11, 12, 13, 500, 501, 502, 503, 504]) {
      const ends = [];
      for (const threshold of [0, 1]) {
        const cpu = await twoPageCpu(threshold, 1000n);
        expect(cpu.run(budget)).toBe(cpu.EXIT_BUDGET);
        ends.push([cpu.pc, cpu.instret, cpu.x(5), cpu.x(6), cpu.x(7)]);
      }
      expect(ends[1], `budget ${budget}`).toEqual(ends[0]);
      expect(ends[0][1]).toBe(BigInt(budget));
    }
  });

  it("a timer interrupt arrives at the same instruction in a chained loop as interpreted", async () => {
    for (const when of [40n, 77n, 401n]) {
      const seen = [];
      for (const threshold of [0, 1]) {
        const cpu = await twoPageCpu(threshold, 1000n);
        cpu.setCsr(CSR.sie, 1n << 5n);
        cpu.setCsr(CSR.sstatus, 1n << 1n);
        cpu.setCsr(CSR.stimecmp, when);
        expect(cpu.run(100_000)).toBe(cpu.EXIT_SBI); // the handler's ecall
        seen.push([cpu.csr(CSR.scause), cpu.csr(CSR.sepc), cpu.instret, cpu.x(5), cpu.x(6), cpu.x(7)]);
        if (threshold === 1) expect(cpu.ex.jitStat(STAT_CHAINED), `stimecmp ${when}`).toBeGreaterThan(0);
      }
      expect(seen[1], `stimecmp ${when}`).toEqual(seen[0]);
      expect(seen[0][0]).toBe(INTERRUPT | 5n);
    }
  });

  it("a chained successor whose code changed is not entered: the new code runs", async () => {
    const cpu = await twoPageCpu(1, 5n);
    expect(cpu.run(1000)).toBe(cpu.EXIT_SBI);
    const chained = cpu.ex.jitStat(STAT_CHAINED);
    expect(chained).toBeGreaterThan(0);
    cpu.setU32(PAGE_B, A.sub(7, 7, 5) >>> 0); // x7 -= x5
    cpu.setX(5, 0n);
    cpu.setX(6, 5n);
    cpu.setX(7, 0n);
    cpu.pc = PAGE_A;
    expect(cpu.run(1000)).toBe(cpu.EXIT_SBI);
    expect(cpu.x(7)).toBe(-3n * 15n & 0xffffffffffffffffn);
    expect(cpu.ex.jitStat(STAT_STALE)).toBe(1);
  });

  it("a region whose cache entry another pc took is not chained to, even where that pc's code is the same", async () => {
    // C: B's words again, 32 KiB further: the same cache entry (it holds one
    // pc of those 16 K two-byte steps). Entered for B's pc, C's translation
    // would branch back 32 KiB too far.
    const cpu = await twoPageCpu(1, 3n);
    const C = PAGE_B + 0x8000n;
    cpu.load(twoPageLoop().b, C);
    cpu.load([A.ecall()], PAGE_A + 0x8000n); // where C's bne goes
    expect(cpu.run(1000)).toBe(cpu.EXIT_SBI);
    expect(cpu.x(7)).toBe(3n + 6n + 9n);
    cpu.setX(6, 1n);
    cpu.pc = C; // C's translation replaces B's in their entry
    expect(cpu.run(1000)).toBe(cpu.EXIT_SBI);
    expect(cpu.pc).toBe(C + 12n);
    cpu.setX(5, 0n);
    cpu.setX(6, 3n);
    cpu.setX(7, 0n);
    cpu.pc = PAGE_A;
    expect(cpu.run(1000)).toBe(cpu.EXIT_SBI);
    expect([cpu.pc, cpu.x(7)]).toEqual([PAGE_B + 12n, 3n + 6n + 9n]);
  });
});

/** A counting loop: x5 += x6 * 3 while x6 counts down; ends with ecall. */
function countLoop(): Program {
  return new Program()
    .label("loop")
    .emit(A.slli(7, 6, 1), A.add(7, 7, 6), A.add(5, 5, 7), A.sd(5, 20, 0), A.addi(6, 6, -1))
    .to("loop", (off) => A.bne(6, 0, off))
    .emit(A.ecall());
}

describe("translation tier: rules", () => {
  it("a pc reached by jumps jitThreshold times gets its region translated, and the result is the interpreter's", async () => {
    const cpu = await cpuWith(64);
    cpu.load(countLoop());
    cpu.setX(6, 1000n);
    cpu.setX(20, DATA);
    cpu.pc = RAM_BASE;
    expect(cpu.run(1_000_000)).toBe(cpu.EXIT_SBI);
    expect(cpu.x(5)).toBe(3n * (1000n * 1001n / 2n));
    expect(cpu.u64(DATA)).toBe(cpu.x(5));
    expect(cpu.instret).toBe(6000n + 0n);
    expect(cpu.ex.jitStat(STAT_COMPILED)).toBe(1);
  });

  it("an access the region's probe misses is taken by the interpreter, and the loop re-enters the same translation", async () => {
    // Every pass stores to and loads from a page not touched before: each access misses its spte once.
    const p = new Program()
      .label("loop")
      .emit(A.sd(6, 20, 8), A.ld(7, 20, 8), A.add(5, 5, 7), A.lui(8, 1), A.add(20, 20, 8), A.addi(6, 6, -1))
      .to("loop", (off) => A.bne(6, 0, off))
      .emit(A.ecall());
    const ends = [];
    for (const threshold of [0, 1]) {
      const cpu = await cpuWith(threshold);
      cpu.load(p);
      cpu.setX(6, 12n);
      cpu.setX(20, DATA);
      cpu.pc = RAM_BASE;
      expect(cpu.run(1000)).toBe(cpu.EXIT_SBI);
      expect(cpu.x(5)).toBe(78n);
      for (let i = 0n; i < 12n; i++) expect(cpu.u64(DATA + i * 0x1000n + 8n)).toBe(12n - i);
      // One region: the interpreter took each missed access and went on to the branch, whose target is the loop.
      expect(cpu.ex.jitStat(STAT_COMPILED)).toBe(threshold === 0 ? 0 : 1);
      ends.push([cpu.pc, cpu.instret, cpu.x(20)]);
    }
    expect(ends[1]).toEqual(ends[0]);
  });

  it("a translation whose words changed is dropped at entry and the new code runs", async () => {
    const cpu = await cpuWith(1);
    cpu.load(countLoop());
    cpu.setX(6, 10n);
    cpu.setX(20, DATA);
    cpu.pc = RAM_BASE;
    expect(cpu.run(1000)).toBe(cpu.EXIT_SBI);
    expect(cpu.x(5)).toBe(165n);
    cpu.setU32(RAM_BASE + 4n, A.sub(7, 7, 6) >>> 0); // x7 = 2*x6 - x6
    cpu.setX(5, 0n);
    cpu.setX(6, 10n);
    cpu.pc = RAM_BASE;
    expect(cpu.run(1000)).toBe(cpu.EXIT_SBI);
    expect(cpu.x(5)).toBe(55n);
    expect(cpu.ex.jitStat(STAT_STALE)).toBeGreaterThanOrEqual(1);
  });

  it("a translation checks at entry exactly the bytes of its 16- and 32-bit instructions: a changed last halfword drops it", async () => {
    const cpu = await cpuWith(1);
    // c.li t0,1 | c.addi t0,2 | addi t1,t0,0 | c.addi t0,4 | ecall: a region of 10 bytes (8, then a 2-byte tail)
    const code = (last: number) => A.halves(A.c_li(5, 1), A.c_addi(5, 2), ...A.w32(A.addi(6, 5, 0)), last, ...A.w32(A.ecall()));
    cpu.writeBytes(RAM_BASE, code(A.c_addi(5, 4)));
    cpu.pc = RAM_BASE;
    expect(cpu.run(100)).toBe(cpu.EXIT_SBI);
    expect([cpu.x(5), cpu.x(6), cpu.instret, cpu.pc]).toEqual([7n, 3n, 4n, RAM_BASE + 10n]);
    expect(cpu.ex.jitStat(STAT_COMPILED)).toBe(1);
    cpu.writeBytes(RAM_BASE, code(A.c_addi(5, 8)));
    cpu.pc = RAM_BASE;
    expect(cpu.run(100)).toBe(cpu.EXIT_SBI);
    expect([cpu.x(5), cpu.x(6)]).toEqual([11n, 3n]);
    expect(cpu.ex.jitStat(STAT_STALE)).toBe(1);
  });

  it("code the guest writes is executed after its FENCE.I", async () => {
    const cpu = await cpuWith(1);
    // Each pass runs the word at "top", then overwrites it with addi x5,x5,100 and executes fence.i.
    const p = new Program()
      .label("top")
      .emit(A.addi(5, 5, 1), A.sw(8, 9, 0), A.fence_i(), A.addi(6, 6, -1))
      .to("top", (off) => A.bne(6, 0, off))
      .emit(A.ecall());
    cpu.load(p);
    cpu.setX(9, p.addr("top"));
    cpu.setX(8, BigInt(A.addi(5, 5, 100) >>> 0));
    cpu.setX(6, 3n);
    cpu.pc = RAM_BASE;
    expect(cpu.run(1000)).toBe(cpu.EXIT_SBI);
    expect(cpu.x(5)).toBe(1n + 100n + 100n);
    expect(cpu.ex.jitStat(STAT_STALE)).toBe(1);
  });

  it("a budget ends a translated loop at exactly that instruction, as the interpreter does", async () => {
    for (const budget of [1, 2, 5, 6, 7, 13, 59, 60, 61, 600]) {
      const ends = [];
      for (const threshold of [0, 1]) {
        const cpu = await cpuWith(threshold);
        cpu.load(countLoop());
        cpu.setX(6, 1000n);
        cpu.setX(20, DATA);
        cpu.pc = RAM_BASE;
        expect(cpu.run(budget)).toBe(cpu.EXIT_BUDGET);
        ends.push([cpu.pc, cpu.instret, cpu.x(5), cpu.x(6), cpu.x(7)]);
      }
      expect(ends[1], `budget ${budget}`).toEqual(ends[0]);
      expect(ends[0][1]).toBe(BigInt(budget));
    }
  });

  it("MULH, MULHSU and MULHU computed inline equal the high half of the exact 128-bit product", async () => {
    const cpu = await cpuWith(1);
    cpu.load([A.mulh(7, 5, 6), A.mulhsu(8, 5, 6), A.mulhu(9, 5, 6), A.ecall()]);
    const r = rng(19);
    const edges = [0n, 1n, 2n, 0xffffffffn, 0x100000000n, 0x7fffffffffffffffn, 0x8000000000000000n, 0xffffffffffffffffn,
      0xfffffffeffffffffn, 0x80000000n, 0xffffffff80000000n];
    const values = [...edges, ...Array.from({ length: 24 }, () => r.big())];
    const s64 = (v: bigint) => BigInt.asIntN(64, v), u64 = (v: bigint) => BigInt.asUintN(64, v);
    for (const a of values) {
      for (const b of values) {
        cpu.setX(5, a);
        cpu.setX(6, b);
        cpu.pc = RAM_BASE;
        expect(cpu.run(100)).toBe(cpu.EXIT_SBI);
        const want = [u64((s64(a) * s64(b)) >> 64n), u64((s64(a) * b) >> 64n), (a * b) >> 64n];
        expect([cpu.x(7), cpu.x(8), cpu.x(9)], `${a} * ${b}`).toEqual(want);
      }
    }
    expect(cpu.ex.jitStat(STAT_COMPILED)).toBe(1);
  });

  it("a branch over one instruction (a select in translated code) retires it only when not taken; budgets end exactly as interpreted", async () => {
    // x7 = x6 & 1; skip "x5 += x6" when it is 0; x6 counts down.
    const p = new Program()
      .label("loop")
      .emit(A.andi(7, 6, 1), A.beq(7, 0, 8), A.add(5, 5, 6), A.addi(6, 6, -1))
      .to("loop", (off) => A.bne(6, 0, off))
      .emit(A.ecall());
    for (const budget of [2, 3, 4, 7, 8, 9, 10, 11, 99, 100, 101, 4000]) {
      const ends = [];
      for (const threshold of [0, 1]) {
        const cpu = await cpuWith(threshold);
        cpu.load(p);
        cpu.setX(6, 100n);
        cpu.pc = RAM_BASE;
        const exit = cpu.run(budget);
        ends.push([exit, cpu.pc, cpu.instret, cpu.x(5), cpu.x(6), cpu.x(7)]);
      }
      expect(ends[1], `budget ${budget}`).toEqual(ends[0]);
    }
  });

  it("an MMIO load in a translated region exits before it retires, with the earlier instructions' results stored", async () => {
    const cpu = await cpuWith(1);
    cpu.load([A.addi(5, 0, 7), A.addi(6, 5, 1), A.ld(7, 21, 8), A.add(8, 7, 6), A.ecall()]);
    cpu.setX(21, MMIO);
    cpu.pc = RAM_BASE;
    expect(cpu.run(100)).toBe(cpu.EXIT_MEM);
    expect(cpu.ex.jitStat(STAT_COMPILED)).toBe(1);
    expect([cpu.pc, cpu.instret, cpu.x(5), cpu.x(6), cpu.x(7)]).toEqual([RAM_BASE + 8n, 2n, 7n, 8n, 0n]);
    expect([cpu.ex.memMmioVa(), cpu.ex.memMmioSize(), Boolean(cpu.ex.memMmioIsWrite())]).toEqual([MMIO + 8n, 8, false]);
    cpu.ex.memCompleteMmio(1000n);
    expect(cpu.run(100)).toBe(cpu.EXIT_SBI);
    expect([cpu.x(7), cpu.x(8), cpu.instret]).toEqual([1000n, 1008n, 4n]);
  });

  it("an MMIO store in a translated region exits before it retires; nothing after it ran", async () => {
    const cpu = await cpuWith(1);
    cpu.load([A.addi(5, 0, 7), A.sd(5, 21, 0), A.addi(6, 0, 1), A.ecall()]);
    cpu.setX(21, 0x10n); // below RAM, no slot: MMIO
    cpu.pc = RAM_BASE;
    expect(cpu.run(100)).toBe(cpu.EXIT_MEM);
    expect([cpu.pc, cpu.instret, cpu.x(5), cpu.x(6)]).toEqual([RAM_BASE + 4n, 1n, 7n, 0n]);
    expect(Boolean(cpu.ex.memMmioIsWrite())).toBe(true);
  });

  it("a timer interrupt arrives at the same instruction translated and interpreted", async () => {
    const seen = [];
    for (const threshold of [0, 1]) {
      const cpu = await cpuWith(threshold);
      cpu.load(countLoop());
      cpu.setX(6, 1000n);
      cpu.setX(20, DATA);
      cpu.setCsr(CSR.sie, 1n << 5n);
      cpu.setCsr(CSR.sstatus, 1n << 1n);
      cpu.setCsr(CSR.stimecmp, 77n);
      cpu.pc = RAM_BASE;
      expect(cpu.run(100_000)).toBe(cpu.EXIT_SBI); // the handler's ecall
      seen.push([cpu.csr(CSR.scause), cpu.csr(CSR.sepc), cpu.instret, cpu.x(5), cpu.x(6)]);
    }
    expect(seen[1]).toEqual(seen[0]);
    expect(seen[0][0]).toBe(INTERRUPT | 5n);
  });

  it("jumps and branches from a translated region to 2-aligned compressed code land there, as interpreted", async () => {
    const outs = [];
    for (const threshold of [0, 1]) {
      const cpu = await cpuWith(threshold);
      // 0: addi t0,3 | 4: auipc t1 | 8: addi t1,t1,18 (22) | 12: jalr ra,t1 | 16: addi t0,9
      // 20: c.nop | 22: c.li t0,7 | 24: beq x0,x0,+10 (34) | 28..: c.nop x3 | 34: c.addi t0,1 | 36: ecall
      cpu.load([A.addi(5, 0, 3), A.auipc(6, 0), A.addi(6, 6, 18), A.jalr(1, 6, 0), A.addi(5, 0, 9),
        A.c_nop() | (A.c_li(5, 7) << 16), A.beq(0, 0, 10), A.c_nop() | (A.c_nop() << 16),
        A.c_nop() | (A.c_addi(5, 1) << 16), A.ecall()]);
      cpu.pc = RAM_BASE;
      expect(cpu.run(100)).toBe(cpu.EXIT_SBI);
      outs.push([cpu.pc, cpu.x(1), cpu.x(5), cpu.instret]);
    }
    expect(outs[1]).toEqual(outs[0]);
    expect(outs[0]).toEqual([RAM_BASE + 36n, RAM_BASE + 16n, 8n, 7n]);
  });
});
