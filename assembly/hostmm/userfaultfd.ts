// userfaultfd's MISSING mode over the host address space: fs/userfaultfd.c's
// UFFDIO_REGISTER (MODE_MISSING) / UFFDIO_UNREGISTER and mm/userfaultfd.c's
// UFFDIO_COPY / UFFDIO_ZEROPAGE, for the one userfaultfd the VMM has (a
// post-copy destination's). Registering marks VMAs VM_UFFD_MISSING (vma.ts);
// the flag goes with the VMA: splits and mprotect keep it, munmap and a
// MAP_FIXED mapping over it drop it. A page of such a VMA with no pte is
// missing: the fault path (pgtable.ts) fails it with EFAULT instead of mapping
// the zero page or a new frame, and the VMM places it here. A placement fills
// a hole nothing can have mapped, so no MMU notifier fires; the pte store is
// under the mmap_lock, which a vCPU's fault also takes, so a vCPU that retries
// finds the whole page or none.
//
// Linux merges a VMA with its like neighbours after register / unregister /
// mprotect; this model keeps them split. Where that shows, in COPY's "the dst
// range lies inside one VMA", a run of adjacent VMAs alike counts as one.

import { PAGE_SIZE, PAGE_SHIFT, PAGE_MASK, ZERO_PAGE } from "../layout";
import { P } from "../threads";
import { fail, EINVAL, ENOENT, EEXIST, ENOMEM, CHECK_MMAP_NOMEM, CHECK_UFFD_RANGE, CHECK_UFFD_NO_VMA, CHECK_UFFD_VMA_KIND,
  CHECK_UFFD_DST, CHECK_UFFD_EXISTS, CHECK_UFFD_NOMEM } from "../errno";
import { mmapLock, mmapUnlock } from "./mmap_lock";
import { allocFrame, freeFrame } from "./frames";
import { Vma, vmaAt, findVma, firstVmaEndingAfter, reserveVmas, splitAt, MAP_SHARED, VM_UFFD_MISSING } from "./vma";
import { ptePtr, pteMissing, PTE_PRESENT, PTE_ZERO } from "./pgtable";
import { taskSize } from "./mm";

/**
 * validate_range: start and len page aligned, len not 0, the range below
 * TASK_SIZE (mmap_min_addr is not modelled: mmap allows any page).
 */
function validateRange(start: u64, len: u64): i32 {
  if ((start & PAGE_MASK) != 0 || (len & PAGE_MASK) != 0 || len == 0 || start >= taskSize || len > taskSize - start)
    return fail(CHECK_UFFD_RANGE, EINVAL);
  return 0;
}

/** vma_can_userfault for MISSING: anonymous memory, private or shared (shmem); not a file's (guest_memfd). */
// @ts-ignore: decorator
@inline function canUserfault(v: Vma): bool { return v.file == 0; }

/**
 * userfaultfd_register (MODE_MISSING) when `register`, else
 * userfaultfd_unregister: the checks of every VMA in the range come first
 * (holes between VMAs are allowed, as Linux allows them), then each VMA that
 * changes state is split at the range's ends and flipped. Idempotent.
 */
function changeLocked(start: u64, len: u64, register: bool): i32 {
  const r = validateRange(start, len);
  if (r < 0) return r;
  const end = start + len;
  // vma_find(&vmi, end): at least one VMA overlaps the range.
  const first = firstVmaEndingAfter(start);
  if (first >= P.vmaCount || vmaAt(first).start >= end) return fail(CHECK_UFFD_NO_VMA, EINVAL);
  // The search for incompatible VMAs, before anything changes.
  for (let j = first; j < P.vmaCount && vmaAt(j).start < end; j++) {
    const v = vmaAt(j);
    if (WEBKVM_DEBUG && v.uffd != 0 && !canUserfault(v)) abort("WARN: a registered VMA cannot userfault");
    if (!canUserfault(v)) return fail(CHECK_UFFD_VMA_KIND, EINVAL);
  }
  // vma_modify_flags_uffd splits at most at start and at end.
  if (!reserveVmas(P.vmaCount + 2)) return fail(CHECK_MMAP_NOMEM, ENOMEM);
  const want = register ? VM_UFFD_MISSING : 0;
  for (let j = first; j < P.vmaCount && vmaAt(j).start < end; j++) {
    if (vmaAt(j).uffd == want) continue; // already in that state: skip, no split
    if (vmaAt(j).start < start) { splitAt(start); continue; } // the upper part is next
    if (vmaAt(j).end > end) splitAt(end);
    vmaAt(j).uffd = want;
  }
  return 0;
}

