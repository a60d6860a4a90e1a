// Snapshots (src/migration/snapshot.ts) of a machine whose RAM has T MiB
// touched, on the release core: a full snapshot's size and write time, its
// restore into a fresh Kvm, and an incremental one after a tenth of those pages
// were written again — each per GiB of the memory concerned (touched, or
// dirtied for the incremental). Best of a few rounds; no baseline, no target.
import { Kvm, Machine, takeSnapshot, Snapshotter, restoreSnapshot, describeSnapshot } from "../dist/index.js";

const MiB = 1n << 20n;
const PAGE = 4096;

/** A machine of `mem` bytes whose first `touched` bytes hold data (a random 1 MiB pattern, per page a different start). */
async function touchedMachine(mem, touched) {
  const m = await Machine.create({ kvm: await Kvm.open({ core: "release" }), memSize: mem });
  const pattern = new Uint8Array(Number(MiB) + PAGE);
  crypto.getRandomValues(pattern.subarray(0, 65536));
  for (let i = 65536; i < pattern.length; i++) pattern[i] = pattern[i - 65536] ^ (i >> 16);
  for (let at = 0n, k = 0; at < touched; at += MiB, k++) m.kvm.memory.write(m.ramHva + at, pattern.subarray(k % 7 * 8, k % 7 * 8 + Number(MiB)));
  return m;
}

const ms = (t0) => performance.now() - t0;
const perGiB = (value, bytes) => value * Number(1n << 30n) / Number(bytes);

export async function snapshotSuite(quick) {
  const touched = (quick ? 32n : 256n) * MiB;
  const mem = touched * 2n;
  const rounds = quick ? 1 : 3;
  const best = { writeMs: Infinity, restoreMs: Infinity, incMs: Infinity };
  let size = 0, incSize = 0, dirtied = 0n;
  for (let r = 0; r < rounds; r++) {
    const m = await touchedMachine(mem, touched);
    let t0 = performance.now();
    const full = takeSnapshot(m);
    best.writeMs = Math.min(best.writeMs, ms(t0));
    size = full.length;
    const target = await Kvm.open({ core: "release" });
    t0 = performance.now();
    const back = await restoreSnapshot(full, { kvm: target });
    best.restoreMs = Math.min(best.restoreMs, ms(t0));
    back.close();
    // Incremental: every tenth page of the touched memory written again (through KVM, so logged), then a snapshot.
    const s = new Snapshotter(m);
    s.take();
    const page = new Uint8Array(PAGE).fill(0x5a);
    dirtied = 0n;
    for (let at = 0n; at < touched; at += 10n * BigInt(PAGE)) { m.vm.writeGuest(0x80000000n + at, page); dirtied += BigInt(PAGE); }
    t0 = performance.now();
    const inc = s.take();
    best.incMs = Math.min(best.incMs, ms(t0));
    incSize = inc.length;
    if (describeSnapshot(inc).dataPages !== Number(dirtied) / PAGE) throw new Error("incremental pages");
    m.close();
  }
  const row = {
    name: "snapshot", touchedMiB: Number(touched / MiB), memMiB: Number(mem / MiB), rounds, dirtiedMiB: Number(dirtied) / 2 ** 20,
    bytesPerGiB: perGiB(size, touched), writeMsPerGiB: perGiB(best.writeMs, touched), restoreMsPerGiB: perGiB(best.restoreMs, touched),
    incrementalBytesPerGiB: perGiB(incSize, dirtied), incrementalMsPerGiB: perGiB(best.incMs, dirtied),
  };
  console.log(`\nsnapshots (${row.touchedMiB} MiB touched of ${row.memMiB} MiB, best of ${rounds}): full ` +
    `${(row.bytesPerGiB / 2 ** 30).toFixed(3)} GiB per GiB touched, written in ${row.writeMsPerGiB.toFixed(0)} ms/GiB, ` +
    `restored in ${row.restoreMsPerGiB.toFixed(0)} ms/GiB; incremental after ${row.dirtiedMiB.toFixed(1)} MiB rewritten: ` +
    `${(row.incrementalBytesPerGiB / 2 ** 30).toFixed(3)} GiB per GiB dirtied, ${row.incrementalMsPerGiB.toFixed(0)} ms/GiB`);
  return row;
}
