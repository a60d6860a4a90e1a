// KVM_INTERRUPT on RISC-V (kvm_arch_vcpu_async_ioctl): KVM_INTERRUPT_SET raises
// the guest's supervisor external interrupt (sip.SEIP), every other irq value
// lowers it; the guest takes it as interrupt 9 when sie.SEIE and sstatus.SIE allow.
import { describe, it, expect } from "vitest";
import { KVM_EXIT, KvmError, ERRNO } from "../src/index.js";
import { KVM_INTERRUPT, KVM_INTERRUPT_SET, KVM_INTERRUPT_UNSET } from "../src/uapi.js";
import * as A from "./cpu/asm.js";
import { REG } from "./cpu/asm.js";
import { openKvm } from "./helpers.js";
import { interruptProgram, RAM, HANDLER, SEIP, SSTATUS_SIE, SCAUSE_SEI } from "./interrupt-programs.js";

async function setup(body: number[] = []) {
  const kvm = await openKvm();
  const vm = kvm.createVm();
  const hva = kvm.memory.mmap(1n << 20n);
  vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: RAM, memorySize: 1n << 20n, userspaceAddr: hva });
  vm.writeGuest(RAM, interruptProgram(body));
  const vcpu = vm.createVcpu(0);
  vcpu.setRegs({ pc: RAM, mode: 1n });
  vcpu.setCsr("stvec", HANDLER);
  vcpu.setBudget(100_000);
  return { kvm, vm, vcpu };
}

function irq(value: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, value, true);
  return b;
}

describe("KVM_INTERRUPT (RISC-V)", () => {
  it("KVM_INTERRUPT_SET raises sip.SEIP; KVM_INTERRUPT_UNSET lowers it", async () => {
    const { vcpu } = await setup();
    expect(vcpu.getCsr("sip") & SEIP).toBe(0n);
    vcpu.setExternalInterrupt(true);
    expect(vcpu.getCsr("sip") & SEIP).toBe(SEIP);
    vcpu.setExternalInterrupt(false);
    expect(vcpu.getCsr("sip") & SEIP).toBe(0n);
  });

  it("any irq value other than KVM_INTERRUPT_SET lowers the line and succeeds (kvm_arch_vcpu_async_ioctl's else branch)", async () => {
    const { vcpu } = await setup();
    for (const v of [0, 9, 0x12345678, KVM_INTERRUPT_UNSET]) {
      expect(vcpu.ioctl(KVM_INTERRUPT, irq(KVM_INTERRUPT_SET))).toBe(0);
      expect(vcpu.ioctl(KVM_INTERRUPT, irq(v))).toBe(0);
      expect(vcpu.getCsr("sip") & SEIP).toBe(0n);
    }
  });

  it("a struct kvm_interrupt shorter than 4 bytes is EFAULT (copy_from_user) and leaves the line as it was", async () => {
    const { vcpu } = await setup();
    expect(vcpu.ioctl(KVM_INTERRUPT, new Uint8Array(3).fill(0xff))).toBe(-ERRNO.EFAULT);
    expect(vcpu.getCsr("sip") & SEIP).toBe(0n);
  });

  it("the guest traps to stvec with scause = interrupt 9 when sie.SEIE and sstatus.SIE allow", async () => {
    const { vcpu } = await setup();
    vcpu.setCsr("sie", SEIP);
    vcpu.setCsr("sstatus", SSTATUS_SIE);
    expect(vcpu.run().reason).toBe(KVM_EXIT.INTR); // spins: nothing pending
    vcpu.setExternalInterrupt(true);
    expect(vcpu.run().reason).toBe(KVM_EXIT.RISCV_SBI);
    expect(vcpu.getReg(REG.a0)).toBe(SCAUSE_SEI);
    expect(vcpu.getReg(REG.a1)).toBe(RAM); // the spin loop
  });

  it("a raised line is not taken while sie.SEIE or sstatus.SIE masks it", async () => {
    for (const [sie, sstatus] of [[0n, SSTATUS_SIE], [SEIP, 0n]]) {
      const { vcpu } = await setup();
      vcpu.setCsr("sie", sie);
      vcpu.setCsr("sstatus", sstatus);
      vcpu.setExternalInterrupt(true);
      expect(vcpu.run().reason).toBe(KVM_EXIT.INTR);
      expect(vcpu.pc).toBe(RAM);
    }
  });

  it("a lowered line is not taken", async () => {
    const { vcpu } = await setup();
    vcpu.setCsr("sie", SEIP);
    vcpu.setCsr("sstatus", SSTATUS_SIE);
    vcpu.setExternalInterrupt(true);
    vcpu.setExternalInterrupt(false);
    expect(vcpu.run().reason).toBe(KVM_EXIT.INTR);
  });

  it("a vCPU halted in wfi (KVM_EXIT_HLT) takes the interrupt raised meanwhile when it runs again, past the wfi", async () => {
    const { vcpu } = await setup([A.wfi()]);
    vcpu.setCsr("sie", SEIP);
    vcpu.setCsr("sstatus", SSTATUS_SIE);
    expect(vcpu.run().reason).toBe(KVM_EXIT.HLT);
    vcpu.setExternalInterrupt(true);
    expect(vcpu.run().reason).toBe(KVM_EXIT.RISCV_SBI);
    expect([vcpu.getReg(REG.a0), vcpu.getReg(REG.a1)]).toEqual([SCAUSE_SEI, RAM + 4n]);
  });

  it("wfi with the line already raised and enabled in sie does not halt, even with sstatus.SIE clear", async () => {
    const { vcpu } = await setup([A.wfi()]);
    vcpu.setCsr("sie", SEIP);
    vcpu.setExternalInterrupt(true);
    expect(vcpu.run().reason).toBe(KVM_EXIT.INTR); // past the wfi, spinning
    expect(vcpu.pc).toBe(RAM + 4n);
  });

  it("setExternalInterrupt reports a failed ioctl as KvmError (a closed vCPU fd: EBADF)", async () => {
    const { vm, vcpu } = await setup();
    vm.close();
    expect(() => vcpu.setExternalInterrupt(true)).toThrow(KvmError);
  });
});