export function registerMissing(start: u64, len: u64): i32 {
  mmapLock();
  const r = changeLocked(start, len, true);
  mmapUnlock();
  return r;
}

export function unregisterMissing(start: u64, len: u64): i32 {
  mmapLock();
  const r = changeLocked(start, len, false);
  mmapUnlock();
  return r;
}

/**
 * uffd_mfill_lock + validate_dst_vma: [start, end) lies inside one registered
 * VMA (here: a run of adjacent VMAs alike, which Linux would hold as one).
 */
function dstRegistered(start: u64, end: u64): bool {
  let i = findVma(start);
  if (i < 0 || vmaAt(i).uffd == 0) return false;
  const v = vmaAt(i);
  while (vmaAt(i).end < end) {
    const n = i + 1;
    if (n >= P.vmaCount) return false;
    const w = vmaAt(n);
    if (w.start != vmaAt(i).end || w.prot != v.prot || ((w.flags ^ v.flags) & MAP_SHARED) != 0 || w.uffd != v.uffd || w.file != 0)
      return false;
    i = n;
  }
  return true;
}

/**
 * One page of mfill_atomic at hva: the page table (ENOMEM), for a copy (and a
 * shared mapping's zero fill, shmem's zeroed folio) the frame (ENOMEM), then
 * the pte must still be none (EEXIST). src 0: zeroes. The failing page is left
 * as it was.
 */
function placeOne(hva: u64, src: usize, shared: bool): i32 {
  const p = ptePtr(hva >> PAGE_SHIFT, true);
  if (p == 0) return fail(CHECK_UFFD_NOMEM, ENOMEM);
  if (src == 0 && !shared) {
    // mfill_atomic_pte_zeropage: the zero page, read-only; a write breaks COW as for any zero-page pte.
    if ((load<u32>(p) & PTE_PRESENT) != 0) return fail(CHECK_UFFD_EXISTS, EEXIST);
    store<u32>(p, <u32>ZERO_PAGE | PTE_ZERO | PTE_PRESENT);
    return 0;
  }
  const f = allocFrame(); // zeroed
  if (f == 0) return fail(CHECK_UFFD_NOMEM, ENOMEM);
  if ((load<u32>(p) & PTE_PRESENT) != 0) {
    freeFrame(f);
    return fail(CHECK_UFFD_EXISTS, EEXIST);
  }
  if (src != 0) memory.copy(f, src, PAGE_SIZE);
  store<u32>(p, <u32>f | PTE_PRESENT);
  return 0;
}

/**
 * mfill_atomic over [dst, dst + len) (validated whole), placing its first n
 * bytes (n <= len, whole pages; the host's chunk) from src, or zero pages
 * when src is 0: page by page, stopping at the first page that fails. Returns
 * the bytes placed, or -errno when the first page failed (Linux: copied ? copied : err).
 */
function placeLocked(dst: u64, len: u64, src: usize, n: u64): i64 {
  const r = validateRange(dst, len);
  if (r < 0) return r;
  if (!dstRegistered(dst, dst + len)) return fail(CHECK_UFFD_DST, ENOENT);
  if (WEBKVM_DEBUG && ((n & PAGE_MASK) != 0 || n > len)) abort("WARN: mfill_atomic of a partial page");
  const shared = (vmaAt(findVma(dst)).flags & MAP_SHARED) != 0;
  for (let done: u64 = 0; done < n; done += <u64>PAGE_SIZE) {
    const e = placeOne(dst + done, src == 0 ? 0 : src + <usize>done, shared);
    if (e < 0) return done != 0 ? <i64>done : <i64>e;
    if (WEBKVM_DEBUG && pteMissing((dst + done) >> PAGE_SHIFT)) abort("WARN: a placed page is still missing");
  }
  return <i64>n;
}

/** UFFDIO_COPY of n bytes at src (linear) to dst, within the validated range [dst, dst + len). */
export function copyPages(dst: u64, len: u64, src: usize, n: u64): i64 {
  mmapLock();
  const r = placeLocked(dst, len, src, n);
  mmapUnlock();
  return r;
}

/** UFFDIO_ZEROPAGE of [dst, dst + len). */
export function zeroPages(dst: u64, len: u64): i64 {
  mmapLock();
  const r = placeLocked(dst, len, 0, len);
  mmapUnlock();
  return r;
}

/** Whether the page at hva is missing: in a registered VMA, with no pte. */
export function hvaMissing(hva: u64): bool {
  mmapLock();
  const i = findVma(hva);
  const r = i >= 0 && vmaAt(i).uffd != 0 && pteMissing(hva >> PAGE_SHIFT);
  mmapUnlock();
  return r;
}
