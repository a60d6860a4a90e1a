// A migration's progress as QEMU's `info migrate` shows it: the phase, the
// round (dirty-bitmap pass), what was sent, the measured bandwidth and dirty
// rate, and from them the downtime the switch-over would cost now.

export type MigrationPhase = "setup" | "precopy" | "stop-and-copy" | "postcopy" | "completed" | "failed";

export interface Progress {
  phase: MigrationPhase;
  /** Rounds begun (round 1 sends every page). */
  round: number;
  /** Pages sent as data, and as zero markers. */
  pagesSent: number;
  zeroPages: number;
  /** Bytes of messages sent. */
  bytes: number;
  /** Pages the guest dirtied per second during the last round. */
  dirtyRate: number;
  /** Bytes per second the stream took (time reading and sending, not the guest's slices). */
  bandwidth: number;
  /** Pages still to send in this round and those known dirty for the next. */
  remainingPages: number;
  /** remainingPages at the bandwidth plus switchoverMs: the pause a switch-over now would cost. */
  estimatedDowntimeMs: number;
  /** The switch-over's fixed cost, pages aside (the final harvest, turning dirty logging off, capturing, sending and applying the state). */
  switchoverMs: number;
}

/** Wall-clock milliseconds comparable across threads and processes (the epoch). */
export const wallClock = (): number => performance.timeOrigin + performance.now();

/** One step of the switch-over: its name and the wall-clock time it ended at. */
export interface SwitchoverMark {
  step: string;
  at: number;
}

/**
 * The switch-over's steps as they end (MigrateOptions.timing): where the
 * downtime goes. Off by default; a mark is one wallClock() read.
 */
export class Timeline {
  readonly marks: SwitchoverMark[] = [];

  mark(step: string): void {
    this.marks.push({ step, at: wallClock() });
  }
}

/** Per step, the milliseconds since the step before it (the first: since `from`). */
export function stepDurations(from: number, marks: readonly SwitchoverMark[]): { step: string; ms: number }[] {
  return marks.map((m, i) => ({ step: m.step, ms: m.at - (i === 0 ? from : marks[i - 1].at) }));
}

/** The quickest of `times` runs of f, in ms: warm and not preempted, what the step costs when it counts. */
export function quickestMs(times: number, f: () => void): number {
  let best = Infinity;
  for (let i = 0; i < times; i++) {
    const t = performance.now();
    f();
    best = Math.min(best, performance.now() - t);
  }
  return best;
}

/** The running figures of one side of a migration. */
export class Meter {
  pagesSent = 0;
  zeroPages = 0;
  bytes = 0;
  round = 0;
  /** Milliseconds spent reading and sending (the bandwidth's denominator). */
  private busyMs = 0;
  private busyBytes = 0;
  /** Bytes the destination worked through while the source waited for it, and the milliseconds it took. */
  private sinkBytes = 0;
  private sinkMs = 0;
  dirtyRate = 0;
  /** The switch-over's cost beside the pages and its harvest, measured before the rounds (Progress.switchoverMs). */
  switchoverMs = 0;
  /** The last harvest's milliseconds: the switch-over begins with one, inside the downtime. */
  harvestMs = 0;

  constructor(private readonly onProgress?: (p: Progress) => void) {}

  /** Accounts a message sent that took `ms` to read and send. */
  sent(bytes: number, dataPages: number, zeroPages: number, ms: number): void {
    this.bytes += bytes;
    this.pagesSent += dataPages;
    this.zeroPages += zeroPages;
    this.busyMs += ms;
    this.busyBytes += bytes;
  }

  /** The destination took `bytes` of backlog in `ms` while the source waited (its pace, when slower than the source's). */
  drained(bytes: number, ms: number): void {
    this.sinkBytes += bytes;
    this.sinkMs += ms;
  }

  /** Bytes per second, the slower of the source's sending and the destination's taking; 0 until something was measured. */
  get bandwidth(): number {
    const sent = this.busyMs > 0 ? (this.busyBytes / this.busyMs) * 1000 : 0;
    return this.sinkMs > 0 ? Math.min(sent, (this.sinkBytes / this.sinkMs) * 1000) : sent;
  }

  /** Milliseconds to send `pages` pages at the measured bandwidth (Infinity before a measure). */
  estimateMs(pages: number): number {
    if (pages === 0) return 0;
    const bw = this.bandwidth;
    return bw > 0 ? ((pages * 4096) / bw) * 1000 : Infinity;
  }

  /** The switch-over's fixed part: its measured cost and the last harvest's (Progress.switchoverMs). */
  get fixedMs(): number {
    return this.switchoverMs + this.harvestMs;
  }

  /** The downtime a switch-over with `pages` left would cost: their time at the bandwidth, and the fixed part. */
  downtimeMs(pages: number): number {
    return this.estimateMs(pages) + this.fixedMs;
  }

  report(phase: MigrationPhase, remainingPages: number): void {
    this.onProgress?.({
      phase, round: this.round, pagesSent: this.pagesSent, zeroPages: this.zeroPages, bytes: this.bytes,
      dirtyRate: this.dirtyRate, bandwidth: this.bandwidth, remainingPages,
      estimatedDowntimeMs: this.downtimeMs(remainingPages), switchoverMs: this.fixedMs,
    });
  }
}
