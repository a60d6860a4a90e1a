// A guest_memfd file (virt/kvm/guest_memfd.c): an unevictable, fixed-size
// file whose pages are demand-allocated frames held in a radix page table
// keyed by page index. Nothing is allocated up front, so a 1 TiB file costs
// one file object until its pages are touched.
//
//   page table: height h levels of 512 u32 entries (2 KiB nodes); a leaf entry
//   is a frame's linear address (page aligned, 0 = hole). The root grows
//   upwards when an index beyond 512^h is needed (indices reach 2^52: the
//   signed-wrap binding in gmem/bind.ts can put pages far past the end of the file).
//
// The file's state is inode.ts. References: the fd holds one and every host
// VMA mapping the file holds one (taken and dropped through the file ops
// registered with hostmm/ops.ts); the last put releases the file (kvm_gmem_release).

import { kzalloc, kfree } from "../kalloc";
import { allocFrame, freeFrame } from "../hostmm/frames";
import { mmapFile, zapFilePages, PROT_READ, PROT_WRITE, PROT_EXEC, MAP_SHARED,
  MAP_PRIVATE } from "../hostmm/mm";
import { Vm } from "../kvm/kvm_host";
import { typeHasPrivateMem } from "../kvm/config";
import { fdInstall, fdKind, fdObject, FD_NONE, FD_GMEM } from "../kvm/fd";
import { GmemFile, fileOf, GUEST_MEMFD_FLAG_MMAP, GUEST_MEMFD_FLAG_INIT_SHARED } from "./inode";
import { releaseBindings, zapBindings, BIND_RECORD_BYTES } from "./bind";
import { ioctlBuf, PAGE_SHIFT, PAGE_MASK } from "../layout";
import { fail, EBADF, EFAULT, EINVAL, ENOMEM, EMFILE, ENODEV, EFBIG, EOPNOTSUPP, CHECK_COPY_FROM_USER,
  CHECK_GMEM_FLAGS, CHECK_GMEM_SIZE, CHECK_FD_TABLE_FULL, CHECK_GMEM_NOMEM, CHECK_BAD_FD, CHECK_NOT_GMEM,
  CHECK_FALLOC_MODE, CHECK_FALLOC_ARGS, CHECK_FALLOC_FBIG, CHECK_FALLOC_RANGE, CHECK_GMEM_NO_MMAP,
  CHECK_GMEM_MMAP_SHARED, CHECK_GMEM_SETATTR, CHECK_FILE_RW, CHECK_MMAP_ARGS, CHECK_GMEM_SIGBUS } from "../errno";
import { GMEM_STAT_SIZE, GMEM_STAT_FLAGS, GMEM_STAT_PAGES, GMEM_STAT_BINDINGS, GMEM_STAT_REFS } from "../selectors";

export const FALLOC_FL_KEEP_SIZE: u32 = 0x01;
export const FALLOC_FL_PUNCH_HOLE: u32 = 0x02;
/** Every mode bit the VFS knows (FALLOC_FL_MODE_MASK | KEEP_SIZE). */
const FALLOC_FL_KNOWN: u32 = 0x01 | 0x02 | 0x04 | 0x08 | 0x10 | 0x20 | 0x40;
const FALLOC_FL_MODE_MASK: u32 = 0x02 | 0x04 | 0x08 | 0x10 | 0x20 | 0x40;

const CREATE_BYTES: i32 = 64;

/** Number of live guest_memfd files (for tests: a closed, unmapped file is freed). */
export let gmemFilesLive: u32 = 0;

// ---- the page table ----
const RADIX_BITS: u32 = 9;
const RADIX_ENTRIES: usize = 1 << RADIX_BITS;
const NODE_BYTES: usize = RADIX_ENTRIES << 2;

