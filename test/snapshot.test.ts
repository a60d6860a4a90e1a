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
import { writeAllPages, writePageRanges, applyRuns, checkRuns, type RamRegion } from "../src/migration/snapshot-memory.js";
import { DirtyHarvest, vmRegions } from "../src/migration/snapshot-dirty.js";
// @ts-expect-error plain JS module without types
import { dirtylogPages, DIRTYLOG_DEFAULT_BASE, DIRTYLOG_DEFAULT_PAGES, dirtylogStepsGpa } from "../guests/dirtylog/reference.mjs";

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
    for (let n = 0; n < b.length; n++) {
      const e = thrown(() => decodeSnapshot(b.subarray(0, n)));
      expect(e, `length ${n}`).toBeInstanceOf(SnapshotError);
      expect(e.message).toMatch(/section "header": truncated/);
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

// ---- RAM: pages of a running guest carried into a fresh machine ----

const MEM = 16n << 20n;

/** A 16 MiB machine on the debug core; KVM_RUN returns every 2,000 instructions, so run() stops close to its limit. */
async function machine(): Promise<Machine> {
  return Machine.create({ kvm: await openKvm(), memSize: MEM, turn: 2000 });
}

/** Every RAM byte of a machine, slot by slot. */
const ram = (m: Machine): Uint8Array[] => vmRegions(m.vm).map((r) => m.kvm.memory.read(r.hva, Number(r.size)));

function sameRam(a: Machine, b: Machine): boolean {
  const x = ram(a), y = ram(b);
  return x.length === y.length && x.every((bytes, i) => Buffer.compare(bytes, y[i]) === 0);
}

/** A snapshot holding only RAM: the full one (every non-zero page), or the pages harvest reports. */
function ramSnapshot(m: Machine, ids: { id: bigint; parent: bigint; sequence: number }, harvest?: DirtyHarvest): Uint8Array {
  const w = new PageWriter();
  if (harvest) for (const { region, ranges } of harvest.harvest()) writePageRanges(m.kvm.memory, region, ranges, w);
  else writeAllPages(m.kvm.memory, vmRegions(m.vm), w);
  return encodeSnapshot(ids, [{ name: MEMORY_SECTION, version: MEMORY_VERSION, payload: w.take() }]);
}

/** Applies a chain's RAM to a machine with the same layout. */
function applyRam(target: Machine, chain: Uint8Array[]): void {
  const regions = vmRegions(target.vm);
  for (const [i, bytes] of chain.entries()) {
    const runs = decodePageRuns(decodeSnapshot(bytes, i).sections[0].payload, MEMORY_SECTION);
    checkRuns(runs, regions, MEMORY_SECTION);
    applyRuns(target.kvm.memory, regions, runs);
  }
}

describe("snapshot RAM", () => {
  it("full snapshot RAM: a fresh machine given it holds the original's RAM byte for byte; zero pages are not stored", async () => {
    const m = await machine();
    m.load(guest("memtest"), 1n << 20n);
    expect(m.run({ maxInstructions: 300_000n }).stop).toBe("limit"); // part of the pattern written
    const snap = ramSnapshot(m, { id: 1n, parent: 0n, sequence: 0 });
    const t = await machine();
    expect(sameRam(m, t)).toBe(false);
    applyRam(t, [snap]);
    expect(sameRam(m, t)).toBe(true);
    const nonZero = ram(m).reduce((n, bytes) => {
      for (let off = 0; off < bytes.length; off += PAGE_BYTES) if (bytes.subarray(off, off + PAGE_BYTES).some((x) => x !== 0)) n++;
      return n;
    }, 0);
    const d = describeSnapshot(snap);
    expect([d.dataPages, d.zeroPages]).toEqual([nonZero, 0]);
    expect(nonZero).toBeGreaterThan(10);
    expect(nonZero).toBeLessThan(Number(MEM / P) / 4);
  });

  it("incremental chain RAM: full + incrementals while the guest dirties memory restore what a full snapshot at the end does", async () => {
    const m = await machine();
    m.load(guest("dirtylog"));
    const harvest = new DirtyHarvest(m.vm);
    harvest.start();
    const chain = [ramSnapshot(m, { id: 100n, parent: 0n, sequence: 0 })];
    let steps = 0n;
    const readSteps = () => new DataView(m.vm.readGuest(dirtylogStepsGpa(0), 8).buffer).getBigUint64(0, true);
    for (let k = 1; k <= 5; k++) {
      m.vm.writeGuest(0x80200000n, new Uint8Array(new BigUint64Array([BigInt(k)]).buffer)); // the iteration number
      expect(m.run({ maxInstructions: 15_000n }).stop).toBe("limit");
      const before = steps;
      steps = readSteps();
      const snap = ramSnapshot(m, { id: 100n + BigInt(k), parent: 99n + BigInt(k), sequence: k }, harvest);
      // About the dirtied pages only: the region pages the guest's model says these steps wrote, plus the page of
      // the iteration and the step counter; never the whole RAM.
      const wrote = new Set<number>((dirtylogPages(1n, DIRTYLOG_DEFAULT_PAGES, Number(steps)) as number[]).slice(Number(before)));
      const d = describeSnapshot(snap);
      expect(wrote.size).toBeGreaterThan(20);
      expect(d.dataPages + d.zeroPages, `incremental ${k}`).toBeGreaterThanOrEqual(wrote.size);
      expect(d.dataPages + d.zeroPages, `incremental ${k}`).toBeLessThanOrEqual(wrote.size + 4);
      chain.push(snap);
    }
    const final = ramSnapshot(m, { id: 1n, parent: 0n, sequence: 0 });
    const a = await machine(), b = await machine();
    applyRam(a, chain);
    applyRam(b, [final]);
    expect(sameRam(a, m)).toBe(true);
    expect(sameRam(b, m)).toBe(true);
    expect(DIRTYLOG_DEFAULT_BASE).toBe(0x80400000n);
  });

  it("incremental RAM: a page that became zero travels as a zero marker and is zero after restore", async () => {
    const m = await machine();
    const gpa = 0x80300000n;
    m.vm.writeGuest(gpa, new Uint8Array(PAGE_BYTES).fill(0xa5));
    const harvest = new DirtyHarvest(m.vm);
    harvest.start();
    const full = ramSnapshot(m, { id: 1n, parent: 0n, sequence: 0 });
    m.vm.writeGuest(gpa, new Uint8Array(PAGE_BYTES)); // marks the page dirty, now all zero
    const inc = ramSnapshot(m, { id: 2n, parent: 1n, sequence: 1 }, harvest);
    expect(describeSnapshot(inc)).toMatchObject({ dataPages: 0, zeroPages: 1 });
    expect(inc.length).toBeLessThan(SNAPSHOT_HEADER_BYTES + 64);
    const t = await machine();
    applyRam(t, [full]);
    expect(t.vm.readGuest(gpa, 4)).toEqual(new Uint8Array([0xa5, 0xa5, 0xa5, 0xa5]));
    applyRam(t, [inc]);
    expect(t.vm.readGuest(gpa, PAGE_BYTES).every((x) => x === 0)).toBe(true);
    expect(sameRam(t, m)).toBe(true);
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
