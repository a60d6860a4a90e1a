// Dirty tracking for migration (src/migration/dirty-tracker.ts), both modes:
// the first round is every page; after that every page whose bytes changed
// since it was read is in the next round (the rule a migration lives by); the
// bitmap mode clears chunk by chunk, just before reading; stop() leaves flags
// and capabilities as they were.
import { describe, it, expect } from "vitest";
import { DirtyTracker, type DirtyMode } from "../src/migration/dirty-tracker.js";
import { KVM_CAP, KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE, KVM_MEM_LOG_DIRTY_PAGES } from "../src/index.js";
import { openKvm } from "./helpers.js";
import { dirtier, step, REGION } from "./migration-helpers.js";
import { Rng } from "./rng.js";

const PAGE = 4096;
const RAM_PAGES = 1024; // 4 MiB

const MODES: { mode: DirtyMode; ring?: number }[] = [{ mode: "bitmap" }, { mode: "ring", ring: 4096 }];

function flagsOf(t: DirtyTracker) {
  return t.slots.map((s) => t.vm.memslots({ asId: s.asId }).find((m) => m.id === s.slot)!.flags);
}

for (const { mode, ring } of MODES) {
  describe(`dirty tracker, ${mode} mode`, () => {
    it("the first round is every page of every user slot", async () => {
      const d = await dirtier(await openKvm(), { dirtyRing: ring });
      const t = DirtyTracker.start(d.m, mode);
      expect(t.slots.map((s) => [s.slot, s.npages])).toEqual([[0, RAM_PAGES], [1, REGION.pages]]);
      step(d, 5000n, t);
      expect(t.harvest().pages).toBe(RAM_PAGES + REGION.pages);
      t.stop();
    });

    it("every page changed since it was read is in the next round (reads interleaved with the guest)", async () => {
      for (const seed of [1, 2]) {
        const r = new Rng(seed);
        const d = await dirtier(await openKvm(), { dirtyRing: ring, vcpus: 1 + (seed % 2), seed, pages: 1024 });
        const t = DirtyTracker.start(d.m, mode, { clearChunkPages: 64 });
        const shadow = t.slots.map((s) => new Uint8Array(s.npages * PAGE));
        const mem = d.m.kvm.memory;
        for (let round = 0; round < 5; round++) {
          const h = t.harvest();
          // Pages not in this round must read as when they were last read.
          t.slots.forEach((s, i) => {
            const now = mem.read(s.hva, s.npages * PAGE);
            for (let p = 0; p < s.npages; p++) {
              if (h.isDirty(i, p)) continue;
              const a = now.subarray(p * PAGE, (p + 1) * PAGE), b = shadow[i].subarray(p * PAGE, (p + 1) * PAGE);
              if (Buffer.compare(Buffer.from(a), Buffer.from(b)) !== 0) throw new Error(`seed ${seed} round ${round}: slot ${s.slot} page ${p} changed but is not dirty`);
            }
          });
          for (const run of h.runs()) {
            const s = t.slots[run.slotIndex];
            h.prepare(run.slotIndex, run.first, run.count);
            shadow[run.slotIndex].set(mem.read(s.hva + BigInt(run.first * PAGE), run.count * PAGE), run.first * PAGE);
            if (r.chance(0.3)) step(d, BigInt(r.range(50, 500)), t);
          }
          step(d, BigInt(r.range(200, 3000)), t);
        }
        t.stop();
      }
    });

    it("a page dirtyAgain() reports (written since the harvest, as of lookAgain) may be skipped: the next round has it", async () => {
      const r = new Rng(5);
      const d = await dirtier(await openKvm(), { dirtyRing: ring, pages: 1024 });
      const t = DirtyTracker.start(d.m, mode, { clearChunkPages: 64 });
      const shadow = t.slots.map((s) => new Uint8Array(s.npages * PAGE));
      const mem = d.m.kvm.memory;
      let skipped = 0;
      let mustCome: [number, number][] = [];
      for (let round = 0; round < 5; round++) {
        const h = t.harvest();
        for (const [i, p] of mustCome) if (!h.isDirty(i, p)) throw new Error(`round ${round}: skipped page ${p} of slot ${i} is not in the next round`);
        mustCome = [];
        t.slots.forEach((s, i) => {
          const now = mem.read(s.hva, s.npages * PAGE);
          for (let p = 0; p < s.npages; p++) {
            if (h.isDirty(i, p)) continue;
            const a = now.subarray(p * PAGE, (p + 1) * PAGE), b = shadow[i].subarray(p * PAGE, (p + 1) * PAGE);
            if (Buffer.compare(Buffer.from(a), Buffer.from(b)) !== 0) throw new Error(`round ${round}: slot ${s.slot} page ${p} changed but is not dirty`);
          }
        });
        for (const run of h.runs()) {
          const s = t.slots[run.slotIndex];
          h.prepare(run.slotIndex, run.first, run.count);
          for (let p = run.first; p < run.first + run.count; p++) {
            if (h.dirtyAgain(run.slotIndex, p)) { skipped++; mustCome.push([run.slotIndex, p]); continue; }
            shadow[run.slotIndex].set(mem.read(s.hva + BigInt(p * PAGE), PAGE), p * PAGE);
          }
          if (r.chance(0.3)) step(d, BigInt(r.range(50, 500)), t);
          if (r.chance(0.5)) h.lookAgain();
        }
        step(d, BigInt(r.range(200, 3000)), t);
      }
      expect(skipped).toBeGreaterThan(0); // the rule was exercised
      t.stop();
    });

    it("stop() restores every slot's flags (one logged before start, one not)", async () => {
      const d = await dirtier(await openKvm(), { dirtyRing: ring });
      const t = DirtyTracker.start(d.m, mode);
      expect(flagsOf(t)).toEqual([KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_LOG_DIRTY_PAGES]);
      t.harvest();
      t.stop();
      expect(flagsOf(t)).toEqual([0, KVM_MEM_LOG_DIRTY_PAGES]);
    });
  });
}

