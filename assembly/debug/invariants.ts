// The debug core's checks of what the kernel's WARN_ON_ONCEs assume. Compiled
// in only when WEBKVM_DEBUG (asconfig debug target); the release build drops
// them. A violation aborts: the host sees a trap naming the invariant.

import { Vm, Vcpu, memslotSet, activeSet, vcpuAt, vcpuOf, gfnToHvaMemslot, mmuLock, mmuUnlock } from "../kvm/kvm_host";
import { mmapLock, mmapUnlock } from "../hostmm/mmap_lock";
import { threadId, mutexUnlock } from "../threads";
import { Memslots, setOf, gfnSlotAt, gfnKeyAt, gfnSpanAt, gfnUaddrAt, gfnCap, gfnNext, gfnOrder, hvaOrder, hvaSlotAt,
  hvaEndAt, hvaKey, hvaMaxAt, idLookup, HVA_BLOCK_SHIFT } from "../memslots/set";
import { keyAt, isGap, recAt } from "../memslots/packed";
import { slotOf, slotEnd, slotHvaEnd, slotGfnToHva, KVM_MEMSLOT_INVALID, KVM_MEM_LOG_DIRTY_PAGES } from "../memslots/slot";
import { searchMemslots } from "../memslots/search";
import { recordFor } from "../memslots/gfn_index";
import { SPT_VCPU_BYTES, SPTE_BYTES, SPTE_FLAGS, SPTE_OWNER, SPTE_GFN, SPTE_ADDEND, SPTE_WRITE_TAG, SPTE_RMAP_NEXT,
  SPTE_F_PRESENT, NO_TAG, SPTE_READ_TAG, SPTE_FETCH_TAG, SPT_TABLE_BYTES, SPTE_SHIFT, SPT_INDEX_MASK } from "../mmu/spte";
import { SlotArch } from "../mmu/rmap";
import { trackCount } from "../mmu/page_track";
import { writableHas, forEachWritable } from "../mmu/writable";
import { hvaFrameNoFault, hvaProt, PROT_WRITE } from "../hostmm/mm";
import { gmemServes, gmemFrameNoFault } from "../gmem/fault";
import { gpcOf, INVALID_GPA } from "../pfncache";
import { gfnToMemslotInSet } from "../memslots/search";
import { PAGE_SHIFT, PAGE_MASK } from "../layout";
import { BITMAP_ALIGN } from "../dirty/bitmap";

export const WARN_GEN_IN_PROGRESS: i32 = 1;
export const WARN_MN_ACTIVE_DURING_SWAP: i32 = 2;

export function warn(code: i32, cond: bool): void {
  if (WEBKVM_DEBUG && cond) {
    if (code == WARN_GEN_IN_PROGRESS) abort("WARN: swap found the active generation already in progress");
    else abort("WARN: memslot swap with an MMU-notifier invalidation in flight");
  }
}

/**
 * Memslot updates check every invariant after each edit (checkAfterUpdate). A
 * test that builds tens of thousands of slots may ask for a check every
 * `stride` edits instead (debugInvariantStride) and run the full check itself
 * at the points it cares about (debugCheckInvariants): a full check is linear
 * in the slots, so one per edit makes the build quadratic.
 */
let updateStride: u32 = 1;
let updatesUnchecked: u32 = 0;

export function setUpdateStride(stride: u32): void {
  updateStride = stride == 0 ? 1 : stride;
  updatesUnchecked = 0;
}

/** After a memslot update (or its revert): the full check, every updateStride-th time. */
export function checkAfterUpdate(vm: Vm): void {
  if (!WEBKVM_DEBUG) return;
  if (++updatesUnchecked < updateStride) return;
  updatesUnchecked = 0;
  checkVmInvariants(vm);
}

function check(cond: bool, what: string): void {
  if (!cond) abort("invariant violated: " + what);
}

