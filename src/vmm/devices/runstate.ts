// A runstate-style area (like Xen's vcpu_runstate_info: state, entry time and
// time spent in each state) that the guest may place across a page boundary.
// A pfn cache covers one page, so an area that straddles two pages is written
// through two caches, one per page, split at the boundary.

import type { Vcpu } from "../../vcpu.js";
import type { GfnToPfnCache } from "../../pfncache.js";
import { type U64, toU64 } from "../../u64.js";

export const RUNSTATE_BYTES = 48;
export const RUNSTATE_RUNNING = 0;

export class RunstateArea {
  private readonly caches: { cache: GfnToPfnCache; gpa: bigint; len: number; at: number }[] = [];
  private readonly off: () => void;
  private entries = 0n;
  published = 0;
  skipped = 0;

  constructor(readonly vcpu: Vcpu, gpa: U64) {
    const start = toU64(gpa, "gpa");
    const first = Math.min(RUNSTATE_BYTES, Number(4096n - (start & 4095n)));
    this.caches.push({ cache: vcpu.vm.createPfnCache(), gpa: start, len: first, at: 0 });
    if (first < RUNSTATE_BYTES) {
      this.caches.push({ cache: vcpu.vm.createPfnCache(), gpa: start + BigInt(first), len: RUNSTATE_BYTES - first, at: first });
    }
    for (const c of this.caches) {
      try { c.cache.activate(c.gpa, c.len); } catch { /* refreshed on use */ }
    }
    this.off = vcpu.addEntryHook(() => this.publish());
  }

  /** True when the area is written through two caches. */
  get split(): boolean {
    return this.caches.length === 2;
  }

  publish(): void {
    for (const c of this.caches) {
      if (!c.cache.check(c.len)) {
        try { c.cache.refresh(c.len); } catch { this.skipped++; return; }
      }
    }
    this.entries++;
    const b = new Uint8Array(RUNSTATE_BYTES);
    const dv = new DataView(b.buffer);
    dv.setInt32(0, RUNSTATE_RUNNING, true);
    dv.setBigUint64(8, this.vcpu.time, true);    // state_entry_time
    dv.setBigUint64(16, this.entries, true);     // time[RUNNING]: here, the number of entries
    for (const c of this.caches) c.cache.write(b.subarray(c.at, c.at + c.len));
    this.published++;
  }

  close(): void {
    this.off();
    for (const c of this.caches) c.cache.destroy();
  }
}
