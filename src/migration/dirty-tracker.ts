// Dirty tracking of every user memslot of a VM, as a migration or an
// incremental snapshot needs it (QEMU's ram dirty bitmap sync): start, harvest
// round after round, stop. Two ways to learn what the guest wrote:
//
// - "bitmap": KVM_MEM_LOG_DIRTY_PAGES on every slot with
//   KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 (enabled first, with
//   KVM_DIRTY_LOG_INITIALLY_SET, so setting the flag write-protects nothing and
//   the first round is every page). A harvest is KVM_GET_DIRTY_LOG, which
//   clears nothing; the harvested bits of a chunk are cleared (and the pages
//   re-protected) by KVM_CLEAR_DIRTY_LOG just before the chunk's first page is
//   read, as QEMU does per clear-bitmap-shift chunk — a write after the clear
//   is seen by the next round, one before it is in what is read now.
// - "ring": the VM's per-vCPU dirty rings (KVM_CAP_DIRTY_LOG_RING): a harvest
//   reads every vCPU's ring, then KVM_RESET_DIRTY_RINGS re-protects those
//   pages; a ring that fills mid-round (the "dirty-ring-full" stop) is drained
//   with collect(). The first round is every page.
//
// stop() puts each slot's flags and the manual-protect capability back as they
// were before start().

import type { Vm } from "../vm.js";
import type { Vcpu } from "../vcpu.js";
import { KVM_CAP, KVM_DIRTY_LOG_INITIALLY_SET, KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE, KVM_MEM_LOG_DIRTY_PAGES,
  KVM_USER_MEM_SLOTS, PAGE_SIZE } from "../uapi.js";
import { bitmapBytes, bitmapRuns, countBits, setBit, testBit } from "../bitmap.js";

export type DirtyMode = "bitmap" | "ring";

/** What the tracker needs of a machine (a Machine has both). */
export interface TrackedVm {
  vm: Vm;
  vcpus: readonly Vcpu[];
}

/** A user memslot under tracking. */
export interface TrackedSlot {
  asId: number;
  slot: number;
  gpa: bigint;
  hva: bigint;
  npages: number;
  /** The slot's flags before start(). */
  flags: number;
}

export interface DirtyTrackerOptions {
  /**
   * Bitmap mode: pages per KVM_CLEAR_DIRTY_LOG, a multiple of 64 (default
   * 2^18, QEMU's clear-bitmap-shift 18: 1 GiB of 4 KiB pages).
   */
  clearChunkPages?: number;
}

const PAGE = BigInt(PAGE_SIZE);

/** The pages one harvest found dirty: a bitmap per tracked slot (bit i = page i of the slot). */
export class DirtyRound {
  /** Chunks of each slot already cleared in this round (bitmap mode). */
  private readonly cleared: Set<number>[];
  /** lookAgain(): per slot, the pages dirtied since the harvest (null: none looked at), and which chunks it holds for sure. */
  private again: readonly (Uint8Array | null)[] = [];
  private againChunks: Set<number>[] = [];

  /** @internal */
  constructor(private readonly tracker: DirtyTracker, readonly slots: readonly TrackedSlot[],
              readonly bitmaps: readonly Uint8Array[], readonly pages: number) {
    this.cleared = slots.map(() => new Set());
  }

  isDirty(slotIndex: number, page: number): boolean {
    return testBit(this.bitmaps[slotIndex], page);
  }

  /** Runs of dirty pages, slot by slot in order. */
  *runs(): Generator<{ slotIndex: number; first: number; count: number }> {
    for (let s = 0; s < this.slots.length; s++) {
      for (const r of bitmapRuns(this.bitmaps[s], this.slots[s].npages)) yield { slotIndex: s, ...r };
    }
  }

