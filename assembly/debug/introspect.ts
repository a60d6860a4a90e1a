// Views of core state for tools, tests and benchmarks: memslot snapshots,
// lookups through a chosen cache path, hva -> slot routing, batched lookup
// loops, and the debug-only levers that prove the invariant checks fire.

import { Vm, activeSet, inactiveSet, setLiveGeneration, vcpuOf, vcpuGfnToMemslot, vcpuGfnToHva, hvaWindowHit, hvaWindowAt } from "../kvm/kvm_host";
import { setOf, gfnSlotAt, gfnCap, gfnNext, gfnOrder } from "../memslots/set";
import { recAt, REC_BYTES } from "../memslots/packed";
import { slotOf, slotGfnToHva } from "../memslots/slot";
import { searchMemslots, gfnToMemslotInSet, forEachSlotInHvaRange, searchHva } from "../memslots/search";
import { refreshSet } from "../memslots/gfn_index";
import { checkVmInvariants, setUpdateStride } from "./invariants";
import { kzalloc } from "../kalloc";
import { ioBuf, IO_BUF_SIZE, SNAP_BASE_GFN, SNAP_NPAGES, SNAP_UADDR, SNAP_GMEM_PGOFF, SNAP_FLAGS, SNAP_ID,
  SNAP_AS_ID, SNAP_HAS_BITMAP, SNAP_BYTES, SNAP_HEADER_BYTES } from "../layout";
import { LOOKUP_SEARCH, LOOKUP_VM, LOOKUP_VCPU, CORRUPT_GFN_ORDER, CORRUPT_LAST_USED_SLOT } from "../selectors";


function writeSnap(out: usize, p: usize): void {
  const s = slotOf(p);
  store<u64>(out + SNAP_BASE_GFN, s.baseGfn);
  store<u64>(out + SNAP_NPAGES, s.npages);
  store<u64>(out + SNAP_UADDR, s.userspaceAddr);
  store<u64>(out + SNAP_GMEM_PGOFF, s.gmemPgoff);
  store<u32>(out + SNAP_FLAGS, s.flags);
  store<u32>(out + SNAP_ID, s.id);
  store<u32>(out + SNAP_AS_ID, s.asId);
  store<u32>(out + SNAP_HAS_BITMAP, s.dirtyBitmap != 0 ? 1 : 0);
}

/** Copies the slots of a set, in gfn order, to a new buffer: u32 count, then records. */
export function snapshotMemslots(vm: Vm, asId: u32, inactive: bool): usize {
  const s = setOf(inactive ? inactiveSet(vm, asId) : activeSet(vm, asId));
  const out = kzalloc(<usize>SNAP_HEADER_BYTES + <usize>s.count * SNAP_BYTES);
  if (out == 0) return 0;
  store<u32>(out, s.count);
  let k = 0;
  for (let i = gfnNext(s, 0); i < gfnCap(s); i = gfnNext(s, i + 1)) writeSnap(out + SNAP_HEADER_BYTES + <usize>(k++) * SNAP_BYTES, gfnSlotAt(s, i));
  return out;
}

/** Looks gfn up (vm lookups: LOOKUP_SEARCH / LOOKUP_VM; vcpu: LOOKUP_VCPU); a hit's record goes to ioBuf(). */
export function lookupGfn(vm: Vm, vcpu: usize, asId: u32, gfn: u64, mode: i32): i32 {
  let p: usize;
  if (mode == LOOKUP_VCPU) p = vcpuGfnToMemslot(vcpu, gfn);
  else if (mode == LOOKUP_VM) p = gfnToMemslotInSet(activeSet(vm, asId), gfn);
  else p = searchMemslots(activeSet(vm, asId), gfn);
  if (p == 0) return 0;
  writeSnap(ioBuf(), p);
  return 1;
}

let hvaHits: i32 = 0;
function collectHvaHit(slot: usize, ctx: usize): void {
  if (hvaHits < IO_BUF_SIZE / 4) store<u32>(ioBuf() + (<usize>hvaHits << 2), slotOf(slot).id);
  hvaHits++;
}

/** Ids of the slots whose host range intersects [start, end), into ioBuf(); returns the count. */
export function hvaToSlots(vm: Vm, asId: u32, start: u64, end: u64): i32 {
  hvaHits = 0;
  forEachSlotInHvaRange(activeSet(vm, asId), start, end, collectHvaHit, 0);
  return hvaHits;
}

/**
 * search_memslots + the hva, from the slot records alone, over u64[n] at ptr:
 * a function of its own, so its loop's few values stay in registers.
 */
function searchHvaLoop(set: usize, ptr: usize, n: i32, rounds: i32): u64 {
  let sum: u64 = 0;
  const end = ptr + (<usize>n << 3);
  for (let r = 0; r < rounds; r++) {
    for (let at = ptr; at < end; at += 8) sum += searchHva(set, load<u64>(at));
  }
  return sum;
}

