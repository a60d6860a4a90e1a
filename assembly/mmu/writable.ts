// The writable bit of the VM's spte for a gfn, recorded per slot apart from the
// vCPUs' tables. The kernel has one spte per gfn for the whole VM (TDP / the
// RISC-V g-stage table); once a write fault made it writable it stays so until
// write protection (dirty-log re-arm, logging turned on, write tracking) or a
// zap (MMU notifier, DELETE / MOVE, zap-all). Here each vCPU has its own
// direct-mapped tables (spte.ts), and they are caches: an entry goes when
// another page takes its index, on sfence.vma and satp writes, and per
// privilege mode. A write that refills an entry for a gfn the kernel still has
// writable is not a fault there, so nothing may be logged for it: make_spte
// calls mark_page_dirty_in_slot only when it makes the spte writable.
//
// Only a dirty ring can tell a second log of the page apart (a second entry in
// one protection epoch; a bitmap bit is still set, since only GET / CLEAR clear
// bits and they write-protect the same pages), so only ring VMs record. They
// record every slot's writable gfns, logged or not: with INITIALLY_SET,
// turning logging on leaves writable sptes writable (kvm_mmu_slot_apply_flags).
//
// Per slot: an open-addressed set of gfn + 1 (0 = empty), linear probing,
// at most half full, removal by backward shift (no tombstones).

import { Vm, activeSet } from "../kvm/kvm_host";
import { setOf, gfnSlotAt, gfnCap, gfnNext } from "../memslots/set";
import { slotOf } from "../memslots/slot";
import { kzalloc, kfree } from "../kalloc";
import { SlotArch } from "./rmap";

const MIN_BITS: u32 = 6;
const GOLDEN: u64 = 0x9e3779b97f4a7c15;

/** Gfns recorded writable whose record could not grow (they are logged again on their next fault). */
export let writableDropped: u32 = 0;

// @ts-ignore: decorator
@inline function home(key: u64, bits: u32): usize {
  return <usize>((key * GOLDEN) >> (64 - <u64>bits));
}

/** The position holding key, or the empty one where it would go. */
function find(a: SlotArch, key: u64): usize {
  const mask = (<usize>1 << a.wrBits) - 1;
  let i = home(key, a.wrBits);
  let k = load<u64>(a.wrKeys + (i << 3));
  while (k != key && k != 0) {
    i = (i + 1) & mask;
    k = load<u64>(a.wrKeys + (i << 3));
  }
  return i;
}

function grow(a: SlotArch): bool {
  const bits = a.wrKeys == 0 ? MIN_BITS : a.wrBits + 1;
  const keys = kzalloc(<usize>8 << bits);
  if (keys == 0) return false;
  const old = a.wrKeys;
  const oldCap: usize = old == 0 ? 0 : <usize>1 << a.wrBits;
  a.wrKeys = keys;
  a.wrBits = bits;
  for (let i: usize = 0; i < oldCap; i++) {
    const k = load<u64>(old + (i << 3));
    if (k != 0) store<u64>(keys + (find(a, k) << 3), k);
  }
  if (old != 0) kfree(old, oldCap << 3);
  return true;
}

/** Empties position i, moving later keys of its probe run back so none is cut off. */
function removeAt(a: SlotArch, i: usize): void {
  const mask = (<usize>1 << a.wrBits) - 1;
  let j = i;
  for (;;) {
    j = (j + 1) & mask;
    const k = load<u64>(a.wrKeys + (j << 3));
    if (k == 0) break;
    // k may fill the hole unless its home lies cyclically in (i, j].
    if (((j - home(k, a.wrBits)) & mask) >= ((j - i) & mask)) {
      store<u64>(a.wrKeys + (i << 3), k);
      i = j;
    }
  }
  store<u64>(a.wrKeys + (i << 3), 0);
  a.wrCount--;
}

export function writableHas(arch: usize, gfn: u64): bool {
  const a = changetype<SlotArch>(arch);
  return a.wrCount != 0 && load<u64>(a.wrKeys + (find(a, gfn + 1) << 3)) != 0;
}

