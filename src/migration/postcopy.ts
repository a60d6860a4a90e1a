// Post-copy (QEMU's postcopy-ram.c): the source stops and sends the machine's
// state and the list of pages the destination must not take from pre-copy
// (those dirtied since they were sent: QEMU's discard); the destination
// restores with every page MISSING (kvm.memory's userfaultfd-style mode),
// resumes at once, and places pages as they come — first what it kept from
// pre-copy, then what the source streams; a vCPU touching a page that is not
// there exits KVM_EXIT_MEMORY_FAULT and the destination asks for that page,
// which the source sends before the rest. When every page is in, the range is
// unregistered. The guest now lives only on the destination, with part of its
// memory still on the source: a lost connection ends it on both sides.

import type { Kvm } from "../kvm.js";
import { KvmError, ERRNO } from "../errors.js";
import { KVM_EXIT } from "../kvm-run.js";
import { Machine, type PreparedMachine, type RunResult } from "../vmm/machine.js";
import type { DirtyRound, DirtyTracker } from "./dirty-tracker.js";
import { PAGE_BYTES, PageWriter, decodePageRuns, type PageRun } from "./pages.js";
import { addPages, machineRegions, regionOf, type GuestImage, type MappedRegion } from "./ram.js";
import { encodeState, decodeState } from "./vmstate.js";
import { Timeline, wallClock, type Meter, type SwitchoverMark } from "./progress.js";
import { SectionError, takeSection } from "./section.js";
import { yieldToEvents, type Transport } from "./transport.js";
import { Mailbox, MigrationError, encodeMessage, jsonSection, pagesMessage, readJson, type Hello, type Message } from "./stream.js";
import type { HostMemory } from "../host-memory.js";
import { countBits, setBit, testBit } from "../bitmap.js";

const PAGE = BigInt(PAGE_BYTES);
export const POSTCOPY_LOST = "post-copy connection lost: the guest cannot continue";
/** Pages per background message: small, so an urgent request waits little behind one. */
const BACKGROUND_PAGES = 64;

const pagesOf = (r: { size: bigint }) => Number(r.size / PAGE);

/** What the source side needs of the pre-copy source (precopy.ts). */
export interface PostcopySource {
  machine: Machine;
  transport: Transport;
  tracker: DirtyTracker;
  meter: Meter;
  regions: MappedRegion[];
  mem: HostMemory;
  replies: Mailbox;
  phase: string;
  /** The source's page writer, whose buffers come from the transport's pool (Transport.reuse). */
  writer: PageWriter;
  /** The switch-over's steps (MigrateOptions.timing), or null. */
  timeline: Timeline | null;
  send(bytes: Uint8Array, dataPages: number, zeroPages: number, since: number): Promise<void>;
}

/**
 * The source's post-copy: the state and the discard list, then requested
 * pages first and the rest in address order, until the destination has them all.
 */
