// The source of a live migration (QEMU's migration thread): a handshake, then
// pre-copy rounds while the guest keeps running — harvest the dirty pages
// (dirty-tracker.ts), send them, run the guest a slice between messages — until
// the pages left would take no longer than the downtime limit at the measured
// bandwidth (QEMU's downtime-limit); then stop-and-copy: the guest stops, the
// last dirty pages, the memory digest and the machine's state go, and the
// destination resumes. Or, once asked, post-copy (postcopy.ts) after the state.
// Until the switch-over, any failure (the destination's error, a lost
// connection) stops tracking and leaves the source machine running as before.

import type { Machine, RunResult } from "../vmm/machine.js";
import { DirtyTracker, type DirtyMode, type DirtyRound } from "./dirty-tracker.js";
import { PageWriter, PAGE_BYTES, RUN_HEADER_BYTES } from "./pages.js";
import { addPages, memoryDigest, type MappedRegion } from "./ram.js";
import { encodeState } from "./vmstate.js";
import { Meter, Timeline, quickestMs, stepDurations, wallClock, type Progress, type SwitchoverMark } from "./progress.js";
import { yieldToEvents, type Transport } from "./transport.js";
import { PROTOCOL_VERSION, PAGES_HEADER_BYTES, MigrationError, Mailbox, encodeMessage, jsonSection, pagesMessage, readJson, type Hello } from "./stream.js";
import { KVM_USER_MEM_SLOTS } from "../uapi.js";
import { servePostcopy } from "./postcopy.js";

export interface MigrateOptions {
  /** How dirty pages are found: "bitmap" (default) or "ring" (the machine must have a dirty ring). */
  mode?: DirtyMode;
  /** The pause the switch-over may cost at the measured bandwidth (default 300 ms, QEMU's downtime-limit). */
  downtimeLimitMs?: number;
  /** Rounds before onNoConvergence decides (default 30). */
  maxRounds?: number;
  /** When maxRounds pass without converging: switch anyway (default), fail (the source runs on), or post-copy. */
  onNoConvergence?: "force" | "fail" | "postcopy";
  /** Post-copy: switch after this many pre-copy rounds (0: at once, after the state alone); default: never. */
  postcopyAfterRounds?: number;
  /** Guest instructions run between two messages while pre-copy runs (default 50,000). */
  sliceInstructions?: bigint;
  /** How the guest runs a slice (default machine.run({ maxInstructions: sliceInstructions })). */
  runSlice?: (m: Machine) => RunResult;
  /** Bytes of page data per message (default 1 MiB). */
  messageBytes?: number;
  /** Bitmap mode: pages per KVM_CLEAR_DIRTY_LOG (dirty-tracker.ts). */
  clearChunkPages?: number;
  /** Send a digest of all memory for the destination to check before it resumes (default true). */
  verify?: boolean;
  onProgress?: (p: Progress) => void;
  /** Time the switch-over step by step, both sides (MigrationStats.switchover); default false. */
  timing?: boolean;
}

export interface MigrationStats {
  mode: DirtyMode;
  /** Whole migration, wall clock. */
  totalMs: number;
  /** From the final harvest (the guest runs no more from there) to the destination's resume (wall clock of both). */
  downtimeMs: number;
  rounds: number;
  /** Pages sent as data, as zero markers; bytes of all messages. */
  pagesSent: number;
  zeroPages: number;
  bytes: number;
  /** The pages left fit the downtime limit (false: forced by maxRounds or a stopped guest). */
  converged: boolean;
  postcopy: boolean;
  /** Post-copy: pages the destination asked for before they came in the background. */
  requestedPages: number;
  /** Why the source guest stopped running during pre-copy, if it did (such as "shutdown"). */
  guestStop: string | null;
  /**
   * With MigrateOptions.timing: the switch-over's steps in time order, source and destination, ms each since
   * the step before; those up to "destination: resume" add up to downtimeMs, any after it are not downtime.
   */
  switchover?: { step: string; ms: number }[];
}

/** Stops that end the guest: pre-copy runs no more slices and switches over. */
const FINAL_STOPS = new Set(["shutdown", "reboot", "harts-stopped", "memory-fault", "run-failed", "unhandled-exit"]);

