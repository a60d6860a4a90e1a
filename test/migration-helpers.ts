// A guest for the migration tests: the dirtylog guest (guests/dirtylog) on a
// Machine, writing the iteration number to pseudo-random pages of a region in
// its own memslot (slot 1, logged from creation as dirty_log_test has it) while
// the host bumps the iteration between slices, so every store changes a page.
import { readFileSync } from "node:fs";
import { Machine, type Kvm } from "../src/index.js";
import type { DirtyTracker } from "../src/migration/dirty-tracker.js";
import { addDirtyLogRegion, setIteration, startDirtylog } from "./threads-scenarios/dirty-log-verify.mjs";

const image = new Uint8Array(readFileSync(new URL("../guests/dirtylog/dirtylog.bin", import.meta.url)));
export const REGION = { slot: 1, gpa: 0xc0000000n, pages: 256 };
const PARAMS = 0x80300000n;

export interface Dirtier {
  m: Machine;
  region: { slot: number; gpa: bigint; pages: number; hva: bigint };
  iteration: bigint;
}

/** A machine running the dirtylog guest on every hart (seeds from seed). */
export async function dirtier(kvm: Kvm, opts: { vcpus?: number; dirtyRing?: number; memSize?: bigint; seed?: number; pages?: number } = {}): Promise<Dirtier> {
  const vcpus = opts.vcpus ?? 1;
  const m = await Machine.create({ kvm, memSize: opts.memSize ?? 4n << 20n, vcpus, turn: 2000, // slices end when asked
    dirtyRing: opts.dirtyRing });
  const region = addDirtyLogRegion(m, { ...REGION, pages: opts.pages ?? REGION.pages });
  const entry = m.load(image);
  const seed = BigInt(opts.seed ?? 1);
  startDirtylog(m, entry, region, Array.from({ length: vcpus }, (_, h) => seed * 0x9e3779b1n + BigInt(h) + 1n), PARAMS);
  return { m, region, iteration: 0n };
}

/** Bumps the iteration and runs `instructions`; a full dirty ring is drained into the tracker. */
export function step(d: Dirtier, instructions: bigint, tracker?: DirtyTracker): void {
  setIteration(d.m, ++d.iteration);
  for (let left = instructions, guard = 0; left > 0n; guard++) {
    if (guard > 10_000) throw new Error("the guest makes no progress");
    const r = d.m.run({ maxInstructions: left });
    left -= r.instructions;
    if (r.stop === "dirty-ring-full") {
      if (tracker) tracker.collect();
      else { // nobody tracks: recycle the entries
        for (const v of d.m.vcpus) v.dirtyRing.harvest();
        d.m.vm.resetDirtyRings();
      }
    } else if (r.stop !== "limit") throw new Error(`the guest stopped: ${r.stop} ${d.m.output}`);
  }
}
