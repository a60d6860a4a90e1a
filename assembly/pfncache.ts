// gfn_to_pfn_cache (virt/kvm/pfncache.c): a persistent mapping of one guest page
// for host-side users (pvclock, runstate areas). Valid only while the AS 0
// memslot generation it was resolved under is current and no MMU-notifier
// invalidation has hit its hva; a stale cache must be refreshed, never used.

import { Vm, vmOf, activeSet, gfnToHvaMemslot, isErrorHva, KVM_HVA_ERR_BAD } from "./kvm/kvm_host";
import { setOf } from "./memslots/set";
import { gfnToMemslotInSet } from "./memslots/search";
import { hvaToLinear, accessOk } from "./hostmm/mm";
import { markPageDirtyInSlot } from "./dirty/mark";
import { kzalloc, kfree } from "./kalloc";
import { PAGE_SHIFT, PAGE_MASK, PAGE_SIZE } from "./layout";
import { fail, EINVAL, EFAULT, CHECK_GPC_INVALID_GPA, CHECK_GPC_LEN, CHECK_GPC_INACTIVE, CHECK_GPC_NO_PAGE } from "./errno";

export const INVALID_GPA: u64 = <u64>-1;
const MAX_RETRIES: i32 = 8;

@unmanaged export class Gpc {
  gpa: u64;
  generation: u64;
  /** User address including the page offset, or an error hva. */
  uhva: u64;
  vm: usize;
  memslot: usize;
  /** Linear address of the page (0 = error pfn) and of the cached byte. */
  pfn: usize;
  khva: usize;
  active: u32;
  valid: u32;
  next: usize;
}

@inline export function gpcOf(p: usize): Gpc {
  return changetype<Gpc>(p);
}

/** kvm_gpc_init */
export function gpcInit(vm: Vm): usize {
  const p = kzalloc(offsetof<Gpc>());
  if (p == 0) return 0;
  const g = gpcOf(p);
  g.vm = changetype<usize>(vm);
  g.gpa = INVALID_GPA;
  g.uhva = KVM_HVA_ERR_BAD;
  return p;
}

@inline function lenFits(off: u64, len: u64): bool {
  return off + len <= <u64>PAGE_SIZE;
}

@inline function isHvaCache(g: Gpc): bool {
  return g.gpa == INVALID_GPA;
}

/** __refresh: resolves the stored address; 0 or -errno. */
function refresh(p: usize, gpa: u64, uhva: u64): i32 {
  const g = gpcOf(p);
  if (g.active == 0) return fail(CHECK_GPC_INACTIVE, EINVAL);
  const vm = vmOf(g.vm);
  const oldPageHva = g.uhva & ~PAGE_MASK;
  let hvaChanged = false;
  let off: u64;
  if (gpa == INVALID_GPA) {
    g.gpa = INVALID_GPA;
    g.memslot = 0;
    g.uhva = uhva & ~PAGE_MASK;
    hvaChanged = g.uhva != oldPageHva;
    off = uhva & PAGE_MASK;
  } else {
    const gen = setOf(activeSet(vm, 0)).generation;
    off = gpa & PAGE_MASK;
    if (gpa != g.gpa || g.generation != gen || isErrorHva(g.uhva)) {
      g.gpa = gpa;
      g.generation = gen;
      const slot = gfnToMemslotInSet(activeSet(vm, 0), gpa >> PAGE_SHIFT);
      g.memslot = slot;
      g.uhva = gfnToHvaMemslot(slot, gpa >> PAGE_SHIFT, true);
      if (isErrorHva(g.uhva)) return refreshFailed(g);
      hvaChanged = g.uhva != oldPageHva;
    } else {
      g.uhva = g.uhva & ~PAGE_MASK;
    }
  }
  g.uhva |= off;
  if (g.valid == 0 || hvaChanged) {
    // Resolve the page writable; retry if an invalidation ran meanwhile
    // (mmu_notifier_retry_cache) — the page might be the one going away.
    let lin: usize = 0;
    for (let i = 0; i < MAX_RETRIES; i++) {
      const seq = vm.mmuInvalidateSeq;
      lin = hvaToLinear(g.uhva, true);
      if (lin == 0) return refreshFailed(g);
      if (vm.mnActiveInvalidateCount == 0 && vm.mmuInvalidateSeq == seq) break;
      lin = 0;
    }
    if (lin == 0) return refreshFailed(g);
    g.pfn = lin & ~<usize>PAGE_MASK;
    g.khva = lin;
    g.valid = 1;
  } else {
    g.khva = g.pfn + <usize>off;
  }
  return 0;
}