  /**
   * Looks at what the guest dirtied since this round's harvest (Xen's
   * pre-copy skips such pages): after it, dirtyAgain(slot, page) is true for a
   * page written again since it was harvested, which the next harvest
   * reports whatever this round does, so sending it now would be wasted.
   * Bitmap mode reads KVM_GET_DIRTY_LOG (which clears nothing) and trusts
   * only the chunks cleared before it (the others still hold the harvested
   * bits); ring mode drains the rings into the next harvest (collect()).
   */
  lookAgain(): void {
    if (this.tracker.mode === "ring") {
      this.tracker.collect();
      this.again = this.tracker.pendingBitmaps;
      return;
    }
    this.again = this.slots.map((s, i) => (this.cleared[i].size === 0 ? null : this.tracker.vm.getDirtyLog(s.slot, s.asId)));
    this.againChunks = this.cleared.map((c) => new Set(c));
  }

  /** Whether the page was written again since the harvest, as of the last lookAgain(). */
  dirtyAgain(slotIndex: number, page: number): boolean {
    const b = this.again[slotIndex];
    if (!b || !testBit(b, page)) return false;
    return this.tracker.mode === "ring" || this.againChunks[slotIndex].has(Math.floor(page / this.tracker.clearChunkPages));
  }

  /**
   * Call before reading pages [first, first + count) of a slot: in bitmap mode
   * the chunks holding them are cleared (their harvested bits only), each once
   * per round; the ring re-protected its pages at the harvest already.
   */
  prepare(slotIndex: number, first: number, count: number): void {
    if (this.tracker.mode !== "bitmap" || count <= 0) return;
    const chunk = this.tracker.clearChunkPages, s = this.slots[slotIndex];
    for (let c = Math.floor(first / chunk); c <= Math.floor((first + count - 1) / chunk); c++) {
      if (this.cleared[slotIndex].has(c)) continue;
      this.cleared[slotIndex].add(c);
      const start = c * chunk, num = Math.min(chunk, s.npages - start);
      const bits = this.bitmaps[slotIndex].subarray(start / 8, start / 8 + bitmapBytes(num));
      if (bits.some((x) => x !== 0)) this.tracker.vm.clearDirtyLog(s.slot, start, num, bits, s.asId);
    }
  }
}

export class DirtyTracker {
  readonly vm: Vm;
  private readonly vcpus: readonly Vcpu[];
  readonly slots: TrackedSlot[] = [];
  readonly clearChunkPages: number;
  /** The manual-protect capability's value before start(). */
  private readonly manualProtect: number;
  /** Ring mode: pages collected from the rings since the last harvest. */
  private pending: Uint8Array[] = [];
  private rounds = 0;
  private stopped = false;

  private constructor(target: TrackedVm, readonly mode: DirtyMode, opts: DirtyTrackerOptions) {
    this.vm = target.vm;
    this.vcpus = target.vcpus;
    this.clearChunkPages = opts.clearChunkPages ?? 1 << 18;
    if (!Number.isSafeInteger(this.clearChunkPages) || this.clearChunkPages <= 0 || this.clearChunkPages % 64 !== 0) {
      throw new RangeError(`clearChunkPages ${this.clearChunkPages}: a positive multiple of 64`);
    }
    this.manualProtect = this.vm.debug.stats().manualDirtyLogProtect;
    for (let asId = 0; asId < this.vm.addressSpaces; asId++) {
      for (const m of this.vm.memslots({ asId })) {
        if (m.id >= KVM_USER_MEM_SLOTS) continue; // internal slots are the kernel's own
        this.slots.push({ asId, slot: m.id, gpa: m.guestPhysAddr, hva: m.userspaceAddr, npages: Number(m.npages), flags: m.flags });
      }
    }
  }

