// The shadow-MMU fault path: what happens when a guest access misses its spte.
//   guest walk (Sv39) -> gfn -> slot (per-vCPU last-used cache) -> hva -> host
//   page (demand paged) -> install the spte with the access's permission.
// Outcomes, as the kernel's (kvm_mmu_page_fault, kvm_faultin_pfn):
//   no slot          -> an MMIO spte tagged with the memslot generation, MMIO exit
//   READONLY + write -> MMIO write exit, never cached
//   INVALID slot     -> retry after the update (never MMIO for a slot in flux)
//   unusable backing -> KVM_RUN fails with EFAULT and a memory_fault exit
//   private gfn / guest_memfd-only slot -> the guest_memfd page or a memory fault (gmem/fault.ts)
// A fault that races an MMU-notifier invalidation of its gfn retries instead of
// installing a mapping of a page that is going away.

import { Vm, vmOf, activeSet, vcpuOf, vcpuGfnToMemslot, mmuLock, mmuUnlock, assertMmuLockHeld } from "../kvm/kvm_host";
import { setOf } from "../memslots/set";
import { slotOf, slotGfnToHva, KVM_MEMSLOT_INVALID, KVM_MEM_READONLY } from "../memslots/slot";
import { hvaToLinear } from "../hostmm/mm";
import { maxGfn } from "../kvm/config";
import { PAGE_SHIFT, PAGE_MASK } from "../layout";
import { SPTE_READ_TAG, SPTE_WRITE_TAG, SPTE_FETCH_TAG, SPTE_ADDEND, SPTE_GFN, SPTE_FLAGS, SPTE_MMIO_GEN,
  SPTE_F_PRESENT, SPTE_F_MMIO, MMIO_SPTE_GEN_MASK, NO_TAG } from "./spte";
import { spteDrop, rmapAdd } from "./rmap";
import { mmioSpteValid } from "./mmu";
import { markPageDirtyInSlot } from "../dirty/mark";
import { trackCount } from "./page_track";
import { writableAdd } from "./writable";
import { gmemFaultIn, gmemExitFlags, GMEM_FAULT_HVA, GMEM_FAULT_EXIT } from "../gmem/fault";
import { P, Process } from "../threads";
import { mmuStatAdd } from "./stats";
import { MMU_STAT_FAULTS, MMU_STAT_FAULT_RETRIES, MMU_STAT_MMIO_SPTE_HITS, MMU_STAT_MMIO_SPTE_INSTALLS } from "../selectors";

export const FAULT_MAPPED: i32 = 0;   // the spte is installed; *faultHost is the linear address
export const FAULT_MMIO: i32 = 1;     // emulate as MMIO (exit to the host)
export const FAULT_RETRY: i32 = 2;    // nothing installed; the access must be retried later
export const FAULT_EFAULT: i32 = 3;   // the host page cannot be used: memory-fault exit
export const FAULT_RING_FULL: i32 = 4; // mapped and logged, but the dirty ring is soft-full: exit before the store
export const FAULT_EMULATE: i32 = 5;   // a write to a write-tracked gfn: perform it at faultHost, then notify

export const ACC_READ: i32 = 0;
export const ACC_WRITE: i32 = 1;
export const ACC_FETCH: i32 = 2;

/** The linear address resolved by the last FAULT_MAPPED. */
export let faultHost: usize = 0;

/** Counters for tests: faults taken, MMIO sptes reused, retries. */

const MAX_RETRIES: i32 = 4;

/**
 * Resolves guest physical address gpa (page of va) for an access through entry e
 * of the current table, installing the spte on success. tag = page | mode key.
 */
