// struct kvm_memslots: one set of an address space. Slots are kept in two
// sorted arrays, by base_gfn (for gfn search and ordered iteration) and by
// userspace_addr (for MMU-notifier hva lookups), plus an id map. Editing is
// kvm_replace_memslot: only ever on the inactive set (update.ts).
//
// The gfn array holds 32-byte records, so a search touches one cache line per
// candidate and translating needs no slot object:
//   0 base_gfn  8 end gfn  16 userspace_addr  24 slot  28 (pad)
// The hva array holds slot pointers (4 bytes each: inserts and deletes shift
// it, so it stays small); both arrays keep a per-id hint of where a slot's
// entries are, so replacing a slot in place does not search.

import { kzalloc, kfree } from "../kalloc";
import { slotOf, slotEnd, KVM_MEM_SLOTS_NUM } from "./slot";
import { recordFor } from "../search";

@unmanaged export class Memslots {
  generation: u64;
  /** Smallest base_gfn and largest end covered by the gfn index (search.ts). */
  indexBase: u64;
  indexLimit: u64;
  count: i32;
  cap: i32;
  /** u32[KVM_MEM_SLOTS_NUM]: id -> slot */
  idMap: usize;
  /** u32[2 * KVM_MEM_SLOTS_NUM]: id -> where its gfn and hva records were last put (checked before use) */
  posHint: usize;
  /** GFN_REC_BYTES records sorted by base_gfn */
  gfnRecs: usize;
  /** u32[cap] slots sorted by (userspace_addr, id); u64[cap] running max of hva end */
  hvaSlots: usize;
  hvaMaxEnd: usize;
  lastUsedSlot: usize;
  /** gfn index: u32[buckets + 1] of predecessor positions, see search.ts */
  index: usize;
  indexBuckets: i32;
  indexCap: i32;
  indexShift: i32;
  /** Derived data (gfn index, hva running max) must be rebuilt before use. */
  stale: i32;
  idCount: i32;
}

export const SET_BYTES: usize = offsetof<Memslots>();
export const GFN_REC_SHIFT: usize = 5;
export const GFN_REC_BYTES: usize = 1 << GFN_REC_SHIFT;
export const HVA_REC_SHIFT: usize = 2;

@inline export function setOf(p: usize): Memslots {
  return changetype<Memslots>(p);
}

@inline export function gfnRecAt(s: Memslots, i: i32): usize {
  return s.gfnRecs + (<usize>i << GFN_REC_SHIFT);
}
@inline export function gfnSlotAt(s: Memslots, i: i32): usize {
  return <usize>load<u32>(gfnRecAt(s, i), 24);
}
@inline export function gfnKeyAt(s: Memslots, i: i32): u64 {
  return load<u64>(gfnRecAt(s, i));
}
@inline export function gfnEndAt(s: Memslots, i: i32): u64 {
  return load<u64>(gfnRecAt(s, i), 8);
}
@inline export function gfnUaddrAt(s: Memslots, i: i32): u64 {
  return load<u64>(gfnRecAt(s, i), 16);
}
@inline export function hvaRecAt(s: Memslots, i: i32): usize {
  return s.hvaSlots + (<usize>i << HVA_REC_SHIFT);
}
@inline export function hvaSlotAt(s: Memslots, i: i32): usize {
  return <usize>load<u32>(hvaRecAt(s, i));
}
@inline export function idLookup(s: Memslots, id: i32): usize {
  return <usize>load<u32>(s.idMap + (<usize>id << 2));
}

export function allocSet(generation: u64): usize {
  const p = kzalloc(SET_BYTES);
  if (p == 0) return 0;
  const s = setOf(p);
  s.idMap = kzalloc(<usize>KVM_MEM_SLOTS_NUM << 2);
  s.posHint = kzalloc(<usize>KVM_MEM_SLOTS_NUM << 3);
  if (s.idMap == 0 || s.posHint == 0) { kfree(s.idMap); kfree(s.posHint); kfree(p); return 0; }
  s.generation = generation;
  return p;
}

