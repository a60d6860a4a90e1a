// gfn -> slot and hva -> slots.
//
// gfn search: the set's gfn order through its bucket index (gfn_index.ts:
// recordFor names the one or two candidate records).
//
// hva search: the hva order sorted by (userspace_addr, id) with a tree of
// per-block maxima of the hva ends: a range query visits the blocks below
// the range end whose maximum reaches into the range.

import { Memslots, setOf, gfnKeyAt, gfnEndAt, gfnSlotAt, gfnCap,
  hvaOrder, hvaSlotAt, hvaEndAt, hvaKey, hvaMaxAt, HVA_BLOCK_SHIFT } from "./set";
import { slotOf } from "./slot";
import { packedFloor, isGap, REC_KEY, REC_SPAN, REC_AUX, REC_SLOT } from "./packed";
import { recordFor, recordAddrFor, refreshSet } from "./gfn_index";
import { PAGE_SHIFT, PAGE_MASK } from "../layout";

/** Whether the record at r holds gfn: one compare covers both ends, and a gap (span 0) holds nothing. */
@inline function holds(r: usize, gfn: u64): bool {
  return gfn - load<u64>(r, REC_KEY) < load<u64>(r, REC_SPAN);
}

/** search_memslots: the slot containing gfn, or 0. INVALID slots are found too. */
export function searchMemslots(p: usize, gfn: u64): usize {
  const s = setOf(p);
  refreshSet(s);
  const r = recordAddrFor(s, gfn);
  return holds(r, gfn) ? <usize>load<u32>(r, REC_SLOT) : 0;
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
  const r = recordAddrFor(setOf(p), gfn);
  const off = gfn - load<u64>(r, REC_KEY);
  return off < load<u64>(r, REC_SPAN) ? load<u64>(r, REC_AUX) + (off << PAGE_SHIFT) : 0;
}

/**
 * The first position in gfn order that ends above gfn (gfnCap when none).
 * Walks from there while keys are below a range's end meet every slot
 * intersecting the range (skipping gaps) and stop at the first key past it,
 * without walking the gaps beyond.
 */
export function firstEndingAfter(s: Memslots, gfn: u64): i32 {
  // Positions before the last one keyed at or below gfn all end at or below it.
  if (s.stale == 0 && gfn - s.indexBase < s.indexSpan) {
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
