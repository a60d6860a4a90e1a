// Live migration from the command line, between two processes over TCP:
// `webkvm incoming --listen [HOST:]PORT` waits for one guest and runs it on;
// `webkvm run IMAGE --migrate-to HOST:PORT --migrate-after N` runs a guest N
// instructions, then moves it there (migrate, receiveMigration and
// SocketTransport of src/migration/), with a progress line on a terminal.
// Until the switch-over a failure leaves the guest running here, as if it had
// never been asked to move; once post-copy has switched, the guest cannot go on.

import { connect, createServer, type Socket } from "node:net";
import type { Machine, RunResult } from "../vmm/machine.js";
import { migrate, type MigrateOptions, type MigrationStats } from "../migration/precopy.js";
import { receiveMigration } from "../migration/incoming.js";
import { POSTCOPY_LOST } from "../migration/postcopy.js";
import { SocketTransport } from "../migration/transport-socket.js";
import { wallClock, type Progress } from "../migration/progress.js";
import { formatEndpoint, parseCount, parseEndpoint, parseSize, type Endpoint } from "./args.js";
import { joinRuns, report, runSliced, timed, type TimedRun } from "./console-run.js";
import { progressLine } from "./progress-line.js";

export type MigrateMode = "bitmap" | "ring" | "postcopy";

/** What `run --migrate-to` asks. */
export interface MigrateRequest {
  to: Endpoint;
  /** Guest instructions before the migration starts. */
  after: bigint;
  mode: MigrateMode;
  downtimeMs?: number;
}

/** The dirty ring each vCPU gets for --migrate-mode ring (bytes; 4,096 entries of 16 bytes). */
export const MIGRATION_RING_BYTES = 65536;

/** Guest instructions between two messages while pre-copy runs (migrate's default), and the turn a machine needs for it. */
export const PRECOPY_SLICE = 50_000n;

export const MIGRATE_FLAGS_USAGE = `  --migrate-to HOST:PORT  after --migrate-after N instructions, move the running guest to webkvm incoming there
                          (status 0 and a summary once it runs there; if the migration fails before the
                          switch-over, the error on stderr and the guest runs on here)
  --migrate-after N       guest instructions before the migration starts (default 0; instructions, not time)
  --migrate-mode MODE     bitmap (pre-copy, KVM_GET_DIRTY_LOG + KVM_CLEAR_DIRTY_LOG; the default), ring (pre-copy,
                          the dirty ring) or postcopy (one pre-copy round, then the guest resumes there and
                          pages follow; a lost connection then ends the guest)
  --downtime-ms N         pre-copy: the pause the switch-over may cost at the measured bandwidth (default 300)`;

const MIGRATE_FLAGS = ["--migrate-to", "--migrate-after", "--migrate-mode", "--downtime-ms"];

/**
 * Takes run's migration flags out of args (the rest stay for run): null when
 * there are none, "usage" when one is malformed, or --migrate-to is missing.
 */
export function takeMigrateFlags(args: string[]): MigrateRequest | null | "usage" {
  const given = new Map<string, string | undefined>();
  for (let i = 0; i < args.length; i++) {
    if (!MIGRATE_FLAGS.includes(args[i])) continue;
    given.set(args[i], args[i + 1]);
    args.splice(i--, 2);
  }
  if (given.size === 0) return null;
  const to = parseEndpoint(given.get("--migrate-to"));
  const after = given.has("--migrate-after") ? parseCount(given.get("--migrate-after")) : 0n;
  const mode = given.get("--migrate-mode") ?? "bitmap";
  const downtime = given.has("--downtime-ms") ? parseCount(given.get("--downtime-ms")) : null;
  if (to === undefined || after === undefined || (mode !== "bitmap" && mode !== "ring" && mode !== "postcopy")) return "usage";
  // Post-copy switches after one round whatever it would cost: a downtime limit would mean nothing.
  if (downtime === undefined || downtime === 0n || (downtime !== null && mode === "postcopy")) return "usage";
  return { to, after, mode, downtimeMs: downtime === null ? undefined : Number(downtime) };
}

