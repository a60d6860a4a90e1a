// struct kvm_vcpu, as far as the memory subsystem needs it: its address space
// (1 while in SMM) and its generation-tagged last-used slot cache.

import { Vm, vmOf, vcpuAt, activeSet, liveGeneration, KVM_MAX_VCPUS, KVM_MAX_VCPU_IDS } from "./vm";
import { slotOf, KVM_MEMSLOT_INVALID } from "../memslots/slot";
import { gfnToHvaMemslot } from "./guest";
import { PAGE_SHIFT } from "../layout";
import { searchMemslots } from "../search";
import { kzalloc, kfree } from "../kalloc";
import { vcpuArchCreate, vcpuForget } from "./run";
import { ringAllocVcpu } from "../dirty/ring";
import { fail, EINVAL, EEXIST, ENOMEM, CHECK_VCPU_ID, CHECK_VCPU_EXISTS, CHECK_VCPU_LIMIT, CHECK_ALLOC_SLOT } from "../errno";

@unmanaged export class Vcpu {
  // The last-used slot cache, first in the object so a hit reads one cache
  // line: a copy of the slot's gfn window and host address (npages 0 when
  // empty; hvaNpages 0 too when the slot is INVALID, which has no hva), the
  // slot, and the generation it was filled under. A slot object never changes
  // while it is live, and a generation change of the vCPU's address space
  // empties the window at once (dropLastUsedWindows), so a hit is a range
  // check alone; the tag still decides, on a miss, whether the cache is dropped.
  lastBase: u64;
  lastNpages: u64;
  lastHvaNpages: u64;
  lastUaddr: u64;
  lastUsedSlotGen: u64;
  lastUsedSlot: usize;
  /** Per-vCPU MMIO info cache (vcpu_cache_mmio_info): gfn and the AS 0 generation it was filled under. */
  mmioGfn: u64;
  mmioGen: u64;
  /** The exit being reported (mmu/exit.ts) and the MMIO fragments of the instruction in flight. */
  exitGpa: u64;
  exitData: u64;
  frag0Gpa: u64;
  frag0Data: u64;
  frag1Gpa: u64;
  frag1Data: u64;
  /** Instructions one KVM_RUN may execute before it returns (EINTR). */
  budget: u64;
  vm: usize;
  vcpuId: u32;
  asId: u32;
  fd: i32;
  /** Saved CPU state (cpu/state.ts layout) while another vCPU is loaded. */
  cpuState: usize;
  /** struct kvm_run, mapped for the host (layout.ts KVM_RUN_*). */
  kvmRun: usize;
  /** The shadow page tables (mmu/spte.ts), allocated at the first KVM_RUN. */
  sptTables: usize;
  exitKind: i32;
  exitLen: i32;
  exitIsWrite: i32;
  frag0Len: i32;
  frag1Len: i32;
  fragCount: i32;
  fragNext: i32;
  /** The state a KVM_RUN must complete first: an MMIO read or an SBI call. */
  pending: i32;
  /** The dirty ring (dirty/ring.ts): kvm_dirty_gfn entries, free-running indices. */
  ring: usize;
  ringEntries: u32;
  ringDirtyIndex: u32;
  ringResetIndex: u32;
  /** KVM_REQ_DIRTY_RING_SOFT_FULL */
  ringSoftFullRequest: u32;
}

@inline export function vcpuOf(p: usize): Vcpu {
  return changetype<Vcpu>(p);
}

/** kvm_vm_ioctl_create_vcpu: the vCPU object, or -errno. */
export function createVcpu(vm: Vm, id: u64): i64 {
  if (id >= <u64>KVM_MAX_VCPU_IDS) return fail(CHECK_VCPU_ID, EINVAL);
  if (vm.createdVcpus >= KVM_MAX_VCPUS) return fail(CHECK_VCPU_LIMIT, EINVAL);
  for (let i: u32 = 0; i < vm.createdVcpus; i++) {
    const v = vcpuAt(vm, i);
    if (<u64>vcpuOf(v).vcpuId == id) return fail(CHECK_VCPU_EXISTS, EEXIST);
  }
  const p = kzalloc(offsetof<Vcpu>());
  if (p == 0) return fail(CHECK_ALLOC_SLOT, ENOMEM);
  const v = vcpuOf(p);
  v.vm = changetype<usize>(vm);
  v.vcpuId = <u32>id;
  if (!vcpuArchCreate(p) || !ringAllocVcpu(vm, p)) {
    freeVcpu(p);
    return fail(CHECK_ALLOC_SLOT, ENOMEM);
  }
  store<u32>(vm.vcpus + (<usize>vm.createdVcpus << 2), <u32>p);
  vm.createdVcpus++;
  return <i64>p;
}

