// struct kvm_memslots: one set of an address space. The kernel keeps a
// set's slots in two rbtrees and an id hash; here each order is a packed
// array (packed.ts), so an edit moves a few records, not half the set:
//   gfn order  key base_gfn, span npages, aux userspace_addr (translating
//              needs no slot object);
//   hva order  key (userspace_addr >> 12) << 15 | id (unique in a set), span 1,
//              aux the end of the host range, slot field id + 1 (an id outlives
//              the slot objects a FLAGS_ONLY or MOVE replaces, so those leave
//              the hva order alone); hvaMax holds the greatest end
//              per block of 64 positions as a binary tree, so an MMU-notifier
//              range query skips blocks that end below it;
//   ids        16 bytes per id: the slot, and where its gfn and hva records
//              were last put (checked before use). The two sets of an address
//              space interleave theirs (allocSet's partner): one 32-byte line
//              holds an id's entries in both, so an update, which edits the
//              same id in both sets, misses on one line rather than two.
// Its gfn index is gfn_index.ts; editing is kvm_replace_memslot (replace.ts),
// only ever on the inactive set.

import { kzalloc, kfree } from "../kalloc";
import { slotOf, slotEnd, slotHvaEnd, KVM_MEM_SLOTS_NUM } from "./slot";
import { Packed, packedOf, packedAlloc, packedFree, packedReserve, packedInsert, packedRemove, packedFloor,
  packedCapFor, recAt, keyAt, spanAt, slotAt, endAt, isGap, nextReal, REC_AUX, REC_SLOT, PACKED_MIN } from "./packed";
import { PAGE_SHIFT } from "../layout";

@unmanaged export class Memslots {
  // The fields every gfn lookup reads (gfn_index.ts recordAddrFor), first and together.
  /** The gfn index covers [indexBase, indexBase + indexSpan): one unsigned compare tests both ends. */
  indexBase: u64;
  indexSpan: u64;
  /** gfn index: u32[buckets + 1] of record addresses, see gfn_index.ts */
  index: usize;
  /** The gfn order's record array (packedOf(gfn).recs) the index's addresses point into. */
  indexRecs: usize;
  /** Bucket b covers indexBase + [b << indexShift, (b + 1) << indexShift) (a u64: no widening per lookup). */
  indexShift: u64;
  generation: u64;
  /** Packed arrays: the gfn order and the hva order. */
  gfn: usize;
  hva: usize;
  /** u64[2 * hvaBlocks]: node 1 the root, leaf b at hvaBlocks + b. */
  hvaMax: usize;
  hvaBlocks: i32;
  count: i32;
  /** ID_BYTES per id: slot, gfn position hint, hva position hint. */
  ids: usize;
  lastUsedSlot: usize;
  indexBuckets: i32;
  indexCap: i32;
  /** Slot count the gfn index was sized for. */
  indexBuiltFor: i32;
  /** The gfn index must be rebuilt before use. */
  stale: i32;
  idCount: i32;
  /** Edits since the gfn index was last built (replace.ts rebuilds a stale one after enough of them). */
  editsSinceBuild: i32;
  /** The one-bucket index a set falls back to when no bucket array could be allocated (gfn_index.ts). */
  indexInline: u64;
}

export const SET_BYTES: usize = offsetof<Memslots>();
/** Bytes from one id's entries to the next: both sets' 16-byte entries. */
const ID_SHIFT: usize = 5;
const ID_ENTRY_BYTES: usize = 16;
export const ID_GFN_HINT: usize = 4;
export const ID_HVA_HINT: usize = 8;
export const HVA_BLOCK_SHIFT: i32 = 6;
const HVA_ID_BITS: u64 = 15;

@inline export function setOf(p: usize): Memslots {
  return changetype<Memslots>(p);
}
@inline export function gfnOrder(s: Memslots): Packed {
  return packedOf(s.gfn);
}
@inline export function hvaOrder(s: Memslots): Packed {
  return packedOf(s.hva);
}

