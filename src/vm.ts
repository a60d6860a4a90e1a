// Vm: the VM ioctls (memslots first), guest-memory access, and the views of
// the memslot sets that tools and tests need.

import type { KvmInstance, VmFile } from "./instance.js";
import { capNumber, type CapName } from "./caps.js";
import { bytesAt } from "./core.js";
import { KvmError, throwIfFailed, ERRNO, CHECK } from "./errors.js";
import { rawIoctl, checkedIoctl, ioctlArgs, ioctlIn } from "./ioctl.js";
import { Vcpu } from "./vcpu.js";
import { GuestMemfd, type GuestMemfdOptions } from "./guest-memfd.js";
import {
  KVM_SET_USER_MEMORY_REGION, KVM_SET_USER_MEMORY_REGION2, KVM_CHECK_EXTENSION, KVM_CREATE_VCPU, KVM_ENABLE_CAP,
  kvm_userspace_memory_region, kvm_userspace_memory_region2, kvm_enable_cap,
  KVM_GET_DIRTY_LOG, KVM_CLEAR_DIRTY_LOG, KVM_RESET_DIRTY_RINGS, kvm_dirty_log, kvm_clear_dirty_log, KVM_CAP,
  KVM_CREATE_GUEST_MEMFD, kvm_create_guest_memfd, KVM_SET_MEMORY_ATTRIBUTES, kvm_memory_attributes, PAGE_SIZE,
} from "./uapi.js";
import { bitmapRanges, clearLogReads, entryRanges, type DirtyGfn, type GpaRange } from "./dirty.js";
import { bitmapBytes } from "./bitmap.js";
import { BitmapScratch } from "./bitmap-scratch.js";
import { snapshotMemslots, type Memslot } from "./memslot.js";
import { vmDebug, type VmDebug } from "./vm-debug.js";
import { PageTrack } from "./page-track.js";
import { GfnToPfnCache } from "./pfncache.js";
import { type U64, toU64, toU32, asU64 } from "./u64.js";

export interface MemoryRegion {
  /** Slot id (0..32763); with asId, or the kernel's combined `(as_id << 16) | id`. */
  slot: number;
  asId?: number;
  flags?: number;
  guestPhysAddr: U64;
  memorySize: U64;
  userspaceAddr: U64;
}

export interface MemoryRegion2 extends MemoryRegion {
  guestMemfdOffset?: U64;
  /** A guest_memfd (or any fd number, as the kernel takes it; -1 by default). */
  guestMemfd?: number | GuestMemfd;
}

export interface MemoryAttributes {
  address: U64;
  size: U64;
  /** KVM_MEMORY_ATTRIBUTE_PRIVATE (8) or 0 (shared). */
  attributes: U64;
  flags?: U64;
}

/** Field offsets of struct kvm_userspace_memory_region (the hot ioctl writes them directly). */
const REGION1 = Object.fromEntries(kvm_userspace_memory_region.fields.map((f) => [f.name, f.offset])) as
  Record<"slot" | "flags" | "guest_phys_addr" | "memory_size" | "userspace_addr", number>;

function slotWord(r: MemoryRegion): number {
  const id = toU32(r.slot, "slot");
  if (r.asId === undefined) return id;
  if (id > 0xffff) throw new RangeError(`slot ${r.slot} with asId: the id must fit 16 bits`);
  const as = toU32(r.asId, "asId");
  if (as > 0xffff) throw new RangeError(`asId ${r.asId} does not fit 16 bits`);
  return ((as << 16) | id) >>> 0;
}

export class Vm implements VmFile {
  private closed = false;
  /** External page-track users (KVMGT-style write tracking). */
  readonly pageTrack: PageTrack;

  /** @internal */
  constructor(readonly kvm: KvmInstance, readonly fd: number) {
    this.pageTrack = new PageTrack(this);
    this.bitmapScratch = new BitmapScratch(kvm.memory);
  }

