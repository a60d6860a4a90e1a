// Live migration (src/migration/precopy.ts, incoming.ts, postcopy.ts) of a
// running guest between two Kvm instances: the dirtylog guest keeps writing
// while rounds go; at the switch-over the destination's memory, registers and
// devices equal the source's, and both guests, run on for the same
// instructions, stay equal (the copy is exact, not merely plausible).
import { describe, it, expect } from "vitest";
import { Worker, MessageChannel } from "node:worker_threads";
import { step, migrateOnce, sameMemory, portableState, dirtier, memoryOf, type Dirtier, type Link } from "./migration-helpers.js";
import { migrate } from "../src/migration/precopy.js";
import { PortTransport } from "../src/migration/transport-port.js";
import { openKvm, TEST_CORE } from "./helpers.js";
import { Rng } from "./rng.js";
import { receiveMigration } from "../src/migration/incoming.js";
import { encodeMessage, decodeMessage, jsonSection } from "../src/migration/stream.js";
import { link } from "./migration-helpers.js";
import { encodeState } from "../src/migration/vmstate.js";
import { Meter } from "../src/migration/progress.js";
import { KVM_MEM_LOG_DIRTY_PAGES, type RunResult } from "../src/index.js";

describe("pre-copy live migration", () => {
  for (const kind of ["port", "tcp"] as const) {
    for (const ring of [false, true]) {
      it(`over ${kind === "port" ? "a MessagePort" : "loopback TCP"}, ${ring ? "ring" : "bitmap"} mode: the destination equals the source at the switch-over and runs on identically`, async () => {
        const r = await migrateOnce(kind, { ring });
        expect(r.memoryDiff).toBeNull();
        expect(portableState(r.incoming.machine)).toEqual(portableState(r.d.m));
        expect(r.stats.rounds).toBeGreaterThanOrEqual(2);
        expect(r.stats.pagesSent).toBeGreaterThan(0);
        expect(r.stats.zeroPages).toBeGreaterThan(0); // most of a fresh guest is zero: markers, not pages
        // Both run on for the same instructions: still equal.
        const dst: Dirtier = { m: r.incoming.machine, region: r.d.region, iteration: r.d.iteration };
        step(r.d, 30_000n);
        step(dst, 30_000n);
        expect(sameMemory(r.d.m, dst.m)).toBeNull();
        expect(dst.m.vcpu.pc).toBe(r.d.m.vcpu.pc);
      });
    }
  }
});

