// Snapshots (src/migration/snapshot*.ts): the file format's rules, and guests'
// RAM carried by full and incremental snapshots into a fresh Kvm.
import { describe, it, expect } from "vitest";
import { readFileSync } from "node:fs";
import { Machine } from "../src/index.js";
import { openKvm } from "./helpers.js";
import { PageWriter, decodePageRuns, PAGE_BYTES } from "../src/migration/pages.js";
import { SectionError, sectionBytes, type Section } from "../src/migration/section.js";
import { crc32 } from "../src/migration/crc32.js";
import {
  encodeSnapshot, decodeSnapshot, describeSnapshot, readSnapshotHeader, splitSnapshots, snapshotToBlob, snapshotFromBlob,
  newSnapshotId, SnapshotError, SNAPSHOT_HEADER_BYTES, MEMORY_SECTION, MEMORY_VERSION,
} from "../src/migration/snapshot-file.js";
import { checkRuns, type RamRegion } from "../src/migration/snapshot-memory.js";
import { takeSnapshot, Snapshotter, restoreSnapshot, type SnapshotProgress } from "../src/migration/snapshot.js";
import { riscv, type Kvm } from "../src/index.js";
// @ts-expect-error plain JS module without types
import { dirtylogPages, DIRTYLOG_DEFAULT_PAGES, DIRTYLOG_ITERATION, dirtylogStepsGpa } from "../guests/dirtylog/reference.mjs";
// @ts-expect-error plain JS module without types
import { fnv1a64, memtestLine } from "../guests/memtest/reference.mjs";
import {
  writeDirtierConfig, readDirtierStatus, requestVerify, verifyPending, DIRTIER_DEFAULT_BASE, DIRTIER_STATE_RUNNING,
// @ts-expect-error plain JS module without types
} from "../guests/dirtier/reference.mjs";

const guest = (name: string) => new Uint8Array(readFileSync(new URL(`../guests/${name}/${name}.bin`, import.meta.url)));
const enc = new TextEncoder();
const P = BigInt(PAGE_BYTES);

const small = (): Section[] => [
  { name: "machine", version: 1, payload: enc.encode("{\"vcpus\":1}") },
  { name: "vcpu.0", version: 2, payload: Uint8Array.from({ length: 40 }, (_, i) => i * 7) },
];

function thrown(fn: () => unknown): Error {
  try { fn(); } catch (e) { return e as Error; }
  throw new Error("did not throw");
}

