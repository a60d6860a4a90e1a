// The VMM's own address space (a Linux process's mm, modelled in the core):
// mmap reserves a page-aligned range and returns its hva; pages get frames only
// when first written (reads map the shared zero page), so a 16 GiB mapping
// costs nothing until touched. munmap / mprotect work on any page-aligned
// sub-range and send MMU-notifier invalidations into every VM.

import { type CoreExports, bytesAt, viewAt } from "./core.js";
import { MMAN, MAPPING } from "./abi.gen.js";
import { throwIfFailed } from "./errors.js";
import { type U64, toU64, fromLe, toLe } from "./u64.js";

export const { PROT_NONE, PROT_READ, PROT_WRITE, PROT_EXEC, MAP_SHARED, MAP_PRIVATE, MAP_FIXED } = MMAN;

export type Hva = bigint;

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

  /** Reads len bytes at hva (EFAULT if any page has no readable mapping). */
  read(hva: U64, len: number): Uint8Array {
    const out = new Uint8Array(len);
    let at = toU64(hva, "hva");
    const chunk = this.core.ioBufferSize();
    for (let done = 0; done < len;) {
      const n = Math.min(chunk, len - done);
      throwIfFailed(this.core, this.core.hostAccess(at, n, false), "read", { hva: at });
      out.set(bytesAt(this.core, this.core.ioBuffer(), n), done);
      done += n;
      at += BigInt(n);
    }
    return out;
  }

  /** Writes bytes at hva (EFAULT if any page has no writable mapping). */
  write(hva: U64, bytes: Uint8Array): void {
    let at = toU64(hva, "hva");
    const chunk = this.core.ioBufferSize();
    for (let done = 0; done < bytes.length;) {
      const n = Math.min(chunk, bytes.length - done);
      bytesAt(this.core, this.core.ioBuffer(), n).set(bytes.subarray(done, done + n));
      throwIfFailed(this.core, this.core.hostAccess(at, n, true), "write", { hva: at });
      done += n;
      at += BigInt(n);
    }
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
