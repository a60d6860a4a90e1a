// A thread of the process is gone (a vCPU Worker terminated, threads build):
// what the kernel's task exit and file release guarantee, that a dead vCPU
// thread leaves no lock held and no grace period or TLB flush waiting on it.
// The host calls this once the Worker has stopped.
//
// What it can release: vcpu->mutex and the vCPU's KVM_RUN state (its SRCU read
// section, guest mode), the VMs' slots_lock and mmu_lock, the mmap_lock and
// the heap lock, each when the dead thread owns it. The vCPU's registers go
// back to what was saved before the interrupted run (the running copy was the
// dead thread's). What it cannot undo: a structure the thread was changing
// under one of those locks when it stopped; a Worker is normally stopped in
// guest mode, where it holds none of them.

import { Vm, Vcpu, vmCount, vmAt, vmOf, vcpuAt, vcpuOf } from "./kvm_host";
import { srcuReadUnlock } from "./srcu";
import { P, Process, mutexUnlock, futexWakeAll, ownedRelease } from "../threads";

function releaseIfOwned(word: usize, owner: usize, tid: i32): void {
  if (atomic.load<i32>(owner) != tid) return;
  atomic.store<i32>(owner, 0);
  mutexUnlock(word);
}

function releaseVcpu(p: usize, tid: i32): void {
  const v = vcpuOf(p);
  if (atomic.load<i32>(p + offsetof<Vcpu>("mutexOwner")) != tid) return;
  // Out of guest mode (a flush waiting on it goes on), out of its read section.
  const mode = atomic.load<u32>(p + offsetof<Vcpu>("mode"));
  if ((mode & 1) != 0) {
    atomic.store<u32>(p + offsetof<Vcpu>("mode"), mode + 1);
    futexWakeAll(p + offsetof<Vcpu>("mode"));
  }
  if (v.srcuHeld != 0) {
    const idx = v.srcuHeld - 1;
    v.srcuHeld = 0;
    srcuReadUnlock(vmOf(v.vm), idx);
  }
  releaseIfOwned(p + offsetof<Vcpu>("mutex"), p + offsetof<Vcpu>("mutexOwner"), tid);
}

/** Releases what thread tid held; returns how many vCPUs it was in an ioctl of. */
export function threadGone(tid: i32): i32 {
  if (!WEBKVM_THREADS || tid <= 0) return 0;
  let vcpus = 0;
  for (let i = 0; i < vmCount(); i++) {
    const vm = vmOf(vmAt(i));
    const base = changetype<usize>(vm);
    for (let j: u32 = 0; j < vm.createdVcpus; j++) {
      const p = vcpuAt(vm, j);
      if (atomic.load<i32>(p + offsetof<Vcpu>("mutexOwner")) == tid) vcpus++;
      releaseVcpu(p, tid);
    }
    ownedRelease(base + offsetof<Vm>("mmuLock"), tid);
    releaseIfOwned(base + offsetof<Vm>("slotsLock"), base + offsetof<Vm>("slotsLockOwner"), tid);
  }
  const pb = changetype<usize>(P);
  ownedRelease(pb + offsetof<Process>("mmapLock"), tid);
  releaseIfOwned(pb + offsetof<Process>("heapLock"), pb + offsetof<Process>("heapLockOwner"), tid);
  return vcpus;
}