// The gfn order by position. Positions run to gfnCap; gaps hold no slot (0).
@inline export function gfnCap(s: Memslots): i32 {
  return gfnOrder(s).cap;
}
@inline export function gfnSlotAt(s: Memslots, i: i32): usize {
  return slotAt(gfnOrder(s), i);
}
@inline export function gfnKeyAt(s: Memslots, i: i32): u64 {
  return keyAt(gfnOrder(s), i);
}
@inline export function gfnSpanAt(s: Memslots, i: i32): u64 {
  return spanAt(gfnOrder(s), i);
}
@inline export function gfnEndAt(s: Memslots, i: i32): u64 {
  return endAt(gfnOrder(s), i);
}
@inline export function gfnUaddrAt(s: Memslots, i: i32): u64 {
  return load<u64>(recAt(gfnOrder(s), i), REC_AUX);
}
/** The first slot's position at or after i in gfn order (gfnCap when none): walks skip gaps. */
@inline export function gfnNext(s: Memslots, i: i32): i32 {
  return nextReal(gfnOrder(s), i);
}
@inline export function hvaCap(s: Memslots): i32 {
  return hvaOrder(s).cap;
}
/** The slot of hva record i (0 for a gap): the set's slot of the id the record names. */
@inline export function hvaSlotAt(s: Memslots, i: i32): usize {
  const tag = <u32>slotAt(hvaOrder(s), i);
  return tag == 0 ? 0 : idLookup(s, <i32>(tag - 1));
}
@inline export function hvaEndAt(s: Memslots, i: i32): u64 {
  return load<u64>(recAt(hvaOrder(s), i), REC_AUX);
}
/** Node `node` of the hva block tree: the largest host end below it (leaf b is node hvaBlocks + b). */
@inline export function hvaMaxAt(s: Memslots, node: i32): u64 {
  return load<u64>(s.hvaMax + (<usize>node << 3));
}
@inline function setHvaMax(s: Memslots, node: i32, v: u64): void {
  store<u64>(s.hvaMax + (<usize>node << 3), v);
}
/** The hva order's key: userspace_addr is page aligned and below 2^57, ids fit 15 bits. */
@inline export function hvaKey(uaddr: u64, id: u32): u64 {
  return ((uaddr >> PAGE_SHIFT) << HVA_ID_BITS) | <u64>id;
}
@inline export function idEntry(s: Memslots, id: u32): usize {
  return s.ids + (<usize>id << ID_SHIFT);
}
@inline export function idLookup(s: Memslots, id: i32): usize {
  return <usize>load<u32>(idEntry(s, <u32>id));
}

/**
 * A set with no slots. `partner` 0: it allocates the id table; else the set's
 * ids are the other half of partner's (the address space's other set), which
 * owns the table (freeSet's ownsIds).
 */
export function allocSet(generation: u64, partner: usize = 0): usize {
  const p = kzalloc(SET_BYTES);
  if (p == 0) return 0;
  const s = setOf(p);
  s.ids = partner != 0 ? setOf(partner).ids + ID_ENTRY_BYTES : kzalloc(<usize>KVM_MEM_SLOTS_NUM << ID_SHIFT);
  s.gfn = packedAlloc();
  s.hva = packedAlloc();
  s.hvaBlocks = PACKED_MIN >> HVA_BLOCK_SHIFT;
  s.hvaMax = kzalloc(<usize>s.hvaBlocks << 4);
  if (s.ids == 0 || s.gfn == 0 || s.hva == 0 || s.hvaMax == 0) { freeSet(p, partner == 0); return 0; }
  s.generation = generation;
  s.stale = 1;
  return p;
}

/** Frees a set; the id table too when it owns it (allocated without a partner), so the partner goes first. */
export function freeSet(p: usize, ownsIds: bool): void {
  const s = setOf(p);
  if (ownsIds) kfree(s.ids);
  packedFree(s.gfn);
  packedFree(s.hva);
  kfree(s.hvaMax);
  if (s.indexCap != 0) kfree(s.index);
  kfree(p);
}

/** Makes room for n slots. The only step of an edit that can fail: done before any change. */
export function reserveSet(p: usize, n: i32): bool {
  const s = setOf(p);
  const g = gfnOrder(s), h = hvaOrder(s);
  const gcap = g.cap, hcap = h.cap, grecs = g.recs;
  if (!packedReserve(g, n)) return false;
  // A moved record array (indexRecs) or a grown one: the index is rebuilt before its next use.
  if (g.cap != gcap || g.recs != grecs) s.stale = 1;
  const cap = packedCapFor(hcap, n);
  if (cap == hcap) return true;
  // The block tree for the grown hva order is allocated first, so a failure changes nothing visible.
  const blocks = cap >> HVA_BLOCK_SHIFT;
  const tree = kzalloc(<usize>blocks << 4);
  if (tree == 0) return false;
  if (!packedReserve(h, n)) { kfree(tree); return false; }
  kfree(s.hvaMax);
  s.hvaMax = tree;
  s.hvaBlocks = blocks;
  hvaMaxUpdate(s, 0, h.cap - 1);
  return true;
}

/** The hva record at position i got end e (a record came in): raise its block's maximum and the tree's. */
export function hvaMaxRaise(s: Memslots, i: i32, e: u64): void {
  let node = s.hvaBlocks + (i >> HVA_BLOCK_SHIFT);
  while (node >= 1 && hvaMaxAt(s, node) < e) {
    setHvaMax(s, node, e);
    node >>= 1;
  }
}

/** Recomputes the hva block maxima over positions [lo, hi] and the tree above them. */
export function hvaMaxUpdate(s: Memslots, lo: i32, hi: i32): void {
  const h = hvaOrder(s);
  const nb = s.hvaBlocks;
  for (let b = lo >> HVA_BLOCK_SHIFT; b <= hi >> HVA_BLOCK_SHIFT; b++) {
    let m: u64 = 0;
    const end = (b + 1) << HVA_BLOCK_SHIFT;
    for (let i = b << HVA_BLOCK_SHIFT; i < end; i++) {
      if (!isGap(h, i)) {
        const e = load<u64>(recAt(h, i), REC_AUX);
        if (e > m) m = e;
      }
    }
    let node = nb + b;
    setHvaMax(s, node, m);
    while (node > 1) {
      node >>= 1;
      setHvaMax(s, node, max(hvaMaxAt(s, node << 1), hvaMaxAt(s, (node << 1) + 1)));
    }
  }
}
