// Memory attributes (KVM_SET_MEMORY_ATTRIBUTES, kvm_vm_set_mem_attributes): per gfn, VM-wide, independent of
// memslots, set with KVM_SET_MEMORY_ATTRIBUTES. Stored as sorted, disjoint gfn
// ranges [start, end) with a non-zero value; gfns outside every range are 0
// (shared), and neighbouring ranges with the same value are merged, so a
// value that covers [start, end) does so within one range.
//
//   vm.memAttrs -> MemAttrs { count, cap, ranges: (start u64, end u64, value u64)[] }
//
// A change first zaps the mappings of every slot intersecting the range inside
// an MMU invalidation (kvm_handle_gfn_range with kvm_mmu_invalidate_begin /
// range_add / end), so no spte made under the old attributes survives.

import { kzalloc, kfree } from "../kalloc";
import { Vm, activeSet } from "../kvm/kvm_host";
import { typeHasPrivateMem } from "../kvm/config";
import { setOf, gfnSlotAt, gfnKeyAt, gfnEndAt, gfnCap } from "../memslots/set";
import { firstEndingAfter } from "../memslots/search";
import { zapGfnRange } from "../mmu/mmu";
import { mmuInvalidateBegin, mmuInvalidateRangeAdd, mmuInvalidateEnd } from "../kvm/mmu_invalidate";
import { inHook } from "../debug/hooks";
import { ioctlBuf, PAGE_MASK, PAGE_SHIFT } from "../layout";
import { fail, EFAULT, EINVAL, ENOMEM, EBUSY, CHECK_COPY_FROM_USER, CHECK_UPDATE_IN_READER, CHECK_ATTR_FLAGS,
  CHECK_ATTR_UNSUPPORTED, CHECK_ATTR_RANGE, CHECK_ATTR_ALIGN, CHECK_ATTR_NOMEM } from "../errno";

export const KVM_MEMORY_ATTRIBUTE_PRIVATE: u64 = 1 << 3;
const ATTRS_BYTES: i32 = 32;
const RANGE_BYTES: usize = 24;

@unmanaged class MemAttrs {
  count: u32;
  cap: u32;
  ranges: usize;
}

@inline function rangeStart(a: MemAttrs, i: u32): u64 { return load<u64>(a.ranges + <usize>i * RANGE_BYTES); }
@inline function rangeEnd(a: MemAttrs, i: u32): u64 { return load<u64>(a.ranges + <usize>i * RANGE_BYTES, 8); }
@inline function rangeValue(a: MemAttrs, i: u32): u64 { return load<u64>(a.ranges + <usize>i * RANGE_BYTES, 16); }

/** Index of the last range starting at or below gfn, or -1. */
function lastRangeAtOrBelow(a: MemAttrs, gfn: u64): i32 {
  let lo: i32 = 0, hi: i32 = <i32>a.count - 1, found: i32 = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (rangeStart(a, <u32>mid) <= gfn) { found = mid; lo = mid + 1; } else hi = mid - 1;
  }
  return found;
}

/** kvm_get_memory_attributes */
export function gfnAttributes(vm: Vm, gfn: u64): u64 {
  if (vm.memAttrs == 0) return 0;
  const a = changetype<MemAttrs>(vm.memAttrs);
  const i = lastRangeAtOrBelow(a, gfn);
  return i >= 0 && gfn < rangeEnd(a, <u32>i) ? rangeValue(a, <u32>i) : 0;
}

/** kvm_mem_is_private: the PRIVATE attribute, on a VM that can have private memory. */
// @ts-ignore: decorator
@inline export function gfnIsPrivate(vm: Vm, gfn: u64): bool {
  return vm.memAttrs != 0 && (gfnAttributes(vm, gfn) & KVM_MEMORY_ATTRIBUTE_PRIVATE) != 0;
}

/** kvm_range_has_memory_attributes(start, end, ~0, value): every gfn has exactly value. */
function rangeHasValue(vm: Vm, start: u64, end: u64, value: u64): bool {
  if (vm.memAttrs == 0) return value == 0;
  const a = changetype<MemAttrs>(vm.memAttrs);
  const i = lastRangeAtOrBelow(a, start);
  if (value == 0) {
    // No range may intersect [start, end).
    if (i >= 0 && rangeEnd(a, <u32>i) > start) return false;
    const next = <u32>(i + 1);
    return next >= a.count || rangeStart(a, next) >= end;
  }
  return i >= 0 && rangeEnd(a, <u32>i) >= end && rangeValue(a, <u32>i) == value;
}

/** Appends [s, e) = v to the ranges at out (count in *n), merging with the last one. */
function emit(out: usize, n: u32, s: u64, e: u64, v: u64): u32 {
  if (v == 0 || s >= e) return n;
  if (n > 0) {
    const last = out + <usize>(n - 1) * RANGE_BYTES;
    if (load<u64>(last, 8) == s && load<u64>(last, 16) == v) { store<u64>(last, e, 8); return n; }
  }
  const p = out + <usize>n * RANGE_BYTES;
  store<u64>(p, s);
  store<u64>(p, e, 8);
  store<u64>(p, v, 16);
  return n + 1;
}