  /** A gfn->pfn cache of this VM (kvm_gpc_init). */
  createPfnCache(): GfnToPfnCache {
    return new GfnToPfnCache(this);
  }

  private get core() {
    if (this.closed) throw new KvmError(ERRNO.EBADF, CHECK.BAD_FD, { fd: this.fd }, "VM");
    return this.kvm.core;
  }

  /** Raw ioctl on the VM fd: the kernel's struct bytes (or a scalar) in, 0 / value / -errno out. */
  ioctl(nr: number, arg?: Uint8Array | number | bigint): number {
    if (this.closed) return -ERRNO.EBADF;
    const r = rawIoctl(this.core, this.fd, nr, arg);
    this.kvm.rethrowCallbackError();
    return r;
  }

  checkExtension(cap: number | CapName): number {
    return this.ioctl(KVM_CHECK_EXTENSION, capNumber(cap));
  }

  /** KVM_SET_USER_MEMORY_REGION. memorySize 0 deletes the slot. */
  setUserMemoryRegion(r: MemoryRegion): void {
    const slot = slotWord(r), flags = toU32(r.flags ?? 0, "flags");
    const gpa = toU64(r.guestPhysAddr, "guestPhysAddr"), size = toU64(r.memorySize, "memorySize");
    const uaddr = toU64(r.userspaceAddr, "userspaceAddr");
    // Every byte of the struct is written, at the codec's offsets.
    const core = this.core;
    const a = ioctlArgs(core);
    a.u32(REGION1.slot, slot);
    a.u32(REGION1.flags, flags);
    a.u64(REGION1.guest_phys_addr, gpa);
    a.u64(REGION1.memory_size, size);
    a.u64(REGION1.userspace_addr, uaddr);
    const res = ioctlIn(core, this.fd, KVM_SET_USER_MEMORY_REGION, kvm_userspace_memory_region.size);
    this.kvm.rethrowCallbackError();
    if (res < 0) {
      throwIfFailed(core, res, "KVM_SET_USER_MEMORY_REGION", { slot, flags, guest_phys_addr: gpa, memory_size: size,
        userspace_addr: uaddr, ioctl: "KVM_SET_USER_MEMORY_REGION", nr: KVM_SET_USER_MEMORY_REGION });
    }
  }

  /** KVM_SET_USER_MEMORY_REGION2. */
  setUserMemoryRegion2(r: MemoryRegion2): void {
    const gmemFd = r.guestMemfd instanceof GuestMemfd ? r.guestMemfd.fd : r.guestMemfd ?? -1;
    const fields = {
      slot: slotWord(r), flags: toU32(r.flags ?? 0, "flags"), guest_phys_addr: toU64(r.guestPhysAddr, "guestPhysAddr"),
      memory_size: toU64(r.memorySize, "memorySize"), userspace_addr: toU64(r.userspaceAddr, "userspaceAddr"),
      guest_memfd_offset: toU64(r.guestMemfdOffset ?? 0, "guestMemfdOffset"),
      guest_memfd: BigInt.asUintN(32, BigInt(gmemFd)),
    };
    try {
      checkedIoctl(this.core, this.fd, KVM_SET_USER_MEMORY_REGION2, "KVM_SET_USER_MEMORY_REGION2",
        kvm_userspace_memory_region2.encode(fields), { ...fields, guest_memfd: gmemFd });
    } finally {
      this.kvm.rethrowCallbackError();
    }
  }

  /** KVM_CREATE_GUEST_MEMFD: a file of `size` bytes whose pages are allocated on first use. */
  createGuestMemfd(opts: GuestMemfdOptions): GuestMemfd {
    const fields = { size: toU64(opts.size, "size"), flags: toU64(opts.flags ?? 0, "flags") };
    const fd = checkedIoctl(this.core, this.fd, KVM_CREATE_GUEST_MEMFD, "KVM_CREATE_GUEST_MEMFD",
      kvm_create_guest_memfd.encode(fields), fields);
    return new GuestMemfd(this, fd, fields.size, fields.flags);
  }

