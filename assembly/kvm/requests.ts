// vcpu->mode and vcpu->requests: how the threads build keeps a running vCPU
// and the VMM thread in step (kvm_vcpu_kick, kvm_make_all_cpus_request,
// kvm_flush_remote_tlbs).
//
// A vCPU is "in guest mode" while the interpreter's fast loop runs a chunk
// (cpu/execute.ts): it reads only its own shadow tables and the host frames
// they point at, holds no lock and no SRCU read section. It leaves guest mode
// at the end of every chunk (at most a few thousand instructions) and before
// any slow path (mmu/access.ts resolve), taking the SRCU read section back, as
// vcpu_enter_guest drops kvm->srcu around VM entry. Entering checks the
// requests after announcing the mode, and a requester sets its bit before
// reading the mode, so one of the two always sees the other (the kernel's
// IN_GUEST_MODE / kvm_request_pending pairing).
//
// A zap changes the vCPU's tables directly; what a remote TLB flush must still
// guarantee is that no vCPU goes on using a translation it read before the zap.
// kvm_flush_remote_tlbs therefore waits until every vCPU that was in guest mode
// has left it once; one that was outside (faulting, say) sees the request when
// it enters and retries its access instead of using what it resolved.
// The default builds have one thread: these compile to nothing.

import { Vm, Vcpu, vcpuOf, vcpuAt } from "./kvm_host";
import { vcpuSrcuReadLock, vcpuSrcuReadUnlock } from "./srcu";
import { waitWhileEquals, futexWakeAll } from "../threads";
import { mmuStatAdd } from "../mmu/stats";
import { cpuState, OFF_EXT_IRQ } from "../cpu/state";
import { MMU_STAT_REMOTE_FLUSHES } from "../selectors";

/** KVM_REQ_TLB_FLUSH: translations the vCPU read before a zap are gone. */
export const KVM_REQ_TLB_FLUSH: u32 = 1;
/** A signal to the vCPU's thread (vcpu.kick): KVM_RUN returns EINTR at the next boundary, or at once. */
export const REQ_SIGNAL: u32 = 2;
/** KVM_INTERRUPT changed the line (irqs_pending_mask): the running vCPU copies it in at the next boundary. */
export const KVM_REQ_IRQ: u32 = 4;

/** The vCPU this thread runs in KVM_RUN (threads build), 0 outside KVM_RUN. Per instance. */
let running: usize = 0;

export function setRunningVcpu(p: usize): void { running = p; }
export function runningVcpu(): usize { return running; }

// @ts-ignore: decorator
@inline function field(p: usize, off: usize): usize { return p + off; }

/** Enters guest mode (drops the SRCU read section); false, and still outside, when a request is pending. */
export function guestEnter(): bool {
  if (!WEBKVM_THREADS) return true;
  const p = running;
  if (p == 0) return true;
  const v = vcpuOf(p);
  const m = v.mode; // only this thread writes it
  if ((m & 1) != 0) return true;
  vcpuSrcuReadUnlock(p);
  atomic.store<u32>(field(p, offsetof<Vcpu>("mode")), m + 1);
  if (atomic.load<u32>(field(p, offsetof<Vcpu>("requests"))) != 0) {
    guestExit();
    return false;
  }
  return true;
}

/** Leaves guest mode (takes the SRCU read section back), waking a flush that waits for it. */
export function guestExit(): void {
  if (!WEBKVM_THREADS) return;
  const p = running;
  if (p == 0) return;
  const m = vcpuOf(p).mode;
  if ((m & 1) == 0) return;
  atomic.store<u32>(field(p, offsetof<Vcpu>("mode")), m + 1);
  if (atomic.load<u32>(field(p, offsetof<Vcpu>("modeWaiters"))) != 0) futexWakeAll(field(p, offsetof<Vcpu>("mode")));
  vcpuSrcuReadLock(p);
}

/** kvm_check_request for the bits in mask: clears them; which were set. */
export function takeRequests(p: usize, mask: u32): u32 {
  if (!WEBKVM_THREADS) return 0;
  return atomic.and<u32>(field(p, offsetof<Vcpu>("requests")), ~mask) & mask;
}

/** kvm_make_request + kvm_vcpu_kick: the vCPU acts on req before it next runs guest code. */
export function makeRequest(p: usize, req: u32): void {
  if (!WEBKVM_THREADS) return;
  atomic.or<u32>(field(p, offsetof<Vcpu>("requests")), req);
}

/** kvm_make_all_cpus_request with KVM_REQUEST_WAIT: every vCPU gets req; those in guest mode are waited out. */
export function makeAllCpusRequestWait(vm: Vm, req: u32): void {
  if (!WEBKVM_THREADS) return;
  const n = atomic.load<u32>(changetype<usize>(vm) + offsetof<Vm>("createdVcpus"));
  for (let i: u32 = 0; i < n; i++) makeRequest(vcpuAt(vm, i), req);
  for (let i: u32 = 0; i < n; i++) {
    const p = vcpuAt(vm, i);
    if (p == running) continue;
    const m = atomic.load<u32>(field(p, offsetof<Vcpu>("mode")));
    if ((m & 1) != 0) waitWhileEquals(field(p, offsetof<Vcpu>("mode")), <i32>m, field(p, offsetof<Vcpu>("modeWaiters")));
  }
}

/** kvm_flush_remote_tlbs */
export function kvmFlushRemoteTlbs(vm: Vm): void {
  mmuStatAdd(MMU_STAT_REMOTE_FLUSHES, 1);
  makeAllCpusRequestWait(vm, KVM_REQ_TLB_FLUSH);
}

/** Threads build: the loaded vCPU's CPU state takes KVM_INTERRUPT's line (kvm/interrupt.ts) at vcpu_load and on KVM_REQ_IRQ. */
export function irqLineToCpu(p: usize): void {
  store<u32>(cpuState() + OFF_EXT_IRQ, atomic.load<u32>(p + offsetof<Vcpu>("irqLine")));
}
