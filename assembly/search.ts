// gfn -> slot and hva -> slots.
//
// gfn search: the set's gfn order (a packed array, memslots/packed.ts) plus a
// bucket index over [indexBase, indexLimit). Bucket b covers gfns
// base + [b << shift, (b+1) << shift) and stores P(start of b), the last
// position whose key is at or below it (0 if none). The record holding a gfn
// of bucket b is then at a position in [index[b], index[b+1]]: with about two
// buckets per slot that is one or two candidates, found without the ~log2(n)
// dependent, mispredicted steps of a binary search. Skewed layouts degrade to
// a binary search inside a bucket. An edit repairs the buckets whose P moved
// (gfnIndexTouched); one that leaves the indexed span or doubles the slots
// since the build marks the index stale, and the next search rebuilds it.
//
// hva search: the hva order sorted by (userspace_addr, id) with a tree of
// per-block maxima of the hva ends: a range query visits the blocks below
// the range end whose maximum reaches into the range.

import { Memslots, setOf, gfnKeyAt, gfnEndAt, gfnSpanAt, gfnSlotAt, gfnUaddrAt, gfnCap, gfnNext, gfnOrder,
  hvaOrder, hvaSlotAt, hvaEndAt, hvaKey, hvaMaxAt, HVA_BLOCK_SHIFT } from "./memslots/set";
import { slotOf } from "./memslots/slot";
import { packedFloor, isGap } from "./memslots/packed";
import { kzalloc, kfree } from "./kalloc";
import { PAGE_SHIFT, PAGE_MASK } from "./layout";

const INDEX_MIN_SLOTS: i32 = 8;
const LINEAR_SCAN_MAX: i32 = 8;

export let indexRebuilds: u32 = 0;

/** Fills index[from..to] with P(bucket start), walking positions up from pos (whose key is <= the first start, or 0). */
function fillBuckets(s: Memslots, from: i32, to: i32, pos: i32): void {
  const cap = gfnCap(s);
  for (let b = from; b <= to; b++) {
    const start = s.indexBase + (<u64>b << <u64>s.indexShift);
    while (pos + 1 < cap && gfnKeyAt(s, pos + 1) <= start) pos++;
    store<u32>(s.index + (<usize>b << 2), <u32>pos);
  }
}

function buildGfnIndex(s: Memslots): void {
  const n = gfnOrder(s).count;
  s.indexBuckets = 0;
  s.indexBuiltFor = n;
  if (n == 0) {
    // An empty range: every gfn misses before any record is read.
    s.indexBase = 0;
    s.indexLimit = 0;
    return;
  }
  const first = gfnNext(s, 0);
  let last = gfnCap(s) - 1;
  while (gfnSlotAt(s, last) == 0) last--;
  s.indexBase = gfnKeyAt(s, first);
  s.indexLimit = gfnEndAt(s, last);
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
  s.indexShift = shift;
  s.indexBuckets = buckets;
  fillBuckets(s, 0, buckets, 0);
}

/**
 * After an insertion into the gfn order of a slot covering [key, end): repairs
 * the buckets whose start lies in the key range the insertion touched, or
 * marks the index stale when it no longer fits the set.
 */
export function gfnIndexTouched(s: Memslots, key: u64, end: u64): void {
  if (s.stale != 0) return;
  const g = gfnOrder(s);
  if (s.indexBuckets == 0 || key < s.indexBase || end > s.indexLimit || g.count > 2 * s.indexBuiltFor) {
    s.stale = 1;
    return;
  }
  const lo = g.touchKeyLo > s.indexBase ? g.touchKeyLo - s.indexBase : 0;
  const hi = g.touchKeyHi - s.indexBase;
  // Buckets whose start is in [lo, hi] (relative to indexBase); the end sentinel is bucket `buckets`.
  const shift = <u64>s.indexShift;
  const from = <i32>min<u64>((lo + (<u64>1 << shift) - 1) >> shift, <u64>s.indexBuckets + 1);
  const to = <i32>min<u64>(hi >> shift, <u64>s.indexBuckets);
  if (from <= to) fillBuckets(s, from, to, g.touchLo > 0 ? g.touchLo - 1 : 0);
}

/** Rebuilds a set's gfn index if an edit made it stale. */
@inline export function refreshSet(s: Memslots): void {
  if (s.stale != 0) {
    buildGfnIndex(s);
    s.stale = 0;
    indexRebuilds++;
  }
}

