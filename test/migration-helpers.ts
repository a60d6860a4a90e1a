// A guest for the migration tests: the dirtylog guest (guests/dirtylog) on a
// Machine, writing the iteration number to pseudo-random pages of a region in
// its own memslot (slot 1, logged from creation as dirty_log_test has it) while
// the host bumps the iteration between slices, so every store changes a page.
import { readFileSync } from "node:fs";
import { MessageChannel } from "node:worker_threads";
import { createServer, connect, type Socket } from "node:net";
import { Machine, type Kvm } from "../src/index.js";
import type { DirtyTracker } from "../src/migration/dirty-tracker.js";
import { migrate, type MigrateOptions, type MigrationStats } from "../src/migration/precopy.js";
import { receiveMigration, type ReceiveOptions, type Incoming } from "../src/migration/incoming.js";
import { PortTransport } from "../src/migration/transport-port.js";
import { SocketTransport } from "../src/migration/transport-socket.js";
import type { Transport } from "../src/migration/transport.js";
import type { Progress } from "../src/migration/progress.js";
import { openKvm } from "./helpers.js";
import { addDirtyLogRegion, setIteration, startDirtylog } from "./threads-scenarios/dirty-log-verify.mjs";

const image = new Uint8Array(readFileSync(new URL("../guests/dirtylog/dirtylog.bin", import.meta.url)));
export const REGION = { slot: 1, gpa: 0xc0000000n, pages: 256 };
const PARAMS = 0x80300000n;

export interface Dirtier {
  m: Machine;
  region: { slot: number; gpa: bigint; pages: number; hva: bigint };
  iteration: bigint;
}

/** A machine running the dirtylog guest on every hart (seeds from seed). */
export async function dirtier(kvm: Kvm, opts: { vcpus?: number; dirtyRing?: number; memSize?: bigint; seed?: number; pages?: number } = {}): Promise<Dirtier> {
  const vcpus = opts.vcpus ?? 1;
  const m = await Machine.create({ kvm, memSize: opts.memSize ?? 4n << 20n, vcpus, turn: 2000, // slices end when asked
    dirtyRing: opts.dirtyRing });
  const region = addDirtyLogRegion(m, { ...REGION, pages: opts.pages ?? REGION.pages });
  const entry = m.load(image);
  const seed = BigInt(opts.seed ?? 1);
  startDirtylog(m, entry, region, Array.from({ length: vcpus }, (_, h) => seed * 0x9e3779b1n + BigInt(h) + 1n), PARAMS);
  return { m, region, iteration: 0n };
}

/** Bumps the iteration and runs `instructions`; a full dirty ring is drained into the tracker. */
export function step(d: Dirtier, instructions: bigint, tracker?: DirtyTracker): void {
  setIteration(d.m, ++d.iteration);
  for (let left = instructions, guard = 0; left > 0n; guard++) {
    if (guard > 10_000) throw new Error("the guest makes no progress");
    const r = d.m.run({ maxInstructions: left });
    left -= r.instructions;
    if (r.stop === "dirty-ring-full") {
      if (tracker) tracker.collect();
      else { // nobody tracks: recycle the entries
        for (const v of d.m.vcpus) v.dirtyRing.harvest();
        d.m.vm.resetDirtyRings();
      }
    } else if (r.stop !== "limit") throw new Error(`the guest stopped: ${r.stop} ${d.m.output}`);
  }
}

export async function tcpPair(): Promise<{ a: Socket; b: Socket; close: () => void }> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const accepted = new Promise<Socket>((r) => server.once("connection", r));
  const a = connect((server.address() as { port: number }).port, "127.0.0.1");
  await new Promise<void>((r) => a.once("connect", () => r()));
  const b = await accepted;
  return { a, b, close: () => { a.destroy(); b.destroy(); server.close(); } };
}

export type Link = "port" | "tcp";

export async function link(kind: Link): Promise<{ src: Transport; dst: Transport; done: () => void }> {
  if (kind === "port") {
    const { port1, port2 } = new MessageChannel();
    return { src: new PortTransport(port1), dst: new PortTransport(port2), done: () => {} };
  }
  const t = await tcpPair();
  return { src: new SocketTransport(t.a), dst: new SocketTransport(t.b), done: t.close };
}

/** Every region's bytes of a machine, in memslot order. */
export function memoryOf(m: Machine): Uint8Array[] {
  return m.memoryRegions().map((r) => m.kvm.memory.read(r.hva, Number(r.size)));
}

export function sameMemory(a: Machine, b: Machine): string | null {
  const x = memoryOf(a), y = memoryOf(b);
  if (x.length !== y.length) return `${x.length} regions vs ${y.length}`;
  for (let i = 0; i < x.length; i++) {
    if (x[i].length !== y[i].length) return `region ${i}: ${x[i].length} vs ${y[i].length} bytes`;
    for (let p = 0; p < x[i].length; p += 4096) {
      if (Buffer.compare(Buffer.from(x[i].subarray(p, p + 4096)), Buffer.from(y[i].subarray(p, p + 4096))) !== 0) return `region ${i} page ${p / 4096} differs`;
    }
  }
  return null;
}

/** The parts of a saved state that must travel unchanged (memslot hvas are the new host's own). */
export function portableState(m: Machine) {
  const s = m.saveState();
  return { ...s, memslots: s.memslots.map(({ hva: _hva, ...r }) => r) };
}

export interface Run {
  d: Dirtier;
  stats: MigrationStats;
  incoming: Incoming;
  progress: Progress[];
  /** Memory and state differences at the switch-over (null: equal). */
  memoryDiff: string | null;
}

/** Migrates a running dirtier from one Kvm to another in this thread. */
export async function migrateOnce(kind: Link, opts: { src?: Kvm; dst?: Kvm; vcpus?: number; ring?: boolean; seed?: number;
  migrate?: MigrateOptions; receive?: ReceiveOptions; warmup?: bigint } = {}): Promise<Run> {
  const d = await dirtier(opts.src ?? (await openKvm()), { vcpus: opts.vcpus, dirtyRing: opts.ring ? 4096 : undefined, seed: opts.seed });
  step(d, opts.warmup ?? 20_000n);
  const dstKvm = opts.dst ?? (await openKvm());
  const l = await link(kind);
  const progress: Progress[] = [];
  try {
    const [stats, incoming] = await Promise.all([
      migrate(d.m, l.src, { mode: opts.ring ? "ring" : "bitmap", sliceInstructions: 5_000n, messageBytes: 64 << 10,
        clearChunkPages: 256, onProgress: (p) => progress.push(p),
        // Each slice stores a new iteration number: a page dirtied during the migration really changes.
        runSlice: (m) => {
          setIteration(m, ++d.iteration);
          return m.run({ maxInstructions: opts.migrate?.sliceInstructions ?? 5_000n });
        }, ...opts.migrate }),
      receiveMigration(l.dst, { kvm: dstKvm, ...opts.receive }),
    ]);
    return { d, stats, incoming, progress, memoryDiff: sameMemory(d.m, incoming.machine) };
  } finally {
    l.done();
  }
}

