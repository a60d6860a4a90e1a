// The dirty ring (virt/kvm/dirty_ring.c): per-vCPU rings of struct
// kvm_dirty_gfn { u32 flags; u32 slot; u64 offset } in linear memory that the
// host maps, the enable rules, push with the soft-full request, and
// KVM_RESET_DIRTY_RINGS with its batching and re-protection.

import { Vm, Vcpu, vcpuAt, activeSet, KVM_MAX_VCPUS, vcpuOf, kvmLock, kvmUnlock } from "../kvm/kvm_host";
import { setOf, idLookup } from "../memslots/set";
import { slotOf, KVM_USER_MEM_SLOTS } from "../memslots/slot";
import { kzalloc } from "../kalloc";
import { dirtyRingReserved } from "../kvm/config";
import { writeProtectGfnMask } from "../mmu/mmu";
import { fail, EINVAL, E2BIG, CHECK_ENABLE_CAP } from "../errno";
import { dirtyAtomicOff, DIRTY_LEVER_RING } from "../debug/dirty_levers";

export const KVM_DIRTY_GFN_F_DIRTY: u32 = 1;
export const KVM_DIRTY_GFN_F_RESET: u32 = 2;
export const KVM_DIRTY_GFN_BYTES: u32 = 16;
export const KVM_DIRTY_RING_MAX_ENTRIES: u32 = 65536;
const INT_MAX: u32 = 0x7fffffff;

/** kvm_vm_ioctl_enable_dirty_log_ring: the size is truncated to u32 before any check. */
export function enableDirtyRing(vm: Vm, size: u32): i32 {
  if (size == 0 || (size & (size - 1)) != 0) return fail(CHECK_ENABLE_CAP, EINVAL);
  if (size < dirtyRingReserved * KVM_DIRTY_GFN_BYTES || size < 4096) return fail(CHECK_ENABLE_CAP, EINVAL);
  if (size > KVM_DIRTY_RING_MAX_ENTRIES * KVM_DIRTY_GFN_BYTES) return fail(CHECK_ENABLE_CAP, E2BIG);
  if (vm.dirtyRingSize != 0) return fail(CHECK_ENABLE_CAP, EINVAL);
  // Under kvm->lock, which KVM_CREATE_VCPU holds: a vCPU created on another
  // thread meanwhile either gets a ring of this size or makes this call fail.
  kvmLock(vm);
  const busy = vm.createdVcpus != 0;
  if (!busy) vm.dirtyRingSize = size;
  kvmUnlock(vm);
  return busy ? fail(CHECK_ENABLE_CAP, EINVAL) : 0;
}

/** A ring for a vCPU being created on a VM with the ring enabled; false on ENOMEM. */
export function ringAllocVcpu(vm: Vm, vcpu: usize): bool {
  if (vm.dirtyRingSize == 0) return true;
  const v = vcpuOf(vcpu);
  v.ring = kzalloc(<usize>vm.dirtyRingSize);
  if (v.ring == 0) return false;
  v.ringEntries = vm.dirtyRingSize / KVM_DIRTY_GFN_BYTES;
  return true;
}

@inline function softLimit(entries: u32): u32 {
  return entries - dirtyRingReserved;
}

/** Entries pushed and not yet reset reach the soft limit. */
export function ringSoftFull(vcpu: usize): bool {
  const v = vcpuOf(vcpu);
  return v.ring != 0 && v.ringDirtyIndex - resetIndex(v) >= softLimit(v.ringEntries);
}

/**
 * The ring's reset index. Threads build: it moves on the VMM's thread
 * (resetDirtyRings) after the entries it frees were read and cleared.
 */
// @ts-ignore: decorator
@inline function resetIndex(v: Vcpu): u32 {
  return WEBKVM_THREADS ? atomic.load<u32>(changetype<usize>(v) + offsetof<Vcpu>("ringResetIndex")) : v.ringResetIndex;
}