export async function servePostcopy(s: PostcopySource, round: DirtyRound, stoppedAt: number):
    Promise<{ resumedAt: number; requested: number; marks?: SwitchoverMark[] }> {
  const tl = s.timeline;
  tl?.mark("source: final harvest");
  s.tracker.stop();
  tl?.mark("source: tracker stop");
  const saved = s.machine.saveState();
  tl?.mark("source: capture state");
  const state = encodeState(saved);
  // The pages the destination must not take from pre-copy are the round's dirty bitmaps as they are (the
  // first harvest has every page: with no pre-copy round the destination has nothing yet), copied whole
  // bytes at a time into one list, each region's bytes a view of it.
  const sizes = s.regions.map((r) => Math.ceil(pagesOf(r) / 8));
  const discard = new Uint8Array(sizes.reduce((n, b) => n + b, 0));
  let at = 0;
  const need = s.regions.map((r, ri) => {
    const i = round.slots.findIndex((x) => x.asId === r.asId && x.slot === r.slot);
    discard.set(round.bitmaps[i].subarray(0, sizes[ri]), at); // bits past the slot's pages were trimmed at the harvest
    at += sizes[ri];
    return discard.subarray(at - sizes[ri], at);
  });
  s.phase = POSTCOPY_LOST;
  try {
    const message = encodeMessage("postcopy", jsonSection("postcopy", { stoppedAt, timing: tl !== null }),
      [{ name: "discard", version: 1, payload: discard }, ...state]);
    tl?.mark("source: discard list, encode state");
    await s.send(message, 0, 0, performance.now());
    tl?.mark("source: send postcopy");
    const resumed = readJson<{ at: number; marks?: SwitchoverMark[] }>((await s.replies.next("resumed")).sections[0]);
    tl?.mark("source: resumed message in");
    const resumedAt = resumed.at;
    s.meter.report("postcopy", need.reduce((n, b) => n + countBits(b), 0));
    const sent = s.regions.map((r) => new Uint8Array(Math.ceil(pagesOf(r) / 8)));
    let requested = 0;
    const sendPages = async (list: { ri: number; page: number }[]) => {
      const w = s.writer; // framed in place in a buffer the transport hands out again: no allocation per batch
      const since = performance.now();
      for (const { ri, page } of list) {
        addPages(s.mem, w, s.regions[ri], page, 1);
        setBit(sent[ri], page);
      }
      const data = w.dataPages, zero = w.zeroPages;
      await s.send(pagesMessage(w.finish()), data, zero, since);
    };
    for (let ri = 0, page = 0; ;) {
      // Urgent first: the pages a vCPU waits for.
      const urgent: { ri: number; page: number }[] = [];
      for (const m of s.replies.takeAll("request")) {
        for (const q of readJson<{ asId: number; gpa: bigint }[]>(m.sections[0])) {
          const at = s.regions.findIndex((r) => r.asId === q.asId && q.gpa >= r.gpa && q.gpa < r.gpa + r.size);
          if (at < 0) throw new MigrationError(`the destination asked for gpa 0x${q.gpa.toString(16)}, in no region`, "source");
          const p = Number((q.gpa - s.regions[at].gpa) / PAGE);
          if (!testBit(sent[at], p)) { urgent.push({ ri: at, page: p }); requested++; }
        }
      }
      if (urgent.length > 0) await sendPages(urgent);
      // Then the background stream.
      const batch: { ri: number; page: number }[] = [];
      for (; ri < s.regions.length && batch.length < BACKGROUND_PAGES; page++) {
        if (page >= pagesOf(s.regions[ri])) { ri++; page = -1; continue; }
        if (testBit(need[ri], page) && !testBit(sent[ri], page)) batch.push({ ri, page });
      }
      if (batch.length > 0) {
        await sendPages(batch);
        s.meter.report("postcopy", 0);
        await yieldToEvents(); // requests (and a lost connection) are read between two messages
        continue;
      }
      if (urgent.length === 0) break;
    }
    await s.replies.next("done");
    s.meter.report("completed", 0);
    return { resumedAt, requested, marks: resumed.marks };
  } catch (e) {
    s.meter.report("failed", 0);
    throw e instanceof MigrationError && e.message.startsWith(POSTCOPY_LOST) ? e
      : new MigrationError(`${POSTCOPY_LOST}: ${(e as Error).message}`, "source", { cause: e });
  }
}

/** A vCPU's stop on a page that is not there yet (KVM_RUN's EFAULT with KVM_EXIT_MEMORY_FAULT). */
function faultGpa(m: Machine, r: RunResult): bigint | null {
  const fault = r.stop === "memory-fault" || (r.stop === "run-failed" && r.lastExit.reason === KVM_EXIT.MEMORY_FAULT);
  return fault ? m.vcpus[r.hart].kvmRun.memoryFault.gpa : null;
}

/** UFFDIO_COPY / UFFDIO_ZEROPAGE of one page; a page already there (EEXIST) is left alone. */
function placePage(mem: HostMemory, hva: bigint, bytes: Uint8Array | null): void {
  try {
    // One page at a time: placePages' partial count (Linux's UFFDIO_COPY) cannot arise.
    if (bytes) mem.placePages(hva, bytes);
    else mem.placeZeroPages(hva, PAGE);
  } catch (e) {
    if (!(e instanceof KvmError && e.errno === ERRNO.EEXIST)) throw e;
  }
}


export interface PostcopyDestination {
  transport: Transport;
  kvm: Kvm;
  hello: Hello;
  image: GuestImage;
  meter: Meter;
  message: Message;
  /** When the message arrived. */
  arrivedAt: number;
  /** The machine built at the hello over missing memory (Machine.prepare), or null to restore one now. */
  prepared: PreparedMachine | null;
  opts: { onConsole?: (t: string) => void; sliceInstructions?: bigint };
}