describe("snapshot file", () => {
  it("snapshot header: round-trips id, parent, sequence, sizes and sections; describeSnapshot lists them", () => {
    const id = newSnapshotId(), parent = newSnapshotId();
    const full = encodeSnapshot({ id, parent: 0n, sequence: 0 }, small());
    const inc = encodeSnapshot({ id: 7n, parent, sequence: 3 }, small());
    const h = decodeSnapshot(full).header;
    expect([h.incremental, h.id, h.parent, h.sequence, h.totalBytes, h.sections]).toEqual([false, id, 0n, 0, full.length, 2]);
    expect(readSnapshotHeader(inc)).toMatchObject({ incremental: true, id: 7n, parent, sequence: 3 });
    expect(decodeSnapshot(inc).sections.map((s) => [s.name, s.version, [...s.payload]]))
      .toEqual(small().map((s) => [s.name, s.version, [...s.payload]]));
    const d = describeSnapshot(full);
    expect(d.sectionList).toEqual([{ name: "machine", version: 1, bytes: 11 }, { name: "vcpu.0", version: 2, bytes: 40 }]);
    expect([d.dataPages, d.zeroPages]).toEqual([0, 0]);
  });

  it("snapshot header: a wrong magic or an unknown format version is refused naming the header", () => {
    const b = encodeSnapshot({ id: 1n, parent: 0n, sequence: 0 }, small());
    const magic = b.slice();
    magic[0] = 0x58;
    expect(thrown(() => decodeSnapshot(magic)).message).toMatch(/^snapshot 0: section "header": not a webkvm snapshot/);
    const version = b.slice();
    new DataView(version.buffer).setUint16(8, 2, true);
    expect(thrown(() => decodeSnapshot(version)).message).toMatch(/section "header": format version 2, this reader knows 1/);
  });

  it("snapshot file: every truncation is refused naming the header or a section", () => {
    const b = encodeSnapshot({ id: 5n, parent: 0n, sequence: 0 }, small());
    // Where each section's payload lies: a cut inside one names it; a cut elsewhere names the header.
    let at = SNAPSHOT_HEADER_BYTES;
    const payloads = small().map((s) => {
      const start = at + sectionBytes(s) - s.payload.length;
      at += sectionBytes(s);
      return { name: s.name, start, end: at };
    });
    for (let n = 0; n < b.length; n++) {
      const e = thrown(() => decodeSnapshot(b.subarray(0, n)));
      expect(e, `length ${n}`).toBeInstanceOf(SnapshotError);
      expect(e.message).toMatch(/truncated/);
      const cut = payloads.find((p) => n >= p.start && n < p.end);
      expect((e as SnapshotError).section, `length ${n}`).toMatch(cut ? new RegExp(`^${cut.name.replace(".", "\\.")}$`) : /^header/);
    }
    // A file cut at a section boundary, its header rewritten to the shorter size (checksum and all), still
    // lacks a section: the count is checked.
    const cut = b.slice(0, SNAPSHOT_HEADER_BYTES + sectionBytes(small()[0]));
    const dv = new DataView(cut.buffer);
    dv.setBigUint64(32, BigInt(cut.length), true);
    dv.setUint32(44, crc32(cut.subarray(0, 44)), true);
    expect(thrown(() => decodeSnapshot(cut)).message).toMatch(/section "header": 2 sections declared, 1 present/);
  });

  it("snapshot file: every single-byte corruption is refused (SnapshotError), never read as another snapshot", () => {
    const b = encodeSnapshot({ id: 5n, parent: 0n, sequence: 0 }, small());
    for (let i = 0; i < b.length; i++) {
      for (const x of [0x01, 0x80, 0xff]) {
        const d = b.slice();
        d[i] ^= x;
        let got: ReturnType<typeof decodeSnapshot> | null = null;
        try { got = decodeSnapshot(d); } catch (e) { expect(e, `byte ${i}`).toBeInstanceOf(SnapshotError); continue; }
        // A damaged name or version frames and sums correctly: the reader refuses the unexpected section (takeSection).
        const names = got.sections.map((s) => `${s.name}/${s.version}`).join();
        expect(names, `byte ${i} ^ ${x}`).not.toBe("machine/1,vcpu.0/2");
      }
    }
  });

  it("snapshot file: a damaged section is refused naming that section and the snapshot's place in the chain", () => {
    const b = encodeSnapshot({ id: 5n, parent: 0n, sequence: 0 }, small());
    const d = b.slice();
    d[b.length - 3] ^= 4; // inside vcpu.0's payload
    const e = thrown(() => decodeSnapshot(d, 2));
    expect(e).toBeInstanceOf(SectionError);
    expect((e as SnapshotError).section).toBe("vcpu.0");
    expect(e.message).toBe("snapshot 2: section \"vcpu.0\": checksum mismatch: the payload is damaged");
  });

  it("snapshot file: a chain saved as one Blob splits back at its headers' sizes", async () => {
    const a = encodeSnapshot({ id: 1n, parent: 0n, sequence: 0 }, small());
    const c = encodeSnapshot({ id: 2n, parent: 1n, sequence: 1 }, small().slice(1));
    const blob = snapshotToBlob([a, c]);
    expect(blob.size).toBe(a.length + c.length);
    const back = await snapshotFromBlob(blob);
    expect(back.map((x) => [...x])).toEqual([[...a], [...c]]);
    expect((await snapshotFromBlob(snapshotToBlob(a))).length).toBe(1);
    const cut = new Uint8Array(await blob.arrayBuffer()).subarray(0, a.length + 10);
    expect(thrown(() => splitSnapshots(cut)).message).toMatch(/^snapshot 1: section "header": truncated/);
    expect(thrown(() => splitSnapshots(new Uint8Array(0))).message).toMatch(/truncated: no bytes/);
  });
});

