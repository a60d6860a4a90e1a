// The dirtier guest (guests/dirtier), the workload of the migration and
// snapshot tests: it dirties at its configured rate in guest time (after a
// fill of every page at full speed, when asked), answers a
// verify request through the mailbox, and its memory matches the host's
// replay (test/model/dirtier.ts). A flipped byte, a page lost to zeros, a
// stale page and a damaged table entry are each caught by the guest's own
// verify and by the model, naming exactly that page; 2 and 4 harts each
// dirty their own partition; moved by hand to a fresh VM (RAM, registers,
// CSRs) it goes on and verifies ok, or reports the one page the copy left
// stale; with dirty logging on, the pages KVM reports between two harvests
// are the pages the model says the guest wrote.
import { describe, it, expect } from "vitest";
import { readFileSync } from "node:fs";
import { Machine, riscv, type RunResult } from "../src/index.js";
import { openKvm } from "./helpers.js";
import { DirtierModel, type DirtierConfig } from "./model/dirtier.js";
import {
  writeDirtierConfig, readDirtierStatus, requestVerify, verifyPending, dirtierVerifyLine, dirtierTableGpa,
  dirtierRegionFor, DIRTIER_CONTROL, DIRTIER_TABLE, DIRTIER_BAD_PAGES, DIRTIER_BAD_TABLE, DIRTIER_BAD_MEMORY,
  DIRTIER_STATE_RUNNING, PAGE_SIZE,
// @ts-expect-error plain JS module without types
} from "../guests/dirtier/reference.mjs";

const image = new Uint8Array(readFileSync(new URL("../guests/dirtier/dirtier.bin", import.meta.url)));
const RAM = 0x80000000n;
const BASE = 0x80400000n;
/** Guest time: 10 instructions per tick of the 10 MHz time CSR (assembly/cpu/timer.ts). */
const TICKS_PER_SECOND = 10_000_000n;

interface Status {
  mailbox: bigint; state: bigint; verifies: bigint; result: bigint; bad: bigint; firstBad: bigint; checked: bigint;
  ops: bigint; harts: { ops: bigint; running: bigint; x: bigint; idle: bigint; t0: bigint; tLast: bigint; first: bigint; count: bigint }[];
}
const status = (m: Machine) => readDirtierStatus(m.vm) as Status;

async function boot(cfg: DirtierConfig, opts: { memSize?: bigint; dirtyLog?: boolean } = {}): Promise<Machine> {
  const harts = cfg.harts ?? 1;
  // A short turn: the guest never exits by itself, and run() checks its budget between exits.
  const m = await Machine.create({ kvm: await openKvm(), memSize: opts.memSize ?? 8n << 20n, vcpus: harts, turn: 5000,
    dirtyLog: opts.dirtyLog });
  writeDirtierConfig(m.vm, cfg);
  m.load(image);
  return m;
}

/** Runs in steps until done() holds; fails if the guest stops or the budget runs out. */
function runUntil(m: Machine, done: () => boolean, budget = 50_000_000n, step = 50_000n): void {
  for (let used = 0n; !done(); ) {
    if (used >= budget) throw new Error(`not done after ${used} instructions: ${m.output}`);
    const r: RunResult = m.run({ maxInstructions: step });
    if (r.stop !== "limit") throw new Error(`run stopped: ${r.stop} ${r.reason} ${m.output}`);
    used += r.instructions;
  }
}

/** Posts a verify request and runs until the guest has served it; returns the status after. */
function verify(m: Machine): Status {
  const before = status(m).verifies;
  requestVerify(m.vm);
  runUntil(m, () => !verifyPending(m.vm));
  const s = status(m);
  expect(s.verifies).toBe(before + 1n);
  return s;
}

const lastLine = (m: Machine) => m.output.split("\n").at(-2) + "\n";

function flipByte(m: Machine, gpa: bigint): void {
  const b = m.vm.readGuest(gpa, 1);
  m.vm.writeGuest(gpa, new Uint8Array([b[0] ^ 0x40]));
}

const pageGpa = (p: number) => BASE + BigInt(p) * PAGE_SIZE;

