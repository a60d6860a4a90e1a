// A migration that fails leaves the source as it was: a connection dropped at
// any point of pre-copy, a damaged message, a destination that cannot hold the
// guest — the source sees a MigrationError saying why, its dirty tracking is
// gone (flags and capabilities as before), and its guest runs on exactly as a
// twin that was never migrated.
import { describe, it, expect } from "vitest";
import { MessageChannel } from "node:worker_threads";
import { KVM_MEM_LOG_DIRTY_PAGES } from "../src/index.js";
import { migrate } from "../src/migration/precopy.js";
import { receiveMigration } from "../src/migration/incoming.js";
import { MigrationError } from "../src/migration/stream.js";
import { decodeSections } from "../src/migration/section.js";
import { PortTransport } from "../src/migration/transport-port.js";
import { SocketTransport } from "../src/migration/transport-socket.js";
import type { Transport } from "../src/migration/transport.js";
import { openKvm } from "./helpers.js";
import { dirtier, step, sameMemory, tcpPair, type Dirtier, type Link } from "./migration-helpers.js";
import { Rng } from "./rng.js";

/**
 * A destination-side transport that, at its k-th message received (k < 0: at
 * the stop-and-copy's "complete"), drops the connection or damages the message.
 */
class Faulty implements Transport {
  received = 0;
  constructor(private readonly inner: Transport, private readonly at: number, private readonly fault: "drop" | "flip",
              private readonly drop: () => void, private readonly r: Rng) {}
  send(m: Uint8Array) { return this.inner.send(m); }
  close() { this.inner.close(); }
  async receive() {
    const m = await this.inner.receive();
    if (m === null) return m;
    const n = this.received++;
    if (this.at >= 0 ? n !== this.at : decodeSections(m)[0].name !== "complete") return m;
    if (this.fault === "drop") {
      this.drop();
      throw new Error("dropped");
    }
    const c = m.slice();
    const bit = this.r.int(c.length * 8);
    c[bit >> 3] ^= 1 << (bit & 7);
    return c;
  }
}

async function faultyLink(kind: Link, at: number, fault: "drop" | "flip", r: Rng) {
  if (kind === "port") {
    const { port1, port2 } = new MessageChannel();
    return { src: new PortTransport(port1), dst: new Faulty(new PortTransport(port2), at, fault, () => port2.close(), r), done: () => {} };
  }
  const t = await tcpPair();
  return { src: new SocketTransport(t.a), dst: new Faulty(new SocketTransport(t.b), at, fault, () => t.b.destroy(), r), done: t.close };
}

/** Two identical guests: one to migrate, one never touched. */
async function twins(seed: number): Promise<[Dirtier, Dirtier]> {
  const a = await dirtier(await openKvm(), { seed }), b = await dirtier(await openKvm(), { seed });
  step(a, 20_000n);
  step(b, 20_000n);
  return [a, b];
}

/** The source after a failed migration: tracking undone, and its guest runs on as its twin does. */
function checksOut(a: Dirtier, b: Dirtier): void {
  expect(a.m.vm.memslots().map((s) => s.flags)).toEqual([0, KVM_MEM_LOG_DIRTY_PAGES]);
  expect(a.m.vm.debug.stats().manualDirtyLogProtect).toBe(0);
  const behind = a.m.vcpu.instret - b.m.vcpu.instret; // the slices a ran during pre-copy
  if (behind > 0n) b.m.run({ maxInstructions: behind });
  expect(b.m.vcpu.instret).toBe(a.m.vcpu.instret);
  expect(sameMemory(a.m, b.m)).toBeNull();
  step(a, 20_000n);
  step(b, 20_000n);
  expect(sameMemory(a.m, b.m)).toBeNull();
  expect(a.m.vcpu.pc).toBe(b.m.vcpu.pc);
}

const OPTS = { sliceInstructions: 6000n, messageBytes: 64 << 10, clearChunkPages: 256, downtimeLimitMs: 0, maxRounds: 6 };

describe("a failed pre-copy leaves the source running untouched", () => {
  for (const kind of ["port", "tcp"] as const) {
    it(`connection dropped at random points (${kind}): the source reports it, its guest checks out`, async () => {
      const r = new Rng(kind === "port" ? 101 : 202);
      for (let trial = 0; trial < 7; trial++) {
        const [a, b] = await twins(trial + 1);
        const at = trial === 0 ? 0 : trial === 6 ? -1 : r.range(1, 30); // the hello itself; the switch-over
        const l = await faultyLink(kind, at, "drop", r);
        const [src, dst] = await Promise.allSettled([migrate(a.m, l.src, OPTS), receiveMigration(l.dst, { kvm: await openKvm() })]);
        l.done();
        expect(src.status, `trial ${trial} at ${at}`).toBe("rejected");
        expect((src as PromiseRejectedResult).reason).toBeInstanceOf(MigrationError);
        expect(String((src as PromiseRejectedResult).reason.message)).toMatch(at < 0 ? /^stop-and-copy: connection lost/ : /connection lost/);
        expect(dst.status).toBe("rejected");
        checksOut(a, b);
      }
    });
  }

  it("a damaged message is refused by the destination naming the section; the source runs on", async () => {
    const r = new Rng(303);
    for (let trial = 0; trial < 6; trial++) {
      const [a, b] = await twins(trial + 11);
      const at = r.range(0, 25);
      const l = await faultyLink(trial % 2 ? "tcp" : "port", at, "flip", r);
      const [src, dst] = await Promise.allSettled([migrate(a.m, l.src, OPTS), receiveMigration(l.dst, { kvm: await openKvm() })]);
      l.done();
      expect(dst.status).toBe("rejected");
      expect(String((dst as PromiseRejectedResult).reason.message)).toMatch(/^refused a damaged message: section "/);
      expect(src.status).toBe("rejected");
      expect(String((src as PromiseRejectedResult).reason.message)).toMatch(/the destination failed: refused a damaged message/);
      checksOut(a, b);
    }
  });

  it("a destination out of memory refuses at the hello (its limit, or mmap's ENOMEM); the source runs on", async () => {
    for (const dstOpts of [{ maxMemory: 1n << 20n }, { kvm: await openKvm({ config: { userAddressLimit: 2n << 20n } }) }]) {
      const [a, b] = await twins(7);
      const { port1, port2 } = new MessageChannel();
      const [src, dst] = await Promise.allSettled([migrate(a.m, new PortTransport(port1), OPTS),
        receiveMigration(new PortTransport(port2), { kvm: await openKvm(), ...dstOpts })]);
      expect(String((dst as PromiseRejectedResult).reason?.message)).toMatch(/^destination out of memory/);
      expect(String((src as PromiseRejectedResult).reason?.message)).toMatch(/the destination failed: destination out of memory/);
      expect(a.m.vcpu.instret).toBe(b.m.vcpu.instret); // refused before a round: the guest did not even run
      checksOut(a, b);
    }
  });
});
