// The smp guest (guests/smp: each hart its own Sv39 tables over its own
// partition, secondaries started with SBI HSM hart_start) with every hart's
// KVM_RUN on a Worker of its own (Machine.runThreaded on the threads core):
// the same output and memory as round-robin on one thread.
import { describe, it, expect } from "vitest";
import { readFileSync } from "node:fs";
import { Kvm, Machine } from "../src/index.js";
import { WORKER } from "./threads-helpers.js";
import { expectSmpReference } from "./smp-check.js";

const smpImage = new Uint8Array(readFileSync(new URL("../guests/smp/smp.bin", import.meta.url)));

describe("smp guest, every hart on its own Worker (threads core)", () => {
  it.each([2, 4])("on %i harts it prints the reference line and each partition holds its hart's stream", async (n) => {
    const m = await Machine.create({ kvm: await Kvm.open({ core: "threads" }), memSize: 16n << 20n, vcpus: n, turn: 200_000 });
    m.load(smpImage);
    expectSmpReference(m, await m.runThreaded(WORKER), n);
    m.close();
  });
});
