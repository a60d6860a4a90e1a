// The VMM's own address space (a Linux process's mm, modelled in the core):
// mmap reserves a page-aligned range and returns its hva; pages get frames only
// when first written (reads map the shared zero page), so a 16 GiB mapping
// costs nothing until touched. munmap / mprotect work on any page-aligned
// sub-range and send MMU-notifier invalidations into every VM. A range can be
// registered for missing pages (userfaultfd's MISSING mode, below).

import { type CoreExports, bytesAt, viewAt } from "./core.js";
import { MMAN, MAPPING, PAGE as PAGE_ABI } from "./abi.gen.js";
import { throwIfFailed, KvmError, CHECK } from "./errors.js";
import { type U64, toU64, fromLe, toLe } from "./u64.js";

export const { PROT_NONE, PROT_READ, PROT_WRITE, PROT_EXEC, MAP_SHARED, MAP_PRIVATE, MAP_FIXED } = MMAN;

export type Hva = bigint;

const PAGE = BigInt(PAGE_ABI.PAGE_SIZE);
const PAGE_MASK = PAGE - 1n;

export interface MmapOptions {
  /** PROT_* bits or a string like "rw", "r", "" (default "rw"). */
  prot?: number | string;
  /** Map exactly here (MAP_FIXED), replacing what was mapped. */
  addr?: U64;
  shared?: boolean;
}

export interface Mapping { start: Hva; end: Hva; prot: number; shared: boolean }

/** PROT_* bits from a number or a string like "rw", "r", "" (default "rw"). */
export function parseProt(p: number | string | undefined): number {
  if (p === undefined) return PROT_READ | PROT_WRITE;
  if (typeof p === "number") return p;
  let v = 0;
  for (const ch of p) {
    if (ch === "r") v |= PROT_READ;
    else if (ch === "w") v |= PROT_WRITE;
    else if (ch === "x") v |= PROT_EXEC;
    else if (ch !== "-") throw new RangeError(`prot "${p}": unknown flag ${ch}`);
  }
  return v;
}

export class HostMemory {
  /** @internal */
  constructor(private readonly core: CoreExports) {}

  mmap(length: U64, opts: MmapOptions = {}): Hva {
    const len = toU64(length, "length");
    const prot = parseProt(opts.prot);
    let flags = opts.shared ? MAP_SHARED : MAP_PRIVATE;
    let addr = 0n;
    if (opts.addr !== undefined) {
      addr = toU64(opts.addr, "addr");
      flags |= MAP_FIXED;
    }
    const r = BigInt(this.core.mmap(addr, len, prot, flags));
    throwIfFailed(this.core, r, "mmap", { length: len, addr });
    return r;
  }

  munmap(hva: U64, length: U64): void {
    throwIfFailed(this.core, this.core.munmap(toU64(hva, "hva"), toU64(length, "length")), "munmap");
  }

  mprotect(hva: U64, length: U64, prot: number | string): void {
    throwIfFailed(this.core, this.core.mprotect(toU64(hva, "hva"), toU64(length, "length"), parseProt(prot)), "mprotect");
  }

  /** Reads len bytes at hva (EFAULT if any page has no readable mapping or is missing). */
  read(hva: U64, len: number): Uint8Array {
    return this.readInto(hva, new Uint8Array(len));
  }

  /**
   * Reads out.length bytes at hva into out (a caller's buffer, reused: a
   * migration reads pages straight into the message it sends) and returns
   * out. The same checks as read; on EFAULT, out holds the bytes before the
   * chunk that failed.
   */
  readInto(hva: U64, out: Uint8Array): Uint8Array {
    let at = toU64(hva, "hva");
    const chunk = this.core.ioBufferSize();
    for (let done = 0; done < out.length;) {
      const n = Math.min(chunk, out.length - done);
      this.throwIfAccessFailed(this.core.hostAccess(at, n, false), "read", at, n);
      out.set(bytesAt(this.core, this.core.ioBuffer(), n), done);
      done += n;
      at += BigInt(n);
    }
    return out;
  }

  /** Writes bytes at hva (EFAULT if any page has no writable mapping or is missing). */
  write(hva: U64, bytes: Uint8Array): void {
    let at = toU64(hva, "hva");
    const chunk = this.core.ioBufferSize();
    for (let done = 0; done < bytes.length;) {
      const n = Math.min(chunk, bytes.length - done);
      bytesAt(this.core, this.core.ioBuffer(), n).set(bytes.subarray(done, done + n));
      this.throwIfAccessFailed(this.core.hostAccess(at, n, true), "write", at, n);
      done += n;
      at += BigInt(n);
    }
  }

  /** A failed host access of [at, at + n): a missing page is named by its own hva. */
  private throwIfAccessFailed(r: number, what: string, at: bigint, n: number): void {
    if (r >= 0) return;
    const check = this.core.lastFailedCheck();
    let hva = at;
    if (check === CHECK.UFFD_MISSING) {
      for (let p = at & ~PAGE_MASK; p < at + BigInt(n); p += PAGE) if (this.isMissing(p)) { hva = p; break; }
    }
    throw new KvmError(-r, check, { hva }, what);
  }

  // ---- userfaultfd's MISSING mode (assembly/hostmm/userfaultfd.ts) ----
  // The host memory has one userfaultfd, as a post-copy destination's VMM
  // holds: a registered range's pages with no frame are missing until placed.
  // Any access to a missing page fails instead of reading zeros or taking a
  // fresh frame: a guest's in KVM_RUN ends with EFAULT and a
  // KVM_EXIT_MEMORY_FAULT naming the page's gpa; host reads and writes
  // (read/write here, Vm.readGuest/writeGuest, pfn caches) fail with EFAULT.