/** Records gfn as writable; false if it was already. */
export function writableAdd(arch: usize, gfn: u64): bool {
  const a = changetype<SlotArch>(arch);
  if (a.wrKeys != 0) {
    const i = find(a, gfn + 1);
    if (load<u64>(a.wrKeys + (i << 3)) != 0) return false;
  }
  if ((a.wrCount + 1) << 1 > (a.wrKeys == 0 ? 0 : <u32>1 << a.wrBits) && !grow(a)) {
    writableDropped++;
    return true;
  }
  store<u64>(a.wrKeys + (find(a, gfn + 1) << 3), gfn + 1);
  a.wrCount++;
  return true;
}

/** Write protection or a zap of gfns [start, end) of a slot. */
export function writableDropRange(arch: usize, start: u64, end: u64): void {
  const a = changetype<SlotArch>(arch);
  if (a.wrCount == 0 || start >= end) return;
  const cap = <usize>1 << a.wrBits;
  if (end - start <= <u64>cap) {
    for (let gfn = start; gfn < end && a.wrCount != 0; gfn++) {
      const i = find(a, gfn + 1);
      if (load<u64>(a.wrKeys + (i << 3)) != 0) removeAt(a, i);
    }
    return;
  }
  // A removal may shift a later key into i: look at i again before moving on.
  for (let i: usize = 0; i < cap;) {
    const k = load<u64>(a.wrKeys + (i << 3));
    if (k != 0 && k - 1 >= start && k - 1 < end) removeAt(a, i);
    else i++;
  }
}

/** Write protection of the pages base + j for each bit j set in bitmap words [from, to). */
export function writableDropBitmap(arch: usize, base: u64, bitmap: usize, from: u64, to: u64): void {
  const a = changetype<SlotArch>(arch);
  if (a.wrCount == 0) return;
  const cap = <usize>1 << a.wrBits;
  if (to - from <= <u64>(cap >> 6)) {
    for (let w = from; w < to && a.wrCount != 0; w++) {
      let bits = load<u64>(bitmap + <usize>(w << 3));
      while (bits != 0) {
        const i = find(a, base + (w << 6) + ctz(bits) + 1);
        if (load<u64>(a.wrKeys + (i << 3)) != 0) removeAt(a, i);
        bits &= bits - 1;
      }
    }
    return;
  }
  for (let i: usize = 0; i < cap;) {
    const k = load<u64>(a.wrKeys + (i << 3));
    const rel = k - 1 - base;
    if (k != 0 && k - 1 >= base && (rel >> 6) >= from && (rel >> 6) < to &&
        (load<u64>(bitmap + <usize>((rel >> 6) << 3)) & (<u64>1 << (rel & 63))) != 0) removeAt(a, i);
    else i++;
  }
}

/** Every gfn of the slot loses its writable spte. */
export function writableClear(arch: usize): void {
  const a = changetype<SlotArch>(arch);
  if (a.wrCount == 0) return;
  memory.fill(a.wrKeys, 0, <usize>8 << a.wrBits);
  a.wrCount = 0;
}

/** kvm_mmu_zap_all_fast: no spte of the VM is left, writable or not. */
export function writableClearAll(vm: Vm): void {
  // Only ring VMs record (see the top): without one this must not cost a walk over every slot.
  if (vm.dirtyRingSize == 0) return;
  for (let as: u32 = 0; as < vm.nrAs; as++) {
    const s = setOf(activeSet(vm, as));
    for (let i = gfnNext(s, 0); i < gfnCap(s); i = gfnNext(s, i + 1)) {
      const arch = slotOf(gfnSlotAt(s, i)).arch;
      if (arch != 0) writableClear(arch);
    }
  }
}

/** The recorded gfns, for the debug invariants: calls fn(gfn, ctx) for each. */
export function forEachWritable(arch: usize, fn: (gfn: u64, ctx: usize) => void, ctx: usize): void {
  const a = changetype<SlotArch>(arch);
  if (a.wrCount == 0) return;
  for (let i: usize = 0; i < (<usize>1 << a.wrBits); i++) {
    const k = load<u64>(a.wrKeys + (i << 3));
    if (k != 0) fn(k - 1, ctx);
  }
}