describe("dirty tracker, bitmap specifics", () => {
  it("the manual-protect capability is enabled (initially set) while tracking, and restored to its earlier value by stop()", async () => {
    const d = await dirtier(await openKvm());
    d.m.vm.enableCap(KVM_CAP.MANUAL_DIRTY_LOG_PROTECT2, [KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE]);
    const t = DirtyTracker.start(d.m, "bitmap");
    expect(d.m.vm.debug.stats().manualDirtyLogProtect).toBe(3);
    t.stop();
    expect(d.m.vm.debug.stats().manualDirtyLogProtect).toBe(1);
    const u = DirtyTracker.start((await dirtier(await openKvm())).m, "bitmap");
    u.stop();
    expect(u.vm.debug.stats().manualDirtyLogProtect).toBe(0);
  });

  it("a chunk is cleared only when prepared: an unprepared chunk stays dirty in the next round", async () => {
    const d = await dirtier(await openKvm());
    const t = DirtyTracker.start(d.m, "bitmap", { clearChunkPages: 64 });
    const first = t.harvest();
    first.prepare(0, 0, 1); // RAM pages 0..63 only
    const next = t.harvest();
    for (let p = 64; p < RAM_PAGES; p++) expect(next.isDirty(0, p)).toBe(true);
    for (let p = 0; p < 64; p++) expect(next.isDirty(0, p)).toBe(false); // the guest did not run
    t.stop();
  });

  it("clearChunkPages must be a positive multiple of 64", async () => {
    const d = await dirtier(await openKvm());
    expect(() => DirtyTracker.start(d.m, "bitmap", { clearChunkPages: 100 })).toThrow(/multiple of 64/);
  });
});

describe("dirty tracker, ring specifics", () => {
  it("a dirty-ring-full stop is drained by collect() and its pages are in the next harvest", async () => {
    const d = await dirtier(await openKvm(), { dirtyRing: 4096 });
    const t = DirtyTracker.start(d.m, "ring");
    t.harvest();
    let full = 0;
    d.iteration++;
    for (let i = 0; i < 50 && full === 0; i++) {
      const r = d.m.run({ maxInstructions: 100_000n });
      if (r.stop === "dirty-ring-full") { full++; t.collect(); }
    }
    expect(full).toBe(1);
    expect(t.harvest().pages).toBeGreaterThan(64);
    t.stop();
  });

  it("each mode refuses the other's VM: ring needs a dirty ring, bitmap cannot read one", async () => {
    const plain = await dirtier(await openKvm());
    expect(() => DirtyTracker.start(plain.m, "ring")).toThrow(/no dirty ring/);
    const ringed = await dirtier(await openKvm(), { dirtyRing: 4096 });
    expect(() => DirtyTracker.start(ringed.m, "bitmap")).toThrow(/dirty rings/);
  });
});
