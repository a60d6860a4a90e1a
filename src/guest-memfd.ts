// GuestMemfd: a guest_memfd file descriptor (virt/kvm/guest_memfd.c), made
// by vm.createGuestMemfd(). Its pages belong to the file, not to any mapping;
// a memslot binds a range of it with setUserMemoryRegion2({ guestMemfd }).
// The file outlives its slots and its VM; close() drops the fd, and the file
// is released (its slots forget it) once no mapping holds it either.

import type { VmFile } from "./instance.js";
import { KvmError, throwIfFailed, ERRNO, CHECK } from "./errors.js";
import { GMEM_STAT } from "./abi.gen.js";
import { MAP_SHARED, MAP_PRIVATE, MAP_FIXED, parseProt, type Hva } from "./host-memory.js";
import { FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE } from "./uapi.js";
import { type U64, toU64, toU32 } from "./u64.js";

export interface GuestMemfdOptions {
  /** Bytes: positive as an s64 and page aligned. */
  size: U64;
  /** GUEST_MEMFD_FLAG_MMAP (1) | GUEST_MEMFD_FLAG_INIT_SHARED (2). */
  flags?: U64;
}

export interface GuestMemfdMmapOptions {
  /** Bytes to map (default: the file size). */
  length?: U64;
  /** File offset, page aligned (default 0). */
  offset?: U64;
  /** PROT_* bits or "rw"-style (default "rw"). */
  prot?: number | string;
  /** Map exactly here (MAP_FIXED). */
  addr?: U64;
  /** MAP_SHARED (default); false asks for MAP_PRIVATE, which a guest_memfd refuses (EINVAL). */
  shared?: boolean;
}

export class GuestMemfd {
  private closed = false;

  /** @internal */
  constructor(readonly vm: VmFile, readonly fd: number, readonly size: bigint, readonly flags: bigint) {}

  /** The core is the VM's instance's; it stays usable after the VM is closed. */
  private get core() {
    if (this.closed) throw new KvmError(ERRNO.EBADF, CHECK.BAD_FD, { fd: this.fd }, "guest_memfd");
    return this.vm.kvm.core;
  }

  private check(r: number | bigint, what: string, ctx: Record<string, unknown>): void {
    throwIfFailed(this.vm.kvm.core, r, what, { fd: this.fd, ...ctx });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** close(fd). The file lives on while a mapping of it exists. Closing twice is a no-op. */
  close(): void {
    if (this.closed) return;
    this.vm.kvm.core.closeFd(this.fd);
    this.closed = true;
  }

  /** fallocate(fd, mode, offset, len). */
  fallocate(mode: number, offset: U64, len: U64): void {
    const o = toU64(offset, "offset"), l = toU64(len, "len");
    this.check(this.core.gmemFallocate(this.fd, toU32(mode, "mode"), o, l), "fallocate", { mode, offset: o, len: l });
  }

  /** Frees the pages of [offset, offset + len) after zapping every guest mapping of them. */
  punchHole(offset: U64, len: U64): void {
    this.fallocate(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, offset, len);
  }

  /** Allocates (zeroed) pages for [offset, offset + len), which must lie inside the file. */
  allocate(offset: U64, len: U64): void {
    this.fallocate(FALLOC_FL_KEEP_SIZE, offset, len);
  }

  /** ftruncate: always EINVAL, the size of a guest_memfd is immutable. */
  truncate(size: U64): void {
    this.check(this.core.gmemTruncate(this.fd, toU64(size, "size")), "ftruncate", { size });
  }

  /**
   * mmap of the file (MAP_SHARED): an hva whose pages are the file's pages.
   * ENODEV without GUEST_MEMFD_FLAG_MMAP; host accesses fault (EFAULT, the
   * kernel's SIGBUS) past the end of the file or unless it is INIT_SHARED.
   */
  mmap(opts: GuestMemfdMmapOptions = {}): Hva {
    const len = toU64(opts.length ?? this.size, "length");
    const offset = toU64(opts.offset ?? 0, "offset");
    let flags = opts.shared === false ? MAP_PRIVATE : MAP_SHARED;
    let addr = 0n;
    if (opts.addr !== undefined) {
      addr = toU64(opts.addr, "addr");
      flags |= MAP_FIXED;
    }
    const r = BigInt(this.core.gmemMmap(this.fd, addr, len, parseProt(opts.prot), flags, offset));
    this.check(r, "mmap", { length: len, offset });
    return r;
  }

  /** Frames the file holds now (demand allocation and punch holes are observable). */
  get pagesAllocated(): number {
    return Number(this.core.gmemFileStat(this.fd, GMEM_STAT.PAGES));
  }

  /** Memslot ranges bound to the file now. */
  get bindings(): number {
    return Number(this.core.gmemFileStat(this.fd, GMEM_STAT.BINDINGS));
  }

  /** Whether the page at a file offset has a frame. */
  pagePresent(offset: U64): boolean {
    return this.core.gmemPagePresent(this.fd, toU64(offset, "offset") >> 12n) !== 0;
  }
}
