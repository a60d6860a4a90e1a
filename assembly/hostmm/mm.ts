// The VMM's own address space, modelled on a Linux process's mm: a sorted list
// of VMAs (start, end, prot) and a three-level page table from host virtual
// page to frame. Mapping reserves address space only; a page gets a frame on
// its first write (a read maps the shared zero page), like anonymous memory.
// munmap / mprotect / zero-page COW fire MMU-notifier invalidations, and file
// VMAs fault their pages in from the file, through callbacks the layers above
// register at start-up: this layer knows nothing of KVM.

import { PAGE_SIZE, PAGE_SHIFT, PAGE_MASK, ZERO_PAGE, MAPPING_START, MAPPING_END, MAPPING_PROT, MAPPING_FLAGS } from "../layout";
import { allocFrame, freeFrame } from "./frames";
import { kzalloc, kfree } from "../kalloc";
import { P } from "../threads";
import { mmapLock, mmapUnlock } from "./mmap_lock";
import { EINVAL, ENOMEM, EFAULT, fail, CHECK_MMAP_ARGS, CHECK_MMAP_RANGE, CHECK_MMAP_NOMEM,
  CHECK_MPROTECT_UNMAPPED, CHECK_HVA_FAULT } from "../errno";

// The callbacks of the layers above, set once at start-up (index.ts), as Linux's
// mm reaches KVM only through mmu_notifier_ops and a file's vm_operations_struct
// and fget/fput. None runs on a guest access that hits: invalidations come with
// munmap, mprotect and COW breaks, file faults with a file page's first touch
// through a VMA. Each is kept as its table index (Function#index) and called
// with call_indirect: holding no function object keeps the callers (hvaToLinear
// is on every fault path) free of the shadow-stack frame a managed reference costs.
function noRange(start: u64, end: u64): void {}
function noFileRef(file: usize): void {}
function noFileFault(file: usize, index: u64): usize { return 0; }
let invalidateRangeStartFn: u32 = noRange.index;
let invalidateRangeEndFn: u32 = noRange.index;
let fileGetFn: u32 = noFileRef.index;
let filePutFn: u32 = noFileRef.index;
let fileUserFaultFn: u32 = noFileFault.index;

// @ts-ignore: decorator
@inline function mmuNotifierInvalidateRangeStart(start: u64, end: u64): void {
  call_indirect<void>(invalidateRangeStartFn, start, end);
}

// @ts-ignore: decorator
@inline function mmuNotifierInvalidateRangeEnd(start: u64, end: u64): void {
  call_indirect<void>(invalidateRangeEndFn, start, end);
}

// @ts-ignore: decorator
@inline function fileGet(file: usize): void {
  call_indirect<void>(fileGetFn, file);
}

// @ts-ignore: decorator
@inline function filePut(file: usize): void {
  call_indirect<void>(filePutFn, file);
}

// @ts-ignore: decorator
@inline function fileUserFault(file: usize, index: u64): usize {
  return call_indirect<usize>(fileUserFaultFn, file, index);
}

/** mmu_notifier_register: the invalidate_range_start / _end callbacks. */
export function registerMmuNotifier(start: (start: u64, end: u64) => void, end: (start: u64, end: u64) => void): void {
  invalidateRangeStartFn = start.index;
  invalidateRangeEndFn = end.index;
}

/**
 * The file a VMA may map (the only kind is guest_memfd): take and drop a
 * reference (get_file / fput), and the page at an index for a user fault
 * (vm_ops->fault: the frame, or 0 with the reason recorded, SIGBUS -> EFAULT).
 */
export function registerFileOps(get: (file: usize) => void, put: (file: usize) => void,
  fault: (file: usize, index: u64) => usize): void {
  fileGetFn = get.index;
  filePutFn = put.index;
  fileUserFaultFn = fault.index;
}

export const PROT_NONE: u32 = 0;
export const PROT_READ: u32 = 1;
export const PROT_WRITE: u32 = 2;
export const PROT_EXEC: u32 = 4;
export const MAP_SHARED: u32 = 0x01;
export const MAP_PRIVATE: u32 = 0x02;
export const MAP_FIXED: u32 = 0x10;

/** x86-64 4-level paging: the first address user space cannot map (TASK_SIZE_MAX). */
export let taskSize: u64 = 0x7ffffffff000;
/** access_ok(uaddr, size): the range lies below the user address limit. */
export function accessOk(uaddr: u64, size: u64): bool {
  return size <= taskSize && uaddr <= taskSize - size;
}