function checkSet(vm: Vm, p: usize, asId: u32): void {
  const s = setOf(p);
  const g = gfnOrder(s), h = hvaOrder(s);
  let n = 0;
  let prevKey: u64 = 0, prevEnd: u64 = 0;
  for (let i = 0; i < g.cap; i++) {
    const key = gfnKeyAt(s, i);
    check(key >= prevKey, "gfn order keys decrease");
    check(key >= prevEnd, "gfn order: a record starts inside the one before (overlap, or a gap keyed too low)");
    prevKey = key;
    const x = gfnSlotAt(s, i);
    if (x == 0) {
      check(gfnSpanAt(s, i) == 0 && gfnUaddrAt(s, i) == 0, "gfn order gap holds a range");
      continue;
    }
    n++;
    const sl = slotOf(x);
    check(sl.asId == asId, "slot in the set of another address space");
    check(sl.npages != 0, "slot with npages == 0");
    check(key == sl.baseGfn && gfnSpanAt(s, i) == sl.npages && gfnUaddrAt(s, i) == sl.userspaceAddr,
      "gfn record out of date");
    check(idLookup(s, <i32>sl.id) == x, "id map does not point at the slot");
    prevEnd = slotEnd(sl);
    if (s.stale == 0) check(recordFor(s, key) == i, "gfn index marked current but does not find a record");
  }
  check(n == s.count && n == g.count && n == s.idCount, "slot count differs between gfn order, set and id map");
  let m = 0;
  prevKey = 0;
  for (let i = 0; i < h.cap; i++) {
    const key = keyAt(h, i);
    check(key >= prevKey, "hva order keys decrease");
    prevKey = key;
    if (isGap(h, i)) continue;
    m++;
    const x = hvaSlotAt(s, i);
    check(x != 0, "hva order names an id the set lacks");
    const sl = slotOf(x);
    check(key == hvaKey(sl.userspaceAddr, sl.id) && hvaEndAt(s, i) == slotHvaEnd(sl), "hva record out of date");
  }
  check(m == n && h.count == n, "hva order and gfn order disagree on the slot count");
  checkHvaMax(s);
  if (s.stale == 0) checkGfnIndex(s);
  const last = s.lastUsedSlot;
  if (last != 0) check(idLookup(s, <i32>slotOf(last).id) == last, "last_used_slot points at a slot outside the set");
}

/** Each hva block's maximum end is its records' and each tree node the larger of its children. */
function checkHvaMax(s: Memslots): void {
  const h = hvaOrder(s);
  check(s.hvaBlocks << HVA_BLOCK_SHIFT == h.cap, "hva block tree sized for another capacity");
  for (let b = 0; b < s.hvaBlocks; b++) {
    let mx: u64 = 0;
    for (let i = b << HVA_BLOCK_SHIFT; i < (b + 1) << HVA_BLOCK_SHIFT; i++) {
      if (hvaSlotAt(s, i) != 0 && hvaEndAt(s, i) > mx) mx = hvaEndAt(s, i);
    }
    check(hvaMaxAt(s, s.hvaBlocks + b) == mx, "hva block maximum out of date");
  }
  for (let node = s.hvaBlocks - 1; node >= 1; node--) {
    check(hvaMaxAt(s, node) == max(hvaMaxAt(s, 2 * node), hvaMaxAt(s, 2 * node + 1)), "hva block tree node out of date");
  }
}

/** A current gfn index holds, for every bucket, the last position keyed at or below its start (0: none). */
function checkGfnIndex(s: Memslots): void {
  check(s.indexRecs == gfnOrder(s).recs, "gfn index reads a record array the gfn order no longer uses");
  // (a current index may outlive its last slot: deletions leave it, and the span then holds only gaps)
  check((gfnOrder(s).count == 0 || s.indexSpan != 0) && (s.indexBuckets == 0) == (s.indexSpan == 0),
    "gfn index: a set with slots and no span, or a span without buckets");
  if (s.indexBuckets == 0) return;
  let pos = 0;
  for (let b = 0; b <= s.indexBuckets; b++) {
    const start = s.indexBase + (<u64>b << s.indexShift);
    while (pos + 1 < gfnCap(s) && gfnKeyAt(s, pos + 1) <= start) pos++;
    check(load<u32>(s.index + (<usize>b << 2)) == <u32>recAt(gfnOrder(s), pos), "gfn index bucket out of date");
  }
}

