// dirty_log_test (tools/testing/selftests/kvm/dirty_log_test.c) with the
// dirtylog guest on 2 vCPUs sharing this thread round-robin: after every
// collection the host checks test/threads-scenarios/dirty-log-verify.mjs's rules, then bumps the
// iteration. Collected with GET_DIRTY_LOG + CLEAR_DIRTY_LOG (manual protect)
// (also with KVM_DIRTY_LOG_INITIALLY_SET) and, separately, with the dirty
// ring (harvested also on its soft-full exit).
// A collector that loses one reported page per collection is caught.
import { describe, it, expect } from "vitest";
import { readFileSync } from "node:fs";
import { Machine, KVM_CAP, KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE, KVM_DIRTY_LOG_INITIALLY_SET } from "../src/index.js";
import { openKvm } from "./helpers.js";
import {
  DirtyLogVerifier, type DirtyLogViolation, type DirtyLogRegion, type CollectOptions,
  addDirtyLogRegion, readRegionPage, setIteration, startDirtylog, dirtylogSteps, collectBitmap, collectRing,
} from "./threads-scenarios/dirty-log-verify.mjs";
// @ts-expect-error plain JS module without types
import { dirtylogPages, dirtylogParams } from "../guests/dirtylog/reference.mjs";

const image = new Uint8Array(readFileSync(new URL("../guests/dirtylog/dirtylog.bin", import.meta.url)));
const REGION = { slot: 1, gpa: 0xc0000000n, pages: 1024 };
const PARAMS = 0x80300000n;
const SEEDS = [0x1234n, 0xfeedfacecafen];
const ITERATIONS = 24;
/** Guest instructions per iteration: ~2,000 stores, so some pages stay clean each time. */
const PER_ITERATION = 20_000n;
/** Runs per iteration before the test gives up (a ring that is never reset exits at once, forever). */
const MAX_RUNS = 1000;

/** "bitmap-initially-set": manual protect with KVM_DIRTY_LOG_INITIALLY_SET (every page reported at first). */
type Mode = "bitmap" | "bitmap-initially-set" | "ring";

interface Outcome {
  violations: DirtyLogViolation[];
  verifier: DirtyLogVerifier;
  steps: bigint[];
  m: Machine;
  region: DirtyLogRegion;
  ringFullExits: number;
  /** Pages the first collection reported. */
  firstReported: number;
}

async function dirtyLogTest(mode: Mode, collect: CollectOptions = {}): Promise<Outcome> {
  const m = await Machine.create({ kvm: await openKvm(), memSize: 16n << 20n, vcpus: 2, turn: 1500,
    dirtyRing: mode === "ring" ? 4096 : undefined }); // 256 entries: the soft-full exit comes often
  if (mode !== "ring") {
    m.vm.enableCap(KVM_CAP.MANUAL_DIRTY_LOG_PROTECT2,
      [KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | (mode === "bitmap-initially-set" ? KVM_DIRTY_LOG_INITIALLY_SET : 0)]);
  }
  const region = addDirtyLogRegion(m, REGION);
  const entry = m.load(image);
  startDirtylog(m, entry, region, SEEDS, PARAMS);
  const verifier = new DirtyLogVerifier(region.pages);
  const violations: DirtyLogViolation[] = [];
  let ringFullExits = 0, firstReported = -1;
  for (let it = 1n; it <= BigInt(ITERATIONS); it++) {
    setIteration(m, it);
    const dirty = new Set<number>();
    for (let left = PER_ITERATION, runs = 0; left > 0n; runs++) {
      if (runs === MAX_RUNS) throw new Error(`iteration ${it}: no progress in ${MAX_RUNS} runs`);
      const r = m.run({ maxInstructions: left });
      left -= r.instructions;
      if (r.stop === "dirty-ring-full") {
        ringFullExits++;
        for (const p of collectRing(m.vm, m.vcpus, region)) dirty.add(p);
      } else if (r.stop !== "limit") throw new Error(`run stopped: ${r.stop} ${m.output}`);
    }
    const got = mode === "ring" ? collectRing(m.vm, m.vcpus, region, collect) : collectBitmap(m.vm, region, collect);
    for (const p of got) dirty.add(p);
    if (firstReported < 0) firstReported = dirty.size;
    violations.push(...verifier.check({ iteration: it, dirty, read: readRegionPage(m, region), quiescent: true }));
  }
  return { violations, verifier, steps: [0, 1].map((h) => dirtylogSteps(m, h)), m, region, ringFullExits, firstReported };
}