export function faultIn(vcpuP: usize, e: usize, tag: u64, gpa: u64, acc: i32): i32 {
  mmuStatAdd(MMU_STAT_FAULTS, 1);
  const vcpu = vcpuOf(vcpuP);
  const vm = vmOf(vcpu.vm);
  const gfn = gpa >> PAGE_SHIFT;
  const gen = setOf(activeSet(vm, vcpu.asId)).generation;
  // handle_mmio_page_fault: a valid MMIO spte for this gfn answers without a slot lookup.
  if (load<u64>(e + SPTE_GFN) == gfn && load<u64>(e + SPTE_ADDEND) == tag && mmioSpteValid(e, gen)) {
    mmuStatAdd(MMU_STAT_MMIO_SPTE_HITS, 1);
    return FAULT_MMIO;
  }

  for (let attempt = 0; attempt < MAX_RETRIES; attempt++) {
    const slot = vcpuGfnToMemslot(vcpuP, gfn);
    if (slot != 0 && (slotOf(slot).flags & KVM_MEMSLOT_INVALID) != 0) {
      mmuStatAdd(MMU_STAT_FAULT_RETRIES, 1);
      return FAULT_RETRY;
    }
    // Private gfns and guest_memfd-only slots are served from guest_memfd (or exit).
    const gmemLin = gmemFaultIn(vm, slot, gfn);
    if (gmemLin == GMEM_FAULT_EXIT) return FAULT_EFAULT;
    if (slot == 0) {
      if (gfn <= maxGfn) {
        raceWindow();
        mmuLock(vm);
        // make_mmio_spte reads the generation now, after the lookup: an update
        // that published a new set meanwhile is still in progress (bit 63), so
        // the entry carries the old generation and goes stale when it settles.
        const now = setOf(activeSet(vm, vcpu.asId)).generation;
        if (WEBKVM_THREADS && WEBKVM_DEBUG && now != gen) atomic.add<u32>(changetype<usize>(P) + offsetof<Process>("mmioGenRaces"), 1);
        installMmioSpte(e, tag, gfn, now);
        mmuUnlock(vm);
      }
      return FAULT_MMIO;
    }
    const s = slotOf(slot);
    if (acc == ACC_WRITE && (s.flags & KVM_MEM_READONLY) != 0) return FAULT_MMIO;

    const seq = WEBKVM_THREADS ? atomic.load<u64>(changetype<usize>(vm) + offsetof<Vm>("mmuInvalidateSeq")) : vm.mmuInvalidateSeq;
    const hva = slotGfnToHva(s, gfn);
    const lin = gmemLin != GMEM_FAULT_HVA ? gmemLin : hvaToLinear(hva, acc == ACC_WRITE);
    if (lin == 0) return FAULT_EFAULT;
    raceWindow();
    mmuLock(vm);
    // is_page_fault_stale: an invalidation ran (or is running over this gfn)
    // since the sequence snapshot: the page may be gone; start over.
    if (vm.mmuInvalidateSeq != seq || (vm.mmuInvalidateInProgress != 0 &&
        gfn >= vm.mmuInvalidateRangeStart && gfn < vm.mmuInvalidateRangeEnd)) {
      mmuUnlock(vm);
      mmuStatAdd(MMU_STAT_FAULT_RETRIES, 1);
      continue;
    }
    const r = mapLocked(vm, vcpuP, e, tag, gpa, slot, lin, acc);
    mmuUnlock(vm);
    return r;
  }
  return FAULT_RETRY;
}

/** Debug threads build: the race-window lever (threads.ts faultWindowSpin): a delay between lookup and install. */
// @ts-ignore: decorator
@inline function raceWindow(): void {
  if (!WEBKVM_THREADS || !WEBKVM_DEBUG) return;
  const n = P.faultWindowSpin;
  for (let i = 0; i < n; i++) atomic.load<i32>(changetype<usize>(P) + offsetof<Process>("faultWindowSpin"));
}