/** After every memslot update: both sets of every address space agree and are well formed. */
export function checkVmInvariants(vm: Vm): void {
  if (!WEBKVM_DEBUG) return;
  let pages: u64 = 0;
  let logging: u32 = 0;
  for (let as: u32 = 0; as < vm.nrAs; as++) {
    const a = memslotSet(vm, as, 0), b = memslotSet(vm, as, 1);
    checkSet(vm, a, as);
    checkSet(vm, b, as);
    const sa = setOf(a), sb = setOf(b);
    check(sa.count == sb.count, "active and inactive sets differ after an update");
    for (let i = gfnNext(sa, 0), j = gfnNext(sb, 0); i < gfnCap(sa); i = gfnNext(sa, i + 1), j = gfnNext(sb, j + 1)) {
      check(gfnSlotAt(sa, i) == gfnSlotAt(sb, j), "active and inactive sets hold different slot objects");
      const sl = slotOf(gfnSlotAt(sa, i));
      check((sl.flags & KVM_MEMSLOT_INVALID) == 0, "INVALID slot left behind by an update");
      check(((sl.flags & KVM_MEM_LOG_DIRTY_PAGES) != 0) == (sl.dirtyBitmap != 0) || vm.dirtyRingSize != 0,
        "dirty bitmap present exactly when logging (bitmap mode)");
      check((sl.dirtyBitmap & (BITMAP_ALIGN - 1)) == 0, "dirty bitmap not on a cache line (dirty/bitmap.ts)");
      pages += sl.npages;
      if (sl.flags & KVM_MEM_LOG_DIRTY_PAGES) logging++;
    }
    // The search structure agrees with the slot list: both ends of every slot are found.
    const act = activeSet(vm, as);
    for (let i = gfnNext(setOf(act), 0); i < gfnCap(setOf(act)); i = gfnNext(setOf(act), i + 1)) {
      const x = gfnSlotAt(setOf(act), i);
      check(searchMemslots(act, slotOf(x).baseGfn) == x && searchMemslots(act, slotEnd(slotOf(x)) - 1) == x,
        "gfn search does not find a slot of the set");
    }
    const gen = setOf(activeSet(vm, as)).generation;
    check((as == 0 ? vm.liveGen0 : vm.liveGen1) == gen, "mirrored live generation differs from the active set's");
    check((gen >> 63) == 0, "active generation still in progress after an update");
    check(gen % <u64>vm.nrAs == <u64>as, "generation not congruent to its address space");
    const seen = as == 0 ? vm.genSeen0 : vm.genSeen1;
    check(gen >= seen, "generation went backwards");
    if (as == 0) vm.genSeen0 = gen; else vm.genSeen1 = gen;
  }
  check(pages == vm.nrMemslotPages, "nr_memslot_pages differs from the slots' pages");
  check(logging == vm.nrMemslotsDirtyLogging, "nr_memslots_dirty_logging differs from the slots' flags");
  checkMmuInvariants(vm);
  for (let i: u32 = 0; i < vm.createdVcpus; i++) {
    const v = vcpuOf(vcpuAt(vm, i));
    // Threads build: a vCPU's cache is its own thread's; look only while holding
    // its vcpu->mutex, and skip it when another thread is in an ioctl of it.
    const p = vcpuAt(vm, i);
    if (WEBKVM_THREADS && v.mutexOwner != threadId) {
      if (atomic.cmpxchg<i32>(p + offsetof<Vcpu>("mutex"), 0, 1) != 0) continue;
      checkVcpuCache(vm, v);
      mutexUnlock(p + offsetof<Vcpu>("mutex"));
      continue;
    }
    checkVcpuCache(vm, v);
  }
}

