// The gfn index of a set (struct kvm_memslots, set.ts): over the set's gfn
// order (a packed array, packed.ts), a bucket index of [indexBase, indexLimit). Bucket b covers gfns
// base + [b << shift, (b+1) << shift) and stores P(start of b), the last
// position whose key is at or below it (0 if none). The record holding a gfn
// of bucket b is then at a position in [index[b], index[b+1]]: with about two
// buckets per slot that is one or two candidates, found without the ~log2(n)
// dependent, mispredicted steps of a binary search. Skewed layouts degrade to
// a binary search inside a bucket. An edit repairs the buckets whose P moved
// (gfnIndexTouched); one that leaves the indexed span or doubles the slots
// since the build marks the index stale, and the next search rebuilds it.

import { Memslots, gfnKeyAt, gfnEndAt, gfnSlotAt, gfnCap, gfnNext, gfnOrder } from "./set";
import { kzalloc, kfree } from "../kalloc";
import { REC_SHIFT, REC_KEY } from "./packed";

const INDEX_MIN_SLOTS: i32 = 8;
const LINEAR_SCAN_MAX: i32 = 8;
const EDGE_BUCKETS: i32 = 64;

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
  s.editsSinceBuild = 0;
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
  // The span's ends go out to whole multiples of EDGE_BUCKETS buckets, so a
  // slot moved or created just past the first or last one keeps the index
  // current (no rebuild), for at most 2 * EDGE_BUCKETS more buckets.
  const edge = <u64>EDGE_BUCKETS << <u64>shift;
  s.indexBase &= ~(edge - 1);
  s.indexLimit = (s.indexLimit + edge - 1) & ~(edge - 1);
  const buckets = <i32>((s.indexLimit - s.indexBase - 1) >> <u64>shift) + 1;
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

/**
 * The last position in [lo, hi] whose key is <= gfn (lo if none), over the
 * records at recs: the caller loads the array's base once, so no step of the
 * scan re-reads it through the set.
 */
@inline function predecessor(recs: usize, gfn: u64, lo: i32, hi: i32): i32 {
  if (hi - lo <= LINEAR_SCAN_MAX) {
    while (lo < hi && load<u64>(recs + (<usize>(lo + 1) << REC_SHIFT), REC_KEY) <= gfn) lo++;
    return lo;
  }
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (load<u64>(recs + (<usize>mid << REC_SHIFT), REC_KEY) <= gfn) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** The position whose record would hold gfn (the last at or below it), or -1 outside the set's span. */
@inline export function recordFor(s: Memslots, gfn: u64): i32 {
  if (gfn < s.indexBase || gfn >= s.indexLimit) return -1;
  const recs = gfnOrder(s).recs;
  if (s.indexBuckets == 0) return predecessor(recs, gfn, 0, gfnCap(s) - 1);
  const at = s.index + (<usize>((gfn - s.indexBase) >> <u64>s.indexShift) << 2);
  return predecessor(recs, gfn, <i32>load<u32>(at), <i32>load<u32>(at, 4));
}
