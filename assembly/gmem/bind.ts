// Bindings of guest_memfd page ranges to memslots (kvm_gmem_bind):
// kvm_gmem_bind on CREATE, kvm_gmem_unbind at DELETE commit or after a failed
// create, and what a punch hole or the file's release does to bound slots.
//
// A file keeps its bindings as unsorted records (slot, first page index, end
// page index); a VM binds few ranges per file, and the fault path never looks
// here: a bound slot carries the file and pgoff itself.

import { kzalloc, kfree } from "../kalloc";
import { Vm } from "../kvm/kvm_host";
import { fdKind, fdObject, FD_NONE, FD_GMEM } from "../kvm/fd";
import { slotOf, KVM_MEMSLOT_GMEM_ONLY } from "../memslots/slot";
import { zapGfnRange } from "../mmu/mmu";
import { fileOf, GUEST_MEMFD_FLAG_MMAP } from "./inode";
import { PAGE_SHIFT } from "../layout";
import { fail, EBADF, EINVAL, ENOMEM, CHECK_GMEM_BIND_FD, CHECK_GMEM_BIND_KIND, CHECK_GMEM_BIND_VM,
  CHECK_GMEM_BIND_RANGE, CHECK_GMEM_BIND_OVERLAP, CHECK_GMEM_NOMEM } from "../errno";

// record: slot u32 @0, start u64 @8, end u64 @16
export const BIND_RECORD_BYTES: usize = 24;
const BIND_BYTES = BIND_RECORD_BYTES;

@inline function bindAt(binds: usize, i: u32): usize {
  return binds + <usize>i * BIND_BYTES;
}

/** The first binding of the file intersecting page indices [start, end), or -1. */
function findOverlap(fp: usize, start: u64, end: u64): i32 {
  const f = fileOf(fp);
  for (let i: u32 = 0; i < f.nrBinds; i++) {
    const b = bindAt(f.binds, i);
    if (load<u64>(b, 8) < end && load<u64>(b, 16) > start) return <i32>i;
  }
  return -1;
}

function addBinding(fp: usize, slot: usize, start: u64, end: u64): bool {
  const f = fileOf(fp);
  if (f.nrBinds == f.capBinds) {
    const cap = f.capBinds == 0 ? 4 : f.capBinds * 2;
    const p = kzalloc(<usize>cap * BIND_BYTES);
    if (p == 0) return false;
    if (f.binds != 0) { memory.copy(p, f.binds, <usize>f.nrBinds * BIND_BYTES); kfree(f.binds, <usize>f.capBinds * BIND_BYTES); }
    f.binds = p;
    f.capBinds = cap;
  }
  const b = bindAt(f.binds, f.nrBinds++);
  store<u32>(b, <u32>slot);
  store<u64>(b, start, 8);
  store<u64>(b, end, 16);
  return true;
}

/**
 * kvm_gmem_bind, checks in the kernel's order: the fd is open (EBADF), is a
 * guest_memfd (EINVAL), belongs to this VM (EINVAL), the offset range fits the
 * file (EINVAL) and no page of it is bound already (EINVAL; EEXIST only in
 * kernels after May 2026). The generic checks already made offset page aligned.
 */
export function gmemBind(vm: Vm, slot: usize, fd: i32, offset: u64): i32 {
  const kind = fdKind(fd);
  if (kind == FD_NONE) return fail(CHECK_GMEM_BIND_FD, EBADF);
  if (kind != FD_GMEM) return fail(CHECK_GMEM_BIND_KIND, EINVAL);
  const fp = fdObject(fd);
  const f = fileOf(fp);
  if (f.vmSerial != vm.serial) return fail(CHECK_GMEM_BIND_VM, EINVAL);
  const s = slotOf(slot);
  // loff_t arithmetic that wraps: an end at 2^63 or beyond turns negative and
  // passes, so a range far past the end of the file is accepted, as Linux accepts it.
  const size = s.npages << PAGE_SHIFT;
  if (<i64>offset < 0 || <i64>(offset + size) > <i64>f.size) return fail(CHECK_GMEM_BIND_RANGE, EINVAL);
  const start = offset >> PAGE_SHIFT;
  const end = start + s.npages;
  if (findOverlap(fp, start, end) >= 0) return fail(CHECK_GMEM_BIND_OVERLAP, EINVAL);
  if (!addBinding(fp, slot, start, end)) return fail(CHECK_GMEM_NOMEM, ENOMEM);
  s.gmemFile = fp;
  s.gmemPgoff = start;
  // A mmap-able file serves every guest fault of the slot, shared or private.
  if (f.flags & GUEST_MEMFD_FLAG_MMAP) s.flags |= KVM_MEMSLOT_GMEM_ONLY;
  return 0;
}

/** kvm_gmem_unbind: the slot's page range is free again and the slot forgets the file. */
export function gmemUnbind(slot: usize): void {
  const s = slotOf(slot);
  const fp = s.gmemFile;
  if (fp == 0) return;
  const f = fileOf(fp);
  for (let i: u32 = 0; i < f.nrBinds; i++) {
    const b = bindAt(f.binds, i);
    if (<usize>load<u32>(b) != slot) continue;
    f.nrBinds--;
    memory.copy(b, bindAt(f.binds, f.nrBinds), BIND_BYTES);
    break;
  }
  s.gmemFile = 0;
}

/** Zaps the guest mappings of page indices [start, end) in every slot bound to them. */
export function zapBindings(fp: usize, start: u64, end: u64): void {
  const f = fileOf(fp);
  for (let i: u32 = 0; i < f.nrBinds; i++) {
    const b = bindAt(f.binds, i);
    const bStart = load<u64>(b, 8), bEnd = load<u64>(b, 16);
    if (bStart >= end || bEnd <= start) continue;
    const slot = <usize>load<u32>(b);
    const s = slotOf(slot);
    const lo = start > bStart ? start : bStart;
    const hi = end < bEnd ? end : bEnd;
    zapGfnRange(slot, s.baseGfn + (lo - bStart), s.baseGfn + (hi - bStart));
  }
}

/**
 * kvm_gmem_release: every slot bound through the file forgets it and loses
 * its mappings; the slots stay (still GUEST_MEMFD) and a later fault that
 * needs the file exits with a memory fault.
 */
export function releaseBindings(fp: usize): void {
  const f = fileOf(fp);
  for (let i: u32 = 0; i < f.nrBinds; i++) {
    const slot = <usize>load<u32>(bindAt(f.binds, i));
    const s = slotOf(slot);
    zapGfnRange(slot, s.baseGfn, s.baseGfn + s.npages);
    s.gmemFile = 0;
  }
  f.nrBinds = 0;
}