/** Pointer to the leaf entry of index; with `create`, builds the path. 0 when absent (or ENOMEM). */
function entryPtr(f: GmemFile, index: u64, create: bool): usize {
  if (f.root == 0) {
    if (!create) return 0;
    const r = kzalloc(NODE_BYTES);
    if (r == 0) return 0;
    f.root = r;
    f.height = 1;
  }
  while ((index >> (<u64>RADIX_BITS * <u64>f.height)) != 0) {
    if (!create) return 0;
    const r = kzalloc(NODE_BYTES);
    if (r == 0) return 0;
    store<u32>(r, <u32>f.root);
    f.root = r;
    f.height++;
  }
  let node = f.root;
  for (let level = f.height - 1; level > 0; level--) {
    const p = node + (<usize>((index >> (<u64>RADIX_BITS * <u64>level)) & <u64>(RADIX_ENTRIES - 1)) << 2);
    let child = <usize>load<u32>(p);
    if (child == 0) {
      if (!create) return 0;
      child = kzalloc(NODE_BYTES);
      if (child == 0) return 0;
      store<u32>(p, <u32>child);
    }
    node = child;
  }
  return node + (<usize>(index & <u64>(RADIX_ENTRIES - 1)) << 2);
}

/** The frame of page index, allocating (zeroed) when `alloc`; 0 if absent or out of memory. */
export function gmemGetPage(fp: usize, index: u64, alloc: bool): usize {
  const f = fileOf(fp);
  const p = entryPtr(f, index, alloc);
  if (p == 0) return 0;
  let frame = <usize>load<u32>(p);
  if (frame == 0 && alloc) {
    // A new page is zero before anyone sees it (kvm_gmem_prepare_folio / clear_highpage).
    frame = allocFrame();
    if (frame == 0) return 0;
    store<u32>(p, <u32>frame);
    f.nrPages++;
  }
  return frame;
}

/** Frees the frames of indices [start, end) below node (an entry at `level` covers 512^level indices). */
function freeRange(f: GmemFile, node: usize, level: u32, base: u64, start: u64, end: u64): void {
  const shift = <u64>RADIX_BITS * <u64>level;
  for (let i: usize = 0; i < RADIX_ENTRIES; i++) {
    const lo = base + (<u64>i << shift);
    const hi = lo + (<u64>1 << shift);
    if (hi <= start || lo >= end) continue;
    const p = node + (i << 2);
    const e = <usize>load<u32>(p);
    if (e == 0) continue;
    if (level == 0) {
      freeFrame(e);
      f.nrPages--;
      store<u32>(p, 0);
      continue;
    }
    freeRange(f, e, level - 1, lo, start, end);
    if (lo >= start && hi <= end) {
      kfree(e, NODE_BYTES);
      store<u32>(p, 0);
    }
  }
}

/** truncate_inode_pages_range for whole pages [start, end). */
function truncatePages(f: GmemFile, start: u64, end: u64): void {
  if (f.root == 0 || start >= end) return;
  freeRange(f, f.root, f.height - 1, 0, start, end);
}

function freeFile(fp: usize): void {
  const f = fileOf(fp);
  if (f.root != 0) {
    truncatePages(f, 0, <u64>-1);
    kfree(f.root, NODE_BYTES);
  }
  kfree(f.binds, <usize>f.capBinds * BIND_RECORD_BYTES);
  kfree(fp, offsetof<GmemFile>());
  gmemFilesLive--;
}

// ---- creation and references ----

/** kvm_gmem_get_supported_flags: INIT_SHARED only for VMs without private memory [x86]. */
export function gmemSupportedFlags(vm: Vm): u64 {
  return typeHasPrivateMem(vm.type) ? GUEST_MEMFD_FLAG_MMAP : GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED;
}

/**
 * KVM_CREATE_GUEST_MEMFD (kvm_gmem_create): the 64-byte struct is in ioctlBuf().
 * Returns the new fd or -errno. reserved[6] is not looked at.
 */
