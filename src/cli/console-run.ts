// A guest run to its end on the terminal, as every command that runs one
// (run, restore, incoming) does it: console on stdout, stdin to the guest
// between slices, optional stops every N instructions (snapshots), and one
// line on stderr with the outcome, whose SRST reason is the exit status.

import type { Machine, RunResult } from "../vmm/machine.js";

/** A run's outcome with its running time (secs: the guest's, not the pauses between slices). */
export type TimedRun = RunResult & { secs: number };

export function timed(fn: () => RunResult): TimedRun {
  const t0 = performance.now();
  const r = fn();
  return { ...r, secs: (performance.now() - t0) / 1000 };
}

/** Two parts of one guest's run as one: the end of the second, the totals of both. */
export function joinRuns(a: Pick<TimedRun, "instructions" | "exits" | "secs">, b: TimedRun): TimedRun {
  return { ...b, instructions: a.instructions + b.instructions, exits: a.exits + b.exits, secs: a.secs + b.secs };
}

/** Prints a run's outcome on stderr; the exit status (the SRST reason for shutdown and reboot, else 3). */
export function report(r: TimedRun): number {
  const secs = r.secs;
  process.stderr.write(`webkvm: ${r.stop}${r.stop === "shutdown" || r.stop === "reboot" ? ` (reason ${r.reason})` : ""}` +
    `, ${r.instructions} instructions in ${secs.toFixed(3)} s (${(Number(r.instructions) / secs / 1e6).toFixed(0)} MIPS), ${r.exits} exits\n`);
  if (r.stop === "shutdown" || r.stop === "reboot") return r.reason === 0 ? 0 : 1;
  return 3;
}

/** Instructions per run() slice while stdin is forwarded: between slices the event loop delivers typed bytes. */
const INPUT_SLICE = 5_000_000n;

/**
 * Machine.run in slices: with input, stdin forwarded to the guest's consoles
 * between them (to the UART, its receive interrupt, console=ttyS0, and to the
 * SBI console, getchar / DBCN read, console=hvc0); with snapshots, one taken
 * every `every` instructions. Totals as one run() reports them (secs: running
 * time, snapshots not counted).
 */
export async function runSliced(m: Machine, max: bigint | undefined, input: boolean,
                                snapshots?: { every: bigint; take: () => Promise<void> }): Promise<TimedRun> {
  const onData = (b: Buffer) => { m.uart.feed(b); m.feedConsole(b); };
  if (input) {
    process.stdin.on("data", onData);
    process.stdin.resume(); // a data listener alone does not restart a stdin an earlier run paused
  }
  let instructions = 0n, exits = 0, sinceSnapshot = 0n, secs = 0;
  try {
    for (;;) {
      let slice = input ? INPUT_SLICE : 1n << 62n;
      if (snapshots && snapshots.every - sinceSnapshot < slice) slice = snapshots.every - sinceSnapshot;
      if (max !== undefined && max - instructions < slice) slice = max - instructions;
      const r = timed(() => m.run({ maxInstructions: slice }));
      secs += r.secs;
      instructions += r.instructions;
      sinceSnapshot += r.instructions;
      exits += r.exits;
      if (r.stop !== "limit" || (max !== undefined && instructions >= max)) return { ...r, instructions, exits, secs };
      if (snapshots && sinceSnapshot >= snapshots.every) {
        await snapshots.take();
        sinceSnapshot = 0n;
      }
      if (input) await new Promise((done) => setImmediate(done));
    }
  } finally {
    if (input) {
      process.stdin.off("data", onData);
      process.stdin.pause();
      process.stdin.unref?.();
    }
  }
}
