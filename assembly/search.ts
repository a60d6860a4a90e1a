// gfn -> slot and hva -> slots.
//
// gfn search: the set's sorted base_gfn array plus a bucket index over
// [indexBase, indexLimit). Bucket b covers gfns base + [b << shift, (b+1) << shift)
// and stores pred(start of b), the position of the last slot starting at or
// below it. The slot holding a gfn in bucket b is then at a position in
// [index[b], index[b+1]]: with about two buckets per slot that is one or two
// candidates, found without the ~log2(n) dependent, mispredicted steps of a
// binary search. Skewed layouts degrade to a binary search inside a bucket.
// The index is derived data, rebuilt lazily on the first search after a swap.
//
// hva search: slots sorted by userspace_addr with a running maximum of their
// hva ends; a range query walks down from the last slot starting below the
// range end while the running maximum still reaches into the range.

import { Memslots, setOf, gfnKeyAt, gfnEndAt, gfnSlotAt, gfnUaddrAt, hvaSlotAt } from "./memslots/set";
import { slotOf, slotHvaEnd, Slot } from "./memslots/slot";
import { kzalloc, kfree } from "./kalloc";
import { PAGE_SHIFT } from "./layout";

const INDEX_MIN_SLOTS: i32 = 8;
const LINEAR_SCAN_MAX: i32 = 8;

export let indexRebuilds: u32 = 0;

function buildGfnIndex(s: Memslots): void {
  const n = s.count;
  s.indexBuckets = 0;
  if (n == 0) {
    // An empty range: every gfn misses before the arrays (stale past count) are read.
    s.indexBase = 0;
    s.indexLimit = 0;
    return;
  }
  s.indexBase = gfnKeyAt(s, 0);
  s.indexLimit = gfnEndAt(s, n - 1);
  if (n < INDEX_MIN_SLOTS) return;
  const span = s.indexLimit - s.indexBase;
  const want = <u64>(1 << (33 - clz<u32>(<u32>n))); // ~2..4 buckets per slot
  let shift = 0;
  while (((span - 1) >> <u64>shift) >= want) shift++;
  const buckets = <i32>((span - 1) >> <u64>shift) + 1;
  if (buckets + 1 > s.indexCap) {
    kfree(s.index);
    s.index = kzalloc(<usize>(buckets + 1) << 2);
    if (s.index == 0) { s.indexCap = 0; return; } // search falls back to binary search
    s.indexCap = buckets + 1;
  }
  let j = 0;
  for (let b = 0; b < buckets; b++) {
    const start = s.indexBase + (<u64>b << <u64>shift);
    while (j + 1 < n && gfnKeyAt(s, j + 1) <= start) j++;
    store<u32>(s.index + (<usize>b << 2), <u32>j);
  }
  store<u32>(s.index + (<usize>buckets << 2), <u32>(n - 1));
  s.indexShift = shift;
  s.indexBuckets = buckets;
}

function buildHvaMaxEnd(s: Memslots): void {
  let m: u64 = 0;
  for (let i = 0; i < s.count; i++) {
    const x = slotOf(hvaSlotAt(s, i));
    const e = slotHvaEnd(x);
    if (e > m) m = e;
    store<u64>(s.hvaMaxEnd + (<usize>i << 3), m);
  }
}

/** Rebuilds a set's derived search data if an edit made it stale. */
@inline export function refreshSet(s: Memslots): void {
  if (s.stale != 0) {
    buildGfnIndex(s);
    buildHvaMaxEnd(s);
    s.stale = 0;
    indexRebuilds++;
  }
}

/** Position of the last slot with base_gfn <= gfn in [lo, hi] (lo's key is <= gfn). */
@inline function predecessor(s: Memslots, gfn: u64, lo: i32, hi: i32): i32 {
  if (hi - lo <= LINEAR_SCAN_MAX) {
    while (lo < hi && gfnKeyAt(s, lo + 1) <= gfn) lo++;
    return lo;
  }
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (gfnKeyAt(s, mid) <= gfn) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** The record that would hold gfn (the last one starting at or below it), or -1 outside the set's span. */
@inline export function recordFor(s: Memslots, gfn: u64): i32 {
  if (gfn < s.indexBase || gfn >= s.indexLimit) return -1;
  if (s.indexBuckets == 0) return predecessor(s, gfn, 0, s.count - 1);
  const at = s.index + (<usize>((gfn - s.indexBase) >> <u64>s.indexShift) << 2);
  return predecessor(s, gfn, <i32>load<u32>(at), <i32>load<u32>(at, 4));
}

/** search_memslots: the slot containing gfn, or 0. INVALID slots are found too. */
export function searchMemslots(p: usize, gfn: u64): usize {
  const s = setOf(p);
  refreshSet(s);
  const i = recordFor(s, gfn);
  return i >= 0 && gfn < gfnEndAt(s, i) ? gfnSlotAt(s, i) : 0;
}

/** __gfn_to_memslot: the set's last_used_slot first, then search; a hit updates it. */
export function gfnToMemslotInSet(p: usize, gfn: u64): usize {
  const s = setOf(p);
  const last = s.lastUsedSlot;
  if (last != 0) {
    const x = slotOf(last);
    if (gfn - x.baseGfn < x.npages) return last;
  }
  const found = searchMemslots(p, gfn);
  if (found != 0) s.lastUsedSlot = found;
  return found;
}

/** gfn -> hva through the records alone (the benchmarked lookup; error hva 0 on a miss). */
@inline export function searchHva(p: usize, gfn: u64): u64 {
  const s = setOf(p);
  const i = recordFor(s, gfn);
  return i >= 0 && gfn < gfnEndAt(s, i) ? gfnUaddrAt(s, i) + ((gfn - gfnKeyAt(s, i)) << PAGE_SHIFT) : 0;
}

/** First position in the gfn array whose slot ends above gfn. */
export function firstSlotEndingAfter(s: Memslots, gfn: u64): i32 {
  let lo = 0, hi = s.count;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (gfnEndAt(s, mid) <= gfn) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The first slot other than `id` intersecting [start, end), or 0 (kvm_check_memslot_overlap). */
export function overlappingSlot(p: usize, id: u32, start: u64, end: u64): usize {
  const s = setOf(p);
  for (let i = firstSlotEndingAfter(s, start); i < s.count && gfnKeyAt(s, i) < end; i++) {
    const x = gfnSlotAt(s, i);
    if (slotOf(x).id != id) return x;
  }
  return 0;
}

/**
 * Calls fn(slot, ctx) for every slot whose host range intersects [start, end).
 * Used by MMU-notifier invalidations (kvm_handle_hva_range).
 */
export function forEachSlotInHvaRange(p: usize, start: u64, end: u64, fn: (slot: usize, ctx: usize) => void, ctx: usize): void {
  const s = setOf(p);
  refreshSet(s);
  let lo = 0, hi = s.count;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (slotOf(hvaSlotAt(s, mid)).userspaceAddr < end) lo = mid + 1;
    else hi = mid;
  }
  for (let i = lo - 1; i >= 0 && load<u64>(s.hvaMaxEnd + (<usize>i << 3)) > start; i--) {
    const x: Slot = slotOf(hvaSlotAt(s, i));
    if (slotHvaEnd(x) > start) fn(hvaSlotAt(s, i), ctx);
  }
}
