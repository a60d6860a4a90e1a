// Snapshots of a Machine: takeSnapshot (one full snapshot), a Snapshotter (a
// full snapshot, then incremental ones holding the whole state and only the
// pages written since the previous one, from the dirty log), and
// restoreSnapshot (a chain, or one snapshot, into a fresh Kvm). The file is
// snapshot-file.ts's; the state sections are vmstate.ts's; the RAM part is
// snapshot-memory.ts's. A restore checks every snapshot of the chain, every
// section and every page run before it creates anything, so a refused one
// leaves the target Kvm as it was.

import { Machine } from "../vmm/machine.js";
import type { Kvm } from "../kvm.js";
import { encodeState, decodeState } from "./vmstate.js";
import type { MachineState } from "../vmm/machine-state.js";
import { takeSection, SectionError, type Section } from "./section.js";
import { PageWriter, decodePageRuns, type PageRun } from "./pages.js";
import {
  encodeSnapshot, decodeSnapshot, splitSnapshots, newSnapshotId, SnapshotError, MEMORY_SECTION, MEMORY_VERSION,
  type SnapshotHeader,
} from "./snapshot-file.js";
import { writeAllPages, checkRuns, applyRuns } from "./snapshot-memory.js";
import { addPages } from "./ram.js";
import { DirtyTracker } from "./dirty-tracker.js";

/** What a snapshot or a restore is doing: reading RAM, writing its pages back, or done (bytes = the snapshot's size). */
export type SnapshotPhase = "memory" | "restore-memory" | "done";

export interface SnapshotProgress {
  phase: SnapshotPhase;
  /** The snapshot's sequence (0 full, n the n-th incremental); for a restore, its index in the chain. */
  snapshot: number;
  /** Pages done of totalPages: RAM pages scanned for a full snapshot, dirty pages read for an incremental one, pages written back by a restore. */
  pages: number;
  totalPages: number;
  /** Bytes so far: of the memory section being written, or of page data a restore wrote back. */
  bytes: number;
}

export interface SnapshotOptions {
  /** Called as RAM is read (every 256 pages at most) and once when the snapshot is done. */
  onProgress?: (p: SnapshotProgress) => void;
}

export interface SnapshotRestoreOptions {
  /** The Kvm to restore into (default a new one). */
  kvm?: Kvm;
  /** Receives the guest's console output from now on. */
  onConsole?: (text: string) => void;
  /** Called as pages are written back (every run) and once when the restore is done. */
  onProgress?: (p: SnapshotProgress) => void;
}

/**
 * The machine's state sections, taken before its RAM is read: saving
 * completes what the vCPUs' last exits left open (machine.saveState), so
 * nothing it does can be missed by the pages read after.
 */
const stateSections = (machine: Machine): Section[] => encodeState(machine.saveState());

function build(ids: { id: bigint; parent: bigint; sequence: number }, state: Section[], pages: PageWriter,
               onProgress?: (p: SnapshotProgress) => void): Uint8Array {
  const memory: Section = { name: MEMORY_SECTION, version: MEMORY_VERSION, payload: pages.take() };
  const bytes = encodeSnapshot(ids, [...state, memory]);
  onProgress?.({ phase: "done", snapshot: ids.sequence, pages: 0, totalPages: 0, bytes: bytes.length });
  return bytes;
}

function fullPages(machine: Machine, sequence: number, onProgress?: (p: SnapshotProgress) => void): PageWriter {
  const w = new PageWriter();
  writeAllPages(machine.kvm.memory, machine.memoryRegions(), w,
    onProgress && ((pages, totalPages) => onProgress({ phase: "memory", snapshot: sequence, pages, totalPages, bytes: w.byteLength })));
  return w;
}

/**
 * A full snapshot of a machine between run() calls: its whole state and
 * every RAM page holding data. The machine is not changed.
 */
export function takeSnapshot(machine: Machine, opts: SnapshotOptions = {}): Uint8Array {
  const state = stateSections(machine);
  return build({ id: newSnapshotId(), parent: 0n, sequence: 0 }, state, fullPages(machine, 0, opts.onProgress), opts.onProgress);
}

/**
 * Snapshots of one machine as a chain: the first take() is full, each later
 * one incremental (the whole state, and the pages written since the previous
 * take). What was written comes from dirty tracking of every memslot
 * (dirty-tracker.ts), started by the first take: the dirty bitmap with
 * manual protect, or the dirty rings of a machine made with them. The
 * snapshots' state shows the tracking (slot flags, the capability); so does a
 * restored machine.
 */
export class Snapshotter {
  private tracker: DirtyTracker | null = null;
  private last = 0n;
  private next = 0;

  constructor(readonly machine: Machine, private readonly opts: SnapshotOptions = {}) {}

  /** Snapshots taken so far (the next one's sequence). */
  get taken(): number {
    return this.next;
  }

  /** The next snapshot of the chain. */
  take(): Uint8Array {
    const { onProgress } = this.opts;
    const sequence = this.next;
    let state: Section[], pages: PageWriter;
    if (sequence === 0) {
      const ring = this.machine.vcpus.some((v) => v.dirtyRing.size > 0);
      const tracker = this.tracker = DirtyTracker.start(this.machine, ring ? "ring" : "bitmap");
      // The first round is every page: re-armed before the full read, so later writes show in the next round.
      const round = tracker.harvest();
      tracker.slots.forEach((s, i) => round.prepare(i, 0, s.npages));
      state = stateSections(this.machine); // with the tracking on, as every incremental's
      pages = fullPages(this.machine, 0, onProgress);
    } else {
      state = stateSections(this.machine);
      pages = new PageWriter();
      const round = (this.tracker as DirtyTracker).harvest();
      for (const { slotIndex, first, count } of round.runs()) {
        round.prepare(slotIndex, first, count);
        addPages(this.machine.kvm.memory, pages, round.slots[slotIndex], first, count);
        onProgress?.({ phase: "memory", snapshot: sequence, pages: pages.pages, totalPages: round.pages, bytes: pages.byteLength });
      }
    }
    const id = newSnapshotId();
    const bytes = build({ id, parent: this.last, sequence }, state, pages, onProgress);
    this.last = id;
    this.next++;
    return bytes;
  }