export function freeSet(p: usize): void {
  const s = setOf(p);
  kfree(s.idMap);
  kfree(s.posHint);
  kfree(s.gfnRecs);
  kfree(s.hvaSlots); kfree(s.hvaMaxEnd);
  kfree(s.index);
  kfree(p);
}

/** Makes room for n slots. The only step of an edit that can fail: done before any change. */
export function reserveSet(p: usize, n: i32): bool {
  const s = setOf(p);
  if (n <= s.cap) return true;
  let cap = s.cap < 8 ? 8 : s.cap * 2;
  while (cap < n) cap *= 2;
  const r = kzalloc(<usize>cap << GFN_REC_SHIFT);
  const h = kzalloc(<usize>cap << HVA_REC_SHIFT), m = kzalloc(<usize>cap << 3);
  if (r == 0 || h == 0 || m == 0) {
    kfree(r); kfree(h); kfree(m);
    return false;
  }
  const c = <usize>s.count;
  if (c != 0) {
    memory.copy(r, s.gfnRecs, c << GFN_REC_SHIFT);
    memory.copy(h, s.hvaSlots, c << HVA_REC_SHIFT);
  }
  kfree(s.gfnRecs); kfree(s.hvaSlots); kfree(s.hvaMaxEnd);
  s.gfnRecs = r; s.hvaSlots = h; s.hvaMaxEnd = m;
  s.cap = cap;
  s.stale = 1;
  return true;
}