function checkVcpuCache(vm: Vm, v: Vcpu): void {
  const cached = v.lastUsedSlot;
  if (cached == 0) {
    check(v.lastNpages == 0 && v.lastHvaNpages == 0, "per-vCPU last-used window is not empty without a slot");
    return;
  }
  const gen = setOf(activeSet(vm, v.asId)).generation;
  // (The threads build leaves windows open and compares the generation on every lookup instead.)
  check(WEBKVM_THREADS || v.lastNpages == 0 || v.lastUsedSlotGen == gen, "per-vCPU last-used window open under an old generation");
  if (v.lastUsedSlotGen != gen) return; // dropped on next use
  check(v.lastBase == slotOf(cached).baseGfn && v.lastNpages == slotOf(cached).npages &&
    v.lastUaddr == slotOf(cached).userspaceAddr &&
    v.lastHvaNpages == ((slotOf(cached).flags & KVM_MEMSLOT_INVALID) != 0 ? 0 : v.lastNpages),
    "per-vCPU last-used window differs from its slot's");
  check(idLookup(setOf(activeSet(vm, v.asId)), <i32>slotOf(cached).id) == cached,
    "per-vCPU last_used_slot of the current generation points at a dead slot");
}

/** A present spte of slot: its gfn lies in the slot and it maps the frame the slot's hva (or guest_memfd) holds now. */
function checkSpte(vm: Vm, slot: usize, e: usize): void {
  const sl = slotOf(slot);
  const gfn = load<u64>(e + SPTE_GFN);
  check(gfn >= sl.baseGfn && gfn < slotEnd(sl), "spte gfn outside its slot");
  const hva = slotGfnToHva(sl, gfn);
  const frame = gmemServes(vm, slot, gfn) ? gmemFrameNoFault(slot, gfn) : hvaFrameNoFault(hva);
  check(frame != 0, "spte maps a page whose hva has no frame (missed invalidation)");
  if (load<u64>(e + SPTE_WRITE_TAG) != NO_TAG) {
    const tag = load<u64>(e + SPTE_WRITE_TAG);
    check(<usize>((tag & ~PAGE_MASK) + load<u64>(e + SPTE_ADDEND)) == frame, "writable spte into a stale frame");
    check(gmemServes(vm, slot, gfn) || (hvaProt(hva) >= 0 && (<u32>hvaProt(hva) & PROT_WRITE) != 0),
      "writable spte for an hva the host cannot write (missed mprotect invalidation)");
    check(trackCount(slot, gfn) == 0, "writable spte for a write-tracked gfn");
    if (sl.dirtyBitmap != 0 && (sl.flags & KVM_MEM_LOG_DIRTY_PAGES) != 0) {
      const rel = gfn - sl.baseGfn;
      check((load<u64>(sl.dirtyBitmap + <usize>((rel >> 6) << 3)) & (<u64>1 << (rel & 63))) != 0,
        "writable spte for a logged page whose dirty bit is clear");
    }
    if (vm.dirtyRingSize != 0)
      check(writableHas(sl.arch, gfn), "writable spte whose gfn is not recorded writable (a refill would log it again)");
  }
}

let recordSlot: usize = 0;
let recorded: u32 = 0;
function checkRecorded(gfn: u64, ctx: usize): void {
  const sl = slotOf(recordSlot);
  check(gfn >= sl.baseGfn && gfn < slotEnd(sl), "gfn recorded writable outside its slot");
  recorded++;
}

/**
 * Shadow MMU and pfn caches: every present spte is on the rmap of a live slot
 * and vice versa, maps a gfn of that slot to the frame its hva maps now, is
 * writable only if the gfn is not write-tracked and (bitmap logging) its dirty
 * bit is set or (ring) it is recorded writable (mmu/writable.ts); every valid
 * pfn cache holds the frame its hva maps now.
 */
export function checkMmuInvariants(vm: Vm): void {
  if (!WEBKVM_DEBUG) return;
  // Threads build: running vCPUs install sptes meanwhile; look under their locks
  // (mmap_lock first: the order the MMU notifiers take them in).
  mmapLock();
  mmuLock(vm);
  checkMmuLocked(vm);
  mmuUnlock(vm);
  mmapUnlock();
}

