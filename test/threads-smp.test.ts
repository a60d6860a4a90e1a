// The smp guest (guests/smp: each hart its own Sv39 tables over its own
// partition, secondaries started with SBI HSM hart_start) with every hart's
// KVM_RUN on a Worker of its own (Machine.runThreaded on the threads core):
// the same output and memory as round-robin on one thread.
import { describe, it, expect } from "vitest";
import { readFileSync } from "node:fs";
import { Kvm, Machine } from "../src/index.js";
// @ts-expect-error plain JS module without types
import { smpLine, smpHartData, smpDataGpa, SMP_DATA_BYTES } from "../guests/smp/reference.mjs";

const smpImage = new Uint8Array(readFileSync(new URL("../guests/smp/smp.bin", import.meta.url)));
const WORKER = { workerUrl: new URL("../dist/vcpu-thread-worker.js", import.meta.url) };

describe("smp guest, every hart on its own Worker (threads core)", () => {
  it.each([2, 4])("on %i harts it prints the reference line and each partition holds its hart's stream", async (n) => {
    const m = await Machine.create({ kvm: await Kvm.open({ core: "threads" }), memSize: 16n << 20n, vcpus: n, turn: 200_000 });
    m.load(smpImage);
    const r = await m.runThreaded(WORKER);
    expect(m.output).toBe(smpLine(n));
    expect([r.stop, r.reason]).toEqual(["shutdown", 0]);
    for (let h = 0; h < n; h++) {
      const mem = m.vm.readGuest(smpDataGpa(h), SMP_DATA_BYTES);
      expect(Buffer.from(mem).equals(Buffer.from(smpHartData(h))), `hart ${h}`).toBe(true);
    }
    for (let h = 1; h < n; h++) expect(m.hartState(h)).toBe("stopped");
    m.close();
  });
});
