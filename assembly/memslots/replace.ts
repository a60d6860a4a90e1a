// kvm_replace_memslot: edits a set (only ever the inactive one) by moving a
// few records of its packed orders and repairing the gfn index and the hva
// block maxima they touch.

import { Memslots, setOf, gfnOrder, hvaOrder, gfnCap, gfnSlotAt, hvaCap, hvaKey, hvaMaxAt, idEntry, hvaMaxRaise,
  hvaMaxUpdate, ID_GFN_HINT, ID_HVA_HINT, HVA_BLOCK_SHIFT } from "./set";
import { slotOf, slotEnd, slotHvaEnd } from "./slot";
import { packedInsert, packedRemove, packedFloor, recAt, slotAt, REC_SLOT } from "./packed";
import { recordFor, gfnIndexTouched, refreshSet } from "./gfn_index";

/** Where slot p's gfn record is (p must be in the set): its hint, the gfn index when current, or a search. */
function gfnIndexOfSlot(s: Memslots, p: usize): i32 {
  const h = load<i32>(idEntry(s, slotOf(p).id), ID_GFN_HINT);
  if (h < gfnCap(s) && gfnSlotAt(s, h) == p) return h;
  const base = slotOf(p).baseGfn;
  if (s.stale == 0) {
    const i = recordFor(s, base);
    if (i >= 0 && gfnSlotAt(s, i) == p) return i;
  }
  return packedFloor(gfnOrder(s), base);
}

/** Where slot p's hva record is (p must be in the set). */
function hvaIndexOf(s: Memslots, p: usize): i32 {
  const h = load<i32>(idEntry(s, slotOf(p).id), ID_HVA_HINT);
  if (<u32>h < <u32>hvaCap(s) && slotAt(hvaOrder(s), h) == <usize>slotOf(p).id + 1) return h;
  return packedFloor(hvaOrder(s), hvaKey(slotOf(p).userspaceAddr, slotOf(p).id));
}

/**
 * Reads (and so starts the cache misses of) what replacing id's slot in set p
 * edits: the gfn record, and with `hva` the hva record, where id's entry says
 * they were last put. A caller reads them for every set of the update at its
 * start, so the misses overlap instead of coming one after another deep in the
 * update. A stale hint reads some other record (in bounds); nothing is used.
 */
export function touchForReplace(p: usize, id: u32, hva: bool): u64 {
  const s = setOf(p);
  const e = idEntry(s, id);
  let v = load<u64>(recAt(gfnOrder(s), load<i32>(e, ID_GFN_HINT) & (gfnCap(s) - 1)));
  if (hva) v += load<u64>(recAt(hvaOrder(s), load<i32>(e, ID_HVA_HINT) & (hvaCap(s) - 1)));
  return v;
}

/** Inserts slot p's gfn record; `hint` may be where its key falls (see packedInsert). */
function gfnInsert(s: Memslots, p: usize, hint: i32): void {
  const x = slotOf(p);
  const at = packedInsert(gfnOrder(s), x.baseGfn, x.npages, x.userspaceAddr, <u32>p, hint);
  store<i32>(idEntry(s, x.id), at, ID_GFN_HINT);
  gfnIndexTouched(s, x.baseGfn, slotEnd(x));
}

function hvaInsert(s: Memslots, p: usize): void {
  const x = slotOf(p);
  const h = hvaOrder(s);
  const at = packedInsert(h, hvaKey(x.userspaceAddr, x.id), 1, slotHvaEnd(x), x.id + 1, load<i32>(idEntry(s, x.id), ID_HVA_HINT));
  store<i32>(idEntry(s, x.id), at, ID_HVA_HINT);
  // Records that moved take their ends along into other blocks; one written in place only raises.
  if (h.touchHi > h.touchLo) hvaMaxUpdate(s, h.touchLo, h.touchHi);
  else hvaMaxRaise(s, at, slotHvaEnd(x));
}

/**
 * kvm_replace_memslot: replaces old by new (either may be 0) in set p.
 * The set must have room (reserveSet) for an insertion.
 */
export function replaceMemslot(p: usize, old: usize, nw: usize): void {
  const s = setOf(p);
  // Without vCPUs no lookup rebuilds a stale gfn index, and then every edit
  // and overlap check binary-searches the whole gfn order. The writer owns
  // the inactive set, so it rebuilds it here, once an eighth of the set's
  // slots have been edited since the last build: a run of appends (each one
  // leaves the indexed span) pays O(1) per edit for it, not O(n).
  if (s.stale != 0 && s.editsSinceBuild >= s.count >> 3) refreshSet(s);
  s.editsSinceBuild++;
  if (old != 0) {
    store<u32>(idEntry(s, slotOf(old).id), 0);
    s.idCount--;
    if (s.lastUsedSlot == old) s.lastUsedSlot = nw;
    if (nw == 0) {
      const h = hvaIndexOf(s, old);
      packedRemove(hvaOrder(s), h);
      // Only the block's largest end leaving changes the maxima.
      if (slotHvaEnd(slotOf(old)) >= hvaMaxAt(s, s.hvaBlocks + (h >> HVA_BLOCK_SHIFT))) hvaMaxUpdate(s, h, h);
      // A gap keeps its key, so the gfn index stays current.
      packedRemove(gfnOrder(s), gfnIndexOfSlot(s, old));
      s.count--;
      return;
    }
  }
  const n = slotOf(nw);
  store<u32>(idEntry(s, n.id), <u32>nw);
  s.idCount++;
  if (old == 0) {
    hvaInsert(s, nw);
    // The id's last gfn position: right when a slot comes back where it was deleted.
    gfnInsert(s, nw, load<i32>(idEntry(s, n.id), ID_GFN_HINT));
    s.count++;
    return;
  }
  // userspace_addr, npages and id never change for an existing slot (kvm/set_memory_region.ts
  // rejects it; the debug build's set check would catch a slip), so the hva
  // record, which names the id, stays as it is; a MOVE re-inserts the gfn
  // record at its new key.
  const i = gfnIndexOfSlot(s, old);
  if (n.baseGfn == slotOf(old).baseGfn) {
    store<u32>(recAt(gfnOrder(s), i), <u32>nw, REC_SLOT);
    store<i32>(idEntry(s, n.id), i, ID_GFN_HINT);
    return;
  }
  packedRemove(gfnOrder(s), i);
  gfnInsert(s, nw, i);
}