// Where top-down placement of non-fixed mappings starts: P.mmapBase (threads.ts's
// MMAP_BASE at start). The VMAs and the page table's first level live in the
// process block too, so every thread's instance sees one address space.

@unmanaged class Vma {
  start: u64;
  end: u64;
  prot: u32;
  flags: u32;
  /** A file-backed VMA (guest_memfd, see the end of this file): the file and its page index at start. */
  pgoff: u64;
  file: usize;
}
const VMA_BYTES: usize = offsetof<Vma>();


@inline function vmaAt(i: i32): Vma {
  return changetype<Vma>(P.vmas + <usize>i * VMA_BYTES);
}

// ---- page table: hvpn (35 bits) = 11 | 12 | 12 ----
const LX_ENTRIES: i32 = 4096;
const PTE_PRESENT: u32 = 1;
const PTE_ZERO: u32 = 2; // maps ZERO_PAGE: read-only until the first write
const PTE_FILE: u32 = 4; // maps a file's page: the file owns the frame

/** Pointer to the PTE of hvpn, allocating tables when `create`; 0 if absent. */
function ptePtr(hvpn: u64, create: bool): usize {
  const l1p = P.hostL1 + (<usize>(hvpn >> 24) << 2);
  let l2 = <usize>load<u32>(l1p);
  if (l2 == 0) {
    if (!create) return 0;
    l2 = kzalloc(LX_ENTRIES * 4);
    if (l2 == 0) return 0;
    store<u32>(l1p, <u32>l2);
  }
  const l2p = l2 + (<usize>((hvpn >> 12) & 0xfff) << 2);
  let l3 = <usize>load<u32>(l2p);
  if (l3 == 0) {
    if (!create) return 0;
    l3 = kzalloc(LX_ENTRIES * 4);
    if (l3 == 0) return 0;
    store<u32>(l2p, <u32>l3);
  }
  return l3 + (<usize>(hvpn & 0xfff) << 2);
}

/** Index of the VMA containing hva, or -1. */
export function findVma(hva: u64): i32 {
  let lo = 0, hi = P.vmaCount - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const v = vmaAt(mid);
    if (hva < v.start) hi = mid - 1;
    else if (hva >= v.end) lo = mid + 1;
    else return mid;
  }
  return -1;
}