export function gmemCreateIoctl(vm: Vm, argLen: i32): i32 {
  if (argLen < CREATE_BYTES) return fail(CHECK_COPY_FROM_USER, EFAULT);
  const size = load<u64>(ioctlBuf());
  const flags = load<u64>(ioctlBuf(), 8);
  if ((flags & ~gmemSupportedFlags(vm)) != 0) return fail(CHECK_GMEM_FLAGS, EINVAL);
  if (<i64>size <= 0 || (size & PAGE_MASK) != 0) return fail(CHECK_GMEM_SIZE, EINVAL);
  const fp = kzalloc(offsetof<GmemFile>());
  if (fp == 0) return fail(CHECK_GMEM_NOMEM, ENOMEM);
  const fd = fdInstall(FD_GMEM, fp);
  if (fd < 0) { kfree(fp, offsetof<GmemFile>()); return fail(CHECK_FD_TABLE_FULL, EMFILE); }
  const f = fileOf(fp);
  f.size = size;
  f.flags = flags;
  f.vmSerial = vm.serial;
  f.refs = 1;
  f.fd = fd;
  gmemFilesLive++;
  return fd;
}

export function gmemFileGet(fp: usize): void {
  fileOf(fp).refs++;
}

/**
 * fput: the last reference releases the file (kvm_gmem_release): every slot
 * bound through it forgets it and loses its mappings; then the pages go.
 */
export function gmemFilePut(fp: usize): void {
  const f = fileOf(fp);
  if (--f.refs != 0) return;
  releaseBindings(fp);
  freeFile(fp);
}

/** close(fd) of a guest_memfd: drops the fd's reference. */
export function gmemClose(fp: usize): void {
  fileOf(fp).fd = -1;
  gmemFilePut(fp);
}

/** -errno of the last fileFromFd that failed. */
let fdErr: i32 = 0;

/** The file behind fd, or 0 with fdErr set (EBADF: not open; `notGmem` for other kinds of fd). */
function fileFromFd(fd: i32, notGmem: i32): usize {
  const kind = fdKind(fd);
  if (kind == FD_NONE) { fdErr = fail(CHECK_BAD_FD, EBADF); return 0; }
  if (kind != FD_GMEM) { fdErr = fail(CHECK_NOT_GMEM, notGmem); return 0; }
  return fdObject(fd);
}

// ---- file operations ----

/** Invalidates the guest and host mappings of pages [start, end), then frees them (kvm_gmem_punch_hole). */
function punchHole(fp: usize, start: u64, end: u64): void {
  // Guest mappings of every bound slot first (kvm_gmem_invalidate_begin), then
  // the host's mappings of the file (truncate unmaps them), then the pages.
  zapBindings(fp, start, end);
  zapFilePages(fp, start, end);
  truncatePages(fileOf(fp), start, end);
}

/** kvm_gmem_allocate: every page of [start, end) gets a frame. */
function allocatePages(fp: usize, start: u64, end: u64): i32 {
  for (let i = start; i < end; i++) {
    if (gmemGetPage(fp, i, true) == 0) return fail(CHECK_GMEM_NOMEM, ENOMEM);
  }
  return 0;
}

/** fallocate(fd, mode, offset, len): vfs_fallocate's generic checks, then kvm_gmem_fallocate. */
export function gmemFallocate(fd: i32, mode: u32, offset: u64, len: u64): i32 {
  const fp = fileFromFd(fd, ENODEV);
  if (fp == 0) return fdErr;
  // vfs_fallocate
  if (<i64>offset < 0 || <i64>len <= 0) return fail(CHECK_FALLOC_ARGS, EINVAL);
  if ((mode & ~FALLOC_FL_KNOWN) != 0) return fail(CHECK_FALLOC_MODE, EOPNOTSUPP);
  if ((mode & FALLOC_FL_MODE_MASK) == FALLOC_FL_PUNCH_HOLE && (mode & FALLOC_FL_KEEP_SIZE) == 0)
    return fail(CHECK_FALLOC_MODE, EOPNOTSUPP);
  if (<i64>(offset + len) < 0) return fail(CHECK_FALLOC_FBIG, EFBIG);
  // kvm_gmem_fallocate
  if ((mode & FALLOC_FL_KEEP_SIZE) == 0) return fail(CHECK_FALLOC_MODE, EOPNOTSUPP);
  if ((mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE)) != 0) return fail(CHECK_FALLOC_MODE, EOPNOTSUPP);
  if ((offset & PAGE_MASK) != 0 || (len & PAGE_MASK) != 0) return fail(CHECK_FALLOC_ARGS, EINVAL);
  const start = offset >> PAGE_SHIFT, end = (offset + len) >> PAGE_SHIFT;
  if (mode & FALLOC_FL_PUNCH_HOLE) {
    // No size check: a hole reaching past the end of the file is fine.
    punchHole(fp, start, end);
    return 0;
  }
  if (offset + len > fileOf(fp).size) return fail(CHECK_FALLOC_RANGE, EINVAL);
  return allocatePages(fp, start, end);
}