describe("migration progress and handshake", () => {
  it("onProgress reports the phases in order, rounds that never go back, and totals that end at the result's", async () => {
    const r = await migrateOnce("port", { migrate: { downtimeLimitMs: 0, maxRounds: 3 } });
    const phases = r.progress.map((p) => p.phase).filter((p, i, a) => p !== a[i - 1]);
    expect(phases).toEqual(["setup", "precopy", "stop-and-copy", "completed"]);
    r.progress.forEach((p, i) => {
      if (i > 0) expect(p.round).toBeGreaterThanOrEqual(r.progress[i - 1].round);
      if (i > 0) expect(p.bytes).toBeGreaterThanOrEqual(r.progress[i - 1].bytes);
    });
    const last = r.progress[r.progress.length - 1];
    expect([last.pagesSent, last.zeroPages, last.round]).toEqual([r.stats.pagesSent, r.stats.zeroPages, r.stats.rounds]);
    expect(r.stats.converged).toBe(false); // forced after maxRounds
    expect(r.stats.rounds).toBe(4); // 3 pre-copy rounds, then stop-and-copy
    const later = r.progress.filter((p) => p.round >= 2 && p.phase === "precopy");
    expect(later.every((p) => p.bandwidth > 0 && Number.isFinite(p.estimatedDowntimeMs) && p.dirtyRate > 0)).toBe(true);
  });

  it("convergence counts the switch-over's fixed cost measured at the hello: with nothing left to send, a limit under it is not met", async () => {
    // The guest does not run during pre-copy: after round 1 no page is dirty, so only the fixed cost can keep it from converging.
    const still = { stop: "limit" } as RunResult;
    const tight = await migrateOnce("port", { migrate: { downtimeLimitMs: 1e-9, maxRounds: 3, runSlice: () => still } });
    expect(tight.memoryDiff).toBeNull();
    const precopy = tight.progress.filter((p) => p.phase === "precopy");
    expect(precopy.every((p) => p.switchoverMs > 0 && p.estimatedDowntimeMs >= p.switchoverMs)).toBe(true);
    expect([tight.stats.converged, tight.stats.rounds]).toEqual([false, 4]); // forced after 3 rounds
    const loose = await migrateOnce("port", { migrate: { downtimeLimitMs: 60_000, maxRounds: 3, runSlice: () => still } });
    expect([loose.stats.converged, loose.stats.rounds]).toEqual([true, 2]); // round 1, then nothing left: stop-and-copy
  });

  it("the downtime estimate is the pages left at the bandwidth, the switch-over's fixed cost and the last harvest's time", () => {
    const seen: number[] = [];
    const m = new Meter((p) => seen.push(p.estimatedDowntimeMs, p.switchoverMs));
    m.sent(4096 * 1000, 1000, 0, 10); // 1,000 pages in 10 ms
    m.switchoverMs = 1.5;
    m.harvestMs = 0.25;
    expect(m.downtimeMs(500)).toBeCloseTo(5 + 1.5 + 0.25, 9);
    expect(m.downtimeMs(0)).toBeCloseTo(1.75, 9); // nothing left: the switch-over still costs its harvest and state
    m.report("precopy", 500);
    expect(seen[0]).toBeCloseTo(6.75, 9);
    expect(seen[1]).toBeCloseTo(1.75, 9);
  });

  it("onNoConvergence \"fail\": pre-copy gives up after maxRounds and the source runs on", async () => {
    const d = await dirtier(await openKvm(), { seed: 5 });
    step(d, 20_000n);
    const l = await link("tcp");
    const [src, dst] = await Promise.allSettled([
      migrate(d.m, l.src, { downtimeLimitMs: 0, maxRounds: 2, onNoConvergence: "fail", sliceInstructions: 5000n, messageBytes: 64 << 10 }),
      receiveMigration(l.dst, { kvm: await openKvm() })]);
    l.done();
    expect(String((src as PromiseRejectedResult).reason?.message)).toMatch(/^pre-copy did not converge in 2 rounds \(\d+ pages dirty, \d+ ms at the measured bandwidth with the switch-over.s own \d+\.\d ms, limit 0 ms\)/);
    expect(String((dst as PromiseRejectedResult).reason?.message)).toMatch(/the source aborted the migration/);
    expect(d.m.vm.memslots().map((s) => s.flags)).toEqual([0, KVM_MEM_LOG_DIRTY_PAGES]); // tracking undone
    step(d, 20_000n); // and the guest runs on
  });

  it("the destination refuses a hello of another protocol version, and a stream that does not begin with one", async () => {
    for (const [msg, why] of [
      [encodeMessage("hello", jsonSection("hello", { protocol: 2, pageSize: 4096, regions: [], postcopy: false })), /protocol version 2/],
      [encodeMessage("pages", { name: "pages", version: 1, payload: new Uint8Array(0) }), /begins with "pages"/],
    ] as const) {
      const l = await link("port");
      const got = receiveMigration(l.dst, { kvm: await openKvm() });
      await l.src.send(msg);
      await expect(got).rejects.toThrow(why);
      const reply = decodeMessage((await l.src.receive())!);
      expect(reply.kind).toBe("error");
      l.done();
    }
  });
});