/** The spte for a fault that is not stale, under mmu_lock (the second half of kvm_tdp_mmu_map / direct_map). */
function mapLocked(vm: Vm, vcpuP: usize, e: usize, tag: u64, gpa: u64, slot: usize, lin: usize, acc: i32): i32 {
  const s = slotOf(slot);
  const gfn = gpa >> PAGE_SHIFT;
  faultHost = lin + <usize>(gpa & PAGE_MASK);
  if (acc == ACC_WRITE && trackCount(slot, gfn) != 0) {
    if (gmemExitFlags != 0) return FAULT_EFAULT; // private memory is never emulated (kvm_mmu_do_page_fault)
    // A tracked gfn is never mapped writable: the write is done here, once.
    installSpte(e, tag, gfn, lin, ACC_READ, s.arch);
    if (!markPageDirtyInSlot(vm, slot, gfn, vcpuP)) return FAULT_RING_FULL;
    return FAULT_EMULATE;
  }
  installSpte(e, tag, gfn, lin, acc, s.arch);
  // Making the spte writable is when the kernel logs the page: once per
  // write-protection epoch, however often this vCPU's entry is refilled.
  if (acc == ACC_WRITE && !spteMadeWritable(vm, vcpuP, slot, gfn)) return FAULT_RING_FULL;
  return FAULT_MAPPED;
}

/**
 * make_spte for a write of gfn: its spte is (now) writable. Logs the page
 * (mark_page_dirty_in_slot) unless the spte already was (mmu/writable.ts);
 * false when that made the vCPU's dirty ring soft-full.
 */
function spteMadeWritable(vm: Vm, vcpu: usize, slot: usize, gfn: u64): bool {
  const arch = slotOf(slot).arch;
  if (vm.dirtyRingSize != 0 && arch != 0 && !writableAdd(arch, gfn)) return true;
  return markPageDirtyInSlot(vm, slot, gfn, vcpu);
}

/** Fills entry e for this access kind (others fault once to add theirs: A/D stay exact). */
function installSpte(e: usize, tag: u64, gfn: u64, lin: usize, acc: i32, arch: usize): void {
  const frame = <u64>(lin & ~<usize>PAGE_MASK);
  const addend = frame - (tag & ~PAGE_MASK);
  const same = (load<u32>(e + SPTE_FLAGS) & SPTE_F_PRESENT) != 0 && load<u64>(e + SPTE_GFN) == gfn &&
    load<u64>(e + SPTE_ADDEND) == addend && ((load<u64>(e + SPTE_READ_TAG) | load<u64>(e + SPTE_WRITE_TAG) |
    load<u64>(e + SPTE_FETCH_TAG)) & ~PAGE_MASK) == (tag & ~PAGE_MASK);
  if (!same) {
    spteDrop(e);
    store<u64>(e + SPTE_GFN, gfn);
    store<u64>(e + SPTE_ADDEND, addend);
    store<u32>(e + SPTE_FLAGS, SPTE_F_PRESENT);
    rmapAdd(arch, e);
  }
  if (acc == ACC_FETCH) store<u64>(e + SPTE_FETCH_TAG, tag);
  else {
    store<u64>(e + SPTE_READ_TAG, tag);
    if (acc == ACC_WRITE) store<u64>(e + SPTE_WRITE_TAG, tag);
  }
}

/** make_mmio_spte: the gfn, the access key and the low 19 bits of the generation (bit 63 dropped). */
function installMmioSpte(e: usize, tag: u64, gfn: u64, gen: u64): void {
  spteDrop(e);
  store<u64>(e + SPTE_GFN, gfn);
  // All tags stay NO_TAG (every access faults); the page and key it was made for
  // sit where a present entry keeps its addend.
  store<u64>(e + SPTE_ADDEND, tag);
  store<u32>(e + SPTE_FLAGS, SPTE_F_MMIO);
  store<u32>(e + SPTE_MMIO_GEN, <u32>(gen & MMIO_SPTE_GEN_MASK));
  mmuStatAdd(MMU_STAT_MMIO_SPTE_INSTALLS, 1);
}