/** ftruncate / any attribute change (kvm_gmem_setattr): the size is immutable. */
export function gmemTruncate(fd: i32, size: u64): i32 {
  const fp = fileFromFd(fd, EINVAL);
  if (fp == 0) return fdErr;
  return fail(CHECK_GMEM_SETATTR, EINVAL);
}

/** read / write: the file has no such operations. */
export function gmemReadWrite(fd: i32): i32 {
  const fp = fileFromFd(fd, EINVAL);
  if (fp == 0) return fdErr;
  return fail(CHECK_FILE_RW, EINVAL);
}

/**
 * mmap of the file (kvm_gmem_mmap): ENODEV without GUEST_MEMFD_FLAG_MMAP,
 * EINVAL unless MAP_SHARED; the mmap's generic argument checks come first.
 */
export function gmemMmap(fd: i32, addr: u64, len: u64, prot: u32, flags: u32, offset: u64): i64 {
  const fp = fileFromFd(fd, ENODEV);
  if (fp == 0) return <i64>fdErr;
  // do_mmap: length, offset, protection and a map type that is exactly one of SHARED / PRIVATE.
  const type = flags & (MAP_SHARED | MAP_PRIVATE);
  if (len == 0 || (offset & PAGE_MASK) != 0 || (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC)) != 0 ||
      type == 0 || type == (MAP_SHARED | MAP_PRIVATE))
    return <i64>fail(CHECK_MMAP_ARGS, EINVAL);
  // kvm_gmem_mmap
  if ((fileOf(fp).flags & GUEST_MEMFD_FLAG_MMAP) == 0) return <i64>fail(CHECK_GMEM_NO_MMAP, ENODEV);
  if (type != MAP_SHARED) return <i64>fail(CHECK_GMEM_MMAP_SHARED, EINVAL);
  return mmapFile(addr, len, prot, flags, fp, offset >> PAGE_SHIFT);
}

/**
 * A host (user) fault on page index of a mapped file (kvm_gmem_fault_user_mapping):
 * the frame, or 0 with EFAULT (SIGBUS: past the end, or not INIT_SHARED) or
 * ENOMEM recorded.
 */
export function gmemUserFault(fp: usize, index: u64): usize {
  const f = fileOf(fp);
  if (index >= (f.size >> PAGE_SHIFT) || (f.flags & GUEST_MEMFD_FLAG_INIT_SHARED) == 0) {
    fail(CHECK_GMEM_SIGBUS, EFAULT);
    return 0;
  }
  const frame = gmemGetPage(fp, index, true);
  if (frame == 0) fail(CHECK_GMEM_NOMEM, ENOMEM);
  return frame;
}

/** Test surface: size, flags, frames held, bindings, references (GMEM_STAT_* of selectors.ts). */
export function gmemFileStat(fd: i32, which: i32): u64 {
  if (fdKind(fd) != FD_GMEM) return <u64>-1;
  const f = fileOf(fdObject(fd));
  switch (which) {
    case GMEM_STAT_SIZE: return f.size;
    case GMEM_STAT_FLAGS: return f.flags;
    case GMEM_STAT_PAGES: return <u64>f.nrPages;
    case GMEM_STAT_BINDINGS: return <u64>f.nrBinds;
    case GMEM_STAT_REFS: return <u64>f.refs;
  }
  return 0;
}

/** Whether page index of the file behind fd has a frame. */
export function gmemPagePresent(fd: i32, index: u64): bool {
  if (fdKind(fd) != FD_GMEM) return false;
  return gmemGetPage(fdObject(fd), index, false) != 0;
}