// ---- a running guest snapshotted and restored into a fresh Kvm ----

const MEM = 16n << 20n;

/** A 16 MiB machine on the debug core; KVM_RUN returns every 2,000 instructions, so run() stops close to its limit. */
async function machine(vcpus = 1): Promise<Machine> {
  return Machine.create({ kvm: await openKvm(), memSize: MEM, turn: 2000, vcpus });
}

/** Every RAM byte of a machine, slot by slot. */
const ram = (m: Machine): Uint8Array[] => m.memoryRegions().map((r) => m.kvm.memory.read(r.hva, Number(r.size)));

/** All a guest can see of a machine: registers and CSRs (time included), RAM hashes, devices, harts, console input. */
function observable(m: Machine) {
  const s = m.saveState();
  return { regs: s.vcpus, ram: ram(m).map((b) => fnv1a64(b) as bigint), harts: s.harts, current: s.current, uart: s.uart,
    plic: s.plic, sbiInput: s.sbiInput };
}

/** Runs both machines the same budget: they stop alike, print the same and end equal in all a guest sees. */
function expectSameFuture(a: Machine, b: Machine, budget: bigint): void {
  const outA = a.output.length, outB = b.output.length;
  const ra = a.run({ maxInstructions: budget }), rb = b.run({ maxInstructions: budget });
  expect([rb.stop, rb.reason, rb.instructions, rb.hart]).toEqual([ra.stop, ra.reason, ra.instructions, ra.hart]);
  expect(b.output.slice(outB)).toBe(a.output.slice(outA));
  expect(observable(b)).toEqual(observable(a));
}

const readU64 = (m: Machine, gpa: bigint) => new DataView(m.vm.readGuest(gpa, 8).buffer).getBigUint64(0, true);
const writeU64 = (m: Machine, gpa: bigint, v: bigint) => m.vm.writeGuest(gpa, new Uint8Array(new BigUint64Array([v]).buffer));

/** The dirtylog guest (hart 0, its default region) run for `steps` host iterations, a chain snapshot after each. */
async function dirtylogChain(steps: number, perStep = 15_000n) {
  const m = await machine();
  m.load(guest("dirtylog"));
  const snapshots = new Snapshotter(m);
  const chain = [snapshots.take()];
  const written: Set<number>[] = [];
  for (let k = 1; k <= steps; k++) {
    const before = readU64(m, dirtylogStepsGpa(0));
    writeU64(m, DIRTYLOG_ITERATION, BigInt(k));
    expect(m.run({ maxInstructions: perStep }).stop).toBe("limit");
    const after = readU64(m, dirtylogStepsGpa(0));
    written.push(new Set<number>((dirtylogPages(1n, DIRTYLOG_DEFAULT_PAGES, Number(after)) as number[]).slice(Number(before))));
    chain.push(snapshots.take());
  }
  return { m, chain, written };
}