  /** Starts tracking every user memslot of target's VM. */
  static start(target: TrackedVm, mode: DirtyMode, opts: DirtyTrackerOptions = {}): DirtyTracker {
    const hasRing = target.vcpus.some((v) => v.dirtyRing.size > 0);
    if (mode === "ring" && !hasRing) throw new Error("dirty tracking \"ring\": the VM has no dirty ring (create the machine with MachineOptions.dirtyRing)");
    if (mode === "bitmap" && hasRing) throw new Error("dirty tracking \"bitmap\": the VM logs to dirty rings, which KVM_GET_DIRTY_LOG cannot read");
    if (mode !== "bitmap" && mode !== "ring") throw new RangeError(`dirty tracking mode ${String(mode)}`);
    const t = new DirtyTracker(target, mode, opts);
    try {
      if (mode === "bitmap") {
        t.vm.enableCap(KVM_CAP.MANUAL_DIRTY_LOG_PROTECT2, [KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | KVM_DIRTY_LOG_INITIALLY_SET]);
      }
      for (const s of t.slots) t.setFlags(s, s.flags | KVM_MEM_LOG_DIRTY_PAGES);
    } catch (e) {
      t.stop();
      throw e;
    }
    t.pending = t.slots.map((s) => new Uint8Array(bitmapBytes(s.npages)));
    return t;
  }

  private setFlags(s: TrackedSlot, flags: number): void {
    const now = this.vm.memslots({ asId: s.asId }).find((m) => m.id === s.slot);
    if (!now || now.flags === flags) return;
    this.vm.setUserMemoryRegion({ slot: s.slot, asId: s.asId, flags, guestPhysAddr: s.gpa,
      memorySize: BigInt(s.npages) * PAGE, userspaceAddr: s.hva });
  }

  /** Ring mode: the pages collected since the last harvest, per slot (the next harvest's bitmaps). */
  get pendingBitmaps(): readonly Uint8Array[] {
    return this.pending;
  }

  /** Ring mode: drains every vCPU's ring into the next harvest and re-protects (call on a "dirty-ring-full" stop). */
  collect(): void {
    if (this.mode !== "ring" || this.stopped) return;
    const index = new Map(this.slots.map((s, i) => [(s.asId << 16) | s.slot, i]));
    for (const v of this.vcpus) {
      for (const e of v.dirtyRing.harvest()) {
        const i = index.get(e.slot);
        if (i === undefined || e.offset >= BigInt(this.slots[i].npages)) continue;
        setBit(this.pending[i], Number(e.offset));
      }
    }
    this.vm.resetDirtyRings();
  }

  /** The pages written since the last harvest (every page, the first time). */
  harvest(): DirtyRound {
    if (this.stopped) throw new Error("dirty tracking was stopped");
    const first = this.rounds++ === 0;
    let bitmaps: Uint8Array[];
    if (this.mode === "ring") {
      this.collect();
      bitmaps = this.pending;
      this.pending = this.slots.map((s) => new Uint8Array(bitmapBytes(s.npages)));
    } else {
      bitmaps = this.slots.map((s) => this.vm.getDirtyLog(s.slot, s.asId));
    }
    // The first round is everything: a slot that logged before start() was not initially set.
    if (first) bitmaps.forEach((b) => b.fill(0xff)); // the tail past npages is trimmed below
    let pages = 0;
    bitmaps.forEach((b, i) => { trimTail(b, this.slots[i].npages); pages += countBits(b); });
    return new DirtyRound(this, this.slots, bitmaps, pages);
  }

  /** Stops tracking: each slot's flags and the manual-protect capability as before start(). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.mode === "ring") {
      for (const v of this.vcpus) v.dirtyRing.harvest();
      this.vm.resetDirtyRings();
    }
    for (const s of this.slots) this.setFlags(s, s.flags);
    if (this.mode === "bitmap" && this.vm.debug.stats().manualDirtyLogProtect !== this.manualProtect) {
      this.vm.enableCap(KVM_CAP.MANUAL_DIRTY_LOG_PROTECT2, [this.manualProtect]);
    }
  }
}

/** Clears the bits past npages (a bitmap is whole u64 words). */
function trimTail(b: Uint8Array, npages: number): void {
  for (let i = npages; i < b.length * 8; i++) b[i >> 3] &= ~(1 << (i & 7));
}