function checkMmuLocked(vm: Vm): void {
  let present = 0;
  for (let i: u32 = 0; i < vm.createdVcpus; i++) {
    const t = vcpuOf(vcpuAt(vm, i)).sptTables;
    if (t == 0) continue;
    for (let e = t; e < t + SPT_VCPU_BYTES; e += SPTE_BYTES) {
      // Translated code's probe relies on it: a tag's page has its entry's index (so a match rules out a page crossing).
      const index = <u64>((e - t) & (SPT_TABLE_BYTES - 1)) >> SPTE_SHIFT;
      for (let tagOff = SPTE_READ_TAG; tagOff <= SPTE_FETCH_TAG; tagOff += 8) {
        const tag = load<u64>(e + tagOff);
        check(tag == NO_TAG || ((tag >> 12) & SPT_INDEX_MASK) == index, "spte tag for a page of another index");
      }
      // A zap of all visits only the entries marked used (mmu.ts dropTables).
      const i = (e - t) >> SPTE_SHIFT;
      const used = (load<u64>(t + SPT_VCPU_BYTES + ((i >> 6) << 3)) >> <u64>(i & 63)) & 1;
      check(load<u32>(e + SPTE_FLAGS) == 0 || used != 0, "non-empty spte not marked used (a zap of all would miss it)");
      if ((load<u32>(e + SPTE_FLAGS) & SPTE_F_PRESENT) == 0) continue;
      present++;
      check(load<u32>(e + SPTE_OWNER) != 0, "present spte not owned by a live slot (spte into a deleted slot)");
    }
  }
  // Each present spte is checked from its owner's rmap: a walk over the slots'
  // lists finds every spte's slot at once (linear in slots plus sptes). A
  // present spte owned by no live slot is on no list: the counts then differ.
  let listed = 0;
  for (let as: u32 = 0; as < vm.nrAs; as++) {
    const s = setOf(activeSet(vm, as));
    for (let i = gfnNext(s, 0); i < gfnCap(s); i = gfnNext(s, i + 1)) {
      const slot = gfnSlotAt(s, i);
      const arch = slotOf(slot).arch;
      if (arch == 0) continue;
      let n: u32 = 0;
      for (let e = changetype<SlotArch>(arch).rmapHead; e != 0; e = <usize>load<u32>(e + SPTE_RMAP_NEXT)) {
        check(<usize>load<u32>(e + SPTE_OWNER) == arch, "rmap entry owned by another slot");
        check((load<u32>(e + SPTE_FLAGS) & SPTE_F_PRESENT) != 0, "rmap entry that is not present");
        checkSpte(vm, slot, e);
        n++;
      }
      check(n == changetype<SlotArch>(arch).rmapCount, "rmap count differs from its list");
      listed += <i32>n;
      check(vm.dirtyRingSize != 0 || changetype<SlotArch>(arch).wrCount == 0, "gfns recorded writable in a VM without a dirty ring");
      recordSlot = gfnSlotAt(s, i);
      recorded = 0;
      forEachWritable(arch, checkRecorded, 0);
      check(recorded == changetype<SlotArch>(arch).wrCount, "writable record count differs from its keys");
    }
  }
  check(listed == present, "present sptes and rmap entries differ");
  for (let p = vm.gpcList; p != 0; p = gpcOf(p).next) {
    const g = gpcOf(p);
    if (g.valid == 0) continue;
    check(hvaFrameNoFault(g.uhva) == g.pfn, "valid pfn cache holds a frame its hva no longer maps");
    if (g.gpa != INVALID_GPA && g.generation == setOf(activeSet(vm, 0)).generation) {
      const slot = gfnToMemslotInSet(activeSet(vm, 0), g.gpa >> PAGE_SHIFT);
      check(((gfnToHvaMemslot(slot, g.gpa >> PAGE_SHIFT, true) ^ g.uhva) & ~PAGE_MASK) == 0,
        "pfn cache of the current generation disagrees with the memslots");
    }
  }
}
