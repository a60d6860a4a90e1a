// The ordered record store behind a memslot set's gfn order and hva order.
// The kernel keeps rbtrees (gfn_tree, hva_tree); this is a packed memory
// array: records sorted by key in one flat array with gaps spread through it.
// An insertion shifts a few neighbours into the nearest gap (or re-spreads a
// small window) instead of half the array; a deletion just leaves a gap. A
// lookup is still a search over one flat array.
//
// Record (32 bytes): 0 key  8 span  16 aux  24 slot (0 in a gap)  28 pad.
// A real record covers keys [key, key + span). A gap covers nothing (span 0)
// and its key lies between the end of the real record before it and the key
// of the real record after it. So keys never decrease along the array, and the
// last record whose key is <= x either covers x or proves that nothing does.
// Where a gap's key sits in that interval decides where the next insertion
// lands; a layout keys gaps high (the next record's key, u64 max after the
// last), so an insertion goes right after its predecessor and leaves the rest
// of the run free, except before the first record, keyed 0, so an insertion
// there goes right before it: runs of appends and of prepends stay O(1).

import { kzalloc, kfree } from "../kalloc";
import { stagedRecord } from "../layout"; // REC_BYTES <= SMALL_SCRATCH_SIZE

export const REC_SHIFT: usize = 5;
export const REC_BYTES: i32 = 1 << <i32>REC_SHIFT;
export const REC_KEY: usize = 0;
export const REC_SPAN: usize = 8;
export const REC_AUX: usize = 16;
export const REC_SLOT: usize = 24;

/** The smallest array, and the smallest window an insertion re-spreads. */
export const PACKED_MIN: i32 = 64;
/** How far an insertion looks on each side for a gap to shift into. */
const LOCAL_REACH: i32 = 16;
/** How far floorFrom walks from a hint before it searches. */
const FLOOR_WALK: i32 = 4;
const KEY_MAX: u64 = u64.MAX_VALUE;

@unmanaged export class Packed {
  recs: usize;
  /** Positions (a power of two >= PACKED_MIN); at most 3/4 of them hold records. */
  cap: i32;
  count: i32;
  /** Positions the last insertion rewrote, and the least and greatest key they held before or after. */
  touchLo: i32;
  touchHi: i32;
  touchKeyLo: u64;
  touchKeyHi: u64;
}

@inline export function packedOf(p: usize): Packed {
  return changetype<Packed>(p);
}
@inline export function recAt(a: Packed, i: i32): usize {
  return a.recs + (<usize>i << REC_SHIFT);
}
@inline export function keyAt(a: Packed, i: i32): u64 {
  return load<u64>(recAt(a, i), REC_KEY);
}
@inline export function spanAt(a: Packed, i: i32): u64 {
  return load<u64>(recAt(a, i), REC_SPAN);
}
@inline export function slotAt(a: Packed, i: i32): usize {
  return <usize>load<u32>(recAt(a, i), REC_SLOT);
}
@inline export function isGap(a: Packed, i: i32): bool {
  return load<u32>(recAt(a, i), REC_SLOT) == 0;
}
/** Where record i ends (for a gap: its key). */
@inline export function endAt(a: Packed, i: i32): u64 {
  return keyAt(a, i) + spanAt(a, i);
}

/** The first real record at position >= i, or cap. */
@inline export function nextReal(a: Packed, i: i32): i32 {
  while (i < a.cap && isGap(a, i)) i++;
  return i;
}

/**
 * Copies one record. Records move one at a time on every edit: four loads and
 * stores beat memory.copy, which the engine may run as a call out of the
 * compiled code.
 */
@inline function copyRecord(dst: usize, src: usize): void {
  const k = load<u64>(src, REC_KEY), n = load<u64>(src, REC_SPAN), x = load<u64>(src, REC_AUX), t = load<u64>(src, REC_SLOT);
  store<u64>(dst, k, REC_KEY);
  store<u64>(dst, n, REC_SPAN);
  store<u64>(dst, x, REC_AUX);
  store<u64>(dst, t, REC_SLOT);
}

/** Moves records [from, from + n) by one position (dir +1 or -1); overlapping, so in the direction of travel. */
function shiftRecords(a: Packed, from: i32, n: i32, dir: i32): void {
  if (n > 4) {
    memory.copy(recAt(a, from + dir), recAt(a, from), <usize>n << REC_SHIFT);
  } else if (dir > 0) {
    for (let i = from + n - 1; i >= from; i--) copyRecord(recAt(a, i + 1), recAt(a, i));
  } else {
    for (let i = from; i < from + n; i++) copyRecord(recAt(a, i - 1), recAt(a, i));
  }
}

function fillGaps(recs: usize, from: i32, to: i32, key: u64): void {
  for (let i = from; i < to; i++) {
    const r = recs + (<usize>i << REC_SHIFT);
    store<u64>(r, key, REC_KEY);
    store<u64>(r, 0, REC_SPAN);
    store<u64>(r, 0, REC_AUX);
    store<u64>(r, 0, REC_SLOT);
  }
}

