// KVM_INTERRUPT is an async vCPU ioctl (kvm_arch_vcpu_async_ioctl runs before
// vcpu->mutex): issued here while the vCPU's KVM_RUN spins on a Worker, it
// does not wait for the run to end; the running vCPU takes the interrupt
// (kvm_riscv_vcpu_set_interrupt's kick) within its current chunk.
import { describe, it, expect } from "vitest";
import { Kvm, KVM_EXIT, VcpuThread } from "../src/index.js";
import { REG } from "./cpu/asm.js";
import { WORKER, inGuestMode } from "./threads-helpers.js";
import { interruptProgram, RAM, HANDLER, SEIP, SSTATUS_SIE, SCAUSE_SEI } from "./interrupt-programs.js";

describe("KVM_INTERRUPT while the vCPU runs on a Worker (threads core)", () => {
  it("a vCPU spinning in KVM_RUN on its Worker takes an interrupt raised from this thread, and the run ends through its handler", async () => {
    const kvm = await Kvm.open({ core: "threads" });
    const vm = kvm.createVm();
    const hva = kvm.memory.mmap(1n << 20n);
    vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: RAM, memorySize: 1n << 20n, userspaceAddr: hva });
    vm.writeGuest(RAM, interruptProgram([]));
    const vcpu = vm.createVcpu(0);
    vcpu.setRegs({ pc: RAM, mode: 1n });
    vcpu.setCsr("stvec", HANDLER);
    vcpu.setCsr("sie", SEIP);
    vcpu.setCsr("sstatus", SSTATUS_SIE);
    vcpu.setBudget(2 ** 40); // far more than the test waits: only the interrupt ends this run
    const t = await VcpuThread.start(kvm, vcpu, WORKER);
    const run = t.run();
    await inGuestMode(kvm, vm, 0);
    vcpu.setExternalInterrupt(true); // returns while the run goes on (no vcpu->mutex)
    const exit = await run;
    expect(exit.reason).toBe(KVM_EXIT.RISCV_SBI);
    expect([vcpu.getReg(REG.a0), vcpu.getReg(REG.a1)]).toEqual([SCAUSE_SEI, RAM]);
    await t.terminate();
    vm.close();
  });
});