describe("the destination builds the VM at the hello", () => {
  it("a hello whose machine layout cannot be built is refused there, before any page, and leaves nothing mapped", async () => {
    const d = await dirtier(await openKvm());
    const state = encodeState(d.m.saveState());
    const machine = state.find((x) => x.name === "machine")!;
    const json = JSON.parse(new TextDecoder().decode(machine.payload));
    const bad = { ...machine, payload: new TextEncoder().encode(JSON.stringify({ ...json, vcpus: 0 })) };
    const regions = d.m.memoryRegions().map(({ asId, slot, gpa, size }) => ({ asId, slot, gpa, size }));
    const l = await link("port");
    const kvm = await openKvm();
    const got = receiveMigration(l.dst, { kvm });
    await l.src.send(encodeMessage("hello", jsonSection("hello", { protocol: 1, pageSize: 4096, regions, postcopy: false }),
      [bad, state.find((x) => x.name === "memslots")!]));
    await expect(got).rejects.toThrow(/refused the machine's layout: section "machine": vcpus 0/);
    expect(decodeMessage((await l.src.receive())!).kind).toBe("error");
    expect(kvm.memory.mappings()).toEqual([]); // the image it had mapped is gone again
    l.done();
  });
});

describe("migration, more shapes", () => {
  it("a 2-hart machine: both harts' registers, HSM state and memory arrive, and both run on identically", async () => {
    const r = await migrateOnce("port", { vcpus: 2 });
    expect(r.memoryDiff).toBeNull();
    const st = portableState(r.incoming.machine);
    expect(st).toEqual(portableState(r.d.m));
    expect(st.harts.map((h) => h.started)).toEqual([true, true]);
    const dst: Dirtier = { m: r.incoming.machine, region: r.d.region, iteration: r.d.iteration };
    step(r.d, 30_000n);
    step(dst, 30_000n);
    expect(sameMemory(r.d.m, dst.m)).toBeNull();
    expect(dst.m.vcpus.map((v) => v.pc)).toEqual(r.d.m.vcpus.map((v) => v.pc));
  });

  it("to a destination on a Worker thread with its own Kvm: it resumes with the source's memory and registers, and runs on identically", async () => {
    const d = await dirtier(await openKvm(), { seed: 9 });
    step(d, 20_000n);
    const worker = new Worker(new URL("./migration-worker.mjs", import.meta.url));
    try {
      const { port1, port2 } = new MessageChannel();
      const replies: Record<string, unknown>[] = [];
      let wake: (() => void) | null = null;
      worker.on("message", (m) => { replies.push(m); wake?.(); });
      const next = async () => {
        while (replies.length === 0) await new Promise<void>((r) => { wake = r; });
        return replies.shift()!;
      };
      worker.postMessage({ port: port2, core: TEST_CORE, iteration: d.iteration, instructions: 30_000n }, [port2]);
      const stats = await migrate(d.m, new PortTransport(port1), { sliceInstructions: 5000n, messageBytes: 64 << 10 });
      const resumed = await next();
      if (resumed.error) throw new Error(String(resumed.error));
      const at = resumed.resumed as { memory: Uint8Array[]; pc: bigint; vcpus: unknown; resumedAt: number };
      const src = memoryOf(d.m);
      expect(at.memory.map((m, i) => Buffer.compare(Buffer.from(m), Buffer.from(src[i])))).toEqual(src.map(() => 0));
      expect(at.vcpus).toEqual(d.m.saveState().vcpus);
      expect(stats.downtimeMs).toBeGreaterThanOrEqual(0); // two threads' wall clocks compared
      expect(at.resumedAt).toBeGreaterThan(0);
      step(d, 30_000n);
      const ran = (await next()).ran as { memory: Uint8Array[]; pc: bigint };
      const after = memoryOf(d.m);
      expect(ran.memory.map((m, i) => Buffer.compare(Buffer.from(m), Buffer.from(after[i])))).toEqual(after.map(() => 0));
      expect(ran.pc).toBe(d.m.vcpu.pc);
    } finally {
      await worker.terminate();
    }
  });

  it("80 pre-copy migrations (with the 20 post-copy ones, 100; seeds, dirty rates, MessagePort and TCP, bitmap and ring, 1 and 2 harts): each destination equals its source at the switch-over and runs on identically", async () => {
    const r = new Rng(2026);
    const src = await openKvm(), dst = await openKvm();
    const seen = new Set<string>();
    for (let i = 0; i < 80; i++) {
      const kind: Link = i % 2 ? "tcp" : "port";
      const ring = (i >> 1) % 2 === 1;
      const vcpus = i % 5 === 4 ? 2 : 1;
      const slice = BigInt(r.pick([1000, 4000, 15000]));
      const run = await migrateOnce(kind, { src, dst, ring, vcpus, seed: r.int(1 << 30), warmup: BigInt(r.range(1, 10)) * 2000n,
        migrate: { sliceInstructions: slice, downtimeLimitMs: r.pick([0, 1, 300]), maxRounds: 4 } });
      const what = `migration ${i} (${kind}, ${ring ? "ring" : "bitmap"}, ${vcpus} harts, slice ${slice})`;
      expect(run.memoryDiff, what).toBeNull();
      expect(portableState(run.incoming.machine), what).toEqual(portableState(run.d.m));
      const dstD: Dirtier = { m: run.incoming.machine, region: run.d.region, iteration: run.d.iteration };
      step(run.d, 4000n);
      step(dstD, 4000n);
      expect(sameMemory(run.d.m, dstD.m), what).toBeNull();
      seen.add(`${kind} ${ring} ${vcpus} ${run.stats.converged}`);
      for (const m of [run.d.m, dstD.m]) {
        const regions = m.memoryRegions();
        m.close();
        for (const g of regions) m.kvm.memory.munmap(g.hva, g.size);
      }
    }
    expect(seen.size).toBeGreaterThanOrEqual(12); // every link x mode x harts, converged and forced
  });
});
