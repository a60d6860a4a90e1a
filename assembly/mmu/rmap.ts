// Per-slot arch metadata and the reverse map: every present spte is linked into
// the list of the slot it maps, so DELETE / MOVE, MMU-notifier invalidations and
// write protection touch only the entries of that slot (or gfn range) instead of
// flushing every table. FLAGS_ONLY shares the metadata (and so the list) with the
// old slot; CREATE and MOVE get fresh metadata (kvm/set_memslot.ts, arch prepare).

import { kzalloc, kfree } from "../kalloc";
import { Vm, assertMmuLockHeld } from "../kvm/kvm_host";
import { SPTE_READ_TAG, SPTE_WRITE_TAG, SPTE_FETCH_TAG, SPTE_GFN, SPTE_RMAP_PREV, SPTE_RMAP_NEXT, SPTE_OWNER,
  SPTE_FLAGS, NO_TAG } from "./spte";

@unmanaged export class SlotArch {
  /** First spte of the slot's rmap list (0: empty). */
  rmapHead: usize;
  /** Present sptes in the list. */
  rmapCount: u32;
  /** u16 write-track counter per page (mmu/page_track.ts), 0 until write tracking is enabled. */
  writeTrack: usize;
  /** Gfns whose spte the kernel would have writable (writable.ts): keys, log2 of their count, how many are set. */
  wrKeys: usize;
  wrBits: u32;
  wrCount: u32;
  /** The VM whose mmu_lock guards this list (lockdep checks in the threads build). */
  vm: usize;
}

export function allocSlotArch(vm: usize): usize {
  const p = kzalloc(offsetof<SlotArch>());
  if (p != 0) changetype<SlotArch>(p).vm = vm;
  return p;
}

/** lockdep_assert_held(&kvm->mmu_lock) for a change of this list (debug threads build). */
// @ts-ignore: decorator
@inline function assertListLocked(arch: usize): void {
  if (WEBKVM_THREADS && WEBKVM_DEBUG) assertMmuLockHeld(changetype<Vm>(changetype<SlotArch>(arch).vm));
}

export function freeSlotArch(p: usize): void {
  if (p == 0) return;
  const a = changetype<SlotArch>(p);
  kfree(a.writeTrack);
  kfree(a.wrKeys, <usize>8 << a.wrBits);   // writable.ts's record
  kfree(p);
}

/** Links a present spte into its slot's rmap. */
export function rmapAdd(arch: usize, e: usize): void {
  assertListLocked(arch);
  const a = changetype<SlotArch>(arch);
  const head = a.rmapHead;
  store<u32>(e + SPTE_RMAP_PREV, 0);
  store<u32>(e + SPTE_RMAP_NEXT, <u32>head);
  if (head != 0) store<u32>(head + SPTE_RMAP_PREV, <u32>e);
  a.rmapHead = e;
  a.rmapCount++;
  store<u32>(e + SPTE_OWNER, <u32>arch);
}

/** Unlinks an spte from the rmap it is on (if any) and empties it. */
export function spteDrop(e: usize): void {
  const arch = <usize>load<u32>(e + SPTE_OWNER);
  if (arch != 0) {
    assertListLocked(arch);
    const a = changetype<SlotArch>(arch);
    const prev = <usize>load<u32>(e + SPTE_RMAP_PREV);
    const next = <usize>load<u32>(e + SPTE_RMAP_NEXT);
    if (prev != 0) store<u32>(prev + SPTE_RMAP_NEXT, <u32>next);
    else a.rmapHead = next;
    if (next != 0) store<u32>(next + SPTE_RMAP_PREV, <u32>prev);
    a.rmapCount--;
    store<u32>(e + SPTE_OWNER, 0);
  }
  store<u64>(e + SPTE_READ_TAG, NO_TAG);
  store<u64>(e + SPTE_WRITE_TAG, NO_TAG);
  store<u64>(e + SPTE_FETCH_TAG, NO_TAG);
  store<u32>(e + SPTE_FLAGS, 0);
}

/** Zaps the sptes of a slot whose gfn lies in [start, end); returns how many. */
export function rmapZapRange(arch: usize, start: u64, end: u64): u32 {
  let n: u32 = 0;
  let e = changetype<SlotArch>(arch).rmapHead;
  while (e != 0) {
    const next = <usize>load<u32>(e + SPTE_RMAP_NEXT);
    const gfn = load<u64>(e + SPTE_GFN);
    if (gfn >= start && gfn < end) {
      spteDrop(e);
      n++;
    }
    e = next;
  }
  return n;
}

/** Removes write access from the sptes of a slot whose gfn lies in [start, end). */
export function rmapWriteProtectRange(arch: usize, start: u64, end: u64): u32 {
  let n: u32 = 0;
  for (let e = changetype<SlotArch>(arch).rmapHead; e != 0; e = <usize>load<u32>(e + SPTE_RMAP_NEXT)) {
    const gfn = load<u64>(e + SPTE_GFN);
    if (gfn >= start && gfn < end && load<u64>(e + SPTE_WRITE_TAG) != NO_TAG) {
      store<u64>(e + SPTE_WRITE_TAG, NO_TAG);
      n++;
    }
  }
  return n;
}

export function rmapCount(arch: usize): u32 {
  return arch == 0 ? 0 : changetype<SlotArch>(arch).rmapCount;
}

/**
 * Removes write access from the sptes of a slot whose page (relative to base)
 * has its bit set in bitmap words [fromWord, toWord) — one pass over the rmap
 * however many pages are re-armed.
 */
export function rmapWriteProtectBitmap(arch: usize, base: u64, bitmap: usize, fromWord: u64, toWord: u64): u32 {
  let n: u32 = 0;
  for (let e = changetype<SlotArch>(arch).rmapHead; e != 0; e = <usize>load<u32>(e + SPTE_RMAP_NEXT)) {
    const rel = load<u64>(e + SPTE_GFN) - base;
    const w = rel >> 6;
    if (w >= fromWord && w < toWord && (load<u64>(bitmap + <usize>(w << 3)) & (<u64>1 << (rel & 63))) != 0 &&
        load<u64>(e + SPTE_WRITE_TAG) != NO_TAG) {
      store<u64>(e + SPTE_WRITE_TAG, NO_TAG);
      n++;
    }
  }
  return n;
}