describe("snapshot / restore", () => {
  it("full snapshot round trip: a restored guest continues exactly as the original (registers, RAM, console)", async () => {
    const m = await machine();
    m.load(guest("memtest"), 1n << 20n);
    expect(m.run({ maxInstructions: 1_500_000n }).stop).toBe("limit");
    const snap = takeSnapshot(m);
    const target = await openKvm();
    let console = "";
    const r = await restoreSnapshot(snap, { kvm: target, onConsole: (t) => { console += t; } });
    expect(r.kvm).toBe(target);
    expect(observable(r)).toEqual(observable(m));
    expectSameFuture(m, r, 1_000_000n);
    expectSameFuture(m, r, 200_000_000n);
    expect(r.output).toBe(memtestLine(1 << 20));
    expect(console).toBe(r.output);
    expect(m.output).toBe(r.output);
  });

  it("full snapshot round trip: four harts of the smp guest, mid-way, finish as the original does", async () => {
    const m = await machine(4);
    m.load(guest("smp"));
    expect(m.run({ maxInstructions: 1_234_567n }).stop).toBe("limit");
    const r = await restoreSnapshot([takeSnapshot(m)], { kvm: await openKvm() });
    for (let i = 0; i < 3; i++) expectSameFuture(m, r, 77_777n);
    expectSameFuture(m, r, 500_000_000n);
    expect(r.output).toMatch(/^smp ok harts=4 checksum=0x[0-9a-f]{16}\n$/);
  });

  it("full snapshot: pages that are zero are not stored", async () => {
    const m = await machine();
    m.load(guest("memtest"), 1n << 20n);
    m.run({ maxInstructions: 300_000n });
    const nonZero = ram(m).reduce((n, bytes) => {
      for (let off = 0; off < bytes.length; off += PAGE_BYTES) if (bytes.subarray(off, off + PAGE_BYTES).some((x) => x !== 0)) n++;
      return n;
    }, 0);
    const d = describeSnapshot(takeSnapshot(m));
    expect([d.dataPages, d.zeroPages]).toEqual([nonZero, 0]);
    expect(nonZero).toBeGreaterThan(10);
    expect(d.totalBytes).toBeLessThan((nonZero + 8) * PAGE_BYTES);
  });

  it("incremental chain: full + incrementals while the guest dirties memory restore the state a full snapshot at the end does", async () => {
    const { m, chain } = await dirtylogChain(5);
    expect(chain.map((b) => readSnapshotHeader(b).sequence)).toEqual([0, 1, 2, 3, 4, 5]);
    const fromChain = await restoreSnapshot(chain, { kvm: await openKvm() });
    const fromFull = await restoreSnapshot(takeSnapshot(m), { kvm: await openKvm() });
    expect(observable(fromChain)).toEqual(observable(m));
    expect(observable(fromFull)).toEqual(observable(m));
    writeU64(m, DIRTYLOG_ITERATION, 99n);
    writeU64(fromChain, DIRTYLOG_ITERATION, 99n);
    expectSameFuture(m, fromChain, 50_000n);
    // A chain cut short restores its own last point: not the end.
    const early = await restoreSnapshot(chain.slice(0, 3), { kvm: await openKvm() });
    expect(observable(early).ram).not.toEqual(observable(fromFull).ram);
  });

  it("incremental chain with the dirty ring: a full ring is drained into the next snapshot; the chain restores the end state", async () => {
    const m = await Machine.create({ kvm: await openKvm(), memSize: MEM, turn: 2000, dirtyRing: 4096 }); // 256 entries
    m.load(guest("dirtylog"));
    const snapshots = new Snapshotter(m);
    const chain = [snapshots.take()];
    let ringFull = 0;
    for (let k = 1n; k <= 3n; k++) {
      writeU64(m, DIRTYLOG_ITERATION, k);
      for (let left = 30_000n; left > 0n;) {
        const r = m.run({ maxInstructions: left });
        left -= r.instructions < left ? r.instructions : left;
        if (r.stop === "dirty-ring-full") { ringFull++; snapshots.collect(); } else expect(r.stop).toBe("limit");
      }
      chain.push(snapshots.take());
    }
    expect(ringFull).toBeGreaterThan(0);
    expect(describeSnapshot(chain[3]).dataPages).toBeGreaterThan(100);
    const r = await restoreSnapshot(chain, { kvm: await openKvm() });
    expect(observable(r)).toEqual(observable(m));
  });

  it("incremental size: about the dirtied pages only", async () => {
    const { chain, written } = await dirtylogChain(4);
    const full = describeSnapshot(chain[0]);
    written.forEach((pages, k) => {
      const d = describeSnapshot(chain[k + 1]);
      // The region pages the guest's model says these steps wrote, plus the page of the iteration and step counter.
      expect(pages.size).toBeGreaterThan(20);
      expect(d.dataPages + d.zeroPages, `incremental ${k + 1}`).toBeGreaterThanOrEqual(pages.size);
      expect(d.dataPages + d.zeroPages, `incremental ${k + 1}`).toBeLessThanOrEqual(pages.size + 2);
      const state = d.sectionList.filter((s) => s.name !== MEMORY_SECTION).reduce((n, s) => n + s.bytes, 0);
      expect(d.totalBytes).toBeLessThan(state + (pages.size + 2) * (PAGE_BYTES + 16) + 400);
    });
    expect(full.dataPages).toBeGreaterThan(0);
  });

  it("incremental: a page that became zero travels as a zero marker and is zero after restore", async () => {
    const m = await machine();
    const gpa = 0x80300000n;
    m.vm.writeGuest(gpa, new Uint8Array(PAGE_BYTES).fill(0xa5));
    const snapshots = new Snapshotter(m);
    const full = snapshots.take();
    m.vm.writeGuest(gpa, new Uint8Array(PAGE_BYTES)); // dirty, and all zero now
    const inc = snapshots.take();
    expect(describeSnapshot(inc)).toMatchObject({ dataPages: 0, zeroPages: 1 });
    expect((await restoreSnapshot([full], { kvm: await openKvm() })).vm.readGuest(gpa, 2)).toEqual(new Uint8Array([0xa5, 0xa5]));
    const r = await restoreSnapshot([full, inc], { kvm: await openKvm() });
    expect(r.vm.readGuest(gpa, PAGE_BYTES).every((x) => x === 0)).toBe(true);
    expect(observable(r)).toEqual(observable(m));
  });

  it("snapshot progress: onProgress reports pages read and the snapshot's bytes; a restore reports pages written", async () => {
    const m = await machine();
    m.load(guest("memtest"), 1n << 20n);
    m.run({ maxInstructions: 300_000n });
    const seen: SnapshotProgress[] = [];
    const bytes = takeSnapshot(m, { onProgress: (p) => seen.push(p) });
    const memory = seen.filter((p) => p.phase === "memory");
    expect(memory.length).toBeGreaterThan(1);
    expect(memory.at(-1)).toMatchObject({ pages: Number(MEM / P), totalPages: Number(MEM / P) });
    expect(memory.map((p) => p.pages)).toEqual([...memory.map((p) => p.pages)].sort((a, b) => a - b));
    expect(seen.at(-1)).toEqual({ phase: "done", snapshot: 0, pages: 0, totalPages: 0, bytes: bytes.length });
    const back: SnapshotProgress[] = [];
    await restoreSnapshot(bytes, { kvm: await openKvm(), onProgress: (p) => back.push(p) });
    const pages = describeSnapshot(bytes).dataPages;
    expect(back.filter((p) => p.phase === "restore-memory").at(-1)).toMatchObject({ pages, totalPages: pages, bytes: pages * PAGE_BYTES });
    expect(memory.at(-1)!.bytes).toBe(describeSnapshot(bytes).sectionList.find((s) => s.name === MEMORY_SECTION)!.bytes);
    expect(back.at(-1)?.phase).toBe("done");
  });

  it("snapshot RAM: a page run outside every memslot of the layout is refused naming the memory section", () => {
    const regions: RamRegion[] = [{ asId: 0, slot: 0, gpa: 0x80000000n, size: 16n * P, hva: 0n, flags: 0 }];
    const w = new PageWriter();
    w.addZero(0, 0x80000000n + 15n * P, 2); // one page past the end
    expect(() => checkRuns(decodePageRuns(w.take(), "memory"), regions, "memory"))
      .toThrow(/section "memory": page run 0: 2 pages at 0x8000f000 of address space 0 are not inside one memslot/);
    w.addZero(1, 0x80000000n, 1); // another address space
    expect(() => checkRuns(decodePageRuns(w.take(), "memory"), regions, "memory")).toThrow(/address space 1/);
    w.addZero(0, 0x80000000n, 16);
    expect(() => checkRuns(decodePageRuns(w.take(), "memory"), regions, "memory")).not.toThrow();
  });
});