/** First VMA index whose end is above addr (P.vmaCount if none). */
function firstVmaEndingAfter(addr: u64): i32 {
  let lo = 0, hi = P.vmaCount;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (vmaAt(mid).end <= addr) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function reserveVmas(n: i32): bool {
  if (n <= P.vmaCap) return true;
  let cap = P.vmaCap < 16 ? 16 : P.vmaCap * 2;
  while (cap < n) cap *= 2;
  const p = kzalloc(<usize>cap * VMA_BYTES);
  if (p == 0) return false;
  if (P.vmas != 0) {
    memory.copy(p, P.vmas, <usize>P.vmaCount * VMA_BYTES);
    kfree(P.vmas);
  }
  P.vmas = p;
  P.vmaCap = cap;
  return true;
}

function insertVmaAt(i: i32, start: u64, end: u64, prot: u32, flags: u32): void {
  memory.copy(P.vmas + <usize>(i + 1) * VMA_BYTES, P.vmas + <usize>i * VMA_BYTES, <usize>(P.vmaCount - i) * VMA_BYTES);
  const v = vmaAt(i);
  v.start = start;
  v.end = end;
  v.prot = prot;
  v.flags = flags;
  v.pgoff = 0;
  v.file = 0;
  P.vmaCount++;
}

function removeVmaAt(i: i32): void {
  const file = vmaAt(i).file;
  memory.copy(P.vmas + <usize>i * VMA_BYTES, P.vmas + <usize>(i + 1) * VMA_BYTES, <usize>(P.vmaCount - i - 1) * VMA_BYTES);
  P.vmaCount--;
  if (file != 0) filePut(file); // each VMA holds a reference on its file
}

/** Splits the VMA containing addr so that addr starts a VMA. Capacity must be reserved. */
function splitAt(addr: u64): void {
  const i = findVma(addr);
  if (i < 0) return;
  const v = vmaAt(i);
  if (v.start == addr) return;
  const end = v.end;
  v.end = addr;
  insertVmaAt(i + 1, addr, end, v.prot, v.flags);
  if (v.file != 0) splitFileVma(v, vmaAt(i + 1));
}

/** Frees the frames of [start, end), walking only tables that exist. */
function dropPages(start: u64, end: u64): void {
  let vpn = start >> PAGE_SHIFT;
  const last = end >> PAGE_SHIFT;
  while (vpn < last) {
    const l2 = <usize>load<u32>(P.hostL1 + (<usize>(vpn >> 24) << 2));
    if (l2 == 0) { vpn = ((vpn >> 24) + 1) << 24; continue; }
    const l3 = <usize>load<u32>(l2 + (<usize>((vpn >> 12) & 0xfff) << 2));
    if (l3 == 0) { vpn = ((vpn >> 12) + 1) << 12; continue; }
    const stop = min<u64>(last, ((vpn >> 12) + 1) << 12);
    for (; vpn < stop; vpn++) {
      const p = l3 + (<usize>(vpn & 0xfff) << 2);
      const pte = load<u32>(p);
      if (pte & PTE_PRESENT) {
        if (!(pte & (PTE_ZERO | PTE_FILE))) freeFrame(<usize>(pte & ~<u32>PAGE_MASK));
        store<u32>(p, 0);
      }
    }
  }
}

/** Removes every mapping in [start, end). Capacity for two splits must be reserved. */
function unmapRange(start: u64, end: u64): void {
  mmuNotifierInvalidateRangeStart(start, end);
  splitAt(start);
  splitAt(end);
  let i = firstVmaEndingAfter(start);
  while (i < P.vmaCount && vmaAt(i).start < end) removeVmaAt(i);
  dropPages(start, end);
  mmuNotifierInvalidateRangeEnd(start, end);
}

/** Lowest-address gap search, top down from P.mmapBase, for a non-fixed mapping. */
function findFreeRange(len: u64): u64 {
  let top = P.mmapBase;
  let i = P.vmaCount - 1;
  while (i >= 0 && vmaAt(i).start >= top) i--;
  while (true) {
    if (top < len + <u64>PAGE_SIZE) return 0;
    const candidate = top - len;
    if (i < 0 || vmaAt(i).end <= candidate) return candidate;
    top = vmaAt(i).start;
    i--;
  }
  return 0;
}

/** mmap(addr, len, prot, flags) of anonymous memory: the hva, or -errno. */
function mmapLocked(addr: u64, len: u64, prot: u32, flags: u32): i64 {
  if (len == 0 || (prot & ~7) != 0 || (flags & (MAP_SHARED | MAP_PRIVATE)) == (MAP_SHARED | MAP_PRIVATE))
    return fail(CHECK_MMAP_ARGS, EINVAL);
  if (len > taskSize) return fail(CHECK_MMAP_RANGE, ENOMEM);
  len = (len + PAGE_MASK) & ~PAGE_MASK;
  if (!reserveVmas(P.vmaCount + 3)) return fail(CHECK_MMAP_NOMEM, ENOMEM);
  if (flags & MAP_FIXED) {
    if (addr & PAGE_MASK) return fail(CHECK_MMAP_ARGS, EINVAL);
    if (addr > taskSize - len) return fail(CHECK_MMAP_RANGE, ENOMEM);
    unmapRange(addr, addr + len);
  } else {
    addr = findFreeRange(len);
    if (addr == 0) return fail(CHECK_MMAP_RANGE, ENOMEM);
    P.mmapBase = addr;
  }
  insertVmaAt(firstVmaEndingAfter(addr), addr, addr + len, prot, flags);
  return <i64>addr;
}

export function mmap(addr: u64, len: u64, prot: u32, flags: u32): i64 {
  mmapLock();
  const r = mmapLocked(addr, len, prot, flags);
  mmapUnlock();
  return r;
}

function munmapLocked(addr: u64, len: u64): i32 {
  if ((addr & PAGE_MASK) != 0 || len == 0) return fail(CHECK_MMAP_ARGS, EINVAL);
  len = (len + PAGE_MASK) & ~PAGE_MASK;
  if (addr >= taskSize || len > taskSize - addr) return fail(CHECK_MMAP_ARGS, EINVAL);
  if (!reserveVmas(P.vmaCount + 2)) return fail(CHECK_MMAP_NOMEM, ENOMEM);
  unmapRange(addr, addr + len);
  return 0;
}

export function munmap(addr: u64, len: u64): i32 {
  mmapLock();
  const r = munmapLocked(addr, len);
  mmapUnlock();
  return r;
}

function mprotectLocked(addr: u64, len: u64, prot: u32): i32 {
  if ((addr & PAGE_MASK) != 0 || (prot & ~7) != 0) return fail(CHECK_MMAP_ARGS, EINVAL);
  len = (len + PAGE_MASK) & ~PAGE_MASK;
  if (len == 0) return 0;
  const end = addr + len;
  if (end < addr || end > taskSize) return fail(CHECK_MPROTECT_UNMAPPED, ENOMEM);
  // The whole range must be mapped (Linux: ENOMEM for a hole).
  let cursor = addr;
  let i = firstVmaEndingAfter(addr);
  while (cursor < end) {
    if (i >= P.vmaCount || vmaAt(i).start > cursor) return fail(CHECK_MPROTECT_UNMAPPED, ENOMEM);
    cursor = vmaAt(i).end;
    i++;
  }
  if (!reserveVmas(P.vmaCount + 2)) return fail(CHECK_MMAP_NOMEM, ENOMEM);
  mmuNotifierInvalidateRangeStart(addr, end);
  splitAt(addr);
  splitAt(end);
  for (i = firstVmaEndingAfter(addr); i < P.vmaCount && vmaAt(i).start < end; i++) vmaAt(i).prot = prot;
  mmuNotifierInvalidateRangeEnd(addr, end);
  return 0;
}

export function mprotect(addr: u64, len: u64, prot: u32): i32 {
  mmapLock();
  const r = mprotectLocked(addr, len, prot);
  mmapUnlock();
  return r;
}

/**
 * copy_from_user (toUser false: hva -> lin) or copy_to_user (lin -> hva) of
 * len bytes, a page at a time; false on EFAULT (earlier pages are copied).
 */
function copyUserLocked(lin: usize, hva: u64, len: usize, toUser: bool): bool {
  let done: usize = 0;
  while (done < len) {
    const at = hva + <u64>done;
    const seg = min<usize>(len - done, <usize>(<u64>PAGE_SIZE - (at & PAGE_MASK)));
    const page = hvaToLinear(at, toUser);
    if (page == 0) return false;
    if (toUser) memory.copy(page, lin + done, seg);
    else memory.copy(lin + done, page, seg);
    done += seg;
  }
  return true;
}

/** copyUser under mmap_lock throughout: no munmap frees a page between its lookup and the copy. */
export function copyUser(lin: usize, hva: u64, len: usize, toUser: bool): bool {
  mmapLock();
  const r = copyUserLocked(lin, hva, len, toUser);
  mmapUnlock();
  return r;
}

/**
 * The linear address backing hva for a read or a write (faulting the page in),
 * or 0 with EFAULT recorded when no usable mapping is there (or ENOMEM when no
 * frame is left).
 */
function hvaToLinearLocked(hva: u64, write: bool): usize {
  const i = findVma(hva);
  if (i < 0) { fail(CHECK_HVA_FAULT, EFAULT); return 0; }
  const prot = vmaAt(i).prot;
  if (prot == PROT_NONE || (write && (prot & PROT_WRITE) == 0)) { fail(CHECK_HVA_FAULT, EFAULT); return 0; }
  const vpn = hva >> PAGE_SHIFT;
  const off = <usize>(hva & PAGE_MASK);
  const p = ptePtr(vpn, true);
  if (p == 0) {
    if (write || vmaAt(i).file != 0) { fail(CHECK_MMAP_NOMEM, ENOMEM); return 0; }
    return ZERO_PAGE + off;
  }
  const pte = load<u32>(p);
  if ((pte & PTE_PRESENT) != 0 && (!write || (pte & PTE_ZERO) == 0))
    return <usize>(pte & ~<u32>PAGE_MASK) + off;
  if (vmaAt(i).file != 0) return fileFault(vmaAt(i), hva, p);
  if (!write) {
    store<u32>(p, <u32>ZERO_PAGE | PTE_ZERO | PTE_PRESENT);
    return ZERO_PAGE + off;
  }
  const f = allocFrame();
  if (f == 0) { fail(CHECK_MMAP_NOMEM, ENOMEM); return 0; }
  if (pte & PTE_PRESENT) {
    // Breaking COW from the zero page changes what the hva maps to: secondary
    // MMUs (sptes, pfn caches) holding the zero page must drop it.
    const start = hva & ~PAGE_MASK;
    mmuNotifierInvalidateRangeStart(start, start + <u64>PAGE_SIZE);
    store<u32>(p, <u32>f | PTE_PRESENT);
    mmuNotifierInvalidateRangeEnd(start, start + <u64>PAGE_SIZE);
  } else {
    store<u32>(p, <u32>f | PTE_PRESENT);
  }
  return f + off;
}

export function hvaToLinear(hva: u64, write: bool): usize {
  mmapLock();
  const r = hvaToLinearLocked(hva, write);
  mmapUnlock();
  return r;
}

/** Protection of the mapping at hva, or -1 when nothing is mapped there. */
function hvaProtLocked(hva: u64): i32 {
  const i = findVma(hva);
  return i < 0 ? -1 : <i32>vmaAt(i).prot;
}

export function hvaProt(hva: u64): i32 {
  mmapLock();
  const r = hvaProtLocked(hva);
  mmapUnlock();
  return r;
}

export function mappingCount(): i32 {
  return P.vmaCount;
}

/** Copies one VMA (start, end, prot, flags) to out; for the host's /proc/self/maps view. */
export function mappingAt(i: i32, out: usize): void {
  const v = vmaAt(i);
  store<u64>(out + MAPPING_START, v.start);
  store<u64>(out + MAPPING_END, v.end);
  store<u32>(out + MAPPING_PROT, v.prot);
  store<u32>(out + MAPPING_FLAGS, v.flags);
}

/** Whether a page frame is present at hva (for tests of demand paging). */
function hvaResidentLocked(hva: u64): bool {
  const p = ptePtr(hva >> PAGE_SHIFT, false);
  return p != 0 && (load<u32>(p) & PTE_PRESENT) != 0 && (load<u32>(p) & PTE_ZERO) == 0;
}

export function hvaResident(hva: u64): bool {
  mmapLock();
  const r = hvaResidentLocked(hva);
  mmapUnlock();
  return r;
}

/**
 * Moves the private frames of [addr, addr + len) to new frames (a host page
 * migration, like compaction or NUMA balancing): the contents stay, the
 * backing changes, and secondary MMUs hear about it first. Returns the count.
 */
function migratePagesLocked(addr: u64, len: u64): i32 {
  if ((addr & PAGE_MASK) != 0) return fail(CHECK_MMAP_ARGS, EINVAL);
  const end = addr + ((len + PAGE_MASK) & ~PAGE_MASK);
  mmuNotifierInvalidateRangeStart(addr, end);
  let moved = 0;
  for (let a = addr; a < end; a += <u64>PAGE_SIZE) {
    const p = ptePtr(a >> PAGE_SHIFT, false);
    if (p == 0) continue;
    const pte = load<u32>(p);
    if ((pte & PTE_PRESENT) == 0 || (pte & (PTE_ZERO | PTE_FILE)) != 0) continue; // file pages do not migrate
    const f = allocFrame();
    if (f == 0) break;
    const old = <usize>(pte & ~<u32>PAGE_MASK);
    memory.copy(f, old, PAGE_SIZE);
    store<u32>(p, <u32>f | PTE_PRESENT);
    freeFrame(old);
    moved++;
  }
  mmuNotifierInvalidateRangeEnd(addr, end);
  return moved;
}

export function migratePages(addr: u64, len: u64): i32 {
  mmapLock();
  const r = migratePagesLocked(addr, len);
  mmapUnlock();
  return r;
}

/** The linear frame behind hva without faulting anything in (0: none; the zero page counts). */
function hvaFrameNoFaultLocked(hva: u64): usize {
  const p = ptePtr(hva >> PAGE_SHIFT, false);
  if (p == 0) return 0;
  const pte = load<u32>(p);
  return (pte & PTE_PRESENT) != 0 ? <usize>(pte & ~<u32>PAGE_MASK) : 0;
}

export function hvaFrameNoFault(hva: u64): usize {
  mmapLock();
  const r = hvaFrameNoFaultLocked(hva);
  mmapUnlock();
  return r;
}

// ---- file-backed mappings (the only file a VMA maps is a guest_memfd) ----
// A VMA tagged with a file and the file page index at its start. Its pages
// come from the file on first touch (the file decides: SIGBUS -> EFAULT) and
// its PTEs carry PTE_FILE, so unmapping never frees the file's frames.

/** mmap of a file from page index pgoff: an ordinary placement, then the VMA takes a file reference. */
function mmapFileLocked(addr: u64, len: u64, prot: u32, flags: u32, file: usize, pgoff: u64): i64 {
  const r = mmap(addr, len, prot, flags);
  if (r < 0) return r;
  const v = vmaAt(findVma(<u64>r));
  v.file = file;
  v.pgoff = pgoff;
  fileGet(file);
  return r;
}

export function mmapFile(addr: u64, len: u64, prot: u32, flags: u32, file: usize, pgoff: u64): i64 {
  mmapLock();
  const r = mmapFileLocked(addr, len, prot, flags, file, pgoff);
  mmapUnlock();
  return r;
}

/** The upper part of a split file VMA maps the file further on and holds its own reference. */
function splitFileVma(lower: Vma, upper: Vma): void {
  upper.file = lower.file;
  upper.pgoff = lower.pgoff + ((upper.start - lower.start) >> PAGE_SHIFT);
  fileGet(lower.file);
}

/** A user fault on a file VMA: the file's frame for the page, now in the page table. */
function fileFault(v: Vma, hva: u64, pte: usize): usize {
  const frame = fileUserFault(v.file, v.pgoff + ((hva - v.start) >> PAGE_SHIFT));
  if (frame == 0) return 0;
  store<u32>(pte, <u32>frame | PTE_FILE | PTE_PRESENT);
  return frame + <usize>(hva & PAGE_MASK);
}

/** Unmaps the file's pages [start, end) from every VMA mapping them (truncate: MMU notifiers fire). */
function zapFilePagesLocked(file: usize, start: u64, end: u64): void {
  for (let i = 0; i < P.vmaCount; i++) {
    const v = vmaAt(i);
    if (v.file != file) continue;
    const vEnd = v.pgoff + ((v.end - v.start) >> PAGE_SHIFT);
    if (v.pgoff >= end || vEnd <= start) continue;
    const lo = v.start + (((start > v.pgoff ? start : v.pgoff) - v.pgoff) << PAGE_SHIFT);
    const hi = v.start + (((end < vEnd ? end : vEnd) - v.pgoff) << PAGE_SHIFT);
    mmuNotifierInvalidateRangeStart(lo, hi);
    dropPages(lo, hi);
    mmuNotifierInvalidateRangeEnd(lo, hi);
  }
}

export function zapFilePages(file: usize, start: u64, end: u64): void {
  mmapLock();
  zapFilePagesLocked(file, start, end);
  mmapUnlock();
}

/** Whether one VMA with PROT_WRITE covers all of [addr, addr + len) (a fast path for bulk copies). */
export function userRangeWritable(addr: u64, len: u64): bool {
  const i = findVma(addr);
  if (i < 0) return false;
  const v = vmaAt(i);
  return (v.prot & PROT_WRITE) != 0 && len <= v.end - addr && v.file == 0;
}

/** The linear address of hva's private anonymous frame, or 0 (absent or the zero page). */
function privateFrameLocked(hva: u64): usize {
  const p = ptePtr(hva >> PAGE_SHIFT, false);
  if (p == 0) return 0;
  return privateLinear(load<u32>(p), hva);
}

export function privateFrame(hva: u64): usize {
  mmapLock();
  const r = privateFrameLocked(hva);
  mmapUnlock();
  return r;
}

// @ts-ignore: decorator
@inline function privateLinear(pte: u32, hva: u64): usize {
  return (pte & PTE_PRESENT) != 0 && (pte & (PTE_ZERO | PTE_FILE)) == 0 ? <usize>(pte & ~<u32>PAGE_MASK) + <usize>(hva & PAGE_MASK) : 0;
}

/**
 * The linear address of [hva, hva + len) when every page of it is a private
 * frame and the frames follow each other in linear memory (one copy serves
 * it), else 0. Walks each last-level table's ptes in a row rather than from
 * the top for every page.
 */
function privateRunLocked(hva: u64, len: u64): usize {
  if (len == 0) return 0;
  const first = privateFrame(hva);
  if (first == 0) return 0;
  const lastVpn = (hva + len - 1) >> PAGE_SHIFT;
  let vpn = (hva >> PAGE_SHIFT) + 1;
  let want = first - <usize>(hva & PAGE_MASK) + <usize>PAGE_SIZE;
  while (vpn <= lastVpn) {
    let p = ptePtr(vpn, false);
    if (p == 0) return 0;
    // The rest of this table, up to the last page.
    const end = min<u64>(lastVpn, vpn | <u64>(LX_ENTRIES - 1));
    for (; vpn <= end; vpn++, p += 4, want += <usize>PAGE_SIZE) {
      if (privateLinear(load<u32>(p), 0) != want) return 0;
    }
  }
  return first;
}

export function privateRun(hva: u64, len: u64): usize {
  mmapLock();
  const r = privateRunLocked(hva, len);
  mmapUnlock();
  return r;
}