/** kvm_dirty_ring_push; false when the ring is now soft-full (the request is raised). */
export function ringPush(vcpu: usize, slot: u32, offset: u64): bool {
  const v = vcpuOf(vcpu);
  const e = v.ring + (<usize>(v.ringDirtyIndex & (v.ringEntries - 1)) << 4);
  if (WEBKVM_THREADS && dirtyAtomicOff(DIRTY_LEVER_RING)) store<u32>(e, KVM_DIRTY_GFN_F_DIRTY); // the lever: published too early
  store<u32>(e, slot, 4);
  store<u64>(e, offset, 8);
  // Flags last: the entry is complete when userspace sees DIRTY. In the threads
  // build the harvester reads the ring while this vCPU pushes: a release store
  // (KVM_CAP_DIRTY_LOG_RING_ACQ_REL), paired with the harvester's acquire load.
  if (!WEBKVM_THREADS) store<u32>(e, KVM_DIRTY_GFN_F_DIRTY);
  else if (!dirtyAtomicOff(DIRTY_LEVER_RING)) atomic.store<u32>(e, KVM_DIRTY_GFN_F_DIRTY);
  v.ringDirtyIndex++;
  if (ringSoftFull(vcpu)) {
    v.ringSoftFullRequest = 1;
    return false;
  }
  return true;
}

/** kvm_dirty_ring_check_request before entering the guest: true = exit with DIRTY_RING_FULL. */
export function ringCheckRequest(vcpu: usize): bool {
  const v = vcpuOf(vcpu);
  if (v.ringSoftFullRequest == 0) return false;
  if (ringSoftFull(vcpu)) return true;
  v.ringSoftFullRequest = 0;
  return false;
}

/** kvm_reset_dirty_gfn: re-arm a batch, or ignore it whole if it does not fit a slot. */
function resetDirtyGfn(vm: Vm, slot: u32, offset: u64, mask: u64): void {
  const asId = slot >> 16, id = slot & 0xffff;
  if (asId >= vm.nrAs || id >= <u32>KVM_USER_MEM_SLOTS) return;
  const p = idLookup(setOf(activeSet(vm, asId)), <i32>id);
  if (p == 0) return;
  const s = slotOf(p);
  if (offset + <u64>(63 - clz(mask)) >= s.npages) return;
  writeProtectGfnMask(vm, p, s.baseGfn + offset, mask);
}

/** KVM_RESET_DIRTY_RINGS: the number of entries processed. */
export function resetDirtyRings(vm: Vm): i32 {
  if (vm.dirtyRingSize == 0) return fail(CHECK_ENABLE_CAP, EINVAL);
  let count: u32 = 0;
  for (let i: u32 = 0; i < vm.createdVcpus && i < KVM_MAX_VCPUS; i++) {
    const v = vcpuOf(vcpuAt(vm, i));
    if (v.ring == 0) continue;
    let have = false;
    let curSlot: u32 = 0, curOffset: u64 = 0, mask: u64 = 0;
    while (count < INT_MAX) {
      const e = v.ring + (<usize>(v.ringResetIndex & (v.ringEntries - 1)) << 4);
      // Threads build: the vCPU pushes while this runs. The flags are read with
      // acquire (the harvester's RESET store released the entry), cleared with
      // release once slot and offset are read, and the reset index moves after
      // that, so a vCPU that sees the room reuses only a consumed entry.
      const flags = WEBKVM_THREADS ? atomic.load<u32>(e) : load<u32>(e);
      if ((flags & KVM_DIRTY_GFN_F_RESET) == 0) break;
      const slot = load<u32>(e, 4);
      const offset = load<u64>(e, 8);
      if (WEBKVM_THREADS) {
        atomic.store<u32>(e, 0);
        atomic.store<u32>(changetype<usize>(v) + offsetof<Vcpu>("ringResetIndex"), v.ringResetIndex + 1);
      } else {
        store<u32>(e, 0);
        v.ringResetIndex++;
      }
      count++;
      if (have && slot == curSlot) {
        const delta = <i64>(offset - curOffset);
        if (delta >= 0 && delta < 64) {
          mask |= <u64>1 << <u64>delta;
          continue;
        }
        if (delta > -64 && delta < 0 && (mask << <u64>(-delta)) >> <u64>(-delta) == mask) {
          mask = (mask << <u64>(-delta)) | 1;
          curOffset = offset;
          continue;
        }
      }
      if (have) resetDirtyGfn(vm, curSlot, curOffset, mask);
      have = true;
      curSlot = slot;
      curOffset = offset;
      mask = 1;
    }
    if (have) resetDirtyGfn(vm, curSlot, curOffset, mask);
  }
  return <i32>count;
}
