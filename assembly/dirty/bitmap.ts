// Per-slot dirty bitmaps: 2 * ALIGN(npages, 64) bits, the second half being the
// kernel's scratch buffer for KVM_GET_DIRTY_LOG. Only allocation and lifetime
// live here so far; harvesting arrives with the dirty-tracking work.

import { kzalloc, kfree } from "../kalloc";
import { INJECT_ALLOC_BITMAP } from "../debug/inject";

/** Bytes of a slot's dirty bitmap (kvm_dirty_bitmap_bytes) times two. */
@inline export function bitmapBytes(npages: u64): usize {
  return <usize>(((npages + 63) & ~<u64>63) >> 3) * 2;
}

/** A zeroed bitmap, or all ones over npages when initiallySet; 0 on ENOMEM. */
export function allocBitmap(npages: u64, initiallySet: bool): usize {
  const bytes = <u64>(((npages + 63) & ~<u64>63) >> 3) * 2;
  if (bytes > 0xffff0000) return 0;
  const p = kzalloc(<usize>bytes, INJECT_ALLOC_BITMAP);
  if (p == 0 || !initiallySet) return p;
  const full = <usize>(npages >> 3);
  memory.fill(p, 0xff, full);
  const rest = <u32>(npages & 7);
  if (rest != 0) store<u8>(p + full, <u8>((<u32>1 << rest) - 1));
  return p;
}

export function freeBitmap(p: usize, npages: u64): void {
  if (p != 0) kfree(p, bitmapBytes(npages));
}