export function freeVcpu(p: usize): void {
  const v = vcpuOf(p);
  vcpuForget(p);
  kfree(v.ring);
  kfree(v.cpuState);
  kfree(v.kvmRun);
  kfree(v.sptTables);
  kfree(p);
}

/**
 * kvm_vcpu_gfn_to_memslot: the per-vCPU last-used slot, valid only under the
 * generation it was filled in (slot objects are replaced on every change, so a
 * pointer from another generation may be freed or reused). Misses search the
 * set without touching its VM-wide cache.
 */
// @ts-ignore: decorator
@inline export function vcpuGfnToMemslot(p: usize, gfn: u64): usize {
  const v = vcpuOf(p);
  if (windowHit(v, gfn - v.lastBase, v.lastNpages)) return v.lastUsedSlot;
  return vcpuGfnToMemslotSlow(p, gfn);
}

/** Is page `off` of the cached window inside its first `npages`? (Non-empty only under the live generation.) */
// @ts-ignore: decorator
@inline function windowHit(v: Vcpu, off: u64, npages: u64): bool {
  return off < npages;
}

/**
 * The live generation of address space `as` changed: empty the windows of its
 * vCPUs, so a hit never returns a slot of an older generation. The slot and
 * its tag stay; the next miss drops them (kvm_vcpu_gfn_to_memslot).
 */
export function dropLastUsedWindows(vm: Vm, as: u32): void {
  for (let i: u32 = 0; i < vm.createdVcpus; i++) {
    const v = vcpuOf(vcpuAt(vm, i));
    if (v.asId != as) continue;
    v.lastNpages = 0;
    v.lastHvaNpages = 0;
  }
}

/** A miss of the window, or a stale generation (then the cache is dropped first). */
function vcpuGfnToMemslotSlow(p: usize, gfn: u64): usize {
  const v = vcpuOf(p);
  const vm = vmOf(v.vm);
  const gen = liveGeneration(vm, v.asId);
  if (v.lastUsedSlotGen != gen) {
    setLastUsed(v, 0);
    v.lastUsedSlotGen = gen;
  }
  const found = searchMemslots(activeSet(vm, v.asId), gfn);
  if (found != 0) setLastUsed(v, found);
  return found;
}

function setLastUsed(v: Vcpu, slot: usize): void {
  v.lastUsedSlot = slot;
  v.lastBase = slot == 0 ? 0 : slotOf(slot).baseGfn;
  v.lastNpages = slot == 0 ? 0 : slotOf(slot).npages;
  v.lastHvaNpages = slot == 0 || (slotOf(slot).flags & KVM_MEMSLOT_INVALID) != 0 ? 0 : v.lastNpages;
  v.lastUaddr = slot == 0 ? 0 : slotOf(slot).userspaceAddr;
}

/** kvm_vcpu_gfn_to_hva: the hva of gfn through the last-used cache; KVM_HVA_ERR_BAD without a usable slot. */
// @ts-ignore: decorator
@inline export function vcpuGfnToHva(p: usize, gfn: u64): u64 {
  const v = vcpuOf(p);
  const off = gfn - v.lastBase;
  if (hvaWindowHit(v, off)) return hvaWindowAt(v, off);
  return vcpuGfnToHvaSlow(p, gfn);
}

/** Does page `off` of the last-used window have an hva (a valid slot, under the live generation)? */
// @ts-ignore: decorator
@inline export function hvaWindowHit(v: Vcpu, off: u64): bool {
  return windowHit(v, off, v.lastHvaNpages);
}

/** The hva of page `off` of the last-used window (when hvaWindowHit). */
// @ts-ignore: decorator
@inline export function hvaWindowAt(v: Vcpu, off: u64): u64 {
  return v.lastUaddr + (off << PAGE_SHIFT);
}

/** Out of line, so callers that inline the hit keep their registers. */
function vcpuGfnToHvaSlow(p: usize, gfn: u64): u64 {
  return gfnToHvaMemslot(vcpuGfnToMemslot(p, gfn), gfn, false);
}