function refreshFailed(g: Gpc): i32 {
  g.valid = 0;
  g.pfn = 0;
  g.khva = 0;
  return fail(CHECK_GPC_NO_PAGE, EFAULT);
}

function activate(p: usize, gpa: u64, uhva: u64, len: u64): i32 {
  const g = gpcOf(p);
  const off = gpa != INVALID_GPA ? gpa & PAGE_MASK : uhva & PAGE_MASK;
  if (!lenFits(off, len)) return fail(CHECK_GPC_LEN, EINVAL);
  if (g.active == 0) {
    const vm = vmOf(g.vm);
    g.next = vm.gpcList;
    vm.gpcList = p;
    g.active = 1;
  }
  return refresh(p, gpa, uhva);
}

/** kvm_gpc_activate */
export function gpcActivate(p: usize, gpa: u64, len: u64): i32 {
  if (gpa == INVALID_GPA) return fail(CHECK_GPC_INVALID_GPA, EINVAL);
  return activate(p, gpa, KVM_HVA_ERR_BAD, len);
}

/** kvm_gpc_activate_hva */
export function gpcActivateHva(p: usize, uhva: u64, len: u64): i32 {
  if (!accessOk(uhva, len)) return fail(CHECK_GPC_INVALID_GPA, EINVAL);
  return activate(p, INVALID_GPA, uhva, len);
}

/** kvm_gpc_check */
export function gpcCheck(p: usize, len: u64): bool {
  const g = gpcOf(p);
  if (g.active == 0) return false;
  if (!isHvaCache(g) && g.generation != setOf(activeSet(vmOf(g.vm), 0)).generation) return false;
  if (isErrorHva(g.uhva)) return false;
  if (!lenFits(g.uhva & PAGE_MASK, len)) return false;
  return g.valid != 0;
}

/** kvm_gpc_refresh */
export function gpcRefresh(p: usize, len: u64): i32 {
  const g = gpcOf(p);
  const off = isHvaCache(g) ? g.uhva & PAGE_MASK : g.gpa & PAGE_MASK;
  if (!lenFits(off, len)) return fail(CHECK_GPC_LEN, EINVAL);
  return refresh(p, isHvaCache(g) ? INVALID_GPA : g.gpa, isHvaCache(g) ? g.uhva : KVM_HVA_ERR_BAD);
}

/** kvm_gpc_deactivate: gpa / generation / memslot / uhva are kept on purpose. */
export function gpcDeactivate(p: usize): void {
  const g = gpcOf(p);
  if (g.active == 0) return;
  g.active = 0;
  g.valid = 0;
  g.khva = 0;
  g.pfn = 0;
  const vm = vmOf(g.vm);
  if (vm.gpcList == p) vm.gpcList = g.next;
  else for (let q = vm.gpcList; q != 0; q = gpcOf(q).next) {
    if (gpcOf(q).next == p) { gpcOf(q).next = g.next; break; }
  }
  g.next = 0;
}

export function gpcDestroy(p: usize): void {
  gpcDeactivate(p);
  kfree(p);
}

/** kvm_gpc_mark_dirty_in_slot: HVA caches never log. */
export function gpcMarkDirty(p: usize): void {
  const g = gpcOf(p);
  if (g.memslot != 0) markPageDirtyInSlot(vmOf(g.vm), g.memslot, g.gpa >> PAGE_SHIFT);
}

/** gfn_to_pfn_cache_invalidate_start: caches whose uhva lies in [start, end) stop being valid. */
export function gpcInvalidateStart(vm: Vm, start: u64, end: u64): void {
  for (let p = vm.gpcList; p != 0; p = gpcOf(p).next) {
    const g = gpcOf(p);
    if (g.valid != 0 && g.pfn != 0 && g.uhva >= start && g.uhva < end) g.valid = 0;
  }
}