/** The last position in [lo, hi] whose key is <= gfn (lo if none). */
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

/** The position whose record would hold gfn (the last at or below it), or -1 outside the set's span. */
@inline export function recordFor(s: Memslots, gfn: u64): i32 {
  if (gfn < s.indexBase || gfn >= s.indexLimit) return -1;
  if (s.indexBuckets == 0) return predecessor(s, gfn, 0, gfnCap(s) - 1);
  const at = s.index + (<usize>((gfn - s.indexBase) >> <u64>s.indexShift) << 2);
  return predecessor(s, gfn, <i32>load<u32>(at), <i32>load<u32>(at, 4));
}

/** Whether record i holds gfn: one compare covers both ends, and a gap (span 0) holds nothing. */
@inline function holds(s: Memslots, i: i32, gfn: u64): bool {
  return gfn - gfnKeyAt(s, i) < gfnSpanAt(s, i);
}

/** search_memslots: the slot containing gfn, or 0. INVALID slots are found too. */
export function searchMemslots(p: usize, gfn: u64): usize {
  const s = setOf(p);
  refreshSet(s);
  const i = recordFor(s, gfn);
  return i >= 0 && holds(s, i, gfn) ? gfnSlotAt(s, i) : 0;
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
  return i >= 0 && holds(s, i, gfn) ? gfnUaddrAt(s, i) + ((gfn - gfnKeyAt(s, i)) << PAGE_SHIFT) : 0;
}

/**
 * The first position in gfn order that ends above gfn (gfnCap when none).
 * Walks from there while keys are below a range's end meet every slot
 * intersecting the range (skipping gaps) and stop at the first key past it,
 * without walking the gaps beyond.
 */
export function firstEndingAfter(s: Memslots, gfn: u64): i32 {
  // Positions before the last one keyed at or below gfn all end at or below it.
  if (s.stale == 0 && gfn >= s.indexBase && gfn < s.indexLimit) {
    const i = recordFor(s, gfn);
    return gfnEndAt(s, i) > gfn ? i : i + 1;
  }
  // Ends never decrease along the array (a gap "ends" at its key), so this is a binary search.
  let lo = 0, hi = gfnCap(s);
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
  for (let i = firstEndingAfter(s, start); i < gfnCap(s) && gfnKeyAt(s, i) < end; i++) {
    const x = gfnSlotAt(s, i);
    if (x != 0 && slotOf(x).id != id) return x;
  }
  return 0;
}

/**
 * Calls fn(slot, ctx) for every slot whose host range intersects [start, end),
 * in (userspace_addr, id) order. Used by MMU-notifier invalidations
 * (kvm_handle_hva_range).
 */
export function forEachSlotInHvaRange(p: usize, start: u64, end: u64, fn: (slot: usize, ctx: usize) => void, ctx: usize): void {
  const s = setOf(p);
  if (end <= start) return;
  // Slots starting below end: keys below that of (page-rounded end, id 0).
  const endPage = (end >> PAGE_SHIFT) + <u64>((end & PAGE_MASK) != 0);
  const last = packedFloor(hvaOrder(s), hvaKey(endPage << PAGE_SHIFT, 0) - 1);
  if (last < 0) return;
  visitHvaBlocks(s, 1, 0, s.hvaBlocks, last, start, fn, ctx);
}

/** Tree node `node` covers blocks [b0, b0 + nb): visits its records up to position last ending above start. */
function visitHvaBlocks(s: Memslots, node: i32, b0: i32, nb: i32, last: i32, start: u64,
                        fn: (slot: usize, ctx: usize) => void, ctx: usize): void {
  if (hvaMaxAt(s, node) <= start || (b0 << HVA_BLOCK_SHIFT) > last) return;
  if (nb > 1) {
    const half = nb >> 1;
    visitHvaBlocks(s, node << 1, b0, half, last, start, fn, ctx);
    visitHvaBlocks(s, (node << 1) + 1, b0 + half, half, last, start, fn, ctx);
    return;
  }
  const h = hvaOrder(s);
  const stop = min((b0 + 1) << HVA_BLOCK_SHIFT, last + 1);
  for (let i = b0 << HVA_BLOCK_SHIFT; i < stop; i++) {
    if (!isGap(h, i) && hvaEndAt(s, i) > start) fn(hvaSlotAt(s, i), ctx);
  }
}