/** Position of the slot with this base_gfn in the gfn array (base_gfns are unique in a set). */
export function gfnPosition(s: Memslots, baseGfn: u64): i32 {
  let lo = 0, hi = s.count;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (gfnKeyAt(s, mid) < baseGfn) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Position where slot p sits (or would sit) in the hva array: by (userspace_addr, id). */
function hvaPosition(s: Memslots, p: usize): i32 {
  const uaddr = slotOf(p).userspaceAddr, id = slotOf(p).id;
  let lo = 0, hi = s.count;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const m = slotOf(hvaSlotAt(s, mid));
    if (m.userspaceAddr < uaddr || (m.userspaceAddr == uaddr && m.id < id)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function gfnRemove(s: Memslots, i: i32): void {
  memory.copy(gfnRecAt(s, i), gfnRecAt(s, i + 1), <usize>(s.count - i - 1) << GFN_REC_SHIFT);
}

function writeRec(rec: usize, p: usize): void {
  const x = slotOf(p);
  store<u64>(rec, x.baseGfn);
  store<u64>(rec, slotEnd(x), 8);
  store<u64>(rec, x.userspaceAddr, 16);
  store<u32>(rec, <u32>p, 24);
}

/** Inserts slot p's record at its base_gfn position (s.count does not include p yet). */
function gfnInsert(s: Memslots, p: usize): void {
  const at = gfnPosition(s, slotOf(p).baseGfn);
  memory.copy(gfnRecAt(s, at + 1), gfnRecAt(s, at), <usize>(s.count - at) << GFN_REC_SHIFT);
  writeRec(gfnRecAt(s, at), p);
  setHint(s, p, 0, at);
}

// Position hints: an edit elsewhere shifts records, so a hint is only used
// after checking that the record there is still the slot's.
// @ts-ignore: decorator
@inline function hintAt(s: Memslots, p: usize, hva: i32): usize {
  return s.posHint + (<usize>slotOf(p).id << 3) + (<usize>hva << 2);
}
// @ts-ignore: decorator
@inline function setHint(s: Memslots, p: usize, hva: i32, i: i32): void {
  store<i32>(hintAt(s, p, hva), i);
}

/** Index of slot p in the hva array (p must be there; (userspace_addr, id) is unique). */
function hvaIndexOf(s: Memslots, p: usize): i32 {
  const h = load<i32>(hintAt(s, p, 1));
  if (h < s.count && hvaSlotAt(s, h) == p) return h;
  return hvaPosition(s, p);
}

/** Index of slot p in the gfn array (p must be there): its hint, the gfn index when current, or a search. */
function gfnIndexOfSlot(s: Memslots, p: usize): i32 {
  const h = load<i32>(hintAt(s, p, 0));
  if (h < s.count && gfnSlotAt(s, h) == p) return h;
  const base = slotOf(p).baseGfn;
  if (s.stale == 0) {
    const i = recordFor(s, base);
    if (i >= 0 && gfnKeyAt(s, i) == base) return i;
  }
  return gfnPosition(s, base);
}

function hvaRemove(s: Memslots, p: usize): void {
  const i = hvaIndexOf(s, p);
  memory.copy(hvaRecAt(s, i), hvaRecAt(s, i + 1), <usize>(s.count - i - 1) << HVA_REC_SHIFT);
}

/** Inserts slot p at its (userspace_addr, id) position (s.count does not include p yet). */
function hvaInsert(s: Memslots, p: usize): void {
  const at = hvaPosition(s, p);
  memory.copy(hvaRecAt(s, at + 1), hvaRecAt(s, at), <usize>(s.count - at) << HVA_REC_SHIFT);
  store<u32>(hvaRecAt(s, at), <u32>p);
  setHint(s, p, 1, at);
}

/**
 * kvm_replace_memslot: replaces old by new (either may be 0) in set p.
 * The set must have room (reserveSet) for an insertion.
 */
export function replaceMemslot(p: usize, old: usize, nw: usize): void {
  const s = setOf(p);
  if (old != 0) {
    store<u32>(s.idMap + (<usize>slotOf(old).id << 2), 0);
    s.idCount--;
    if (s.lastUsedSlot == old) s.lastUsedSlot = nw;
    if (nw == 0) {
      hvaRemove(s, old);
      gfnRemove(s, gfnIndexOfSlot(s, old));
      s.count--;
      s.stale = 1;
      return;
    }
  }
  const n = slotOf(nw);
  store<u32>(s.idMap + (<usize>n.id << 2), <u32>nw);
  s.idCount++;
  if (old == 0) {
    hvaInsert(s, nw);
    gfnInsert(s, nw);
    s.count++;
  } else {
    // userspace_addr and id never change for an existing slot (region.ts
    // rejects it; the debug build's set check would catch a slip), so nw takes
    // old's place in the hva order; a MOVE shifts only the records between the
    // old and the new gfn position. A change in place (flags only) moves
    // nothing, so the derived search data stays valid.
    const h = hvaIndexOf(s, old);
    store<u32>(hvaRecAt(s, h), <u32>nw);
    setHint(s, nw, 1, h);
    const i = gfnIndexOfSlot(s, old);
    if (slotOf(nw).baseGfn == slotOf(old).baseGfn && slotOf(nw).npages == slotOf(old).npages) {
      store<u32>(gfnRecAt(s, i), <u32>nw, 24);
      setHint(s, nw, 0, i);
      return;
    }
    gfnMove(s, i, nw);
  }
  s.stale = 1;
}


/** Rewrites record i for slot nw, moving it to its place in base_gfn order. */
function gfnMove(s: Memslots, i: i32, nw: usize): void {
  const base = slotOf(nw).baseGfn;
  // k: how many records other than i have a smaller base_gfn, i.e. the final position.
  const c = gfnPosition(s, base);
  const k = i < c ? c - 1 : c;
  if (k > i) memory.copy(gfnRecAt(s, i), gfnRecAt(s, i + 1), <usize>(k - i) << GFN_REC_SHIFT);
  else if (k < i) memory.copy(gfnRecAt(s, k + 1), gfnRecAt(s, k), <usize>(i - k) << GFN_REC_SHIFT);
  writeRec(gfnRecAt(s, k), nw);
  setHint(s, nw, 0, k);
}
