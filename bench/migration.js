// Live migration (src/migration/) of a 256 MiB guest (quick: 32 MiB) running
// guests/dirtier, its region (most of RAM) first filled with data, then dirtied
// at 16, 64 and 256 MiB/s of wall time, in three ways: pre-copy harvesting the
// dirty bitmap (manual protect, cleared in chunks), pre-copy harvesting the
// dirty ring, and post-copy after the device state alone. The source runs on
// this thread, the destination on a Worker with its own Kvm (release cores),
// joined by a MessagePort. Measured: total time, downtime (the source guest's
// last instruction to the destination's resume, wall clock), rounds, and the
// data pages sent over the pages that had to be sent (those holding data at the
// switch-over). After the switch-over the destination's guest verifies all of
// its memory against its own checksums: a figure only counts if that passed.
// The memory digest is left out (verify: false): it reads the whole guest
// inside the downtime and is a check, not the transfer.
//
// The rate is paced by the wall clock: between the migration's messages the
// guest (one u64 written per op, so an op dirties a page) runs only the ops the
// rate allows by then; a slow host lowers the guest's CPU share, not the rate.
// The rate reached is reported beside the one asked for.
import { Worker, MessageChannel } from "node:worker_threads";
import { readFileSync } from "node:fs";
import { Kvm, Machine, migrate, PortTransport } from "../dist/index.js";
import { writeDirtierConfig, dirtierRegionFor, DIRTIER_HARTS } from "../guests/dirtier/reference.mjs";

const IMAGE = new URL("../guests/dirtier/dirtier.bin", import.meta.url);
const WORKER = new URL("./migration-worker.js", import.meta.url);
const PAGE = 4096;
const MiB = 1 << 20;
/** Fewer instructions than an op of the dirtier takes after its fill (about 80, guests/README.md; fewer right after the fill): a slice never overshoots its ops. */
const INSTR_PER_OP_LOW = 16;
const TARGET_DOWNTIME_MS = 10;
const TARGET_SENT_RATIO = 1.2;

/** Hart 0's ops (its slot's first field). */
const opsOf = (vm) => new DataView(vm.readGuest(DIRTIER_HARTS, 8).buffer).getBigUint64(0, true);

/** A machine running the dirtier whose fill has written every page of its region once. */
async function filledDirtier(memMiB, mode, seed) {
  const memSize = BigInt(memMiB) << 20n;
  const m = await Machine.create({ kvm: await Kvm.open({ core: "release" }), memSize, turn: 200_000,
    dirtyRing: mode === "ring" ? 1 << 20 : undefined });
  const region = dirtierRegionFor(memSize);
  m.load(new Uint8Array(readFileSync(IMAGE)));
  writeDirtierConfig(m.vm, { seed: BigInt(seed), ...region, rate: 0n, fill: true });
  for (let guard = 0; opsOf(m.vm) < BigInt(region.pages); guard++) {
    if (guard > 100_000) throw new Error("the dirtier's fill does not progress");
    const r = m.run({ maxInstructions: 20_000_000n });
    if (r.stop === "dirty-ring-full") { for (const v of m.vcpus) v.dirtyRing.harvest(); m.vm.resetDirtyRings(); }
    else if (r.stop !== "limit") throw new Error(`the dirtier stopped during its fill: ${r.stop}\n${m.output}`);
  }
  return m;
}

/** A runSlice keeping the guest's ops at opsPerSec of wall time since it was made; reached() is the rate so far. */
function pacedSlice(m, opsPerSec) {
  const t0 = performance.now();
  const ops0 = opsOf(m.vm);
  const idle = { stop: "limit", reason: 0, instructions: 0n, exits: 0, lastExit: { reason: 0, name: "", errno: 0 }, hart: 0 };
  const slice = (mm) => {
    const target = ops0 + BigInt(Math.floor(((performance.now() - t0) / 1000) * opsPerSec));
    let r = idle;
    for (let due = target - opsOf(mm.vm); due > 0n && r.stop === "limit"; due = target - opsOf(mm.vm)) {
      // A KVM_RUN runs its whole budget (the machine's turn): sized to the ops due, so the slice does not overshoot.
      const n = due * BigInt(INSTR_PER_OP_LOW);
      for (const v of mm.vcpus) v.setBudget(Number(n < 200_000n ? n : 200_000n));
      r = mm.run({ maxInstructions: n });
    }
    return r;
  };
  slice.reached = () => (Number(opsOf(m.vm) - ops0) * PAGE / MiB) / ((performance.now() - t0) / 1000);
  return slice;
}