  /** With dirty rings: drains them into the next snapshot (call when run() stops with "dirty-ring-full"). */
  collect(): void {
    this.tracker?.collect();
  }

  /** Ends dirty tracking (the slots' flags as before the first take); take() then starts a new chain. */
  stop(): void {
    this.tracker?.stop();
    this.tracker = null;
    this.next = 0;
    this.last = 0n;
  }
}

interface Checked {
  header: SnapshotHeader;
  state: MachineState;
  runs: PageRun[];
}

/** Every check of a chain, nothing created: the decoded states and page runs. */
function checkChain(chain: readonly Uint8Array[]): Checked[] {
  const out: Checked[] = [];
  chain.forEach((bytes, i) => {
    const { header, sections } = decodeSnapshot(bytes, i);
    const fail = (section: string, detail: string) => new SnapshotError(i, section, detail);
    if (i === 0 && header.incremental) {
      throw fail("header", `an incremental snapshot (sequence ${header.sequence}) without its base: a restore starts at a full snapshot`);
    }
    if (i > 0) {
      const prev = out[i - 1].header;
      if (!header.incremental) throw fail("header", "a full snapshot inside a chain: only the first one may be full");
      if (header.parent !== prev.id) {
        throw fail("header", `its parent is snapshot ${hex(header.parent)}, but the one before it in the chain is ${hex(prev.id)}`);
      }
      if (header.sequence !== prev.sequence + 1) throw fail("header", `sequence ${header.sequence} after ${prev.sequence}`);
    }
    let state: MachineState, runs: PageRun[];
    try {
      state = decodeState(sections.filter((s) => s.name !== MEMORY_SECTION));
      runs = decodePageRuns(takeSection(sections, MEMORY_SECTION, MEMORY_VERSION).payload, MEMORY_SECTION);
      noStrangers(sections, state);
      if (i > 0) sameMachine(out[0].state, state);
      checkRuns(runs, state.memslots, MEMORY_SECTION);
    } catch (e) {
      throw SnapshotError.from(i, e);
    }
    out.push({ header, state, runs });
  });
  return out;
}

/**
 * Refuses an incremental snapshot of another machine than its chain's base,
 * or of a changed memslot layout (its pages would land elsewhere).
 */
function sameMachine(base: MachineState, s: MachineState): void {
  const config = (x: MachineState) => JSON.stringify(x.config, (_, v) => (typeof v === "bigint" ? v.toString() : v));
  if (config(s) !== config(base)) throw new SectionError("machine", `not the machine of the chain's full snapshot: ${config(s)}, there ${config(base)}`);
  const slots = (x: MachineState) => x.memslots.map((m) => `${m.asId}/${m.slot}: 0x${m.gpa.toString(16)}+0x${m.size.toString(16)}` +
    ` at 0x${m.hva.toString(16)} flags ${m.flags}`).join(", ");
  if (slots(s) !== slots(base)) throw new SectionError("memslots", `the layout differs from the full snapshot's: ${slots(s)}, there ${slots(base)}`);
}

/** Sections neither the state nor the RAM reader takes are refused: a damaged name must not pass unnoticed. */
function noStrangers(sections: readonly Section[], state: MachineState): void {
  const known = new Set([...encodeState(state).map((s) => s.name), MEMORY_SECTION]);
  for (const s of sections) if (!known.has(s.name)) throw new SectionError(s.name, "unknown section");
}

const hex = (v: bigint) => `0x${v.toString(16).padStart(16, "0")}`;

/**
 * Restores a chain (a full snapshot and the incrementals after it, in order;
 * or one Uint8Array holding one or several one after another) into a fresh
 * VM: the last snapshot's state, the RAM of all of them. Everything is
 * checked first: a refused chain (SnapshotError naming the snapshot and its
 * header or section) creates nothing on the target Kvm.
 */
export async function restoreSnapshot(chain: Uint8Array | readonly Uint8Array[], opts: SnapshotRestoreOptions = {}): Promise<Machine> {
  const list = chain instanceof Uint8Array ? splitSnapshots(chain) : chain;
  if (list.length === 0) throw new SnapshotError(0, "header", "an empty chain");
  const checked = checkChain(list);
  const machine = await Machine.restore(checked[checked.length - 1].state, { kvm: opts.kvm, onConsole: opts.onConsole, memory: "zero" });
  try {
    const regions = machine.memoryRegions();
    checked.forEach((c, i) => {
      applyRuns(machine.kvm.memory, regions, c.runs, opts.onProgress &&
        ((pages, totalPages, bytes) => opts.onProgress?.({ phase: "restore-memory", snapshot: i, pages, totalPages, bytes })));
    });
  } catch (e) {
    machine.close();
    throw e;
  }
  opts.onProgress?.({ phase: "done", snapshot: list.length - 1, pages: 0, totalPages: 0, bytes: list.reduce((n, b) => n + b.length, 0) });
  return machine;
}