  /**
   * KVM_SET_MEMORY_ATTRIBUTES: gfns [address, address + size) get `attributes`
   * (PRIVATE or 0); the mappings of every slot in the range are zapped. ENOTTY
   * unless the instance is configured with memoryAttributes.
   */
  setMemoryAttributes(a: MemoryAttributes): void {
    const fields = { address: toU64(a.address, "address"), size: toU64(a.size, "size"),
      attributes: toU64(a.attributes, "attributes"), flags: toU64(a.flags ?? 0, "flags") };
    checkedIoctl(this.core, this.fd, KVM_SET_MEMORY_ATTRIBUTES, "KVM_SET_MEMORY_ATTRIBUTES",
      kvm_memory_attributes.encode(fields), fields);
  }

  /** The memory attributes of a gfn (0 = shared). */
  memoryAttributes(gfn: U64): bigint {
    return asU64(BigInt(this.core.vmMemoryAttributes(this.fd, toU64(gfn, "gfn"))));
  }

  /** KVM_ENABLE_CAP on the VM. */
  enableCap(cap: number | CapName, args: U64[] = [], flags = 0): void {
    const c = capNumber(cap);
    const fields = { cap: c, flags, arg0: args[0] ?? 0, arg1: args[1] ?? 0, arg2: args[2] ?? 0, arg3: args[3] ?? 0 };
    checkedIoctl(this.core, this.fd, KVM_ENABLE_CAP, "KVM_ENABLE_CAP", kvm_enable_cap.encode(fields), fields);
  }

  createVcpu(id: number): Vcpu {
    const fd = checkedIoctl(this.core, this.fd, KVM_CREATE_VCPU, "KVM_CREATE_VCPU", toU32(id, "id"), { id });
    const v = new Vcpu(this, fd, id);
    this.vcpus.push(v);
    return v;
  }

  /**
   * Wraps a vCPU fd of this VM that exists already: one another thread created
   * (after `Kvm.join`), or a raw KVM_CREATE_VCPU's. EBADF when fd is not a
   * vCPU of this VM.
   */
  vcpuFromFd(fd: number): Vcpu {
    const known = this.vcpus.find((v) => v.fd === fd);
    if (known) return known;
    const id = this.core.vcpuIdOf(this.fd, toU32(fd, "fd"));
    if (id < 0) throw new KvmError(ERRNO.EBADF, CHECK.BAD_FD, { fd }, "vcpuFromFd");
    const v = new Vcpu(this, fd, id);
    this.vcpus.push(v);
    return v;
  }

  private readonly vcpus: Vcpu[] = [];
  /** Host memory for bitmaps passed to the dirty-log ioctls. */
  private readonly bitmapScratch: BitmapScratch;

  /** @internal Pages of user slot `slot`, -1n when there is none: found by id as the dirty-log ioctls find it. */
  slotNpages(slot: number, asId: number): bigint {
    return this.core.memslotNpages(this.fd, asId, slot & 0xffff);
  }

  /** KVM_GET_DIRTY_LOG: the slot's bitmap, ALIGN(npages, 64) / 8 bytes (bit i = page base_gfn + i). */
  getDirtyLog(slot: number, asId = 0): Uint8Array {
    const npages = this.slotNpages(slot, asId);
    return this.readDirtyLog(slot, asId, npages < 0n ? 64n : npages);
  }

  private readDirtyLog(slot: number, asId: number, npages: bigint): Uint8Array {
    const bytes = BigInt(bitmapBytes(Number(npages)));
    const hva = this.bitmapScratch.hva(bytes);
    const fields = { slot: slotWord({ slot, asId, guestPhysAddr: 0, memorySize: 0, userspaceAddr: 0 }), dirty_bitmap: hva };
    checkedIoctl(this.core, this.fd, KVM_GET_DIRTY_LOG, "KVM_GET_DIRTY_LOG", kvm_dirty_log.encode(fields), fields);
    return this.kvm.memory.read(hva, Number(bytes));
  }