/** Pages of the machine's memory holding data: each had to cross at least once. */
function pagesHoldingData(m) {
  let n = 0;
  for (const r of m.memoryRegions()) {
    for (let off = 0n; off < r.size; off += BigInt(MiB)) {
      const bytes = m.kvm.memory.read(r.hva + off, Math.min(MiB, Number(r.size - off)));
      const words = new BigUint64Array(bytes.buffer, bytes.byteOffset, bytes.length / 8);
      for (let p = 0; p < words.length; p += 512) {
        for (let w = p; w < p + 512; w++) if (words[w] !== 0n) { n++; break; }
      }
    }
  }
  return n;
}

async function one(memMiB, rateMiB, mode, seed) {
  const m = await filledDirtier(memMiB, mode, seed);
  const worker = new Worker(WORKER);
  const reply = new Promise((resolve, reject) => { worker.once("message", resolve); worker.once("error", reject); });
  const { port1, port2 } = new MessageChannel();
  worker.postMessage({ port: port2, sliceInstructions: 200_000 }, [port2]);
  const pace = pacedSlice(m, (rateMiB * MiB) / PAGE);
  let estimate = 0; // the switch-over's fixed cost as measured at the hello
  try {
    const stats = await migrate(m, new PortTransport(port1), { mode: mode === "ring" ? "ring" : "bitmap", verify: false,
      runSlice: pace, downtimeLimitMs: TARGET_DOWNTIME_MS, maxRounds: 20, timing: true,
      onProgress: (p) => { estimate = p.switchoverMs; }, postcopyAfterRounds: mode === "postcopy" ? 0 : undefined });
    const reached = pace.reached();
    const dst = await reply;
    if (dst.error) throw new Error(`destination: ${dst.error}`);
    if (dst.result !== 0) throw new Error(`the destination guest's verify failed: result ${dst.result}, ${dst.bad} bad pages`);
    const needed = pagesHoldingData(m); // the source has not run since the switch-over
    return { memMiB, rateMiB, reachedMiB: reached, mode, totalMs: stats.totalMs, downtimeMs: stats.downtimeMs, rounds: stats.rounds,
      converged: stats.converged, pagesSent: stats.pagesSent, zeroPages: stats.zeroPages, needed,
      sentRatio: stats.pagesSent / Math.max(1, needed), requested: stats.requestedPages, verifiedPages: dst.checked,
      switchover: stats.switchover, switchoverEstimateMs: estimate };
  } finally {
    await worker.terminate();
    m.close();
  }
}

export async function migrationSuite(quick) {
  const memMiB = quick ? 32 : 256;
  // While iterating: MIGRATION_RATES=64 MIGRATION_MODES=bitmap,ring runs only those rows (seeds stay those of the full table);
  // MIGRATION_TIMING=1 prints each row's switch-over step by step (MigrationStats.switchover).
  const pick = (env, all) => (process.env[env] ? all.filter((x) => process.env[env].split(",").includes(String(x))) : all);
  const rates = [16, 64, 256];
  const rows = [];
  let seed = 0;
  for (const mode of ["bitmap", "ring", "postcopy"]) {
    for (const rate of rates) {
      seed++;
      if (!pick("MIGRATION_RATES", rates).includes(rate) || !pick("MIGRATION_MODES", ["bitmap", "ring", "postcopy"]).includes(mode)) continue;
      let r;
      try {
        r = await one(memMiB, rate, mode, seed);
      } catch (e) {
        rows.push({ memMiB, rateMiB: rate, mode, error: String(e.message ?? e) });
        console.log(`migration ${mode} ${memMiB} MiB at ${rate} MiB/s: ${e.message ?? e}`);
        continue;
      }
      rows.push(r);
      const reached = mode === "postcopy" ? "" : ` (reached ${r.reachedMiB.toFixed(1)})`; // post-copy: the guest runs at the destination
      console.log(`migration ${mode} ${memMiB} MiB at ${rate} MiB/s${reached}: total ${r.totalMs.toFixed(0)} ms, ` +
        `downtime ${r.downtimeMs.toFixed(1)} ms, ${r.rounds} rounds${r.converged ? "" : " (not converged)"}, sent ${r.pagesSent} data pages / ` +
        `${r.needed} needed = ${r.sentRatio.toFixed(2)}x` + (mode === "postcopy" ? `, ${r.requested} requested` : "") +
        `; destination verified ${r.verifiedPages} pages ok`);
      if (process.env.MIGRATION_TIMING) console.log(`  switch-over estimated at the hello: ${r.switchoverEstimateMs.toFixed(2)} ms`);
      if (process.env.MIGRATION_TIMING) for (const x of r.switchover ?? []) console.log(`  ${x.ms.toFixed(2).padStart(8)} ms  ${x.step}`);
    }
  }
  return { name: "live-migration", rows, targetDowntimeMs: TARGET_DOWNTIME_MS, targetSentRatio: TARGET_SENT_RATIO };
}

if (import.meta.url === `file://${process.argv[1]}`) await migrationSuite(process.argv.includes("--quick"));
