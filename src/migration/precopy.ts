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
import { encodeState, LAYOUT_SECTIONS } from "./vmstate.js";
import { Meter, wallClock, type Progress } from "./progress.js";
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
}

export interface MigrationStats {
  mode: DirtyMode;
  /** Whole migration, wall clock. */
  totalMs: number;
  /** From the source guest's last instruction to the destination's resume (wall clock of both). */
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
  private readonly slice: bigint;
  readonly messageBytes: number;
  private readonly writer: PageWriter;

  constructor(readonly machine: Machine, readonly transport: Transport, readonly opts: MigrateOptions) {
    this.meter = new Meter(opts.onProgress);
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
    // The layout too (pre-copy): the destination builds the VM, memslots and vCPUs now, outside the downtime.
    const layout = hello.postcopy ? [] : encodeState(machine.saveState()).filter((x) => LAYOUT_SECTIONS.includes(x.name));
    await transport.send(encodeMessage("hello", jsonSection("hello", hello), layout));
  } catch (e) {
    throw new MigrationError(`handshake: ${(e as Error).message}`, "source", { cause: e });
  }
  s.replies = new Mailbox(transport, "destination", () => s.phase);
  try {
    await s.replies.next("accept");
  } catch (e) {
    transport.close();
    throw e;
  }
  s.tracker = DirtyTracker.start(machine, mode, { clearChunkPages: opts.clearChunkPages });
  let converged = false;
  let lastHarvest = performance.now();
  let round!: DirtyRound;
  let post = false;
  try {
    for (;;) {
      round = s.tracker.harvest();
      const now = performance.now();
      if (s.meter.round > 0) s.meter.dirtyRate = (round.pages / Math.max(now - lastHarvest, 1e-3)) * 1000;
      lastHarvest = now;
      if (postcopyAfter !== undefined) {
        // Post-copy asked for: exactly that many pre-copy rounds, then the switch.
        if (s.meter.round >= postcopyAfter || s.guestStop !== null) { post = true; break; }
      } else if (s.meter.round > 0) {
        if (s.meter.estimateMs(round.pages) <= limit) { converged = true; break; }
        if (s.guestStop !== null) break;
        if (s.meter.round >= maxRounds) {
          const what = opts.onNoConvergence ?? "force";
          if (what === "fail") {
            throw new MigrationError(`pre-copy did not converge in ${maxRounds} rounds (${round.pages} pages dirty, ` +
              `${Math.round(s.meter.estimateMs(round.pages))} ms at the measured bandwidth, limit ${limit} ms)`, "source");
          }
          post = what === "postcopy";
          break;
        }
      }
      s.meter.round++;
      await s.sendRound(round, true, "precopy");
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
  const stoppedAt = wallClock();
  if (post) {
    let served: { resumedAt: number; requested: number };
    try {
      served = await servePostcopy(s, round, stoppedAt);
    } finally {
      transport.close();
    }
    return { mode, totalMs: wallClock() - start, downtimeMs: served.resumedAt - stoppedAt, rounds: s.meter.round,
      pagesSent: s.meter.pagesSent, zeroPages: s.meter.zeroPages, bytes: s.meter.bytes, converged: false, postcopy: true,
      requestedPages: served.requested, guestStop: s.guestStop };
  }
  // Stop-and-copy: the guest runs no more here.
  s.phase = "stop-and-copy";
  try {
    s.meter.round++;
    await s.sendRound(round, false, "stop-and-copy");
    s.tracker.stop(); // flags and caps back as they were: the state the destination restores is the machine's own
    const state = encodeState(machine.saveState());
    const digest = opts.verify === false ? null : memoryDigest(s.mem, s.regions);
    const t = performance.now();
    await s.send(encodeMessage("complete", jsonSection("complete", { digest, stoppedAt, rounds: s.meter.round }), state), 0, 0, t);
    const resumed = readJson<{ at: number }>((await s.replies.next("resumed")).sections[0]);
    s.meter.report("completed", 0);
    transport.close();
    return { mode, totalMs: wallClock() - start, downtimeMs: resumed.at - stoppedAt, rounds: s.meter.round,
      pagesSent: s.meter.pagesSent, zeroPages: s.meter.zeroPages, bytes: s.meter.bytes, converged, postcopy: false,
      requestedPages: 0, guestStop: s.guestStop };
  } catch (e) {
    s.tracker.stop();
    transport.close();
    s.meter.report("failed", 0);
    if (e instanceof MigrationError) throw e;
    throw new MigrationError(`stop-and-copy failed, the source guest is as it stopped (run it on): ${(e as Error).message}`, "source", { cause: e });
  }
}

export type { Source };
