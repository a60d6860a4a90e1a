// Migration of the dirtier guest (guests/dirtier): it dirties its region at a
// set rate while pre-copy (bitmap, ring) or post-copy moves it, keeps a
// checksum of everything it wrote, and after the switch-over verifies its own
// memory on the destination — a lost or stale page fails its check.
import { describe, it, expect } from "vitest";
import { readFileSync } from "node:fs";
import { Machine, type Kvm } from "../src/index.js";
import { migrate } from "../src/migration/precopy.js";
import { receiveMigration } from "../src/migration/incoming.js";
import { openKvm } from "./helpers.js";
import { link, sameMemory, type Link } from "./migration-helpers.js";
import { Rng } from "./rng.js";
import {
  writeDirtierConfig, readDirtierStatus, requestVerify, verifyPending, dirtierRegionFor, DIRTIER_FLAG_PAGE,
// @ts-expect-error plain JS module without types
} from "../guests/dirtier/reference.mjs";

const image = new Uint8Array(readFileSync(new URL("../guests/dirtier/dirtier.bin", import.meta.url)));
const MEM = 5n << 20n; // a region of 256 pages above the table (dirtierRegionFor)

async function boot(kvm: Kvm, cfg: { seed: bigint; rate: bigint; flags: bigint; harts: number }, ring: boolean): Promise<Machine> {
  const m = await Machine.create({ kvm, memSize: MEM, vcpus: cfg.harts, turn: 5000, dirtyRing: ring ? 65536 : undefined });
  writeDirtierConfig(m.vm, { ...dirtierRegionFor(MEM), ...cfg, harts: BigInt(cfg.harts) });
  m.load(image);
  return m;
}

function runUntil(m: Machine, done: () => boolean): void {
  for (let used = 0n; !done(); ) {
    if (used > 200_000_000n) throw new Error(`not done after ${used} instructions: ${m.output}`);
    const r = m.run({ maxInstructions: 50_000n });
    if (r.stop === "dirty-ring-full") {
      for (const v of m.vcpus) v.dirtyRing.harvest();
      m.vm.resetDirtyRings();
    } else if (r.stop !== "limit") throw new Error(`run stopped: ${r.stop} ${m.output}`);
    used += r.instructions;
  }
}

/** The guest's own verify, on whichever machine it now runs. */
function verify(m: Machine): { result: bigint; bad: bigint; checked: bigint } {
  requestVerify(m.vm);
  runUntil(m, () => !verifyPending(m.vm));
  return readDirtierStatus(m.vm);
}

type Way = "bitmap" | "ring" | "postcopy";

async function moveDirtier(kind: Link, way: Way, cfg: { seed: bigint; rate: bigint; flags: bigint; harts: number }) {
  const src = await boot(await openKvm(), cfg, way === "ring");
  runUntil(src, () => readDirtierStatus(src.vm).ops > 2000n);
  const l = await link(kind);
  try {
    const [stats, incoming] = await Promise.all([
      migrate(src, l.src, { mode: way === "ring" ? "ring" : "bitmap", sliceInstructions: 20_000n, messageBytes: 128 << 10,
        clearChunkPages: 256, postcopyAfterRounds: way === "postcopy" ? 1 : undefined }),
      receiveMigration(l.dst, { kvm: await openKvm(), sliceInstructions: way === "postcopy" ? 0n : undefined }),
    ]);
    return { src, dst: incoming.machine, stats };
  } finally {
    l.done();
  }
}

const WAYS: Way[] = ["bitmap", "ring", "postcopy"];
/** Migrations per way: 34 x 3 = 102, the hundred, each checked by the guest itself. */
const TRIALS = 34;

describe("the dirtier guest, migrated while it writes, verifies its own memory on the destination", () => {
  for (const way of WAYS) {
    it(`${way}: ${TRIALS} migrations (MessagePort and TCP, seeds, rates, word or page writes, 1 or 2 harts): memory equal at the switch-over, and the guest's verify passes there and after it ran on`, async () => {
      const r = new Rng(way.length * 7 + 1);
      for (let trial = 0; trial < TRIALS; trial++) {
        const cfg = { seed: BigInt(r.int(1 << 30)), rate: BigInt(r.pick([0, 20_000, 200_000])),
          flags: r.chance(0.3) ? DIRTIER_FLAG_PAGE : 0n, harts: r.pick([1, 2]) };
        const { src, dst, stats } = await moveDirtier(trial % 2 ? "tcp" : "port", way, cfg);
        const what = `${way} trial ${trial} ${JSON.stringify(cfg, (_, v) => (typeof v === "bigint" ? String(v) : v))}`;
        expect(stats.postcopy, what).toBe(way === "postcopy");
        expect(sameMemory(src, dst), what).toBeNull();
        const before = readDirtierStatus(dst.vm).ops;
        const v1 = verify(dst);
        expect(v1.result, what).toBe(0n);
        expect(v1.checked, what).toBe(BigInt(dirtierRegionFor(MEM).pages));
        runUntil(dst, () => readDirtierStatus(dst.vm).ops > before + 500n);
        expect(verify(dst).result, what).toBe(0n);
        expect(dst.output).toMatch(/dirtier verify ok pages=\d+\n.*dirtier verify ok/s);
      }
    });
  }
});
