// SBI IPI and RFENCE with every hart's KVM_RUN on a Worker of its own
// (Machine.runThreaded on the threads core): the target may be inside
// KVM_RUN when the call is made, so it is kicked out, and a remote sfence
// returns only once its targets have left KVM_RUN (they take the flush before
// they run again), as KVM waits for its fence requests.
import { describe, it, expect } from "vitest";
import { Kvm, Machine, riscv } from "../src/index.js";
import { WORKER } from "./threads-helpers.js";
import { loadRemap, remapResult, loadIpiWake, ipiWakeResult, VA } from "./sbi-programs.js";

async function machine() {
  return Machine.create({ kvm: await Kvm.open({ core: "threads" }), memSize: 16n << 20n, vcpus: 2, turn: 200_000 });
}

describe("SBI IPI and RFENCE, every hart on its own Worker (threads core)", () => {
  it("an IPI wakes a hart halted in wfi, which takes it and goes on", async () => {
    const m = await machine();
    loadIpiWake(m);
    const r = await m.runThreaded(WORKER);
    expect([r.stop, ipiWakeResult(m)]).toEqual(["harts-stopped", 2n]);
    m.close();
  });

  it("remote_sfence_vma: the other hart, running on its Worker, reads through the new mapping after the call returns", async () => {
    for (let i = 0; i < 5; i++) {
      const m = await machine();
      loadRemap(m, [riscv.SBI_EXT_RFENCE, riscv.SBI_RFENCE_SFENCE_VMA, 0b10n, 0n, VA, 0x1000n]);
      const r = await m.runThreaded(WORKER);
      expect({ stop: r.stop, ...remapResult(m) }).toEqual({ stop: "harts-stopped", before: 111n, after: 222n, err: 0n });
      m.close();
    }
  });
});