  /**
   * UFFDIO_REGISTER with UFFDIO_REGISTER_MODE_MISSING over [hva, hva + length):
   * page aligned, not empty; every mapping overlapping it must be anonymous
   * (private or shared; a guest_memfd mapping is EINVAL) and at least one must
   * overlap (holes between mappings are allowed, as in Linux). Pages already
   * present (written, or read as the zero page) stay present. The registration
   * belongs to the mappings: mprotect keeps it, munmap and a MAP_FIXED mmap
   * over it drop it. Registering twice is a no-op.
   */
  registerMissing(hva: U64, length: U64): void {
    const h = toU64(hva, "hva"), len = toU64(length, "length");
    throwIfFailed(this.core, this.core.uffdRegister(h, len), "registerMissing", { hva: h, length: len });
  }

  /**
   * UFFDIO_UNREGISTER: the range's holes become ordinary demand-zero pages
   * again. The same checks as registerMissing; unregistered mappings in the
   * range are left alone.
   */
  unregisterMissing(hva: U64, length: U64): void {
    const h = toU64(hva, "hva"), len = toU64(length, "length");
    throwIfFailed(this.core, this.core.uffdUnregister(h, len), "unregisterMissing", { hva: h, length: len });
  }

  /**
   * UFFDIO_COPY: installs bytes (a whole number of pages) at hva, page by page,
   * each page atomically with respect to vCPUs on other threads (one that
   * retries its fault finds the whole page). hva must be page aligned
   * (EINVAL) and [hva, hva + bytes.length) lie inside one registered mapping
   * (ENOENT). A page already present is EEXIST, a frame that cannot be had
   * ENOMEM; the page that fails is left as it was.
   *
   * As Linux, the copy stops at the first page that fails and keeps the pages
   * before it: the return value is the bytes placed (uffdio_copy.copy).
   * bytes.length means all; fewer is Linux's EAGAIN with a partial count (the
   * page at hva + result failed: placing from there again reports why). When
   * the first page fails, nothing was placed and the error is thrown.
   */
  placePages(hva: U64, bytes: Uint8Array): number {
    return this.place(toU64(hva, "hva"), BigInt(bytes.length), bytes, "placePages");
  }

  /**
   * UFFDIO_ZEROPAGE: maps the zero page read-only at each page of
   * [hva, hva + length) (a later write takes a private frame; a shared
   * mapping gets a zeroed frame at once, as shmem does). Checks and the
   * partial result as placePages: returns the bytes placed.
   */
  placeZeroPages(hva: U64, length: U64): number {
    return this.place(toU64(hva, "hva"), toU64(length, "length"), undefined, "placeZeroPages");
  }

  /** Whether the page at hva is missing: in a registered range and not present. */
  isMissing(hva: U64): boolean {
    return this.core.hvaMissing(toU64(hva, "hva")) !== 0;
  }

  private place(hva: bigint, len: bigint, bytes: Uint8Array | undefined, what: string): number {
    const core = this.core;
    const chunk = BigInt(core.ioBufferSize());
    let placed = 0n;
    do {
      // Each call checks the rest of the range whole, then places up to a chunk of it.
      const n = bytes ? (len - placed < chunk ? len - placed : chunk) : len;
      if (bytes) bytesAt(core, core.ioBuffer(), Number(n)).set(bytes.subarray(Number(placed), Number(placed + n)));
      const r = BigInt(bytes ? core.uffdCopy(hva + placed, len - placed, Number(n)) : core.uffdZeroPage(hva, len));
      if (r < 0n) {
        if (placed > 0n) return Number(placed); // Linux: EAGAIN, with the count so far
        throwIfFailed(core, r, what, { hva, length: len });
      }
      placed += r;
      if (r < n) break; // the page after these failed
    } while (placed < len);
    return Number(placed);
  }


  /** Little-endian load of 1, 2, 4 or 8 bytes. */
  peek(hva: U64, size: 1 | 2 | 4 | 8 = 4): bigint {
    return fromLe(this.read(hva, size), size);
  }

  /** Little-endian store of the low `size` bytes of value. */
  poke(hva: U64, value: U64, size: 1 | 2 | 4 | 8 = 4): void {
    this.write(hva, toLe(BigInt.asUintN(size * 8, BigInt(value)), new Uint8Array(size), size));
  }

  /** The mappings, like /proc/self/maps. */
  mappings(): Mapping[] {
    const out: Mapping[] = [];
    const buf = this.core.ioBuffer();
    for (let i = 0, n = this.core.mappingCount(); i < n; i++) {
      this.core.mappingAt(i, buf);
      const dv = viewAt(this.core, buf, MAPPING.BYTES);
      out.push({
        start: dv.getBigUint64(MAPPING.START, true), end: dv.getBigUint64(MAPPING.END, true),
        prot: dv.getUint32(MAPPING.PROT, true), shared: (dv.getUint32(MAPPING.FLAGS, true) & MAP_SHARED) !== 0,
      });
    }
    return out;
  }

  /** Whether a private frame backs the page at hva (demand paging is observable). */
  resident(hva: U64): boolean {
    return this.core.hvaResident(toU64(hva, "hva")) !== 0;
  }

  /** Page frames in use across the instance. */
  get framesInUse(): number {
    return this.core.statFramesInUse() >>> 0;
  }
}
