// Live migration (src/migration/precopy.ts, incoming.ts, postcopy.ts) of a
// running guest between two Kvm instances: the dirtylog guest keeps writing
// while rounds go; at the switch-over the destination's memory, registers and
// devices equal the source's, and both guests, run on for the same
// instructions, stay equal (the copy is exact, not merely plausible).
import { describe, it, expect } from "vitest";
import { step, migrateOnce, sameMemory, portableState, type Dirtier } from "./migration-helpers.js";

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
