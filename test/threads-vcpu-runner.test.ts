// OpenOptions.vcpuWorkers (src/vcpu-runner.ts): KVM_RUN issued on a Worker
// while the calling thread waits, which the "worker-vcpus" project switches on
// for the whole suite. These are its own rules.
import { describe, it, expect } from "vitest";
import { Kvm, KVM_EXIT, type Vcpu } from "../src/index.js";
import { addi, jal, REG } from "./cpu/asm.js";
import { vmWithCode, RAM } from "./threads-helpers.js";

const RUNNER = { workerUrl: new URL("../dist/vcpu-runner-worker.js", import.meta.url), waitLimitMs: 20_000 };
/** a0 += 1, forever: every run ends at its budget (EINTR). */
const COUNT = [addi(REG.a0, REG.a0, 1), jal(0, -4)];

async function counting(opts: { vcpuWorkers?: typeof RUNNER | false } = { vcpuWorkers: RUNNER }) {
  const kvm = await Kvm.open({ core: "threads", ...opts });
  const { vm, vcpus: [vcpu] } = vmWithCode(kvm, COUNT, 1);
  vcpu.pc = RAM;
  vcpu.setBudget(1000);
  return { kvm, vm, vcpu };
}

function runs(vcpu: Vcpu, n: number): void {
  for (let i = 0; i < n; i++) expect(vcpu.run().reason).toBe(KVM_EXIT.INTR);
}

describe("KVM_RUN on a vCPU runner Worker (OpenOptions.vcpuWorkers)", () => {
  it("runs on another thread of the process (vcpu->pid), with the same result as on this one", async () => {
    const there = await counting();
    const here = await counting({ vcpuWorkers: false });
    runs(there.vcpu, 5);
    runs(here.vcpu, 5);
    expect(there.vcpu.pid).not.toBe(there.kvm.core.threadIdOf());
    expect(there.vcpu.pid).toBeGreaterThan(0);
    expect(here.vcpu.pid).toBe(here.kvm.core.threadIdOf());
    expect(there.vcpu.getReg(REG.a0)).toBe(here.vcpu.getReg(REG.a0));
    expect(there.vcpu.instret).toBe(5000n);
  });

  it("a VM with a reader hook runs its vCPUs on the thread that set the hook (the hook is this thread's code)", async () => {
    const { kvm, vcpu } = await counting();
    kvm.setReaderHook(() => {});
    runs(vcpu, 1);
    expect(vcpu.pid).toBe(kvm.core.threadIdOf());
    kvm.setReaderHook(null);
    runs(vcpu, 1);
    expect(vcpu.pid).not.toBe(kvm.core.threadIdOf());
  });

  it("a VM with page-track users runs its vCPUs here, where their callbacks are", async () => {
    const { kvm, vm, vcpu } = await counting();
    const off = vm.pageTrack.register({ trackWrite: () => {} });
    runs(vcpu, 1);
    expect(vcpu.pid).toBe(kvm.core.threadIdOf());
    off();
    runs(vcpu, 1);
    expect(vcpu.pid).not.toBe(kvm.core.threadIdOf());
  });

  it("needs a threads core: RangeError on the default builds", async () => {
    await expect(Kvm.open({ core: "debug", vcpuWorkers: RUNNER })).rejects.toThrow(RangeError);
  });

  it("a trap inside KVM_RUN on the Worker is an error here; the Worker left nothing held: the next memslot update and run complete", async () => {
    const { kvm, vm, vcpu } = await counting();
    runs(vcpu, 1);
    vm.debug.injectFault("run_abort", 1);
    expect(() => vcpu.run()).toThrow(/injected: KVM_RUN trapped/);
    // The next KVM_RUN would wait for a vcpu->mutex left held (until the
    // runner's wait limit), synchronize_srcu for a read section left open.
    runs(vcpu, 1);
    vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: 0x10000000n, memorySize: 0x1000n, userspaceAddr: kvm.memory.mmap(0x1000n) });
    expect(vcpu.instret).toBe(2000n);
  });

  it("one Worker serves many processes: a process it dropped (past 8) is joined again at its next run", async () => {
    const all = [];
    for (let i = 0; i < 10; i++) all.push(await counting());
    for (const { vcpu } of all) runs(vcpu, 1);
    for (const { vcpu } of all) runs(vcpu, 1);
    for (const { vcpu, kvm } of all) {
      expect(vcpu.instret).toBe(2000n);
      expect(vcpu.pid).not.toBe(kvm.core.threadIdOf());
    }
  });
});