// ---- refusals: checked before anything is created on the target ----

/** restoreSnapshot refuses the chain with a SnapshotError matching `message`, and the target Kvm gets nothing. */
async function refused(chain: Uint8Array | Uint8Array[], message: RegExp, section?: string): Promise<void> {
  const kvm: Kvm = await openKvm();
  const mappings = kvm.memory.mappings(), frames = kvm.memory.framesInUse;
  let error: unknown = null;
  try {
    await restoreSnapshot(chain, { kvm });
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(SnapshotError);
  expect((error as Error).message).toMatch(message);
  if (section !== undefined) expect((error as SnapshotError).section).toBe(section);
  expect(kvm.memory.mappings()).toEqual(mappings);
  expect(kvm.memory.framesInUse).toBe(frames);
  const live = (fd: number) => Boolean(kvm.core.vmLive(fd));
  for (let fd = 0; fd < 64; fd++) expect(live(fd), `a VM at fd ${fd}`).toBe(false);
  expect(live(kvm.createVm().fd)).toBe(true); // the probe sees a VM
}

/** Where each section of a snapshot is: its frame's first byte and its payload. */
function sectionSpans(bytes: Uint8Array): { name: string; frame: number; payload: number; end: number }[] {
  let at = SNAPSHOT_HEADER_BYTES;
  return decodeSnapshot(bytes).sections.map((s) => {
    const frame = at;
    at += sectionBytes(s);
    return { name: s.name, frame, payload: at - s.payload.length, end: at };
  });
}

/** A chain of the dirtylog guest: full and two incrementals; and another machine's full snapshot and incremental. */
const fixtures = (async () => {
  const { chain } = await dirtylogChain(2, 5_000n);
  const other = await Machine.create({ kvm: await openKvm(), memSize: 8n << 20n, turn: 2000 });
  other.load(guest("dirtylog"));
  const s = new Snapshotter(other);
  const otherChain = [s.take()];
  other.run({ maxInstructions: 5000n });
  otherChain.push(s.take());
  return { chain, otherChain };
})();

/** Snapshot `bytes`' sections under a new header: what a writer that mixes files up would produce. */
const reheaded = (bytes: Uint8Array, parent: bigint, sequence: number) =>
  encodeSnapshot({ id: newSnapshotId(), parent, sequence }, decodeSnapshot(bytes).sections);

describe("snapshot refusals", () => {
  it("refused: a truncated snapshot, cut in the header or any section, names where it is cut; nothing is created", async () => {
    const { chain } = await fixtures;
    const full = chain[0];
    await refused(full.subarray(0, 20), /^snapshot 0: section "header": truncated: 20 of the header's 48 bytes/, "header");
    for (const s of sectionSpans(full)) {
      await refused(full.subarray(0, s.payload + 1), new RegExp(`^snapshot 0: section "${s.name}": truncated.*\\(${full.length} bytes declared, ${s.payload + 1} present\\)$`), s.name);
      await refused(full.subarray(0, s.frame), /section "header": truncated after/, "header");
    }
    await refused([full, chain[1].subarray(0, chain[1].length - 1)], /^snapshot 1: section "memory": truncated/, "memory");
  });

  it("refused: a damaged byte anywhere in the header or a section names it; nothing is created", async () => {
    const { chain } = await fixtures;
    for (const [i, bytes] of chain.entries()) {
      const damaged = (at: number) => chain.map((b, k) => {
        if (k !== i) return b;
        const d = b.slice();
        d[at] ^= 0x10;
        return d;
      });
      for (const at of [0, 9, 17, 30, 40, 45]) await refused(damaged(at), new RegExp(`^snapshot ${i}: section "header"`), "header");
      for (const s of sectionSpans(bytes)) {
        await refused(damaged(s.payload + ((s.end - s.payload) >> 1)), new RegExp(`^snapshot ${i}: section "${s.name}": checksum mismatch`), s.name);
        // A damaged name: the section is unknown, or the one expected is missing.
        await refused(damaged(s.frame + 2), new RegExp(`^snapshot ${i}: section "[^"]+": (unknown section|missing)`));
      }
    }
  });

  it("refused: a section neither the state nor the RAM reader knows names it; nothing is created", async () => {
    const { chain } = await fixtures;
    const sections = decodeSnapshot(chain[0]).sections;
    const extra = { name: "extra", version: 1, payload: new Uint8Array(4) };
    await refused(encodeSnapshot({ id: 3n, parent: 0n, sequence: 0 }, [...sections, extra]), /^snapshot 0: section "extra": unknown section/, "extra");
  });

  it("refused: a wrong magic or format version names the header; nothing is created", async () => {
    const { chain } = await fixtures;
    const magic = chain[0].slice();
    magic.set(new TextEncoder().encode("NOTASNAP"));
    await refused(magic, /section "header": not a webkvm snapshot/, "header");
    const version = chain[0].slice();
    version[8] = 9;
    await refused(version, /section "header": format version 9, this reader knows 1/, "header");
  });

  it("refused: a chain whose ids do not link (an incremental missing, or out of order); nothing is created", async () => {
    const { chain } = await fixtures;
    await refused([chain[0], chain[2]], /^snapshot 1: section "header": its parent is snapshot 0x[0-9a-f]{16}, but the one before it in the chain is/, "header");
    await refused([chain[0], chain[2], chain[1]], /^snapshot 1: section "header": its parent/, "header");
    await refused([chain[0], chain[1], chain[0]], /^snapshot 2: section "header": a full snapshot inside a chain/, "header");
  });

  it("refused: an incremental snapshot without its base; nothing is created", async () => {
    const { chain } = await fixtures;
    await refused(chain[1], /^snapshot 0: section "header": an incremental snapshot \(sequence 1\) without its base/, "header");
    await refused(chain.slice(1), /without its base/, "header");
  });

  it("refused: a chain that mixes machines (another config, or another memslot layout) names the section; nothing is created", async () => {
    const { chain, otherChain } = await fixtures;
    const id = readSnapshotHeader(chain[0]).id;
    await refused([chain[0], reheaded(otherChain[1], id, 1)], /^snapshot 1: section "machine": not the machine of the chain's full snapshot/, "machine");
    // Same config, one more memslot.
    const m = await machine();
    m.load(guest("dirtylog"));
    m.vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: 0xc0000000n, memorySize: 1n << 20n, userspaceAddr: m.kvm.memory.mmap(1n << 20n) });
    const s = new Snapshotter(m);
    s.take();
    await refused([chain[0], reheaded(s.take(), id, 1)], /^snapshot 1: section "memslots": the layout differs/, "memslots");
  });

  it("refused: a page run outside the snapshot's memslots names the memory section; nothing is created", async () => {
    const { chain } = await fixtures;
    const sections = decodeSnapshot(chain[0]).sections.filter((s) => s.name !== MEMORY_SECTION);
    const w = new PageWriter();
    w.add(0, 0x80000000n + MEM, new Uint8Array(PAGE_BYTES).fill(1)); // the page after RAM
    const bad = encodeSnapshot({ id: 3n, parent: 0n, sequence: 0 }, [...sections, { name: MEMORY_SECTION, version: MEMORY_VERSION, payload: w.take() }]);
    await refused(bad, /^snapshot 0: section "memory": page run 0: 1 pages at 0x81000000 of address space 0 are not inside one memslot/, "memory");
    await refused(encodeSnapshot({ id: 3n, parent: 0n, sequence: 0 }, sections), /section "memory": missing/, "memory");
  });
});

// ---- the dirtier guest (guests/dirtier): its own check of every page it wrote, after a restore ----

describe("snapshot / restore with the dirtier guest", () => {
  /** Runs until the guest served the verify request it was given; its status after. */
  function verified(m: Machine) {
    requestVerify(m.vm);
    for (let i = 0; verifyPending(m.vm); i++) {
      if (i === 2000) throw new Error("the verify request was not served");
      expect(m.run({ maxInstructions: 200_000n }).stop).toBe("limit");
    }
    return readDirtierStatus(m.vm);
  }

  it("dirtier: a chain taken while two harts dirty memory restores a guest whose own verify passes, as the original's does", async () => {
    const m = await machine(2);
    const pages = 512;
    writeDirtierConfig(m.vm, { seed: 0x5eedn, base: DIRTIER_DEFAULT_BASE, pages, harts: 2 });
    m.load(guest("dirtier"));
    for (let i = 0; readDirtierStatus(m.vm).state !== DIRTIER_STATE_RUNNING || readDirtierStatus(m.vm).harts.length !== 2; i++) {
      if (i === 100) throw new Error("the dirtier did not start both harts");
      m.run({ maxInstructions: 20_000n });
    }
    const snapshots = new Snapshotter(m);
    const chain = [snapshots.take()];
    for (let k = 0; k < 4; k++) {
      m.run({ maxInstructions: 150_000n });
      chain.push(snapshots.take());
    }
    const ops = readDirtierStatus(m.vm).ops;
    expect(ops).toBeGreaterThan(1000n);
    const r = await restoreSnapshot(chain, { kvm: await openKvm() });
    expect(readDirtierStatus(r.vm).ops).toBe(ops);
    const mine = verified(r), theirs = verified(m);
    expect([mine.result, mine.checked, mine.bad]).toEqual([0n, BigInt(pages), 0n]);
    expect([theirs.result, theirs.checked]).toEqual([0n, BigInt(pages)]);
    expect(r.output.endsWith(`dirtier verify ok pages=${pages}\n`)).toBe(true);
    // Without its last incremental the restored guest is at that snapshot's point: consistent too, and behind.
    const earlier = await restoreSnapshot(chain.slice(0, 3), { kvm: await openKvm() });
    expect(readDirtierStatus(earlier.vm).ops).toBeLessThan(ops);
    expect(verified(earlier).result).toBe(0n);
  });

  it("dirtier: an incremental whose pages were lost is caught by the guest's own verify (the test is not blind)", async () => {
    const m = await machine();
    writeDirtierConfig(m.vm, { seed: 7n, base: DIRTIER_DEFAULT_BASE, pages: 256 });
    m.load(guest("dirtier"));
    for (let i = 0; readDirtierStatus(m.vm).state !== DIRTIER_STATE_RUNNING; i++) {
      if (i === 100) throw new Error("the dirtier did not start");
      m.run({ maxInstructions: 20_000n });
    }
    const snapshots = new Snapshotter(m);
    const chain = [snapshots.take()];
    m.run({ maxInstructions: 100_000n });
    // The incremental re-encoded without its region pages: the state says the guest wrote them, the RAM does not.
    const inc = decodeSnapshot(snapshots.take());
    const w = new PageWriter();
    for (const run of decodePageRuns(inc.sections.find((s) => s.name === MEMORY_SECTION)!.payload, MEMORY_SECTION)) {
      if (run.gpa < DIRTIER_DEFAULT_BASE && run.data) w.add(run.asId, run.gpa, run.data);
    }
    const sections = inc.sections.map((s) => (s.name === MEMORY_SECTION ? { ...s, payload: w.take() } : s));
    chain.push(encodeSnapshot({ id: inc.header.id, parent: inc.header.parent, sequence: 1 }, sections));
    const r = await restoreSnapshot(chain, { kvm: await openKvm() });
    const s = verified(r);
    expect(s.result).not.toBe(0n);
    expect(s.bad).toBeGreaterThan(0n);
  });
});