export function packedAlloc(): usize {
  const p = kzalloc(offsetof<Packed>());
  if (p == 0) return 0;
  const a = packedOf(p);
  a.recs = kzalloc(<usize>PACKED_MIN << REC_SHIFT);
  if (a.recs == 0) { kfree(p); return 0; }
  a.cap = PACKED_MIN;
  fillGaps(a.recs, 0, PACKED_MIN, KEY_MAX);
  return p;
}

export function packedFree(p: usize): void {
  if (p == 0) return;
  kfree(packedOf(p).recs);
  kfree(p);
}

/** The capacity an array of `cap` positions grows to for n records (at most 3/4 of the positions hold one). */
export function packedCapFor(cap: i32, n: i32): i32 {
  while (<i64>n * 4 > <i64>cap * 3) cap <<= 1;
  return cap;
}

/**
 * Room for n records (packedCapFor), so an insertion never allocates.
 * Growing re-spreads every record: true if it did not fail.
 */
export function packedReserve(a: Packed, n: i32): bool {
  const cap = packedCapFor(a.cap, n);
  if (cap == a.cap) return true;
  const recs = kzalloc(<usize>cap << REC_SHIFT);
  if (recs == 0) return false;
  // Record k of m goes to position k * cap / m: gaps after each, none twice as wide as another.
  const m = a.count;
  let t = 0, k = 0;
  for (let i = nextReal(a, 0); i < a.cap; i = nextReal(a, i + 1)) {
    const target = <i32>((<i64>k * cap) / m);
    fillGaps(recs, t, target, k == 0 ? 0 : keyAt(a, i));
    copyRecord(recs + (<usize>target << REC_SHIFT), recAt(a, i));
    t = target + 1;
    k++;
  }
  fillGaps(recs, t, cap, KEY_MAX);
  kfree(a.recs);
  a.recs = recs;
  a.cap = cap;
  return true;
}

/** The last position whose key is <= key, or -1. */
export function packedFloor(a: Packed, key: u64): i32 {
  let lo = 0, hi = a.cap;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keyAt(a, mid) <= key) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

/**
 * packedFloor(key), walking from `hint` when the answer is within
 * FLOOR_WALK positions of it (a few loads on lines the edit touches anyway
 * instead of a search): a slot moved into the hole next to it, or back, lands
 * one position past its old one when a gap there is keyed at its old end.
 */
@inline function floorFrom(a: Packed, key: u64, hint: i32): i32 {
  if (<u32>hint < <u32>a.cap) {
    let i = hint;
    if (keyAt(a, i) <= key) {
      // The last position keyed at or below key is i or after it.
      for (let n = 0; n < FLOOR_WALK; n++) {
        if (i + 1 == a.cap || keyAt(a, i + 1) > key) return i;
        i++;
      }
    } else {
      // It is before i (keys never decrease along the array), or there is none.
      for (let n = 0; n < FLOOR_WALK; n++) {
        if (i == 0) return -1;
        i--;
        if (keyAt(a, i) <= key) return i;
      }
    }
  }
  return packedFloor(a, key);
}

// A new record is built in the thread's staging record (layout.ts), then copied into place.

/**
 * Inserts the record (key, span, aux, slot) (slot not 0; the key must not be
 * inside a real record's range, nor its range hold a real record's key).
 * Needs room (packedReserve). `hint` may name the last position keyed at or
 * below it (checked). Returns its position; touch* say what moved.
 */
export function packedInsert(a: Packed, key: u64, span: u64, aux: u64, slot: u32, hint: i32): i32 {
  const rec = stagedRecord();
  store<u64>(rec, key, REC_KEY);
  store<u64>(rec, span, REC_SPAN);
  store<u64>(rec, aux, REC_AUX);
  store<u64>(rec, <u64>slot, REC_SLOT);
  const p = floorFrom(a, key, hint);
  let at: i32, lo: i32, hi: i32;
  // Past the last position, or before a record at the first: the ends of the
  // array, where ascending and descending creation keep inserting.
  if (p == a.cap - 1 && !isGap(a, p)) return respreadWith(a, a.cap, rec, LAYOUT_PACK_LEFT);
  if (p < 0 && !isGap(a, 0)) return respreadWith(a, 0, rec, LAYOUT_PACK_RIGHT);
  if (p >= 0 && isGap(a, p)) {
    at = lo = hi = p;
  } else if (p + 1 < a.cap && isGap(a, p + 1)) {
    at = lo = hi = p + 1;
  } else {
    let right = -1, left = -1;
    for (let d = 1; d <= LOCAL_REACH; d++) {
      if (p + 1 + d < a.cap && isGap(a, p + 1 + d)) { right = p + 1 + d; break; }
      if (p - d >= 0 && isGap(a, p - d)) { left = p - d; break; }
    }
    if (right >= 0) {
      at = lo = p + 1; hi = right;
    } else if (left >= 0) {
      lo = left; at = hi = p;
    } else {
      return respreadWith(a, p + 1, rec, LAYOUT_EVEN);
    }
  }
  const oldKeyLo = keyAt(a, lo), oldKeyHi = keyAt(a, hi);
  if (at == lo && hi > lo) shiftRecords(a, lo, hi - lo, 1);
  else if (at == hi && hi > lo) shiftRecords(a, lo + 1, hi - lo, -1);
  copyRecord(recAt(a, at), rec);
  return inserted(a, at, lo, hi, oldKeyLo, oldKeyHi);
}

