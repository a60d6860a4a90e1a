// The host address space's VMAs (the kernel's vm_area_struct and mm/vma.c):
// one array sorted by address, in the process block so every thread's
// instance sees one address space. Callers hold the mmap_lock (mm.ts), except
// the read-only views at the end, which the host and fast paths use as Linux's
// /proc/self/maps and a racy VMA peek would.

import { PAGE_SIZE, PAGE_SHIFT, MAPPING_START, MAPPING_END, MAPPING_PROT, MAPPING_FLAGS } from "../layout";
import { kzalloc, kfree } from "../kalloc";
import { P } from "../threads";
import { fileGet, filePut } from "./ops";

export const PROT_NONE: u32 = 0;
export const PROT_READ: u32 = 1;
export const PROT_WRITE: u32 = 2;
export const PROT_EXEC: u32 = 4;
export const MAP_SHARED: u32 = 0x01;
export const MAP_PRIVATE: u32 = 0x02;
export const MAP_FIXED: u32 = 0x10;
/** vm_flags' VM_UFFD_MISSING (userfaultfd.ts): a page of the VMA with no pte is missing, not demand-zero. */
export const VM_UFFD_MISSING: u32 = 0x200;

// Where top-down placement of non-fixed mappings starts: P.mmapBase (threads.ts's
// MMAP_BASE at start).

@unmanaged export class Vma {
  start: u64;
  end: u64;
  prot: u32;
  flags: u32;
  /** A file-backed VMA (guest_memfd, splitFileVma here, pgtable.ts's fileFault): the file and its page index at start. */
  pgoff: u64;
  file: usize;
  /** VM_UFFD_MISSING or 0: registered with the host memory's userfaultfd (userfaultfd.ts). Splits keep it. */
  uffd: u32;
}
const VMA_BYTES: usize = offsetof<Vma>();

@inline export function vmaAt(i: i32): Vma {
  return changetype<Vma>(P.vmas + <usize>i * VMA_BYTES);
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
export function firstVmaEndingAfter(addr: u64): i32 {
  let lo = 0, hi = P.vmaCount;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (vmaAt(mid).end <= addr) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function reserveVmas(n: i32): bool {
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

export function insertVmaAt(i: i32, start: u64, end: u64, prot: u32, flags: u32): void {
  memory.copy(P.vmas + <usize>(i + 1) * VMA_BYTES, P.vmas + <usize>i * VMA_BYTES, <usize>(P.vmaCount - i) * VMA_BYTES);
  const v = vmaAt(i);
  v.start = start;
  v.end = end;
  v.prot = prot;
  v.flags = flags;
  v.pgoff = 0;
  v.file = 0;
  v.uffd = 0;
  P.vmaCount++;
}

export function removeVmaAt(i: i32): void {
  const file = vmaAt(i).file;
  memory.copy(P.vmas + <usize>i * VMA_BYTES, P.vmas + <usize>(i + 1) * VMA_BYTES, <usize>(P.vmaCount - i - 1) * VMA_BYTES);
  P.vmaCount--;
  if (file != 0) filePut(file); // each VMA holds a reference on its file
}

/** Splits the VMA containing addr so that addr starts a VMA. Capacity must be reserved. */
export function splitAt(addr: u64): void {
  const i = findVma(addr);
  if (i < 0) return;
  const v = vmaAt(i);
  if (v.start == addr) return;
  const end = v.end;
  v.end = addr;
  insertVmaAt(i + 1, addr, end, v.prot, v.flags);
  vmaAt(i + 1).uffd = v.uffd;
  if (v.file != 0) splitFileVma(v, vmaAt(i + 1));
}

/** The upper part of a split file VMA maps the file further on and holds its own reference. */
function splitFileVma(lower: Vma, upper: Vma): void {
  upper.file = lower.file;
  upper.pgoff = lower.pgoff + ((upper.start - lower.start) >> PAGE_SHIFT);
  fileGet(lower.file);
}

/** Lowest-address gap search, top down from P.mmapBase, for a non-fixed mapping. */
export function findFreeRange(len: u64): u64 {
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

/**
 * Whether one VMA with PROT_WRITE covers all of [addr, addr + len) (a fast path
 * for bulk copies): not a file's, not one with missing pages (whose holes fault).
 */
export function userRangeWritable(addr: u64, len: u64): bool {
  const i = findVma(addr);
  if (i < 0) return false;
  const v = vmaAt(i);
  return (v.prot & PROT_WRITE) != 0 && len <= v.end - addr && v.file == 0 && v.uffd == 0;
}
