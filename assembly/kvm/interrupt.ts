// KVM_INTERRUPT on RISC-V (kvm_arch_vcpu_async_ioctl, kvm_riscv_vcpu_set_interrupt /
// kvm_riscv_vcpu_unset_interrupt): the VMM's interrupt controller drives the
// guest's supervisor external interrupt line, sip.SEIP (IRQ_VS_EXT of the guest
// in KVM). An async ioctl: it does not take vcpu->mutex, so it may come from
// any thread while the vCPU runs elsewhere. The line lives in the Vcpu
// (irqLine); the CPU state's copy (cpu/state.ts OFF_EXT_IRQ) follows it when
// the vCPU is loaded and, for a running vCPU, at its next instruction boundary
// through KVM_REQ_IRQ (the kick of kvm_riscv_vcpu_set_interrupt). A vCPU halted
// in wfi reported KVM_EXIT_HLT to its VMM, which runs it again: then wfi is
// behind it and the interrupt is taken if sie and sstatus allow.

import { ioctlBuf } from "../layout";
import { Vcpu, vcpuOf } from "./kvm_host";
import { vcpuLoaded } from "./vcpu_run";
import { makeRequest, KVM_REQ_IRQ } from "./requests";
import { cpuSetExternalIrq } from "../cpu/execute";
import { OFF_EXT_IRQ } from "../cpu/state";
import { fail, EFAULT, CHECK_COPY_FROM_USER } from "../errno";

/** _IOW(KVMIO, 0x86, struct kvm_interrupt) */
export const KVM_INTERRUPT: u32 = 0x4004ae86;
/** struct kvm_interrupt's irq values on RISC-V (uapi asm/kvm.h). */
const KVM_INTERRUPT_SET: u32 = 0xffffffff;
const KVM_INTERRUPT_BYTES: i32 = 4;

/** The ioctl: struct kvm_interrupt in ioctlBuf(). SET raises the line; every other value lowers it, as RISC-V KVM does. */
export function interruptIoctl(p: usize, argLen: i32): i32 {
  if (argLen < KVM_INTERRUPT_BYTES) return fail(CHECK_COPY_FROM_USER, EFAULT);
  setIrqLine(p, load<u32>(ioctlBuf()) == KVM_INTERRUPT_SET);
  return 0;
}

/**
 * Sets the line and makes the vCPU see it. One thread: in whichever copy of the
 * CPU state is the vCPU's now. Threads build: through the Vcpu and a request
 * (vcpuLoad and cpuRun copy it in: requests.ts irqLineToCpu).
 */
export function setIrqLine(p: usize, level: bool): void {
  if (WEBKVM_THREADS) {
    atomic.store<u32>(p + offsetof<Vcpu>("irqLine"), level ? 1 : 0);
    makeRequest(p, KVM_REQ_IRQ);
    return;
  }
  vcpuOf(p).irqLine = level ? 1 : 0;
  if (vcpuLoaded(p)) cpuSetExternalIrq(level);
  else store<u32>(vcpuOf(p).cpuState + OFF_EXT_IRQ, level ? 1 : 0);
}