/**
 * The record at `at` came in and positions [lo, hi] were rewritten (their
 * first and last keys were oldKeyLo, oldKeyHi): count it, say what moved, and
 * move gaps right after it that were keyed inside its range to its end.
 */
function inserted(a: Packed, at: i32, lo: i32, hi: i32, oldKeyLo: u64, oldKeyHi: u64): i32 {
  a.count++;
  a.touchLo = lo;
  a.touchHi = hi;
  a.touchKeyLo = oldKeyLo < keyAt(a, lo) ? oldKeyLo : keyAt(a, lo);
  a.touchKeyHi = oldKeyHi > keyAt(a, hi) ? oldKeyHi : keyAt(a, hi);
  const end = endAt(a, at);
  let i = at + 1;
  while (i < a.cap && isGap(a, i) && keyAt(a, i) < end) {
    store<u64>(recAt(a, i), end, REC_KEY);
    i++;
  }
  if (i - 1 > a.touchHi) {
    a.touchHi = i - 1;
    if (end > a.touchKeyHi) a.touchKeyHi = end;
  }
  return at;
}

// How a re-spread window lays its records out.
const LAYOUT_EVEN: i32 = 0;       // evenly: gaps near every record
const LAYOUT_PACK_LEFT: i32 = 1;  // packed at its start: the room after the last record
const LAYOUT_PACK_RIGHT: i32 = 2; // packed at its end: the room before the first record

/**
 * No gap near the insertion point: re-spread the smallest aligned window
 * around it that is not too full, with the new record merged in at its place.
 * Inside the array the limit is 1 - level / (4 * levels) (1 for the smallest
 * window, 3/4 for the whole array) and the layout even. At an end of the
 * array the window must be at most half full and its records are packed away
 * from that end, so a run of appends (or prepends) finds free positions for as
 * many insertions as the re-spread moved records.
 */
function respreadWith(a: Packed, ins: i32, rec: usize, layout: i32): i32 {
  const levels = <i32>(ctz<u32>(<u32>a.cap) - ctz<u32>(<u32>PACKED_MIN));
  let w = PACKED_MIN, level = 0;
  let lo = 0, m = 0;
  for (;;) {
    lo = (ins < a.cap ? ins : a.cap - 1) & ~(w - 1);
    m = 0;
    for (let i = lo; i < lo + w; i++) if (!isGap(a, i)) m++;
    if (w >= a.cap) break;
    if (layout == LAYOUT_EVEN ? <i64>(m + 1) * 4 * levels <= <i64>w * (4 * levels - level) : (m + 1) * 2 <= w) break;
    w <<= 1;
    level++;
  }
  const hi = lo + w;
  const oldKeyLo = keyAt(a, lo), oldKeyHi = keyAt(a, hi - 1);
  const key = load<u64>(rec, REC_KEY);
  // Pack the window's records against its right end, then lay them and the new
  // one out left to right: record k of n goes to lo + k * w / n (even), lo + k
  // or hi - n + k, never past where record k still waits, so nothing is
  // overwritten before it is read.
  let src = hi;
  for (let i = hi - 1; i >= lo; i--) {
    if (isGap(a, i)) continue;
    src--;
    if (src != i) copyRecord(recAt(a, src), recAt(a, i));
  }
  const n = m + 1;
  // Is there a real record before the window? (Else its leading gaps are the array's, keyed 0.)
  let before = false;
  for (let i = lo - 1; i >= 0 && !before; i--) before = !isGap(a, i);
  let t = lo, at = -1;
  for (let k = 0; k < n; k++) {
    const target = layout == LAYOUT_EVEN ? lo + <i32>((<i64>k * w) / n) : layout == LAYOUT_PACK_LEFT ? lo + k : hi - n + k;
    if (at < 0 && (src == hi || keyAt(a, src) > key)) {
      fillGaps(a.recs, t, target, k == 0 && !before ? 0 : key);
      copyRecord(recAt(a, target), rec);
      at = target;
    } else {
      fillGaps(a.recs, t, target, k == 0 && !before ? 0 : keyAt(a, src));
      if (src != target) copyRecord(recAt(a, target), recAt(a, src));
      src++;
    }
    t = target + 1;
  }
  fillGaps(a.recs, t, hi, hi < a.cap ? keyAt(a, hi) : KEY_MAX);
  return inserted(a, at, lo, hi - 1, oldKeyLo, oldKeyHi);
}

/** Turns record i into a gap. Its key stays, so no "last record at or below" changes. */
export function packedRemove(a: Packed, i: i32): void {
  fillGaps(a.recs, i, i + 1, keyAt(a, i));
  a.count--;
}
