// Live migration (src/migration/precopy.ts, incoming.ts, postcopy.ts) of a
// running guest between two Kvm instances: the dirtylog guest keeps writing
// while rounds go; at the switch-over the destination's memory, registers and
// devices equal the source's, and both guests, run on for the same
// instructions, stay equal (the copy is exact, not merely plausible).
import { describe, it, expect } from "vitest";
import { MessageChannel } from "node:worker_threads";
import { createServer, connect, type Socket } from "node:net";
import type { Kvm, Machine } from "../src/index.js";
import { migrate, type MigrateOptions, type MigrationStats } from "../src/migration/precopy.js";
import { receiveMigration, type ReceiveOptions, type Incoming } from "../src/migration/incoming.js";
import { PortTransport } from "../src/migration/transport-port.js";
import { SocketTransport } from "../src/migration/transport-socket.js";
import type { Transport } from "../src/migration/transport.js";
import type { Progress } from "../src/migration/progress.js";
import { openKvm } from "./helpers.js";
import { dirtier, step, type Dirtier } from "./migration-helpers.js";

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
        clearChunkPages: 256, onProgress: (p) => progress.push(p), ...opts.migrate }),
      receiveMigration(l.dst, { kvm: dstKvm, ...opts.receive }),
    ]);
    return { d, stats, incoming, progress, memoryDiff: sameMemory(d.m, incoming.machine) };
  } finally {
    l.done();
  }
}

describe("pre-copy live migration", () => {
  for (const kind of ["port", "tcp"] as const) {
    for (const ring of [false, true]) {
      it(`over ${kind === "port" ? "a MessagePort" : "loopback TCP"}, ${ring ? "ring" : "bitmap"} mode: the destination equals the source at the switch-over and runs on identically`, async () => {
        const r = await migrateOnce(kind, { ring });
        expect(r.memoryDiff).toBeNull();
        expect(portableState(r.incoming.machine)).toEqual(portableState(r.d.m));
        expect(r.stats.rounds).toBeGreaterThanOrEqual(2);
        expect(r.stats.pagesSent).toBeGreaterThan(0);
        expect(r.stats.zeroPages).toBeGreaterThan(0); // most of a fresh guest is zero: markers, not pages
        // Both run on for the same instructions: still equal.
        const dst: Dirtier = { m: r.incoming.machine, region: r.d.region, iteration: r.d.iteration };
        step(r.d, 30_000n);
        step(dst, 30_000n);
        expect(sameMemory(r.d.m, dst.m)).toBeNull();
        expect(dst.m.vcpu.pc).toBe(r.d.m.vcpu.pc);
      });
    }
  }
});