describe("dirtier guest: dirtying at a set rate", () => {
  it("starts, prints its start line, and every hart's status slot says where it works", async () => {
    const m = await boot({ seed: 1n, base: BASE, pages: 100, harts: 3 });
    runUntil(m, () => status(m).harts.length === 3 && status(m).harts.every((h) => h.ops > 10n));
    expect(m.output).toBe("dirtier start harts=3 pages=100 rate=0 write=word\n");
    const s = status(m);
    expect(s.state).toBe(DIRTIER_STATE_RUNNING);
    expect(s.harts.map((h) => [h.first, h.count])).toEqual([[0n, 33n], [33n, 33n], [66n, 34n]]);
    m.close();
  });

  it.each([["word", false, 50_000n], ["page", true, 2_000n]])(
    "%s writes: ops = rate x the guest time since the start, within one op; unlimited is far faster",
    async (_, page, rate) => {
      const m = await boot({ seed: 2n, base: BASE, pages: 64, rate, page });
      runUntil(m, () => status(m).ops >= 200n);
      const h = status(m).harts[0];
      const due = (rate * (h.tLast - h.t0)) / TICKS_PER_SECOND;
      expect(h.ops >= due - 1n && h.ops <= due + 1n, `ops ${h.ops}, due ${due}`).toBe(true);
      expect(h.idle).toBeGreaterThan(0n); // it waited for the rate
      // The same instructions without a rate.
      const free = await boot({ seed: 2n, base: BASE, pages: 64, page });
      runUntil(free, () => {
        const f = status(free).harts[0];
        return f !== undefined && f.tLast - f.t0 >= h.tLast - h.t0;
      }, 500_000_000n);
      expect(status(free).ops).toBeGreaterThan(5n * h.ops);
      m.close();
      free.close();
    });
});

describe("dirtier guest: the fill", () => {
  it("each hart's first ops rewrite its pages once, in order, at full speed; then it dirties at its rate; no page is left zero; the model agrees", async () => {
    const cfg = { seed: 13n, base: BASE, pages: 40, harts: 2, rate: 2_000n, fill: true };
    const m = await boot(cfg);
    // 20 whole pages per hart: ~160,000 instructions each; at the rate they would take 1,000,000 (20 x 50,000).
    runUntil(m, () => status(m).harts.length === 2 && status(m).harts.every((h) => h.ops >= h.count), 600_000n, 10_000n);
    runUntil(m, () => status(m).harts.every((h) => h.ops >= h.count + 20n));
    expect(m.output).toBe("dirtier start harts=2 pages=40 rate=2000 write=word fill\n");
    const model = new DirtierModel(cfg);
    expect(model.check(m.vm)).toEqual({ pages: [], table: [], harts: [] });
    expect([...model.pagesOf(0, 0n, 20n)]).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect([...model.pagesOf(1, 0n, 20n)]).toEqual(Array.from({ length: 20 }, (_, i) => 20 + i));
    const region = m.vm.readGuest(BASE, 40 * Number(PAGE_SIZE));
    for (let p = 0; p < 40; p++) {
      expect(region.subarray(p * 4096, (p + 1) * 4096).some((b) => b !== 0), `page ${p}`).toBe(true);
    }
    for (const h of status(m).harts) expect(h.idle).toBeGreaterThan(0n); // after the fill it waits for the rate
    expect(verify(m).result).toBe(0n);
    m.close();
  });
});