/** Batched gfn -> hva lookups over u64[n] at ptr (the benchmarks); a checksum of the hvas. */
export function benchLookup(vm: Vm, vcpu: usize, asId: u32, ptr: usize, n: i32, mode: i32, rounds: i32): u64 {
  let sum: u64 = 0;
  if (mode == LOOKUP_VCPU) {
    // kvm_vcpu_gfn_to_hva, with the hits in a loop of their own: a call inside
    // the loop (the miss path) would make V8 spill the loop's state every turn.
    const v = vcpuOf(vcpu);
    for (let r = 0; r < rounds; r++) {
      let i = 0;
      while (i < n) {
        for (; i < n; i++) {
          const off = load<u64>(ptr + (<usize>i << 3)) - v.lastBase;
          if (!hvaWindowHit(v, off)) break;
          sum += hvaWindowAt(v, off);
        }
        if (i < n) { sum += vcpuGfnToHva(vcpu, load<u64>(ptr + (<usize>i << 3))); i++; }
      }
    }
    return sum;
  }
  const set = activeSet(vm, asId);
  refreshSet(setOf(set));
  if (mode == LOOKUP_SEARCH) return searchHvaLoop(set, ptr, n, rounds);
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < n; i++) {
      const gfn = load<u64>(ptr + (<usize>i << 3));
      const s = gfnToMemslotInSet(set, gfn);
      if (s != 0) sum += slotGfnToHva(slotOf(s), gfn);
    }
  }
  return sum;
}

/**
 * The active set's gfn order and bucket index as they are, for a native
 * program running the same search over the same bytes (bench/native/gfnindex.c):
 * u64 indexBase, indexSpan, indexShift, indexBuckets, positions, and the
 * records' address in the core's memory (the index holds record addresses);
 * the records (packed.ts's layout, positions of them); u32 index[indexBuckets + 1] padded
 * to 8 bytes. The caller frees it (kmfree); 0 when out of memory.
 */
export function gfnIndexImage(vm: Vm, asId: u32): usize {
  const s = setOf(activeSet(vm, asId));
  refreshSet(s);
  const cap = gfnCap(s);
  const recBytes = <usize>cap * REC_BYTES, indexWords = s.indexBuckets == 0 ? 0 : s.indexBuckets + 1;
  const out = kzalloc(48 + recBytes + ((<usize>indexWords * 4 + 7) & ~7));
  if (out == 0) return 0;
  store<u64>(out, s.indexBase);
  store<u64>(out, s.indexSpan, 8);
  store<u64>(out, s.indexShift, 16);
  store<u64>(out, <u64>s.indexBuckets, 24);
  store<u64>(out, <u64>cap, 32);
  store<u64>(out, <u64>s.indexRecs, 40);
  memory.copy(out + 48, recAt(gfnOrder(s), 0), recBytes);
  memory.copy(out + 48 + recBytes, s.index, <usize>indexWords * 4);
  return out;
}

/**
 * Debug core only: sets both sets' generation of an address space (keeping it
 * congruent to the address space), so tests can reach the 19-bit MMIO wrap
 * without 2^19 updates (the kernel once started VMs near the wrap for this).
 */
export function debugSetGeneration(vm: Vm, asId: u32, gen: u64): bool {
  if (!WEBKVM_DEBUG) return false;
  if (gen % <u64>vm.nrAs != <u64>asId) return false;
  setOf(activeSet(vm, asId)).generation = gen;
  setOf(inactiveSet(vm, asId)).generation = gen;
  setLiveGeneration(vm, asId, gen);
  if (asId == 0) vm.genSeen0 = gen; else vm.genSeen1 = gen;
  return true;
}

/** Debug core only: runs the slot-set and MMU invariant checks now (they trap on a violation). */
export function debugCheckInvariants(vm: Vm): bool {
  if (!WEBKVM_DEBUG) return false;
  checkVmInvariants(vm);
  return true;
}

/** Debug core only: check the invariants after every stride-th memslot update (1: after each, the default). */
export function debugInvariantStride(stride: u32): bool {
  if (!WEBKVM_DEBUG) return false;
  setUpdateStride(stride);
  return true;
}

/** Debug core only: breaks one invariant of the active set of AS 0 (CORRUPT_* of selectors.ts). */
export function debugCorruptForTest(vm: Vm, what: i32): bool {
  if (!WEBKVM_DEBUG) return false;
  const s = setOf(activeSet(vm, 0));
  if (what == CORRUPT_GFN_ORDER && s.count >= 2) {
    const i = gfnNext(s, 0), j = gfnNext(s, i + 1);
    const ri = recAt(gfnOrder(s), i), rj = recAt(gfnOrder(s), j);
    const a = load<u64>(ri), b = load<u64>(rj);
    store<u64>(ri, b); store<u64>(rj, a);
    return true;
  }
  if (what == CORRUPT_LAST_USED_SLOT) {
    s.lastUsedSlot = kzalloc(64);
    return true;
  }
  return false;
}