/** The ranges with [start, end) replaced by value, in a new array (0 on ENOMEM); its count and capacity. */
let builtCount: u32 = 0;
let builtCap: u32 = 0;
function buildRanges(vm: Vm, start: u64, end: u64, value: u64): usize {
  const old = vm.memAttrs;
  const oldCount: u32 = old == 0 ? 0 : changetype<MemAttrs>(old).count;
  const out = kzalloc(<usize>(oldCount + 2) * RANGE_BYTES);
  if (out == 0) return 0;
  let n: u32 = 0;
  let placed = false;
  for (let i: u32 = 0; i < oldCount; i++) {
    const a = changetype<MemAttrs>(old);
    const s = rangeStart(a, i), e = rangeEnd(a, i), v = rangeValue(a, i);
    if (s < start) n = emit(out, n, s, e < start ? e : start, v);
    if (e > end) {
      if (!placed) { n = emit(out, n, start, end, value); placed = true; }
      n = emit(out, n, s > end ? s : end, e, v);
    }
  }
  if (!placed) n = emit(out, n, start, end, value);
  builtCount = n;
  builtCap = oldCount + 2;
  return out;
}

/**
 * kvm_vm_set_mem_attributes(start, end, value): a no-op if every gfn has the
 * value already; else zap every slot's mappings in the range (all address
 * spaces, clipped to the slot) inside an invalidation, then store. Returns
 * 0 or -ENOMEM (storage is reserved before anything changes).
 */
export function setMemAttributes(vm: Vm, start: u64, end: u64, value: u64): i32 {
  if (rangeHasValue(vm, start, end, value)) return 0;
  let hdr = vm.memAttrs;
  if (hdr == 0) {
    hdr = kzalloc(offsetof<MemAttrs>());
    if (hdr == 0) return fail(CHECK_ATTR_NOMEM, ENOMEM);
  }
  const ranges = buildRanges(vm, start, end, value);
  if (ranges == 0) {
    if (vm.memAttrs == 0) kfree(hdr, offsetof<MemAttrs>());
    return fail(CHECK_ATTR_NOMEM, ENOMEM);
  }
  let found = false;
  for (let as: u32 = 0; as < vm.nrAs; as++) {
    const s = setOf(activeSet(vm, as));
    for (let i = firstEndingAfter(s, start); i < gfnCap(s) && gfnKeyAt(s, i) < end; i++) {
      if (gfnSlotAt(s, i) == 0) continue;
      if (!found) { mmuInvalidateBegin(vm); found = true; }
      const lo = gfnKeyAt(s, i) > start ? gfnKeyAt(s, i) : start;
      const hi = gfnEndAt(s, i) < end ? gfnEndAt(s, i) : end;
      mmuInvalidateRangeAdd(vm, lo, hi);
      // [x86] kvm_arch_pre_set_memory_attributes: shared and private mappings go.
      zapGfnRange(gfnSlotAt(s, i), lo, hi);
    }
  }
  const a = changetype<MemAttrs>(hdr);
  kfree(a.ranges, <usize>a.cap * RANGE_BYTES);
  a.ranges = ranges;
  a.count = builtCount;
  a.cap = builtCap;
  vm.memAttrs = hdr;
  if (found) mmuInvalidateEnd(vm);
  checkAttributes(vm);
  return 0;
}

/** kvm_supported_mem_attributes */
export function supportedMemAttributes(vm: Vm): u64 {
  return typeHasPrivateMem(vm.type) ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0;
}

/** KVM_SET_MEMORY_ATTRIBUTES (kvm_vm_ioctl_set_mem_attributes): the 32-byte struct is in ioctlBuf(). */
export function setMemAttributesIoctl(vm: Vm, argLen: i32): i32 {
  if (argLen < ATTRS_BYTES) return fail(CHECK_COPY_FROM_USER, EFAULT);
  if (inHook != 0) return fail(CHECK_UPDATE_IN_READER, EBUSY);
  const address = load<u64>(ioctlBuf());
  const size = load<u64>(ioctlBuf(), 8);
  const attributes = load<u64>(ioctlBuf(), 16);
  const flags = load<u64>(ioctlBuf(), 24);
  if (flags != 0) return fail(CHECK_ATTR_FLAGS, EINVAL);
  if ((attributes & ~supportedMemAttributes(vm)) != 0) return fail(CHECK_ATTR_UNSUPPORTED, EINVAL);
  if (size == 0 || address + size < address) return fail(CHECK_ATTR_RANGE, EINVAL);
  if ((address & PAGE_MASK) != 0 || (size & PAGE_MASK) != 0) return fail(CHECK_ATTR_ALIGN, EINVAL);
  return setMemAttributes(vm, address >> PAGE_SHIFT, (address + size) >> PAGE_SHIFT, attributes);
}

export function freeMemAttributes(vm: Vm): void {
  if (vm.memAttrs == 0) return;
  const a = changetype<MemAttrs>(vm.memAttrs);
  kfree(a.ranges, <usize>a.cap * RANGE_BYTES);
  kfree(vm.memAttrs, offsetof<MemAttrs>());
  vm.memAttrs = 0;
}

/** Number of stored ranges (a test surface: merging keeps it minimal). */
export function memAttributeRanges(vm: Vm): u32 {
  return vm.memAttrs == 0 ? 0 : changetype<MemAttrs>(vm.memAttrs).count;
}

/** Debug core: the ranges are sorted, disjoint, non-empty, non-zero and maximally merged. */
function checkAttributes(vm: Vm): void {
  if (!WEBKVM_DEBUG || vm.memAttrs == 0) return;
  const a = changetype<MemAttrs>(vm.memAttrs);
  for (let i: u32 = 0; i < a.count; i++) {
    if (rangeStart(a, i) >= rangeEnd(a, i) || rangeValue(a, i) == 0) abort("invariant violated: empty or zero attribute range");
    if (i > 0 && rangeEnd(a, i - 1) > rangeStart(a, i)) abort("invariant violated: attribute ranges unsorted or overlapping");
    if (i > 0 && rangeEnd(a, i - 1) == rangeStart(a, i) && rangeValue(a, i - 1) == rangeValue(a, i))
      abort("invariant violated: mergeable attribute ranges left apart");
  }
}
