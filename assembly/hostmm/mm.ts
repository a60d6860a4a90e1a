// The VMM's own address space, modelled on a Linux process's mm: its entry
// points. Each takes the mmap_lock (mmap_lock.ts) around a body that runs under
// it: the system calls (mmap, munmap, mprotect, page migration, file mapping
// and truncation) and the lookups the layers above make (the fault behind
// hvaToLinear, copy_{from,to}_user, residency peeks). The state they work on:
// the VMAs (vma.ts) and the page table (pgtable.ts). Mapping reserves address
// space only; pages are faulted in on first touch. munmap / mprotect /
// zero-page COW fire MMU-notifier invalidations, and file VMAs fault their
// pages in from the file, through the callbacks in ops.ts.

import { PAGE_SIZE, PAGE_SHIFT, PAGE_MASK } from "../layout";
import { allocFrame, freeFrame } from "./frames";
import { P } from "../threads";
import { mmapLock, mmapUnlock } from "./mmap_lock";
import { EINVAL, ENOMEM, fail, CHECK_MMAP_ARGS, CHECK_MMAP_RANGE, CHECK_MMAP_NOMEM, CHECK_MPROTECT_UNMAPPED } from "../errno";
import { fileGet, mmuNotifierInvalidateRangeStart, mmuNotifierInvalidateRangeEnd } from "./ops";
import { vmaAt, findVma, firstVmaEndingAfter, reserveVmas, insertVmaAt, removeVmaAt, splitAt, findFreeRange, MAP_SHARED, MAP_PRIVATE, MAP_FIXED } from "./vma";
import { ptePtr, dropPages, hvaToLinearLocked, hvaResidentLocked, hvaFrameNoFaultLocked, privateFrameLocked, privateRunLocked,
  PTE_PRESENT, PTE_ZERO, PTE_FILE } from "./pgtable";

// What the layers above import from here (index.ts's ABI, KVM, the debug core) without reaching into the parts.
export { registerMmuNotifier, registerFileOps } from "./ops";
export { PROT_NONE, PROT_READ, PROT_WRITE, PROT_EXEC, MAP_SHARED, MAP_PRIVATE, MAP_FIXED, mappingCount, mappingAt, userRangeWritable } from "./vma";

/** x86-64 4-level paging: the first address user space cannot map (TASK_SIZE_MAX). */
export let taskSize: u64 = 0x7ffffffff000;
/** access_ok(uaddr, size): the range lies below the user address limit. */
export function accessOk(uaddr: u64, size: u64): bool {
  return size <= taskSize && uaddr <= taskSize - size;
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

export function hvaFrameNoFault(hva: u64): usize {
  mmapLock();
  const r = hvaFrameNoFaultLocked(hva);
  mmapUnlock();
  return r;
}

// ---- file-backed mappings (the only file a VMA maps is a guest_memfd) ----
// A VMA tagged with a file and the file page index at its start. Its pages
// come from the file on first touch (pgtable.ts's fileFault: the file decides,
// SIGBUS -> EFAULT) and its PTEs carry PTE_FILE, so unmapping never frees the
// file's frames.

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

export function privateFrame(hva: u64): usize {
  mmapLock();
  const r = privateFrameLocked(hva);
  mmapUnlock();
  return r;
}

export function privateRun(hva: u64, len: u64): usize {
  mmapLock();
  const r = privateRunLocked(hva, len);
  mmapUnlock();
  return r;
}