/** The pages the seeds name in the steps each hart made (a turn may end between a store and steps' update). */
function modelPages(o: Outcome): { least: Set<number>; most: Set<number> } {
  const least = new Set<number>(), most = new Set<number>();
  SEEDS.forEach((seed, h) => {
    const seq: number[] = dirtylogPages(seed, REGION.pages, Number(o.steps[h]) + 1);
    seq.forEach((p, i) => { most.add(p); if (i < seq.length - 1) least.add(p); });
  });
  return { least, most };
}

describe.each<Mode>(["bitmap", "bitmap-initially-set", "ring"])("dirty_log_test, 2 vCPUs round-robin, collected by %s", (mode) => {
  it("every page that changed since the previous check was reported; no page exceeds the iteration; reported pages hold it or the one before", async () => {
    const o = await dirtyLogTest(mode);
    expect(o.violations.slice(0, 5)).toEqual([]);
    expect(o.verifier.stats.checks).toBe(ITERATIONS);
    // The run exercised the rules: pages were reported and changed, and both harts stored.
    expect(o.verifier.stats.reported).toBeGreaterThan(ITERATIONS * 100);
    expect(o.verifier.stats.changed).toBeGreaterThan(ITERATIONS * 100);
    expect(o.steps.every((s) => s > 1000n)).toBe(true);
    if (mode === "ring") expect(o.ringFullExits).toBeGreaterThan(0);
    if (mode === "bitmap-initially-set") expect(o.firstReported).toBe(REGION.pages);
    else expect(o.firstReported).toBeLessThan(REGION.pages);
    o.m.close();
  });

  it("the guest wrote exactly the pages its seeds name (guests/dirtylog/reference.mjs)", async () => {
    const o = await dirtyLogTest(mode);
    const written = new Set<number>();
    const read = readRegionPage(o.m, o.region);
    for (let p = 0; p < REGION.pages; p++) if (read(p) !== 0n) written.add(p);
    const { least, most } = modelPages(o);
    for (const p of least) expect(written.has(p), `page ${p}`).toBe(true);
    for (const p of written) expect(most.has(p), `page ${p}`).toBe(true);
    o.m.close();
  });

  it("a collector that loses one reported page per collection is caught", async () => {
    const o = await dirtyLogTest(mode, { dropOne: true });
    expect(o.violations.length).toBeGreaterThan(0);
    expect(new Set(o.violations.map((v) => v.rule))).toEqual(new Set(["changed-not-reported"]));
    o.m.close();
  });
});

