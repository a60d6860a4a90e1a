// Live migration (src/migration/): a guest of 256 MiB (quick: 32 MiB) whose
// dirtylog guest keeps writing over a region of a quarter of its RAM, paced to
// a dirty rate in MiB/s of wall time, migrated between two Kvm instances of
// this thread over a MessageChannel, for bitmap, ring and post-copy. Measured:
// total time, downtime (source stop to destination resume), rounds, and the
// data pages sent over the pages that had to be sent (those holding data at the
// switch-over). The memory digest is left out (verify: false): it reads the
// whole guest inside the downtime and is a check, not the transfer.
import { readFileSync } from "node:fs";
import { MessageChannel } from "node:worker_threads";
import { Kvm, Machine, migrate, receiveMigration, PortTransport } from "../dist/index.js";

const image = new Uint8Array(readFileSync(new URL("../guests/dirtylog/dirtylog.bin", import.meta.url)));
const PAGE = 4096;
/** Instructions per store of the dirtylog guest's loop (measured: about 11). */
const PER_STORE = 11;
const TARGET_DOWNTIME_MS = 10;
const TARGET_SENT_RATIO = 1.2;

function params(base, pages, seed) {
  const b = new Uint8Array(24), dv = new DataView(b.buffer);
  dv.setBigUint64(0, base, true);
  dv.setBigUint64(8, BigInt(pages), true);
  dv.setBigUint64(16, BigInt(seed), true);
  return b;
}

async function one(memMiB, rateMiB, mode) {
  const kvm = await Kvm.open();
  const memSize = BigInt(memMiB) << 20n;
  // A short turn: a slice ends near the pace asked.
  const m = await Machine.create({ kvm, memSize, turn: 256, dirtyRing: mode === "ring" ? 65536 : undefined });
  const regionPages = (memMiB << 20) / 4 / PAGE;
  const base = 0x80000000n + memSize - BigInt(regionPages * PAGE);
  m.vm.writeGuest(0x80300000n, params(base, regionPages, 0x1234));
  m.load(image, 0x80300000n);
  let iteration = 0n;
  const bump = () => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, ++iteration, true);
    m.vm.writeGuest(0x80200000n, b);
  };
  // Warm up: the region written through a few times.
  bump();
  for (let done = 0n; done < BigInt(regionPages * PER_STORE * 3);) done += m.run({ maxInstructions: 1_000_000n }).instructions;
  // Paced: each slice runs the stores the rate allows for the time since the last one.
  let last = performance.now();
  const runSlice = (mm) => {
    const now = performance.now();
    const stores = Math.max(1, Math.round(((rateMiB << 20) / PAGE) * ((now - last) / 1000)));
    last = now;
    bump();
    return mm.run({ maxInstructions: BigInt(stores * PER_STORE) });
  };
  const { port1, port2 } = new MessageChannel();
  const dst = await Kvm.open();
  const t = performance.now();
  const [stats, incoming] = await Promise.all([
    migrate(m, new PortTransport(port1), { mode: mode === "ring" ? "ring" : "bitmap", verify: false, runSlice,
      downtimeLimitMs: TARGET_DOWNTIME_MS, maxRounds: 20, postcopyAfterRounds: mode === "postcopy" ? 1 : undefined }),
    receiveMigration(new PortTransport(port2), { kvm: dst, sliceInstructions: 100_000n }),
  ]);
  const wall = performance.now() - t;
  // Pages that had to be sent: those holding data at the switch-over (the source has not run since).
  let needed = 0;
  for (const r of m.memoryRegions()) {
    for (let p = 0n; p < r.size; p += BigInt(PAGE)) if (kvm.memory.resident(r.hva + p)) needed++;
  }
  incoming.machine.close();
  m.close();
  return { memMiB, rateMiB, mode, totalMs: stats.totalMs, wallMs: wall, downtimeMs: stats.downtimeMs, rounds: stats.rounds,
    converged: stats.converged, pagesSent: stats.pagesSent, zeroPages: stats.zeroPages, needed,
    sentRatio: stats.pagesSent / Math.max(1, needed), requested: stats.requestedPages };
}

export async function migrationSuite(quick) {
  const memMiB = quick ? 32 : 256;
  const rates = quick ? [16, 64] : [16, 64, 256];
  const rows = [];
  for (const mode of ["bitmap", "ring", "postcopy"]) {
    for (const rate of rates) {
      let r;
      try {
        r = await one(memMiB, rate, mode);
      } catch (e) {
        // Post-copy needs kvm.memory's missing mode: a build without it says so in the report.
        rows.push({ memMiB, rateMiB: rate, mode, error: String(e.message ?? e) });
        console.log(`migration ${mode} ${memMiB} MiB at ${rate} MiB/s: ${e.message ?? e}`);
        continue;
      }
      rows.push(r);
      console.log(`migration ${mode} ${memMiB} MiB at ${rate} MiB/s: total ${r.totalMs.toFixed(0)} ms, downtime ${r.downtimeMs.toFixed(1)} ms, ` +
        `${r.rounds} rounds${r.converged ? "" : " (not converged)"}, sent ${r.pagesSent} data pages / ${r.needed} needed = ${r.sentRatio.toFixed(2)}x` +
        (mode === "postcopy" ? `, ${r.requested} requested` : ""));
    }
  }
  return { name: "live-migration", rows, targetDowntimeMs: TARGET_DOWNTIME_MS, targetSentRatio: TARGET_SENT_RATIO };
}

if (import.meta.url === `file://${process.argv[1]}`) await migrationSuite(process.argv.includes("--quick"));