/** The progress line's text: the phase, the round, pages sent, dirty rate and the downtime a switch-over now would cost. */
export function describeProgress(p: Progress, what: string): string {
  const downtime = Number.isFinite(p.estimatedDowntimeMs) ? `${p.estimatedDowntimeMs.toFixed(1)} ms` : "?";
  return `${what}: ${p.phase}, round ${p.round}, ${p.pagesSent} pages sent + ${p.zeroPages} zero, ` +
    `dirty ${Math.round(p.dirtyRate)} pages/s, ${p.remainingPages} left, est. downtime ${downtime}`;
}

const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? "" : "s"}`;

/** The source's last line after a migration that worked. */
export function describeStats(s: MigrationStats, to: string, instructions: bigint): string {
  const how = s.postcopy ? `post-copy after ${plural(s.rounds, "round")}, ${plural(s.requestedPages, "page")} asked for`
    : `${s.mode}, ${plural(s.rounds, "round")}${s.converged ? "" : ", not converged"}`;
  return `migrated to ${to} after ${instructions} instructions here (${how}): total ${s.totalMs.toFixed(0)} ms, downtime ${s.downtimeMs.toFixed(1)} ms, ` +
    `${s.pagesSent} pages sent + ${s.zeroPages} zero, ${(s.bytes / 1048576).toFixed(1)} MiB`;
}

/** A TCP connection to `to`, or the connect error. */
function dial(to: Endpoint): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: to.host, port: to.port });
    socket.once("connect", () => { socket.off("error", reject); resolve(socket); });
    socket.once("error", reject);
  });
}

/** Tells a destination waiting for the guest that none comes (a connection closed before a hello), if it is there. */
async function hangUp(to: Endpoint): Promise<void> {
  try {
    new SocketTransport(await dial(to)).close();
  } catch {
    // nobody listens: nobody waits
  }
}

/** Stops pre-copy when the guest ends there: it ended on this side, and the destination is told to abort. */
class GuestEnded extends Error {
  constructor(readonly run: RunResult) {
    super(`the guest stopped (${run.stop}) during pre-copy, on this side`);
  }
}

/**
 * run --migrate-to: the guest runs `after` instructions (or to its end, or to
 * max), then migrates. The exit status: 0 once it runs at the destination;
 * else the guest's own, having run on here (1 if post-copy lost it).
 */
export async function runAndMigrate(m: Machine, req: MigrateRequest, max: bigint | undefined, input: boolean): Promise<number> {
  const where = formatEndpoint(req.to);
  /** The guest's run here so far: before the migration, and its pre-copy slices. */
  const here = { instructions: 0n, exits: 0, secs: 0 };
  let last: RunResult | null = null;
  const count = (r: TimedRun) => {
    here.instructions += r.instructions;
    here.exits += r.exits;
    here.secs += r.secs;
    last = r;
  };
  if (req.after > 0n) {
    const r = await runSliced(m, max !== undefined && max < req.after ? max : req.after, input);
    if (r.stop !== "limit" || (max !== undefined && r.instructions >= max)) {
      if (r.stop !== "limit") {
        process.stderr.write(`webkvm: the guest stopped before --migrate-after ${req.after}: not migrated\n`);
        await hangUp(req.to);
      }
      return report(r);
    }
    count(r);
  }
  const line = progressLine();
  const opts: MigrateOptions = {
    mode: req.mode === "ring" ? "ring" : "bitmap",
    downtimeLimitMs: req.downtimeMs,
    postcopyAfterRounds: req.mode === "postcopy" ? 1 : undefined,
    onProgress: (p) => {
      if (p.phase === "completed" || p.phase === "failed") line.clear();
      else line.show(() => describeProgress(p, `migrating to ${where}`));
    },
    runSlice: (mm) => {
      const r = timed(() => mm.run({ maxInstructions: PRECOPY_SLICE }));
      count(r);
      if (r.stop !== "limit" && r.stop !== "dirty-ring-full") throw new GuestEnded(r);
      return r;
    },
  };
  try {
    const stats = await migrate(m, new SocketTransport(await dial(req.to)), opts);
    process.stderr.write(`webkvm: ${describeStats(stats, where, here.instructions)}\n`);
    return 0;
  } catch (e) {
    line.clear();
    const cause = (e as Error).cause;
    if (cause instanceof GuestEnded) {
      process.stderr.write(`webkvm: migration to ${where} aborted: ${cause.message}\n`);
      return report({ ...cause.run, ...here });
    }
    process.stderr.write(`webkvm: migration to ${where} failed: ${(e as Error).message}\n`);
    if ((e as Error).message.startsWith(POSTCOPY_LOST)) return 1;
    process.stderr.write("webkvm: the guest runs on here\n");
  }
  if (max !== undefined && last !== null && here.instructions >= max) return report({ ...(last as RunResult), ...here, stop: "limit" });
  return report(joinRuns(here, await runSliced(m, max === undefined ? undefined : max - here.instructions, input)));
}

export const INCOMING_USAGE = `usage: webkvm incoming --listen [HOST:]PORT [--mem SIZE] [--max-instructions N]
  Waits on TCP for one guest that webkvm run --migrate-to sends, then runs it on to its end as run does: console
  to stdout, stdin to the guest, the same exit status. First prints "webkvm: listening on HOST:PORT" on stderr
  (PORT 0 picks a free port: the line names it). A migration refused or lost on the way is status 1 with why.
  --listen [HOST:]PORT    where to wait (HOST default 127.0.0.1; 0.0.0.0 for every interface)
  --mem SIZE              the most guest RAM this side takes, bytes or with K/M/G suffix (a larger guest is
                          refused before a page is sent; default: any that can be mapped)
  --max-instructions N    stop after N instructions here`;

/** webkvm incoming: one migration received over TCP, then the guest run on here. */
export async function incomingCommand(args: string[]): Promise<number> {
  if (args.includes("--help")) { process.stdout.write(INCOMING_USAGE + "\n"); return 0; }
  let listen: Endpoint | undefined, maxMemory: bigint | undefined, max: bigint | undefined, bad = false;
  for (let i = 0; i < args.length; i++) {
    const value = args[i + 1];
    if (args[i] === "--listen") bad ||= (listen = parseEndpoint(value, "127.0.0.1")) === undefined;
    else if (args[i] === "--mem") bad ||= (maxMemory = parseSize(value)) === undefined;
    else if (args[i] === "--max-instructions") bad ||= (max = parseCount(value)) === undefined;
    else bad = true;
    i++;
  }
  if (bad || listen === undefined) { process.stderr.write(INCOMING_USAGE + "\n"); return 2; }
  let socket: Socket;
  try {
    socket = await acceptOne(listen);
  } catch (e) {
    process.stderr.write(`webkvm: listening on ${formatEndpoint(listen)} failed: ${(e as Error).message}\n`);
    return 1;
  }
  const line = progressLine();
  let m: Machine, ended: RunResult | null, resumedAt: number;
  try {
    const got = await receiveMigration(new SocketTransport(socket), {
      maxMemory, onConsole: (t) => process.stdout.write(t),
      onProgress: (p) => {
        if (p.phase === "completed" || p.phase === "failed") line.clear();
        else line.show(() => `incoming: ${p.phase}, ${p.pagesSent} pages received + ${p.zeroPages} zero`);
      },
    });
    ({ machine: m, resumedAt } = got);
    ended = got.guestStop ?? null;
  } catch (e) {
    line.clear();
    process.stderr.write(`webkvm: incoming migration failed: ${(e as Error).message}\n`);
    return 1;
  }
  // A guest that ended while post-copy placed its last pages is reported, not run again past its end.
  const r = ended !== null ? { ...ended, secs: (wallClock() - resumedAt) / 1000 } : await runSliced(m, max, true);
  // Counted by the vCPUs, which start from 0 here: post-copy's slices too.
  return report({ ...r, instructions: m.vcpus.reduce((n, v) => n + v.instret, 0n) });
}

/** Listens on `at`, says where on stderr, and takes the first connection (then listens no more). */
function acceptOne(at: Endpoint): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const server = createServer({ pauseOnConnect: false });
    server.once("error", reject);
    server.once("connection", (socket) => {
      server.close();
      resolve(socket);
    });
    server.listen(at.port, at.host, () => {
      const { port } = server.address() as { port: number };
      process.stderr.write(`webkvm: listening on ${formatEndpoint({ host: at.host, port })}\n`);
    });
  });
}