describe("dirtier guest: verify on request", () => {
  it.each([["word", false], ["page", true]])("%s writes: a verify request is answered ok and dirtying goes on; the model agrees with memory",
    async (_, page) => {
      const cfg = { seed: 3n, base: BASE, pages: 48, page };
      const m = await boot(cfg);
      runUntil(m, () => status(m).ops >= (page ? 300n : 5000n));
      const s = verify(m);
      expect([s.result, s.bad, s.checked, s.firstBad]).toEqual([0n, 0n, 48n, (1n << 64n) - 1n]);
      expect(lastLine(m)).toBe("dirtier verify ok pages=48\n");
      const ops = s.ops;
      runUntil(m, () => status(m).ops > ops + 100n);
      const model = new DirtierModel(cfg);
      expect(model.check(m.vm)).toEqual({ pages: [], table: [], harts: [] });
      expect(model.writtenPages().size).toBe(48); // every page was dirtied, so every page was compared with data
      m.close();
    });

  it("the request is seen before the next op: a verify costs no more than the check of the region and one op", async () => {
    const m = await boot({ seed: 4n, base: BASE, pages: 16 });
    runUntil(m, () => status(m).ops >= 1000n);
    const ops = status(m).ops;
    requestVerify(m.vm);
    runUntil(m, () => !verifyPending(m.vm), 16n * 512n * 20n + 200_000n, 1000n);
    expect(status(m).ops - ops).toBeLessThan(1000n); // the few ops of the last turns, not a thousand
    m.close();
  });

  it("a flipped byte in a dirtied page: the guest reports exactly that page, and so does the model", async () => {
    const cfg = { seed: 5n, base: BASE, pages: 40 };
    const m = await boot(cfg);
    runUntil(m, () => status(m).ops >= 3000n);
    const gpa = pageGpa(17) + 1234n;
    flipByte(m, gpa);
    const model = new DirtierModel(cfg);
    expect(model.check(m.vm)).toEqual({ pages: [17], table: [], harts: [] });
    const s = verify(m);
    expect([s.result, s.bad, s.firstBad]).toEqual([DIRTIER_BAD_PAGES | DIRTIER_BAD_MEMORY, 1n, pageGpa(17)]);
    expect(lastLine(m)).toBe(dirtierVerifyLine(s));
    expect(lastLine(m)).toBe(`dirtier verify BAD pages=1 first=0x${pageGpa(17).toString(16).padStart(16, "0")} result=5\n`);
    m.close();
  });

  it("a stale page (its contents of an earlier moment, the table current) and a page lost to zeros are both reported", async () => {
    const cfg = { seed: 6n, base: BASE, pages: 32 };
    const m = await boot(cfg);
    runUntil(m, () => status(m).ops >= 2000n);
    const old = m.vm.readGuest(pageGpa(9), Number(PAGE_SIZE));
    runUntil(m, () => status(m).ops >= 4000n);
    m.vm.writeGuest(pageGpa(9), old);
    m.vm.writeGuest(pageGpa(21), new Uint8Array(Number(PAGE_SIZE)));
    expect(new DirtierModel(cfg).check(m.vm)).toEqual({ pages: [9, 21], table: [], harts: [] });
    const s = verify(m);
    expect([s.result, s.bad, s.firstBad]).toEqual([DIRTIER_BAD_PAGES | DIRTIER_BAD_MEMORY, 2n, pageGpa(9)]);
    m.close();
  });

  it("a page stale together with its table entry (both of an earlier moment): only the sums show it, bad = 0; the model names the page and the entry", async () => {
    const cfg = { seed: 14n, base: BASE, pages: 32 };
    const m = await boot(cfg);
    runUntil(m, () => status(m).ops >= 2000n);
    const oldPage = m.vm.readGuest(pageGpa(11), Number(PAGE_SIZE)), oldEntry = m.vm.readGuest(dirtierTableGpa(11), 8);
    runUntil(m, () => status(m).ops >= 4000n);
    m.vm.writeGuest(pageGpa(11), oldPage);
    m.vm.writeGuest(dirtierTableGpa(11), oldEntry);
    expect(new DirtierModel(cfg).check(m.vm)).toEqual({ pages: [11], table: [11], harts: [] });
    const s = verify(m);
    expect([s.result, s.bad]).toEqual([DIRTIER_BAD_TABLE | DIRTIER_BAD_MEMORY, 0n]);
    expect(lastLine(m)).toBe(`dirtier verify BAD pages=0 first=0xffffffffffffffff result=6\n`);
    m.close();
  });

  it("a damaged table entry: the guest reports that page and the table's sum, memory's sum still right; the model names the entry", async () => {
    const cfg = { seed: 7n, base: BASE, pages: 40 };
    const m = await boot(cfg);
    runUntil(m, () => status(m).ops >= 3000n);
    flipByte(m, dirtierTableGpa(30) + 3n);
    expect(new DirtierModel(cfg).check(m.vm)).toEqual({ pages: [], table: [30], harts: [] });
    const s = verify(m);
    expect([s.result, s.bad, s.firstBad]).toEqual([DIRTIER_BAD_PAGES | DIRTIER_BAD_TABLE, 1n, pageGpa(30)]);
    m.close();
  });

  it("limit: hart 0 verifies after that many ops and shuts down, reason 0; with a flipped byte, reason 1", async () => {
    const m = await boot({ seed: 8n, base: BASE, pages: 24, limit: 2000n });
    let r = m.run({ maxInstructions: 10_000_000n });
    expect([r.stop, r.reason]).toEqual(["shutdown", 0]);
    expect(status(m).harts[0].ops).toBe(2000n);
    expect(lastLine(m)).toBe("dirtier verify ok pages=24\n");
    m.close();

    const bad = await boot({ seed: 8n, base: BASE, pages: 24 });
    runUntil(bad, () => status(bad).ops >= 1000n);
    flipByte(bad, pageGpa(3) + 8n);
    requestVerify(bad.vm, true); // verify, then shut down
    r = bad.run({ maxInstructions: 10_000_000n });
    expect([r.stop, r.reason]).toEqual(["shutdown", 1]);
    expect(status(bad).bad).toBe(1n);
    bad.close();
  });
});

/**
 * A single-hart switch-over done by hand, as a migration leaves it: a fresh VM
 * with the source's RAM (`ram`, or the source's now) and the vCPU's registers,
 * CSRs and timer compare; its clock is a fresh vCPU's (behind the source's).
 */
