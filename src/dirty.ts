// User-level dirty tracking helpers: the dirty ring as the host sees it (a
// harvest cursor over the vCPU's mapped ring) and turning a bitmap or
// harvested entries into coalesced gpa ranges — what a snapshot or migration
// writer needs (as Cloud Hypervisor's MemoryRangeTable).

import type { CoreExports } from "./core.js";
import { KVM_DIRTY_GFN_F_DIRTY, KVM_DIRTY_GFN_F_RESET, PAGE_SIZE } from "./uapi.js";
import { DIRTY_GFN } from "./abi.gen.js";
import { bitmapRuns } from "./bitmap.js";

const ENTRY = DIRTY_GFN.KVM_DIRTY_GFN_BYTES;
const PAGE = BigInt(PAGE_SIZE);

export interface DirtyGfn {
  /** (as_id << 16) | slot id */
  slot: number;
  /** gfn - base_gfn of the slot */
  offset: bigint;
}

export interface GpaRange {
  gpa: bigint;
  length: bigint;
}

/** The dirty ring of one vCPU, mapped in the core's linear memory. */
export class DirtyRing {
  private next = 0;

  /** @internal */
  constructor(private readonly core: CoreExports, private readonly vcpuFd: number) {}

  /** Entries in the ring (0 when the VM has no dirty ring). */
  get size(): number {
    return this.core.vcpuDirtyRingEntries(this.vcpuFd) >>> 0;
  }

  /**
   * Reads the entries KVM published since the last harvest, in ring order, and
   * marks each harvested (flags |= RESET) so KVM_RESET_DIRTY_RINGS can recycle it.
   * The vCPU may push on another thread meanwhile (the threads core): flags are
   * read with an acquire load (KVM writes slot and offset, then publishes DIRTY
   * with release) and RESET is stored with release, after slot and offset were
   * read, as KVM_CAP_DIRTY_LOG_RING_ACQ_REL asks of userspace.
   */
  harvest(): DirtyGfn[] {
    const out: DirtyGfn[] = [];
    const n = this.size;
    if (n === 0) return out;
    const base = this.core.vcpuDirtyRing(this.vcpuFd) >>> 0;
    const dv = new DataView(this.core.memory.buffer, base, n * ENTRY);
    const words = new Uint32Array(this.core.memory.buffer, base, (n * ENTRY) >> 2);
    for (;;) {
      const at = (this.next & (n - 1)) * ENTRY;
      const flags = Atomics.load(words, at >> 2);
      if ((flags & KVM_DIRTY_GFN_F_DIRTY) === 0 || (flags & KVM_DIRTY_GFN_F_RESET) !== 0) break;
      out.push({ slot: dv.getUint32(at + 4, true), offset: dv.getBigUint64(at + 8, true) });
      Atomics.store(words, at >> 2, flags | KVM_DIRTY_GFN_F_RESET);
      this.next = (this.next + 1) >>> 0;
    }
    return out;
  }
}

/**
 * Pages of its bitmap KVM_CLEAR_DIRTY_LOG reads: num_pages, once num_pages <=
 * npages - first_page (kvm_clear_dirty_log_protect checks the range first);
 * none for a call that fails those checks (npages -1n: no such slot).
 */
export function clearLogReads(npages: bigint, first: bigint, num: number): number {
  return BigInt(num) <= npages - first ? num : 0;
}

/** Coalesced runs of set bits of a little-endian bitmap, as page ranges from base. */
export function bitmapRanges(bitmap: Uint8Array, npages: number, baseGpa: bigint): GpaRange[] {
  return [...bitmapRuns(bitmap, npages)].map((r) => ({ gpa: baseGpa + BigInt(r.first) * PAGE, length: BigInt(r.count) * PAGE }));
}

/** Sorted, merged gpa ranges of harvested ring entries; slotBase maps a slot field to its base gpa. */
export function entryRanges(entries: DirtyGfn[], slotBase: (slot: number) => bigint | undefined): GpaRange[] {
  const pages = [...new Set(entries.flatMap((e) => {
    const base = slotBase(e.slot);
    return base === undefined ? [] : [base + e.offset * PAGE];
  }))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const out: GpaRange[] = [];
  for (const p of pages) {
    const last = out[out.length - 1];
    if (last && last.gpa + last.length === p) last.length += PAGE;
    else out.push({ gpa: p, length: PAGE });
  }
  return out;
}