  /**
   * KVM_CLEAR_DIRTY_LOG: clears (and re-protects) pages firstPage + i for each
   * set bit i of bitmap (default: every page of the range).
   */
  clearDirtyLog(slot: number, firstPage: U64, numPages: number, bitmap?: Uint8Array, asId = 0): void {
    const num = toU32(numPages, "numPages");
    const first = toU64(firstPage, "firstPage");
    const bytes = bitmapBytes(num);
    if (bitmap && bitmap.length < bytes) throw new RangeError(`bitmap needs ${bytes} bytes for ${num} pages`);
    // A call that fails its checks first costs no bitmap, and the default all-ones one is never larger than the slot's.
    const reads = bitmapBytes(clearLogReads(this.slotNpages(slot, asId), first, num));
    const hva = this.bitmapScratch.hva(BigInt(reads));
    if (reads > 0) this.kvm.memory.write(hva, bitmap ? bitmap.subarray(0, reads) : new Uint8Array(reads).fill(0xff));
    const fields = { slot: slotWord({ slot, asId, guestPhysAddr: 0, memorySize: 0, userspaceAddr: 0 }),
      num_pages: num, first_page: first, dirty_bitmap: hva };
    checkedIoctl(this.core, this.fd, KVM_CLEAR_DIRTY_LOG, "KVM_CLEAR_DIRTY_LOG", kvm_clear_dirty_log.encode(fields), fields);
  }

  /** KVM_ENABLE_CAP(KVM_CAP_DIRTY_LOG_RING[_ACQ_REL]): a ring of `bytes` per vCPU, before any vCPU exists. */
  enableDirtyRing(bytes: number, acqRel = false): void {
    this.enableCap(acqRel ? KVM_CAP.DIRTY_LOG_RING_ACQ_REL : KVM_CAP.DIRTY_LOG_RING, [bytes]);
  }

  /** KVM_RESET_DIRTY_RINGS: recycles harvested entries and re-protects their pages; the count. */
  resetDirtyRings(): number {
    return checkedIoctl(this.core, this.fd, KVM_RESET_DIRTY_RINGS, "KVM_RESET_DIRTY_RINGS", undefined, {});
  }

  /**
   * The dirty pages of a logged slot as coalesced gpa ranges, from its bitmap
   * (KVM_GET_DIRTY_LOG) — or, with a dirty ring, harvested from every vCPU's
   * ring (entries of other slots are dropped: harvest them first if needed).
   */
  dirtyPages(slot: number, asId = 0): GpaRange[] {
    const s = this.memslots({ asId }).find((x) => x.id === slot);
    if (!s) throw new KvmError(ERRNO.ENOENT, CHECK.DIRTY_NO_SLOT, { slot }, "dirtyPages");
    if (this.vcpus.some((v) => v.dirtyRing.size > 0)) {
      const field = (asId << 16) | slot;
      const entries: DirtyGfn[] = this.vcpus.flatMap((v) => v.dirtyRing.harvest()).filter((e) => e.slot === field);
      return entryRanges(entries, () => s.guestPhysAddr);
    }
    return bitmapRanges(this.readDirtyLog(slot, asId, s.npages), Number(s.npages), s.guestPhysAddr);
  }

  /** kvm_read_guest: len bytes at gpa, across slots; EFAULT on holes and INVALID slots. */
  readGuest(gpa: U64, lenOrBuf: number | Uint8Array, asId = 0): Uint8Array {
    const out = typeof lenOrBuf === "number" ? new Uint8Array(lenOrBuf) : lenOrBuf;
    this.guestCopy(toU64(gpa, "gpa"), out, asId, false);
    return out;
  }

  /** kvm_write_guest: EFAULT on holes, INVALID and read-only slots; marks pages dirty. */
  writeGuest(gpa: U64, bytes: Uint8Array, asId = 0): void {
    this.guestCopy(toU64(gpa, "gpa"), bytes, asId, true);
  }

