// The host page table and its faults (the kernel's mm/memory.c): a three-level
// table from host virtual page to frame, filled on demand. A page gets a frame
// on its first write (a read maps the shared zero page), like anonymous memory;
// a file VMA's page comes from the file, and a page of a range registered for
// missing pages (userfaultfd.ts) faults until placed. Everything here runs under the
// mmap_lock, which the entry points in mm.ts take.

import { PAGE_SIZE, PAGE_SHIFT, PAGE_MASK, ZERO_PAGE } from "../layout";
import { allocFrame, freeFrame } from "./frames";
import { kzalloc } from "../kalloc";
import { P } from "../threads";
import { fail, EFAULT, ENOMEM, CHECK_MMAP_NOMEM, CHECK_HVA_FAULT, CHECK_UFFD_MISSING } from "../errno";
import { mmuNotifierInvalidateRangeStart, mmuNotifierInvalidateRangeEnd, fileUserFault } from "./ops";
import { Vma, vmaAt, findVma, PROT_NONE, PROT_WRITE } from "./vma";

// ---- page table: hvpn (35 bits) = 11 | 12 | 12 ----
const LX_ENTRIES: i32 = 4096;
export const PTE_PRESENT: u32 = 1;
export const PTE_ZERO: u32 = 2; // maps ZERO_PAGE: read-only until the first write
export const PTE_FILE: u32 = 4; // maps a file's page: the file owns the frame

/** Pointer to the PTE of hvpn, allocating tables when `create`; 0 if absent. */
export function ptePtr(hvpn: u64, create: bool): usize {
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

/** Frees the frames of [start, end), walking only tables that exist. */
export function dropPages(start: u64, end: u64): void {
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

/**
 * The linear address backing hva for a read or a write (faulting the page in),
 * or 0 with EFAULT recorded when no usable mapping is there (or ENOMEM when no
 * frame is left).
 */
export function hvaToLinearLocked(hva: u64, write: bool): usize {
  const i = findVma(hva);
  if (i < 0) { fail(CHECK_HVA_FAULT, EFAULT); return 0; }
  const prot = vmaAt(i).prot;
  if (prot == PROT_NONE || (write && (prot & PROT_WRITE) == 0)) { fail(CHECK_HVA_FAULT, EFAULT); return 0; }
  const vpn = hva >> PAGE_SHIFT;
  const off = <usize>(hva & PAGE_MASK);
  // A missing page (handle_userfault for VM_UFFD_MISSING, do_anonymous_page's
  // first test): no zero page on a read, no frame on a write; the access fails
  // until the VMM places the page (userfaultfd.ts).
  if (vmaAt(i).uffd != 0 && pteMissing(vpn)) { fail(CHECK_UFFD_MISSING, EFAULT); return 0; }
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

/** A user fault on a file VMA: the file's frame for the page, now in the page table. */
function fileFault(v: Vma, hva: u64, pte: usize): usize {
  const frame = fileUserFault(v.file, v.pgoff + ((hva - v.start) >> PAGE_SHIFT));
  if (frame == 0) return 0;
  store<u32>(pte, <u32>frame | PTE_FILE | PTE_PRESENT);
  return frame + <usize>(hva & PAGE_MASK);
}

/** No pte is present for hvpn (pte_none): in a VM_UFFD_MISSING VMA, the page is missing. */
export function pteMissing(hvpn: u64): bool {
  const p = ptePtr(hvpn, false);
  return p == 0 || (load<u32>(p) & PTE_PRESENT) == 0;
}

/** Whether a page frame is present at hva (for tests of demand paging). */
export function hvaResidentLocked(hva: u64): bool {
  const p = ptePtr(hva >> PAGE_SHIFT, false);
  return p != 0 && (load<u32>(p) & PTE_PRESENT) != 0 && (load<u32>(p) & PTE_ZERO) == 0;
}

/** The linear frame behind hva without faulting anything in (0: none; the zero page counts). */
export function hvaFrameNoFaultLocked(hva: u64): usize {
  const p = ptePtr(hva >> PAGE_SHIFT, false);
  if (p == 0) return 0;
  const pte = load<u32>(p);
  return (pte & PTE_PRESENT) != 0 ? <usize>(pte & ~<u32>PAGE_MASK) : 0;
}

/** The linear address of hva's private anonymous frame, or 0 (absent or the zero page). */
export function privateFrameLocked(hva: u64): usize {
  const p = ptePtr(hva >> PAGE_SHIFT, false);
  if (p == 0) return 0;
  return privateLinear(load<u32>(p), hva);
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
export function privateRunLocked(hva: u64, len: u64): usize {
  if (len == 0) return 0;
  const first = privateFrameLocked(hva);
  if (first == 0) return 0;
  const lastVpn = (hva + len - 1) >> PAGE_SHIFT;
  let vpn = (hva >> PAGE_SHIFT) + 1;
  let want = first - <usize>(hva & PAGE_MASK) + <usize>PAGE_SIZE;
  // The pte bits compared: the frame, present, zero page, file.
  const mask = i32x4.splat(<i32>(~<u32>PAGE_MASK | PTE_PRESENT | PTE_ZERO | PTE_FILE));
  while (vpn <= lastVpn) {
    let p = ptePtr(vpn, false);
    if (p == 0) return 0;
    // The rest of this table, up to the last page: four ptes per compare
    // (frame, present, neither zero page nor file: privateLinear's test).
    const end = min<u64>(lastVpn, vpn | <u64>(LX_ENTRIES - 1));
    const quads = <usize>((end + 1 - vpn) >> 2);
    const stop = p + (quads << 4);
    let expect = i32x4.add(i32x4.splat(<i32>(want | PTE_PRESENT)), i32x4(0, PAGE_SIZE, 2 * PAGE_SIZE, 3 * PAGE_SIZE));
    // Differences are OR-ed and tested once: the run is the case to be fast.
    let diff = i32x4.splat(0);
    for (; p < stop; p += 16) {
      diff = v128.or(diff, v128.xor(v128.and(v128.load(p), mask), expect));
      expect = i32x4.add(expect, i32x4.splat(4 * PAGE_SIZE));
    }
    if (v128.any_true(diff)) return 0;
    vpn += <u64>(quads << 2);
    want += quads << (PAGE_SHIFT + 2);
    for (; vpn <= end; vpn++, p += 4, want += <usize>PAGE_SIZE) {
      if (privateLinear(load<u32>(p), 0) != want) return 0;
    }
  }
  return first;
}