/** The machine's user memslots as the hello describes them. */
export function regionsOf(machine: Machine): MappedRegion[] {
  return machine.memoryRegions().filter((r) => r.slot < KVM_USER_MEM_SLOTS)
    .map((r) => ({ asId: r.asId, slot: r.slot, gpa: r.gpa, size: r.size, hva: r.hva }));
}

/** Everything one migration's source keeps. */
class Source {
  readonly meter: Meter;
  readonly regions: MappedRegion[];
  readonly mem;
  tracker!: DirtyTracker;
  replies!: Mailbox;
  guestStop: string | null = null;
  phase = "pre-copy";
  /** The switch-over's steps (MigrateOptions.timing), or null. */
  readonly timeline: Timeline | null;
  private readonly slice: bigint;
  readonly messageBytes: number;
  /** Page data goes out through it, in buffers the transport hands out again (post-copy's batches too). */
  readonly writer: PageWriter;

  constructor(readonly machine: Machine, readonly transport: Transport, readonly opts: MigrateOptions) {
    this.meter = new Meter(opts.onProgress);
    this.timeline = opts.timing ? new Timeline() : null;
    this.regions = regionsOf(machine);
    this.mem = machine.kvm.memory;
    this.slice = opts.sliceInstructions ?? 50_000n;
    this.messageBytes = opts.messageBytes ?? 1 << 20;
    // A message's buffer holds messageBytes of pages even were each a run of its own; buffers the
    // destination is done with come back to be written again (no allocation per message).
    const pages = Math.max(1, Math.ceil(this.messageBytes / PAGE_BYTES));
    this.writer = new PageWriter({ reserve: PAGES_HEADER_BYTES, capacity: PAGES_HEADER_BYTES + pages * (PAGE_BYTES + RUN_HEADER_BYTES),
      buffer: (n) => transport.reuse?.(n) ?? null });
  }

  /** Sends one message, its time counted as busy from `since`. */
  async send(bytes: Uint8Array, dataPages: number, zeroPages: number, since: number): Promise<void> {
    this.replies?.check();
    const n = bytes.length;
    await this.transport.send(bytes);
    this.meter.sent(n, dataPages, zeroPages, performance.now() - since);
  }

  /** One slice of the guest, unless it has stopped for good. */
  runGuest(): void {
    if (this.guestStop !== null) return;
    const r = this.opts.runSlice ? this.opts.runSlice(this.machine) : this.machine.run({ maxInstructions: this.slice });
    if (r.stop === "dirty-ring-full") this.tracker.collect();
    else if (FINAL_STOPS.has(r.stop)) this.guestStop = r.stop;
  }

  /** Sends a round's pages; with `running`, a guest slice after every message. */
  async sendRound(round: DirtyRound, running: boolean, phase: "precopy" | "stop-and-copy"): Promise<void> {
    const writer = this.writer;
    let sentInRound = 0;
    let since = performance.now();
    const flush = async () => {
      if (writer.pages === 0) return;
      const data = writer.dataPages, zero = writer.zeroPages;
      sentInRound += data + zero;
      await this.send(pagesMessage(writer.finish()), data, zero, since);
      this.meter.report(phase, round.pages - sentInRound);
      if (running) this.runGuest();
      await yieldToEvents(); // a lost connection or the destination's error is seen now, not rounds later
      since = performance.now();
    };
    let skipped = 0;
    for (const run of round.runs()) {
      const region = this.regions.find((r) => r.asId === round.slots[run.slotIndex].asId && r.slot === round.slots[run.slotIndex].slot)!;
      for (let i = run.first, end = run.first + run.count; i < end;) {
        if (writer.room === 0) await flush();
        let n = Math.min(writer.room, end - i);
        round.prepare(run.slotIndex, i, n);
        if (running) {
          // While the guest runs, a page it wrote again since the harvest goes in the next round, not twice.
          if (round.dirtyAgain(run.slotIndex, i)) {
            i++;
            skipped++;
            continue;
          }
          let k = 1;
          while (k < n && !round.dirtyAgain(run.slotIndex, i + k)) k++;
          n = k;
        }
        addPages(this.mem, writer, region, i, n);
        i += n;
        if (writer.byteLength >= this.messageBytes) {
          await flush();
          if (running) round.lookAgain();
        }
      }
    }
    sentInRound += skipped; // counted as done for the progress figures
    await flush();
  }
}