async function moveTo(src: Machine, ram = src.vm.readGuest(RAM, Number(src.memSize))): Promise<Machine> {
  const dst = await Machine.create({ kvm: await openKvm(), memSize: src.memSize, turn: 5000 });
  dst.vm.writeGuest(RAM, ram);
  dst.vcpu.setRegs(src.vcpu.getRegs());
  for (const c of riscv.CSR_NAMES) dst.vcpu.setCsr(c, src.vcpu.getCsr(c));
  dst.vcpu.setOneReg(riscv.REG_TIMER_COMPARE, src.vcpu.getOneReg(riscv.REG_TIMER_COMPARE));
  return dst;
}

describe("dirtier guest: resumed in another VM", () => {
  it("moved mid-run with all of its memory: it goes on with its own stream at its rate (no burst for the clock set back), verify ok, the model agrees", async () => {
    const cfg = { seed: 11n, base: BASE, pages: 64, rate: 100_000n };
    const src = await boot(cfg);
    runUntil(src, () => status(src).ops >= 1500n);
    const dst = await moveTo(src);
    src.close();
    const moved = status(dst).harts[0];
    expect(dst.vcpu.time).toBeLessThan(moved.tLast);
    runUntil(dst, () => status(dst).ops >= moved.ops + 500n);
    const h = status(dst).harts[0];
    // After the move the bucket starts empty: ops since = rate x the destination's time, within one op.
    const due = (cfg.rate * h.tLast) / TICKS_PER_SECOND;
    expect(h.ops - moved.ops >= due - 1n && h.ops - moved.ops <= due + 1n, `ops ${h.ops - moved.ops}, due ${due}`).toBe(true);
    const s = verify(dst);
    expect([s.result, s.checked]).toEqual([0n, 64n]);
    expect(new DirtierModel(cfg).check(dst.vm)).toEqual({ pages: [], table: [], harts: [] });
    dst.close();
  });

  it("moved with one page the copy left stale (an earlier round's copy): the guest reports exactly that page, and so does the model", async () => {
    const cfg = { seed: 12n, base: BASE, pages: 64 };
    const src = await boot(cfg);
    runUntil(src, () => status(src).ops >= 2000n);
    const early = src.vm.readGuest(RAM, Number(src.memSize));
    const model = new DirtierModel(cfg);
    model.advanceTo(0, status(src).ops + 1n);
    const from = status(src).ops + 1n;
    runUntil(src, () => status(src).ops >= 4000n);
    model.advanceTo(0, status(src).ops);
    const changed = [...model.pagesOf(0, from, status(src).ops)].sort((a, b) => a - b);
    const stale = changed[changed.length >> 1];
    const ram = src.vm.readGuest(RAM, Number(src.memSize));
    const off = Number(pageGpa(stale) - RAM);
    ram.set(early.subarray(off, off + Number(PAGE_SIZE)), off);
    const dst = await moveTo(src, ram);
    src.close();
    expect(new DirtierModel(cfg).check(dst.vm).pages).toEqual([stale]);
    const s = verify(dst);
    expect([s.result, s.bad, s.firstBad]).toEqual([DIRTIER_BAD_PAGES | DIRTIER_BAD_MEMORY, 1n, pageGpa(stale)]);
    dst.close();
  });
});

describe("dirtier guest: several harts", () => {
  it.each([2, 4])("%i harts each dirty their own partition; verify ok, the model agrees; a flip in the last hart's partition is reported", async (harts) => {
    const cfg = { seed: 9n, base: BASE, pages: 64, harts, rate: 200_000n };
    const m = await boot(cfg);
    runUntil(m, () => status(m).harts.length === harts && status(m).harts.every((h) => h.ops >= 500n), 200_000_000n);
    let s = verify(m);
    expect([s.result, s.checked]).toEqual([0n, 64n]);
    const model = new DirtierModel(cfg);
    expect(model.check(m.vm)).toEqual({ pages: [], table: [], harts: [] });
    for (let h = 0; h < harts; h++) {
      const { first, count } = model.hartState(h);
      const mine = [...model.pagesOf(h, 0n, model.hartState(h).ops)];
      expect(mine.every((p) => p >= first && p < first + count)).toBe(true);
      expect(mine.length).toBeGreaterThan(count / 2);
    }
    const last = 64 - 1;
    flipByte(m, pageGpa(last) + 4095n);
    s = verify(m);
    expect([s.result, s.bad, s.firstBad]).toEqual([DIRTIER_BAD_PAGES | DIRTIER_BAD_MEMORY, 1n, pageGpa(last)]);
    expect(model.check(m.vm).pages).toEqual([last]);
    m.close();
  });
});

