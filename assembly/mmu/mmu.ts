// VM-wide MMU operations: zapping a slot's sptes (DELETE / MOVE), a gfn range
// (MMU notifiers), everything (the SLOT_ZAP_ALL quirk, MMIO generation wrap),
// and the per-vCPU tables themselves. Each runs under the VM's mmu_lock and,
// in the threads build, ends with kvm_flush_remote_tlbs (kvm/requests.ts), so
// no vCPU goes on using what was taken away once it returns.

import { Vm, vcpuAt, vcpuOf, mmuLock, mmuUnlock } from "../kvm/kvm_host";
import { kvmFlushRemoteTlbs } from "../kvm/requests";
import { slotOf } from "../memslots/slot";
import { kzalloc } from "../kalloc";
import { maskWord } from "../layout";
import { SPT_VCPU_BYTES, SPT_USED_BYTES, SPTE_SHIFT, SPTE_FLAGS, SPTE_MMIO_GEN, SPTE_F_MMIO, MMIO_SPTE_GEN_MASK, clearTables,
  SPTE_READ_TAG, SPTE_WRITE_TAG, SPTE_FETCH_TAG, SPTE_LEVEL, NO_TAG } from "./spte";
import { SlotArch, spteDrop, rmapZapRange, rmapCount, rmapWriteProtectRange, rmapWriteProtectBitmap } from "./rmap";
import { KVM_X86_DEFAULT_VM } from "../kvm/config";
import { writableDropRange, writableDropBitmap, writableClear, writableClearAll } from "./writable";
import { mmuStatAdd } from "./stats";
import { MMU_STAT_SLOT_ZAPS, MMU_STAT_SPTES_ZAPPED, MMU_STAT_ZAP_ALL } from "../selectors";

/** KVM_X86_QUIRK_SLOT_ZAP_ALL: DELETE / MOVE of a default VM zap every spte. */
export const KVM_X86_QUIRK_SLOT_ZAP_ALL: u32 = 1 << 7;
/** The quirks this build knows (KVM_CAP_DISABLE_QUIRKS2 answers with them). */
export const KVM_X86_VALID_QUIRKS: u32 = KVM_X86_QUIRK_SLOT_ZAP_ALL;

/** Counters for tests and benchmarks. */

/** The tables of a vCPU (and their used bits, zeroed), allocated (and emptied) on first use; 0 on ENOMEM. */
export function vcpuTables(vcpu: usize): usize {
  const v = vcpuOf(vcpu);
  if (v.sptTables == 0) {
    const t = kzalloc(SPT_VCPU_BYTES + SPT_USED_BYTES);
    if (t == 0) return 0;
    clearTables(t, SPT_VCPU_BYTES);
    v.sptTables = t;
  }
  return v.sptTables;
}

/**
 * Marks entry e of the vCPU tables t used before a fault may fill it. Only
 * the vCPU's own KVM_RUN or KVM_PRE_FAULT_MEMORY (under vcpu->mutex) marks or
 * clears its bits; a zap from another thread reads them under mmu_lock, which
 * the fill then takes after the mark.
 */
export function markSpteUsed(t: usize, e: usize): void {
  const i = (e - t) >> SPTE_SHIFT;
  const w = t + SPT_VCPU_BYTES + ((i >> 6) << 3);
  const bit = <u64>1 << <u64>(i & 63);
  const old = load<u64>(w);
  if ((old & bit) == 0) store<u64>(w, old | bit);
}

/** Drops every non-empty spte of one vCPU's tables (0: none yet), visiting the used ones; how many it dropped. */
export function dropTables(t: usize): u32 {
  return t == 0 ? 0 : dropUsed(t, true, 0);
}

/** Drops the non-empty sptes of tables t, visiting the used ones: all, or those that may translate through va's leaf PTE. */
function dropUsed(t: usize, all: bool, va: u64): u32 {
  let n: u32 = 0;
  const used = t + SPT_VCPU_BYTES;
  for (let w: usize = 0; w < SPT_USED_BYTES; w += 8) {
    let bits = load<u64>(used + w);
    while (bits != 0) {
      const e = t + ((((w << 3) + <usize>ctz(bits))) << SPTE_SHIFT);
      bits &= bits - 1;
      if (load<u32>(e + SPTE_FLAGS) != 0 && (all || mayTranslate(e, va))) { spteDrop(e); n++; }
    }
  }
  return n;
}

/** The VM whose mmu_lock guards a slot's sptes. */
// @ts-ignore: decorator
@inline function archVm(arch: usize): Vm {
  return changetype<Vm>(changetype<SlotArch>(arch).vm);
}

/** Ends a change of sptes: the remote flush, then write_unlock(&kvm->mmu_lock). */
function flushAndUnlock(vm: Vm): void {
  kvmFlushRemoteTlbs(vm);
  mmuUnlock(vm);
}

/** A vCPU's own flush (sfence.vma, satp): drops its tables under mmu_lock (their entries are on rmaps); all unused again. */
export function dropOwnTables(vm: Vm, t: usize): void {
  mmuLock(vm);
  dropTables(t);
  memory.fill(t + SPT_VCPU_BYTES, 0, SPT_USED_BYTES);
  mmuUnlock(vm);
}

/**
 * Whether entry e (present) may hold a translation through the guest leaf PTE
 * that maps va: its page lies in the same page, or superpage of its own
 * level, as va. An entry whose page its tags do not tell (MMIO) may.
 */