describe("dirtylog guest arguments (guests/README.md)", () => {
  it.each([
    ["no pages", { base: 0xc0000000n, pages: 0, seed: 1n }],
    ["a base that is not page-aligned", { base: 0xc0000008n, pages: 16, seed: 1n }],
  ])("%s: it shuts down with failure instead of storing", async (_, params) => {
    const m = await Machine.create({ kvm: await openKvm(), memSize: 16n << 20n });
    m.vm.writeGuest(PARAMS, dirtylogParams(params));
    m.load(image, PARAMS);
    const r = m.run({ maxInstructions: 1_000_000n });
    expect([r.stop, r.reason]).toEqual(["shutdown", 1]);
    expect(dirtylogSteps(m, 0)).toBe(0n);
  });

  it("a1 = 0: region 0x80400000, 512 pages, seed hartid + 1", async () => {
    const m = await Machine.create({ kvm: await openKvm(), memSize: 16n << 20n, turn: 10_000 }); // the guest never exits
    m.load(image);
    setIteration(m, 7n);
    expect(m.run({ maxInstructions: 50_000n }).stop).toBe("limit");
    const steps = Number(dirtylogSteps(m, 0));
    expect(steps).toBeGreaterThan(100);
    const pages: number[] = dirtylogPages(1n, 512, steps);
    const at = (p: number) => new DataView(m.vm.readGuest(0x80400000n + BigInt(p) * 4096n, 8).buffer).getBigUint64(0, true);
    for (const p of pages) expect(at(p), `page ${p}`).toBe(7n);
  });
});

describe("DirtyLogVerifier rules (vm_dirty_log_verify)", () => {
  const values = (v: bigint[]) => (p: number) => v[p];
  it("value-above-iteration: a page holding a number the host has not published yet", () => {
    const c = new DirtyLogVerifier(2);
    expect(c.check({ iteration: 1n, dirty: new Set([0]), read: values([2n, 0n]), quiescent: true }).map((v) => v.rule))
      .toEqual(["value-above-iteration"]);
  });

  it("changed-not-reported: a quiescent check fails a change the collection lacks", () => {
    const c = new DirtyLogVerifier(2);
    expect(c.check({ iteration: 1n, dirty: new Set(), read: values([0n, 1n]), quiescent: true }))
      .toEqual([{ rule: "changed-not-reported", page: 1, value: 1n, iteration: 1n }]);
  });

  it("late-change-not-reported: a change after a concurrent collection must be in the next one", () => {
    const c = new DirtyLogVerifier(1);
    expect(c.check({ iteration: 3n, dirty: new Set(), read: values([3n]), quiescent: false })).toEqual([]);
    expect(c.check({ iteration: 4n, dirty: new Set(), read: values([3n]), quiescent: false }).map((v) => v.rule))
      .toEqual(["late-change-not-reported"]);
    const d = new DirtyLogVerifier(1);
    d.check({ iteration: 3n, dirty: new Set(), read: values([3n]), quiescent: false });
    expect(d.check({ iteration: 4n, dirty: new Set([0]), read: values([3n]), quiescent: false })).toEqual([]);
  });

  it("reported-value-stale: a reported page must hold this iteration or the previous one", () => {
    const c = new DirtyLogVerifier(1);
    c.check({ iteration: 1n, dirty: new Set([0]), read: values([1n]), quiescent: true });
    expect(c.check({ iteration: 2n, dirty: new Set([0]), read: values([1n]), quiescent: true })).toEqual([]);
    expect(c.check({ iteration: 3n, dirty: new Set([0]), read: values([1n]), quiescent: true }).map((v) => v.rule))
      .toEqual(["reported-value-stale"]);
  });

  it("reported-value-stale: only the page of a store not done yet (a ring-full exit) may hold an older number, and only the one it held at the previous check", () => {
    const c = new DirtyLogVerifier(3);
    c.check({ iteration: 1n, dirty: new Set([0, 1, 2]), read: values([1n, 1n, 1n]), quiescent: true });
    // Page 0's store is in flight and the page is unchanged; page 1 is not in flight; page 2 changed to an older number.
    expect(c.check({ iteration: 4n, dirty: new Set([0, 1, 2]), read: values([1n, 1n, 0n]), quiescent: true, inflight: new Set([0, 2]) }))
      .toEqual([{ rule: "reported-value-stale", page: 1, value: 1n, iteration: 4n },
        { rule: "reported-value-stale", page: 2, value: 0n, iteration: 4n }]);
    expect([c.stats.inflight, c.stats.inflightStale]).toEqual([1, 1]);
  });
});