/** The destination's post-copy: restore with memory missing, resume, place pages until all are in. */
export async function receivePostcopy(d: PostcopyDestination): Promise<{ machine: Machine; resumedAt: number; guestStop: RunResult | null }> {
  const { transport, kvm, hello, image, meter } = d;
  const mem = kvm.memory;
  const tl = new Timeline(); // a few clock reads: kept always, sent when the source asks
  tl.marks.push({ step: "destination: postcopy message in", at: d.arrivedAt });
  const discardSection = takeSection(d.message.sections, "discard", 1);
  const sizes = hello.regions.map((r) => Math.ceil(pagesOf(r) / 8));
  if (discardSection.payload.length !== sizes.reduce((a, b) => a + b, 0)) {
    throw new SectionError("discard", `${discardSection.payload.length} bytes, the regions need ${sizes.reduce((a, b) => a + b, 0)}`);
  }
  const discard = sizes.map((n, i) => discardSection.payload.subarray(sizes.slice(0, i).reduce((a, b) => a + b, 0), sizes.slice(0, i).reduce((a, b) => a + b, 0) + n));
  const state = decodeState(d.message.sections.filter((s) => s.name !== "postcopy" && s.name !== "discard"));
  tl.mark("destination: decode state");
  const machine = d.prepared ? d.prepared.apply(state) : await Machine.restore(state, { kvm, onConsole: d.opts.onConsole, memory: "missing" });
  tl.mark(d.prepared ? "destination: apply state" : "destination: restore (build VM, apply state)");
  let regions: MappedRegion[];
  try {
    regions = machineRegions(machine, hello.regions);
  } catch (e) {
    machine.close();
    throw e;
  }
  const present = regions.map((r) => new Uint8Array(Math.ceil(pagesOf(r) / 8)));
  const total = regions.reduce((n, r) => n + pagesOf(r), 0);
  let placed = 0;
  const local = (ri: number, p: number) => testBit(image.received[ri], p) && !testBit(discard[ri], p);
  const put = (ri: number, p: number, bytes: Uint8Array | null) => {
    if (testBit(present[ri], p)) return;
    placePage(mem, regions[ri].hva + BigInt(p) * PAGE, bytes);
    setBit(present[ri], p);
    placed++;
  };
  const putLocal = (ri: number, p: number) => {
    const src = image.regions[ri].hva + BigInt(p) * PAGE;
    put(ri, p, mem.resident(src) ? mem.read(src, PAGE_BYTES) : null);
  };
  const apply = (runs: PageRun[]) => {
    for (const run of runs) {
      const { region } = regionOf(regions, run, "pages");
      const ri = regions.indexOf(region);
      const first = Number((run.gpa - region.gpa) / PAGE);
      for (let i = 0; i < run.count; i++) {
        put(ri, first + i, run.data ? run.data.subarray(i * PAGE_BYTES, (i + 1) * PAGE_BYTES) : null);
        if (run.data) meter.pagesSent++;
        else meter.zeroPages++;
      }
    }
  };

  tl.mark("destination: page bitmaps");
  const resumedAt = wallClock();
  tl.marks.push({ step: "destination: resume", at: resumedAt });
  const timing = readJson<{ timing?: boolean }>(d.message.sections[0]).timing === true;
  await transport.send(encodeMessage("resumed", jsonSection("resumed", timing ? { at: resumedAt, marks: tl.marks } : { at: resumedAt })));
  const mailbox = new Mailbox(transport, "source", () => POSTCOPY_LOST);
  const slice = d.opts.sliceInstructions ?? 50_000n;
  let guestDone = slice === 0n;
  let waiting: { ri: number; p: number } | null = null;
  let localCursor = { ri: 0, p: 0 };
  /** The slice that ended the guest, if it ended before the last page came. */
  let guestStop: RunResult | null = null;
  try {
    while (placed < total) {
      mailbox.check();
      for (const m of mailbox.takeAll("pages")) {
        apply(decodePageRuns(m.sections[0].payload, "pages"));
        if (m.bytes) transport.recycle?.(m.bytes); // placed (copied): the buffer may carry the source's next batch
      }
      // What pre-copy brought, a batch at a time between slices.
      for (let n = 0; n < BACKGROUND_PAGES && localCursor.ri < regions.length;) {
        const { ri, p } = localCursor;
        if (p >= pagesOf(regions[ri])) { localCursor = { ri: ri + 1, p: 0 }; continue; }
        if (local(ri, p) && !testBit(present[ri], p)) { putLocal(ri, p); n++; }
        localCursor = { ri, p: p + 1 };
      }
      if (waiting && testBit(present[waiting.ri], waiting.p)) waiting = null;
      if (!guestDone && waiting === null) {
        const r = machine.run({ maxInstructions: slice });
        const gpa = faultGpa(machine, r);
        if (gpa !== null) {
          const ri = regions.findIndex((x) => gpa >= x.gpa && gpa < x.gpa + x.size);
          if (ri < 0) throw new Error(`a memory fault at gpa 0x${gpa.toString(16)}, in no region`);
          const p = Number((gpa - regions[ri].gpa) / PAGE);
          if (local(ri, p)) putLocal(ri, p);
          else if (!testBit(present[ri], p)) {
            waiting = { ri, p };
            await transport.send(encodeMessage("request", jsonSection("request", [{ asId: regions[ri].asId, gpa: gpa & ~(PAGE - 1n) }])));
          }
        } else if (r.stop !== "limit" && r.stop !== "halt") {
          guestDone = true; // a full dirty ring too: its owner, the caller, harvests it
          if (r.stop !== "dirty-ring-full") guestStop = r;
        }
      }
      const localLeft = localCursor.ri < regions.length;
      if (placed === total) break;
      if ((waiting !== null || guestDone) && !localLeft) await mailbox.arrival();
      else await yieldToEvents();
    }
    for (const r of regions) mem.unregisterMissing(r.hva, r.size);
    await transport.send(encodeMessage("done", null));
    transport.close();
    meter.report("completed", 0);
    return { machine, resumedAt, guestStop };
  } catch (e) {
    machine.close(); // its memory is partly on the source: it cannot run on
    transport.close();
    throw e instanceof MigrationError && e.message.startsWith(POSTCOPY_LOST) ? e
      : new MigrationError(`${POSTCOPY_LOST}: ${(e as Error).message}`, "destination", { cause: e });
  }
}