function mayTranslate(e: usize, va: u64): bool {
  if ((load<u32>(e + SPTE_FLAGS) & SPTE_F_MMIO) != 0) return true;
  let tag = load<u64>(e + SPTE_READ_TAG);
  if (tag == NO_TAG) tag = load<u64>(e + SPTE_WRITE_TAG);
  if (tag == NO_TAG) tag = load<u64>(e + SPTE_FETCH_TAG);
  if (tag == NO_TAG) return true;
  const shift = <u64>(12 + 9 * <i32>load<u8>(e + SPTE_LEVEL));
  return ((tag ^ va) >> shift) == 0;
}

/**
 * A vCPU's own sfence.vma with an address (kvm_mmu_invlpg): drops, under
 * mmu_lock, the entries of its tables t that may translate through va's
 * leaf PTE (mayTranslate), visiting the used ones; the others stay.
 */
export function dropOwnPage(vm: Vm, t: usize, va: u64): void {
  mmuLock(vm);
  dropUsed(t, false, va);
  mmuUnlock(vm);
}

/** Drops every spte of every vCPU of the VM (kvm_mmu_zap_all_fast). */
export function zapAll(vm: Vm): void {
  mmuLock(vm);
  mmuStatAdd(MMU_STAT_ZAP_ALL, 1);
  writableClearAll(vm);
  for (let i: u32 = 0; i < vm.createdVcpus; i++) mmuStatAdd(MMU_STAT_SPTES_ZAPPED, dropTables(vcpuOf(vcpuAt(vm, i)).sptTables));
  flushAndUnlock(vm);
}

/** Zaps the sptes of one slot whose gfn lies in [start, end) through its rmap. */
export function zapGfnRange(slot: usize, start: u64, end: u64): void {
  const arch = slotOf(slot).arch;
  if (arch == 0) return;
  const vm = archVm(arch);
  mmuLock(vm);
  writableDropRange(arch, start, end);
  if (rmapCount(arch) != 0) mmuStatAdd(MMU_STAT_SPTES_ZAPPED, rmapZapRange(arch, start, end));
  flushAndUnlock(vm);
}

/** kvm_arch_flush_shadow_memslot: the INVALID phase of DELETE / MOVE. */
export function flushShadowMemslot(vm: Vm, slot: usize): void {
  if (vm.type == KVM_X86_DEFAULT_VM && (vm.quirks & KVM_X86_QUIRK_SLOT_ZAP_ALL) != 0) {
    zapAll(vm);
    return;
  }
  mmuStatAdd(MMU_STAT_SLOT_ZAPS, 1);
  const s = slotOf(slot);
  zapGfnRange(slot, s.baseGfn, s.baseGfn + s.npages);
}

/**
 * kvm_mmu_invalidate_mmio_sptes, from kvm_arch_memslots_updated before the new
 * generation is published: when the 19-bit MMIO generation (address-space bits
 * cleared) wraps to 0, an old MMIO spte could match again, so all go.
 */
export function invalidateMmioSptes(vm: Vm, gen: u64): void {
  if (((gen & MMIO_SPTE_GEN_MASK) & ~<u64>(vm.nrAs - 1)) == 0) zapAll(vm);
}

/** Whether an MMIO spte is still valid for the current generation (check_mmio_spte). */
// @ts-ignore: decorator
@inline export function mmioSpteValid(e: usize, gen: u64): bool {
  return (gen >> 63) == 0 && (load<u32>(e + SPTE_FLAGS) & SPTE_F_MMIO) != 0 &&
    <u64>load<u32>(e + SPTE_MMIO_GEN) == (gen & MMIO_SPTE_GEN_MASK);
}

/** Sptes made read-only to re-arm dirty tracking (a counter for tests). */
export let sptesWriteProtected: u32 = 0;

/** kvm_arch_mmu_enable_log_dirty_pt_masked: re-arm tracking for gfns start + i, bit i of mask. */
export function writeProtectGfnMask(vm: Vm, slot: usize, start: u64, mask: u64): void {
  store<u64>(maskWord(), mask);
  writeProtectBitmap(slot, maskWord(), 0, 1, start - slotOf(slot).baseGfn);
}

/** Re-arms the pages first + i of a slot whose bit i is set in bitmap words [from, to). */
export function writeProtectBitmap(slot: usize, bitmap: usize, from: u64, to: u64, first: u64 = 0): void {
  const s = slotOf(slot);
  if (s.arch == 0) return;
  const vm = archVm(s.arch);
  mmuLock(vm);
  writableDropBitmap(s.arch, s.baseGfn + first, bitmap, from, to);
  sptesWriteProtected += rmapWriteProtectBitmap(s.arch, s.baseGfn + first, bitmap, from, to);
  flushAndUnlock(vm);
}

/** Write-protects every mapping of a slot (enabling dirty logging). */
export function writeProtectSlot(slot: usize): void {
  const s = slotOf(slot);
  if (s.arch == 0) return;
  const vm = archVm(s.arch);
  mmuLock(vm);
  writableClear(s.arch);
  const n = rmapWriteProtectRange(s.arch, s.baseGfn, s.baseGfn + s.npages);
  sptesWriteProtected += n;
  // Linux flushes here unconditionally. A vCPU writes only through an spte
  // that allows it, so when none did there is nothing to flush, and no wait
  // for vCPUs in guest mode (the flush's cost with vCPUs running).
  if (n == 0) mmuUnlock(vm);
  else flushAndUnlock(vm);
}
