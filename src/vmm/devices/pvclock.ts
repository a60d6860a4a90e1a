// A pvclock-style device: publishes a pvclock_vcpu_time_info into a guest page
// on every KVM_RUN entry of its vCPU, through a gfn->pfn cache. The version
// word is odd while the structure is being written, as the guest protocol
// expects. If the page is gone (slot deleted, host memory unmapped) the update
// is skipped until a refresh succeeds again; it never writes a stale mapping.

import type { Vcpu } from "../../vcpu.js";
import type { GfnToPfnCache } from "../../pfncache.js";
import type { U64 } from "../../u64.js";

export const PVCLOCK_BYTES = 32;

export class PvClock {
  private readonly cache: GfnToPfnCache;
  private version = 0;
  /** Publications done and skipped (page unavailable). */
  published = 0;
  skipped = 0;
  private readonly off: () => void;

  constructor(readonly vcpu: Vcpu, gpa: U64) {
    this.cache = vcpu.vm.createPfnCache();
    try {
      this.cache.activate(gpa, PVCLOCK_BYTES);
    } catch { /* no RAM there yet: publish() keeps trying */ }
    this.off = vcpu.addEntryHook(() => this.publish());
  }

  /** Writes the time structure: version odd, fields, version even. */
  publish(): void {
    if (!this.cache.check(PVCLOCK_BYTES)) {
      try {
        this.cache.refresh(PVCLOCK_BYTES);
      } catch {
        this.skipped++;
        return;
      }
    }
    const ticks = this.vcpu.time;
    const b = new Uint8Array(PVCLOCK_BYTES);
    const dv = new DataView(b.buffer);
    this.version += 2;
    dv.setUint32(0, this.version - 1, true);
    this.cache.write(b.subarray(0, 4));
    dv.setBigUint64(8, ticks, true);             // tsc_timestamp: the guest's time counter
    dv.setBigUint64(16, ticks * 100n, true);     // system_time in ns at 10 MHz
    dv.setUint32(24, 0xc8000000, true);          // tsc_to_system_mul: (ticks << 7) * 0xc8000000 >> 32 = 100 ns/tick
    dv.setInt8(28, 7);                           // tsc_shift
    dv.setUint32(0, this.version, true);
    this.cache.write(b);
    this.published++;
  }

  close(): void {
    this.off();
    this.cache.destroy();
  }
}