  private guestCopy(gpa: bigint, buf: Uint8Array, asId: number, write: boolean): void {
    const core = this.core;
    if (asId !== 0 && asId !== 1) throw new RangeError(`asId ${asId}`);
    if (asId >= core.vmNrAs(this.fd)) throw new RangeError(`address space ${asId} does not exist in this VM`);
    if (gpa + BigInt(buf.length) > 1n << 64n) throw new RangeError(`gpa ${gpa} + ${buf.length} wraps`);
    const chunk = core.ioBufferSize();
    for (let done = 0; done < buf.length;) {
      const n = Math.min(chunk, buf.length - done);
      const at = gpa + BigInt(done);
      if (write) bytesAt(core, core.ioBuffer(), n).set(buf.subarray(done, done + n));
      const r = core.accessGuestMemory(this.fd, asId, at, n, write);
      if (r < 0) {
        const failedAt = this.firstBadGpa(at, n, write, asId);
        throw new KvmError(-r, core.lastFailedCheck(), { gpa: failedAt }, write ? "writeGuest" : "readGuest");
      }
      if (!write) buf.set(bytesAt(core, core.ioBuffer(), n), done);
      done += n;
    }
  }

  private firstBadGpa(gpa: bigint, n: number, write: boolean, asId: number): bigint {
    for (let p = gpa & ~BigInt(PAGE_SIZE - 1); p < gpa + BigInt(n); p += BigInt(PAGE_SIZE)) {
      if (this.core.accessGuestMemory(this.fd, asId, p < gpa ? gpa : p, 1, write) < 0) return p < gpa ? gpa : p;
    }
    return gpa;
  }

  /** gfn_to_hva (write lookup; fails on READONLY) or gfn_to_hva_prot ({write: false}). */
  gfnToHva(gfn: U64, opts: { asId?: number; write?: boolean } = {}): bigint {
    return asU64(BigInt(this.core.gfnToHva(this.fd, opts.asId ?? 0, toU64(gfn, "gfn"), opts.write ?? true)));
  }

  /** kvm_is_visible_gfn: a user slot that is not being updated covers gfn. */
  isVisibleGfn(gfn: U64): boolean {
    return this.core.isVisibleGfn(this.fd, toU64(gfn, "gfn")) !== 0;
  }

  /** The current memslot generation of an address space (bit 63 = update in progress). */
  generation(asId = 0): bigint {
    return asU64(BigInt(this.core.generation(this.fd, asId)));
  }

  get addressSpaces(): number {
    return this.core.vmNrAs(this.fd);
  }

  /** The slots of an address space in gfn order (the active set, or the inactive one). */
  memslots(opts: { asId?: number; inactive?: boolean } = {}): Memslot[] {
    return snapshotMemslots(this.core, this.fd, opts.asId ?? 0, opts.inactive ?? false);
  }

  /**
   * __x86_set_memory_region: creates (size > 0) or deletes (size 0) internal
   * slot 32764..32766 in every address space. Returns the new slot's hva.
   */
  x86SetMemoryRegion(id: number, gpa: U64, size: U64): bigint {
    const core = this.core; // a callback inside may close this VM
    const r = core.x86SetMemoryRegion(this.fd, toU32(id, "id"), toU64(gpa, "gpa"), toU64(size, "size"));
    this.kvm.rethrowCallbackError();
    throwIfFailed(core, r, "__x86_set_memory_region", { id });
    return toU64(size, "size") === 0n ? 0n : asU64(BigInt(core.internalSlotHva()));
  }

  /** Debug and test surface: lookups with a chosen cache path, hva routing, fault injection, counters. */
  get debug(): VmDebug {
    return vmDebug(this.core, this.fd);
  }

  close(): void {
    if (this.closed) return;
    this.kvm.core.closeFd(this.fd);
    this.closed = true;
    // The host memory this object and its vCPUs mapped for ioctl arguments goes with them.
    for (const v of this.vcpus) v.releaseScratch();
    this.bitmapScratch.release();
    this.kvm.forget(this.fd);
  }
}
