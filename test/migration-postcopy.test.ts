// Post-copy (src/migration/postcopy.ts): the destination resumes on the state
// alone, with every page MISSING; a vCPU touching one that has not arrived
// exits KVM_EXIT_MEMORY_FAULT and the page is asked for ahead of the
// background stream. Every page arrives exactly (memory equal to the source's
// at the switch-over), the guest runs on as the stopped source would, and a
// lost connection ends the guest on both sides with a clear error.
import { describe, it, expect } from "vitest";
import { MessageChannel } from "node:worker_threads";
import { migrate } from "../src/migration/precopy.js";
import { receiveMigration } from "../src/migration/incoming.js";
import { MigrationError } from "../src/migration/stream.js";
import { decodeSections } from "../src/migration/section.js";
import { PortTransport } from "../src/migration/transport-port.js";
import type { Transport } from "../src/migration/transport.js";
import { openKvm } from "./helpers.js";
import { migrateOnce, sameMemory, portableState, dirtier, step, type Dirtier } from "./migration-helpers.js";
import { Rng } from "./rng.js";


/**
 * Runs each hart of the stopped source on for exactly the instructions its
 * twin ran on the destination (a vCPU counts from its creation; a fault cut
 * the destination's runs at odd places): with one hart, the memory then
 * matches exactly.
 */
function catchUp(src: Dirtier, dst: Dirtier): void {
  src.m.vcpus.forEach((v, h) => {
    const target = v.instret + dst.m.vcpus[h].instret;
    while (v.instret < target) {
      v.setBudget(Number(target - v.instret));
      const exit = v.run();
      if (exit.name !== "intr") throw new Error(`hart ${h} exited ${exit.name}`);
    }
    v.setBudget(2000);
  });
}

describe("post-copy live migration", () => {
  for (const rounds of [0, 1, 2]) {
    it(`after ${rounds} pre-copy round(s), the guest not run on the destination: every page arrives, memory and state equal the source's`, async () => {
      const r = await migrateOnce("port", { migrate: { postcopyAfterRounds: rounds }, receive: { sliceInstructions: 0n } });
      expect(r.stats.postcopy).toBe(true);
      expect(r.incoming.postcopy).toBe(true);
      expect(r.stats.rounds).toBe(rounds);
      expect(r.memoryDiff).toBeNull();
      expect(portableState(r.incoming.machine)).toEqual(portableState(r.d.m));
      // Every page placed: the range is no longer missing.
      const mem = r.incoming.machine.kvm.memory as unknown as { isMissing(hva: bigint): boolean };
      expect(r.incoming.machine.memoryRegions().some((g) => mem.isMissing(g.hva))).toBe(false);
    });
  }

  for (const ring of [false, true]) {
    it(`the guest runs on the destination while pages stream (${ring ? "ring" : "bitmap"}): its faults are requested first, and it ends as the source would`, async () => {
      const r = await migrateOnce("port", { ring, migrate: { postcopyAfterRounds: ring ? 1 : 0 }, receive: { sliceInstructions: 2000n } });
      expect(r.stats.requestedPages).toBeGreaterThan(0);
      const dst: Dirtier = { m: r.incoming.machine, region: r.d.region, iteration: r.d.iteration };
      catchUp(r.d, dst);
      expect(sameMemory(r.d.m, dst.m)).toBeNull();
      step(r.d, 20_000n);
      step(dst, 20_000n);
      expect(sameMemory(r.d.m, dst.m)).toBeNull();
    });
  }

  it("20 post-copy migrations (seeds, 0-2 pre-copy rounds, MessagePort and TCP, bitmap and ring, 1 and 2 harts, the guest run or not): every page arrives and the guest ends as the source would", async () => {
    const r = new Rng(4242);
    const src = await openKvm(), dst = await openKvm();
    for (let i = 0; i < 20; i++) {
      // Two harts run on only where the replay is exact: each hart may hold the iteration in a register
      // across the switch-over, so the source's per-hart catch-up need not interleave their stores alike.
      const ring = i % 4 >= 2, vcpus = ring ? 1 : 1 + (i % 2), slice = vcpus > 1 ? 0n : r.pick([0n, 1000n, 5000n]);
      const run = await migrateOnce(i % 2 ? "tcp" : "port", { src, dst, ring, vcpus, seed: r.int(1 << 30),
        migrate: { postcopyAfterRounds: r.range(0, 2), sliceInstructions: BigInt(r.pick([1000, 5000])) }, receive: { sliceInstructions: slice } });
      const what = `post-copy ${i} (${ring ? "ring" : "bitmap"}, ${vcpus} harts, destination slice ${slice})`;
      const dstD: Dirtier = { m: run.incoming.machine, region: run.d.region, iteration: run.d.iteration };
      catchUp(run.d, dstD);
      expect(sameMemory(run.d.m, dstD.m), what).toBeNull();
      for (const m of [run.d.m, dstD.m]) {
        const regions = m.memoryRegions();
        m.close();
        for (const g of regions) m.kvm.memory.munmap(g.hva, g.size);
      }
    }
  });

  it("when pre-copy does not converge, onNoConvergence: \"postcopy\" switches to post-copy", async () => {
    const r = await migrateOnce("tcp", { migrate: { downtimeLimitMs: 0, maxRounds: 3, onNoConvergence: "postcopy" }, receive: { sliceInstructions: 0n } });
    expect(r.stats.postcopy).toBe(true);
    expect(r.stats.rounds).toBe(3);
    expect(r.memoryDiff).toBeNull();
  });

  it("a connection lost during post-copy: both sides report that the guest cannot continue, and the destination's guest is not run further", async () => {
    const r = new Rng(77);
    for (let trial = 0; trial < 4; trial++) {
      const d = await dirtier(await openKvm(), { seed: trial + 3 });
      step(d, 20_000n);
      const { port1, port2 } = new MessageChannel();
      const inner = new PortTransport(port2);
      let after = -1;
      const dropAt = r.range(0, 6);
      const dst: Transport = {
        send: (m) => inner.send(m), close: () => inner.close(),
        receive: async () => {
          const m = await inner.receive();
          if (m && decodeSections(m)[0].name === "postcopy") after = 0;
          else if (m && after >= 0 && after++ === dropAt) { port2.close(); throw new Error("dropped"); }
          return m;
        },
      };
      const [src, got] = await Promise.allSettled([
        migrate(d.m, new PortTransport(port1), { postcopyAfterRounds: 1, sliceInstructions: 5000n, messageBytes: 64 << 10 }),
        receiveMigration(dst, { kvm: await openKvm(), sliceInstructions: 2000n })]);
      for (const side of [src, got]) {
        expect(side.status, `trial ${trial}`).toBe("rejected");
        const e = (side as PromiseRejectedResult).reason;
        expect(e).toBeInstanceOf(MigrationError);
        expect(String(e.message)).toMatch(/^post-copy connection lost: the guest cannot continue/);
      }
    }
  });
});