describe("dirtier guest with dirty logging", () => {
  it.each([1, 3])("%i hart(s): the region pages reported dirty between two harvests are the pages the model's ops wrote", async (harts) => {
    const cfg = { seed: 10n, base: BASE, pages: 512, harts, rate: 100_000n };
    const m = await boot(cfg, { dirtyLog: true });
    const model = new DirtierModel(cfg);
    runUntil(m, () => status(m).harts.length === harts);
    m.vm.getDirtyLog(0); // the start: everything before is not this interval's
    for (let round = 0; round < 5; round++) {
      const before = status(m).harts.map((h) => h.ops);
      runUntil(m, () => status(m).ops >= before.reduce((a, b) => a + b) + 150n);
      const bitmap = m.vm.getDirtyLog(0);
      const after = status(m).harts.map((h) => h.ops);
      const dirty = (gpa: bigint) => {
        const i = Number((gpa - RAM) / PAGE_SIZE);
        return (bitmap[i >> 3] & (1 << (i & 7))) !== 0;
      };
      const reported = new Set<number>();
      for (let p = 0; p < cfg.pages; p++) if (dirty(pageGpa(p))) reported.add(p);
      // Ops wholly inside the interval must be reported; nothing outside ops before+1 .. after+1 may be.
      const must = new Set<number>(), may = new Set<number>();
      for (let h = 0; h < harts; h++) {
        model.advanceTo(h, after[h] + 1n);
        for (const p of model.pagesOf(h, before[h] + 1n, after[h])) must.add(p);
        for (const p of model.pagesOf(h, before[h], after[h] + 1n)) may.add(p);
      }
      expect(must.size).toBeGreaterThan(100);
      expect([...must].filter((p) => !reported.has(p))).toEqual([]);
      expect([...reported].filter((p) => !may.has(p))).toEqual([]);
      // The table pages holding those entries and the control page are reported too.
      for (const p of must) expect(dirty(dirtierTableGpa(p)), `table of page ${p}`).toBe(true);
      expect(dirty(DIRTIER_CONTROL)).toBe(true);
    }
    expect(verify(m).result).toBe(0n);
    m.close();
  });
});

describe("dirtier guest: config", () => {
  const good = { seed: 1n, base: BASE, pages: 16 };
  it.each<[string, Partial<DirtierConfig> & { magic?: bigint }, string]>([
    ["a wrong magic", { magic: 0x1234n }, "magic 0x0000000000001234"],
    ["more harts than it supports", { harts: 17 }, "harts 0x0000000000000011"],
    ["fewer pages than harts", { pages: 1, harts: 2 }, "pages 0x0000000000000001"],
    ["a base that is not page-aligned", { base: BASE + 8n }, "base 0x0000000080400008"],
    ["a region over its own table", { base: DIRTIER_TABLE, pages: 16 }, "base 0x0000000080201000"],
    ["a rate of 2^32 or more", { rate: 1n << 32n }, "rate 0x0000000100000000"],
    ["an unknown flag", { flags: 4n }, "flags 0x0000000000000004"],
  ])("%s: it says which field and shuts down with failure", async (_, bad, line) => {
    const m = await Machine.create({ kvm: await openKvm(), memSize: 8n << 20n, vcpus: 2 });
    writeDirtierConfig(m.vm, { ...good, ...bad });
    m.load(image);
    const r = m.run({ maxInstructions: 1_000_000n });
    expect([r.stop, r.reason, m.output]).toEqual(["shutdown", 1, `dirtier FAIL ${line}\n`]);
    m.close();
  });

  it("more harts than the machine has: hart_start fails and it shuts down with failure", async () => {
    const m = await Machine.create({ kvm: await openKvm(), memSize: 8n << 20n, vcpus: 2 });
    writeDirtierConfig(m.vm, { ...good, harts: 3 });
    m.load(image);
    const r = m.run({ maxInstructions: 1_000_000n });
    expect([r.stop, r.reason]).toEqual(["shutdown", 1]);
    expect(m.output.endsWith("dirtier FAIL hart-start 0x0000000000000002\n")).toBe(true);
    m.close();
  });

  it("dirtierRegionFor: a 256 MiB guest's region is everything from 0x80400000 up, and the table fits below it", () => {
    expect(dirtierRegionFor(256n << 20n)).toEqual({ base: BASE, pages: 64512 });
    expect(DIRTIER_TABLE + 8n * 64512n).toBeLessThanOrEqual(BASE);
  });
});
