// The gfn index of a set (struct kvm_memslots, set.ts): over the set's gfn
// order (a packed array, packed.ts), a bucket index of [indexBase, indexBase + indexSpan). Bucket b covers gfns
// base + [b << shift, (b+1) << shift) and stores the address of record P(start
// of b), the last position whose key is at or below it (0 if none): an address,
// not a position, so a lookup neither scales nor adds. The record holding a gfn
// of bucket b is then at a position in [index[b], index[b+1]]: with about two
// buckets per slot that is one or two candidates, found without the ~log2(n)
// dependent, mispredicted steps of a binary search. Skewed layouts degrade to
// a binary search inside a bucket. An edit repairs the buckets whose P moved
// (gfnIndexTouched); one that leaves the indexed span or doubles the slots
// since the build marks the index stale, and the next search rebuilds it.
//
// Every set with a slot has an index (a set that cannot get its bucket array
// uses one bucket held in the set itself), so a lookup is the same few steps
// at any size: no branch on whether there is one.

import { Memslots, gfnKeyAt, gfnEndAt, gfnSlotAt, gfnCap, gfnNext, gfnOrder } from "./set";
import { kzalloc, kfree } from "../kalloc";
import { recAt, REC_SHIFT, REC_BYTES, REC_KEY } from "./packed";

const LINEAR_SCAN_MAX: i32 = 8;
const EDGE_BUCKETS: i32 = 64;

export let indexRebuilds: u32 = 0;

/**
 * The record a gfn outside the span gets: a gap (key 0, span 0, slot 0), so
 * it holds nothing and the caller's one test of its record covers the miss too.
 * Never written.
 */
export const MISS_RECORD: usize = memory.data(REC_BYTES, 8);

/** Fills index[from..to] with P(bucket start)'s record, walking positions up from pos (whose key is <= the first start, or 0). */
function fillBuckets(s: Memslots, from: i32, to: i32, pos: i32): void {
  const cap = gfnCap(s);
  for (let b = from; b <= to; b++) {
    const start = s.indexBase + (<u64>b << s.indexShift);
    while (pos + 1 < cap && gfnKeyAt(s, pos + 1) <= start) pos++;
    store<u32>(s.index + (<usize>b << 2), <u32>recAt(gfnOrder(s), pos));
  }
}

function buildGfnIndex(s: Memslots): void {
  const n = gfnOrder(s).count;
  s.editsSinceBuild = 0;
  s.indexBuckets = 0;
  s.indexBuiltFor = n;
  s.indexRecs = gfnOrder(s).recs;
  if (n == 0) {
    // An empty span: every gfn misses before the index is read.
    s.indexBase = 0;
    s.indexSpan = 0;
    return;
  }
  const first = gfnNext(s, 0);
  let last = gfnCap(s) - 1;
  while (gfnSlotAt(s, last) == 0) last--;
  let base = gfnKeyAt(s, first);
  let limit = gfnEndAt(s, last);
  const span = limit - base;
  const want = <u64>(1 << (33 - clz<u32>(<u32>n))); // ~2..4 buckets per slot
  let shift: u64 = 0;
  while (((span - 1) >> shift) >= want) shift++;
  // The span's ends go out to whole multiples of EDGE_BUCKETS buckets, so a
  // slot moved or created just past the first or last one keeps the index
  // current (no rebuild), for at most 2 * EDGE_BUCKETS more buckets.
  const edge = <u64>EDGE_BUCKETS << shift;
  base &= ~(edge - 1);
  limit = (limit + edge - 1) & ~(edge - 1);
  s.indexBase = base;
  s.indexSpan = limit - base;
  let buckets = <i32>((limit - base - 1) >> shift) + 1;
  if (buckets + 1 > s.indexCap) {
    if (s.indexCap != 0) kfree(s.index);
    s.index = kzalloc(<usize>(buckets + 1) << 2);
    s.indexCap = s.index == 0 ? 0 : buckets + 1;
  }
  if (s.indexCap == 0) {
    // No bucket array: one bucket (gfns stay below 2^63 past base) in the set
    // itself, so the search is a binary search over the whole order.
    s.index = changetype<usize>(s) + offsetof<Memslots>("indexInline");
    shift = 63;
    buckets = 1;
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
  if (s.indexBuckets == 0 || key < s.indexBase || end - s.indexBase > s.indexSpan || g.count > 2 * s.indexBuiltFor) {
    s.stale = 1;
    return;
  }
  const lo = g.touchKeyLo > s.indexBase ? g.touchKeyLo - s.indexBase : 0;
  const hi = g.touchKeyHi - s.indexBase;
  // Buckets whose start is in [lo, hi] (relative to indexBase); the end sentinel is bucket `buckets`.
  const shift = s.indexShift;
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
 * The last record in [lo, hi] (record addresses) whose key is <= gfn (lo if none).
 */
@inline function predecessor(gfn: u64, lo: usize, hi: usize): usize {
  if (hi - lo <= <usize>LINEAR_SCAN_MAX << REC_SHIFT) {
    // Two plain exits (no `&&` value to test): the key read is the next record's, at offset REC_BYTES.
    while (lo < hi) {
      if (load<u64>(lo, <usize>REC_BYTES + REC_KEY) > gfn) break;
      lo += REC_BYTES;
    }
    return lo;
  }
  let l: i32 = 0, h = <i32>((hi - lo) >> REC_SHIFT);
  while (l < h) {
    const mid = (l + h + 1) >>> 1;
    if (load<u64>(lo + (<usize>mid << REC_SHIFT), REC_KEY) <= gfn) l = mid;
    else h = mid - 1;
  }
  return lo + (<usize>l << REC_SHIFT);
}

/**
 * The address of the record that would hold gfn (the last at or below it),
 * or MISS_RECORD outside the set's span: reads only the set's first fields
 * (indexBase, indexSpan, index, indexShift), one compare for both ends of the span.
 */
@inline export function recordAddrFor(s: Memslots, gfn: u64): usize {
  const off = gfn - s.indexBase;
  if (off >= s.indexSpan) return MISS_RECORD;
  const at = s.index + (<usize>(off >> s.indexShift) << 2);
  return predecessor(gfn, <usize>load<u32>(at), <usize>load<u32>(at, 4));
}

/** The position whose record would hold gfn (the last at or below it), or -1 outside the set's span. */
@inline export function recordFor(s: Memslots, gfn: u64): i32 {
  const r = recordAddrFor(s, gfn);
  return r == MISS_RECORD ? -1 : <i32>((r - s.indexRecs) >> REC_SHIFT);
}
