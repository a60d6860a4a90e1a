// Dirty pages between snapshots, from the dirty bitmap of every memslot
// (KVM_GET_DIRTY_LOG, then KVM_CLEAR_DIRTY_LOG of what it reported so manual
// protect re-arms those pages too; without manual protect GET already did).
// Slots not yet logging get KVM_MEM_LOG_DIRTY_PAGES, as QEMU's
// memory_global_dirty_log_start does.

import type { Vm } from "../vm.js";
import { KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_GUEST_MEMFD } from "../uapi.js";
import { bitmapRanges, type GpaRange } from "../dirty.js";
import { memoryRegionsOf } from "../vmm/machine-state.js";
import type { RamRegion } from "./snapshot-memory.js";

export class DirtyHarvest {
  constructor(private readonly vm: Vm) {}

  /** Turns logging on for every slot that lacks it, and drops what was logged so far: from now on, writes count. */
  start(): void {
    for (const r of memoryRegionsOf(this.vm)) {
      if (r.flags & KVM_MEM_GUEST_MEMFD) throw new RangeError(`slot ${r.slot}: a guest_memfd slot cannot log dirty pages`);
      if ((r.flags & KVM_MEM_LOG_DIRTY_PAGES) === 0) {
        this.vm.setUserMemoryRegion({ slot: r.slot, asId: r.asId, guestPhysAddr: r.gpa, memorySize: r.size,
          userspaceAddr: r.hva, flags: r.flags | KVM_MEM_LOG_DIRTY_PAGES });
      }
    }
    this.harvest();
  }

  /** The pages written since the last call (or start()), per region. */
  harvest(): { region: RamRegion; ranges: GpaRange[] }[] {
    return memoryRegionsOf(this.vm).map((region) => {
      const bitmap = this.vm.getDirtyLog(region.slot, region.asId);
      const npages = Number(region.size / 4096n);
      const ranges = bitmapRanges(bitmap, npages, region.gpa);
      if (ranges.length > 0) this.vm.clearDirtyLog(region.slot, 0, npages, bitmap, region.asId);
      return { region, ranges };
    });
  }
}