/**
 * Migrates a machine to the destination at the other end of transport. The
 * source machine must not run elsewhere meanwhile; on success its guest lives
 * on at the destination (close it). On failure before the switch-over, dirty
 * tracking is stopped and the source guest is as it was (run it on); the
 * error says why (MigrationError).
 */
export async function migrate(machine: Machine, transport: Transport, opts: MigrateOptions = {}): Promise<MigrationStats> {
  const start = wallClock();
  const s = new Source(machine, transport, opts);
  const mode = opts.mode ?? "bitmap";
  const limit = opts.downtimeLimitMs ?? 300;
  const maxRounds = opts.maxRounds ?? 30;
  const postcopyAfter = opts.postcopyAfterRounds;
  const hello: Hello = { protocol: PROTOCOL_VERSION, pageSize: 4096, postcopy: postcopyAfter !== undefined || opts.onNoConvergence === "postcopy",
    regions: s.regions.map(({ asId, slot, gpa, size }) => ({ asId, slot, gpa, size })) };
  s.meter.report("setup", 0);
  try {
    // The machine's state as it is now: the destination builds the VM, memslots and vCPUs from its
    // layout now, outside the downtime, and rehearses the switch-over's decode and apply on it. Captured
    // thrice: the quickest (warm, not preempted) is what the switch-over's capture costs.
    let state: ReturnType<typeof encodeState> = [];
    s.meter.switchoverMs = quickestMs(3, () => { state = encodeState(machine.saveState()); });
    await transport.send(encodeMessage("hello", jsonSection("hello", hello), state));
  } catch (e) {
    throw new MigrationError(`handshake: ${(e as Error).message}`, "source", { cause: e });
  }
  s.replies = new Mailbox(transport, "destination", () => s.phase);
  try {
    const accept = await s.replies.next("accept");
    // And the destination's rehearsal of its decode and apply. (A message's way there is left out: one
    // sample of it across threads or hosts says more of the scheduler than of the switch-over.)
    const a = accept.sections[0].payload.length > 0 ? readJson<{ switchoverMs?: number }>(accept.sections[0]) : {};
    s.meter.switchoverMs += a.switchoverMs ?? 0;
  } catch (e) {
    transport.close();
    throw e;
  }
  // Turning dirty logging on costs what turning it off in the switch-over will (the same memslot updates).
  const startAt = performance.now();
  s.tracker = DirtyTracker.start(machine, mode, { clearChunkPages: opts.clearChunkPages });
  s.meter.switchoverMs += performance.now() - startAt;
  let converged = false;
  let lastHarvest = performance.now();
  let round!: DirtyRound;
  let post = false;
  /** When the last harvest began: the switch-over's begins the downtime (the guest runs no more from there, QEMU's final sync). */
  let harvestAt = 0;
  try {
    for (;;) {
      harvestAt = wallClock();
      const harvestStart = performance.now();
      round = s.tracker.harvest();
      const now = performance.now();
      s.meter.harvestMs = now - harvestStart;
      if (s.meter.round > 0) s.meter.dirtyRate = (round.pages / Math.max(now - lastHarvest, 1e-3)) * 1000;
      lastHarvest = now;
      if (postcopyAfter !== undefined) {
        // Post-copy asked for: exactly that many pre-copy rounds, then the switch.
        if (s.meter.round >= postcopyAfter || s.guestStop !== null) { post = true; break; }
      } else if (s.meter.round > 0) {
        // Pages the destination has not taken yet count too: the switch-over's would queue behind them.
        const queued = Math.ceil((transport.unreceived?.() ?? 0) / PAGE_BYTES);
        if (s.meter.downtimeMs(round.pages + queued) <= limit) { converged = true; break; }
        if (s.guestStop !== null) break;
        if (s.meter.round >= maxRounds) {
          const what = opts.onNoConvergence ?? "force";
          if (what === "fail") {
            throw new MigrationError(`pre-copy did not converge in ${maxRounds} rounds (${round.pages} pages dirty, ` +
              `${Math.round(s.meter.downtimeMs(round.pages))} ms at the measured bandwidth with the switch-over's own ` +
              `${s.meter.fixedMs.toFixed(1)} ms, limit ${limit} ms)`, "source");
          }
          post = what === "postcopy";
          break;
        }
      }
      s.meter.round++;
      await s.sendRound(round, true, "precopy");
      // A round that would itself have fit the limit makes the next harvest likely the last: the guest runs on
      // while the destination works through what it was sent, so the switch-over's pages do not queue behind
      // earlier ones inside the downtime. (Not after every round: the wait is a gap in the stream, and the
      // guest dirties pages meanwhile.)
      const backlog = transport.unreceived?.() ?? 0;
      if (backlog > 0 && s.meter.downtimeMs(round.pages) <= limit) {
        const t = performance.now();
        while ((transport.unreceived?.() ?? 0) > 0) {
          s.runGuest();
          await yieldToEvents();
          s.replies.check();
        }
        s.meter.drained(backlog, performance.now() - t); // the switch-over's pages go at this pace too
      }
    }
  } catch (e) {
    s.tracker.stop();
    try {
      await transport.send(encodeMessage("abort", null));
    } catch {
      // the connection is gone: nothing to tell
    }
    transport.close();
    if (e instanceof MigrationError) throw e;
    throw new MigrationError(`pre-copy aborted, the source runs on: ${(e as Error).message}`, "source", { cause: e });
  }
  const stoppedAt = harvestAt;
  if (post) {
    let served: Awaited<ReturnType<typeof servePostcopy>>;
    try {
      served = await servePostcopy(s, round, stoppedAt);
    } finally {
      transport.close();
    }
    return { mode, totalMs: wallClock() - start, downtimeMs: served.resumedAt - stoppedAt, rounds: s.meter.round,
      pagesSent: s.meter.pagesSent, zeroPages: s.meter.zeroPages, bytes: s.meter.bytes, converged: false, postcopy: true,
      requestedPages: served.requested, guestStop: s.guestStop, ...switchoverSteps(s, stoppedAt, served.marks) };
  }
  // Stop-and-copy: the guest runs no more here.
  s.phase = "stop-and-copy";
  try {
    s.meter.round++;
    const tl = s.timeline;
    tl?.mark("source: final harvest");
    await s.sendRound(round, false, "stop-and-copy");
    tl?.mark("source: last pages sent");
    s.tracker.stop(); // flags and caps back as they were: the state the destination restores is the machine's own
    tl?.mark("source: tracker stop");
    const saved = machine.saveState();
    tl?.mark("source: capture state");
    const state = encodeState(saved);
    const digest = opts.verify === false ? null : memoryDigest(s.mem, s.regions);
    const t = performance.now();
    const complete = encodeMessage("complete", jsonSection("complete", { digest, stoppedAt, rounds: s.meter.round, timing: tl !== null }), state);
    tl?.mark("source: encode state");
    await s.send(complete, 0, 0, t);
    tl?.mark("source: send complete");
    const resumed = readJson<{ at: number; marks?: SwitchoverMark[] }>((await s.replies.next("resumed")).sections[0]);
    tl?.mark("source: resumed message in");
    s.meter.report("completed", 0);
    transport.close();
    return { mode, totalMs: wallClock() - start, downtimeMs: resumed.at - stoppedAt, rounds: s.meter.round,
      pagesSent: s.meter.pagesSent, zeroPages: s.meter.zeroPages, bytes: s.meter.bytes, converged, postcopy: false,
      requestedPages: 0, guestStop: s.guestStop, ...switchoverSteps(s, stoppedAt, resumed.marks) };
  } catch (e) {
    s.tracker.stop();
    transport.close();
    s.meter.report("failed", 0);
    if (e instanceof MigrationError) throw e;
    throw new MigrationError(`stop-and-copy failed, the source guest is as it stopped (run it on): ${(e as Error).message}`, "source", { cause: e });
  }
}

/** MigrationStats.switchover: both sides' marks in time order, as steps from stoppedAt. */
function switchoverSteps(s: Source, stoppedAt: number, remote: SwitchoverMark[] | undefined): { switchover?: { step: string; ms: number }[] } {
  if (!s.timeline) return {};
  return { switchover: stepDurations(stoppedAt, [...s.timeline.marks, ...(remote ?? [])].sort((a, b) => a.at - b.at)) };
}

export type { Source };
