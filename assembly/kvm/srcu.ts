// kvm->srcu: the read side every memslot reader holds (a vCPU's KVM_RUN outside
// guest mode, kvm/requests.ts) and the grace period a memslot swap waits for
// before the old set is reused (kvm/set_memslot.ts, synchronize_srcu_expedited
// in kvm_swap_active_memslots).
//
// Two reader counts and an index, as classic SRCU: a reader adds itself to the
// count of the index it reads; synchronize flips the index and waits until the
// old index's count drains. One flip suffices here because every access is
// sequentially consistent: a reader that read the old index but counted itself
// only after the writer saw the count at 0 did so after the new pointer was
// published, so it reads the new set. The threads build only: with one thread
// a swap never has a reader to wait for, and these compile to nothing.

import { Vm, vcpuOf } from "./kvm_host";
import { P, Process, mutexLock, mutexUnlock, waitWhileEquals, futexWakeAll } from "../threads";

// @ts-ignore: decorator
@inline function readers(vm: Vm, idx: u32): usize {
  return changetype<usize>(vm) + (idx == 0 ? offsetof<Vm>("srcuReaders0") : offsetof<Vm>("srcuReaders1"));
}

/** srcu_read_lock: returns the index to unlock with. */
export function srcuReadLock(vm: Vm): u32 {
  if (!WEBKVM_THREADS) return 0;
  const idx = atomic.load<u32>(changetype<usize>(vm) + offsetof<Vm>("srcuIdx")) & 1;
  atomic.add<u32>(readers(vm, idx), 1);
  return idx;
}

/** srcu_read_unlock: the last reader of an index being waited for wakes the synchronizer. */
export function srcuReadUnlock(vm: Vm, idx: u32): void {
  if (!WEBKVM_THREADS) return;
  const left = atomic.sub<u32>(readers(vm, idx), 1) - 1;
  if (left == 0 && atomic.load<u32>(changetype<usize>(vm) + offsetof<Vm>("srcuWaiters")) != 0) futexWakeAll(readers(vm, idx));
}

/** synchronize_srcu: every read section that began before it has ended. Never called under mmu_lock. */
export function synchronizeSrcu(vm: Vm): void {
  if (!WEBKVM_THREADS) return;
  if (P.srcuOff != 0) return;
  const base = changetype<usize>(vm);
  mutexLock(base + offsetof<Vm>("srcuGpLock"), changetype<usize>(P) + offsetof<Process>("srcuGpSleeps"));
  const old = atomic.load<u32>(base + offsetof<Vm>("srcuIdx")) & 1;
  atomic.store<u32>(base + offsetof<Vm>("srcuIdx"), old ^ 1);
  const w = readers(vm, old);
  let n = atomic.load<i32>(w);
  while (n != 0) {
    waitWhileEquals(w, n, base + offsetof<Vm>("srcuWaiters"));
    n = atomic.load<i32>(w);
  }
  mutexUnlock(base + offsetof<Vm>("srcuGpLock"));
}

// ---- the read section a vCPU's KVM_RUN holds (kvm_vcpu_srcu_read_lock) ----

/** kvm_vcpu_srcu_read_lock: remembered in the vCPU so a later unlock (or an abandoned run) knows the index. */
export function vcpuSrcuReadLock(p: usize): void {
  if (!WEBKVM_THREADS) return;
  const v = vcpuOf(p);
  if (v.srcuHeld != 0) return;
  v.srcuHeld = srcuReadLock(changetype<Vm>(v.vm)) + 1;
}

/** kvm_vcpu_srcu_read_unlock */
export function vcpuSrcuReadUnlock(p: usize): void {
  if (!WEBKVM_THREADS) return;
  const v = vcpuOf(p);
  if (v.srcuHeld == 0) return;
  const idx = v.srcuHeld - 1;
  v.srcuHeld = 0;
  srcuReadUnlock(changetype<Vm>(v.vm), idx);
}
