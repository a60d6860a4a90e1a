// Page tracking for external users, the way KVMGT uses the kernel's page-track
// API: write-tracked gfns are never mapped writable; a guest write to one is
// performed by the fault path and then reported (trackWrite); deleting a slot
// is reported at commit (trackRemoveRegion). While a user is registered,
// memslot MOVE fails with EINVAL (after the INVALID phase, as in Linux).

import type { VmFile } from "./instance.js";
import { throwIfFailed } from "./errors.js";
import { type U64, toU64 } from "./u64.js";

export interface PageTrackNotifier {
  /** After a guest write to a tracked gfn: the gpa and the bytes written. */
  trackWrite?(gpa: bigint, bytes: Uint8Array): void;
  /** At commit of a DELETE of a slot that may hold tracked gfns. */
  trackRemoveRegion?(baseGfn: bigint, npages: bigint): void;
}

export class PageTrack {
  private readonly users = new Set<PageTrackNotifier>();

  /** @internal */
  constructor(private readonly vm: VmFile) {}

  /** kvm_page_track_register_notifier: enables write tracking for the VM (per-slot counters). */
  register(n: PageTrackNotifier): () => void {
    const core = this.vm.kvm.core;
    const r = core.pageTrackRegister(this.vm.fd);
    throwIfFailed(core, r, "page-track register");
    this.users.add(n);
    return () => this.unregister(n);
  }

  /** @internal Whether a user is registered (its callbacks run on this thread: vcpu.ts). */
  get hasUsers(): boolean {
    return this.users.size > 0;
  }

  unregister(n: PageTrackNotifier): void {
    if (this.users.delete(n)) this.vm.kvm.core.pageTrackUnregister(this.vm.fd);
  }

  /** kvm_write_track_add_gfn: EINVAL when no slot covers the gfn. */
  addWriteTracking(gfn: U64): void { this.change(gfn, 1, "kvm_write_track_add_gfn"); }
  /** kvm_write_track_remove_gfn */
  removeWriteTracking(gfn: U64): void { this.change(gfn, -1, "kvm_write_track_remove_gfn"); }

  /** The write-track counter of a gfn (-1 without a slot). */
  count(gfn: U64): number {
    return this.vm.kvm.core.writeTrackCount(this.vm.fd, toU64(gfn, "gfn"));
  }

  private change(gfn: U64, delta: number, what: string): void {
    const core = this.vm.kvm.core;
    const r = core.writeTrackChange(this.vm.fd, toU64(gfn, "gfn"), delta);
    throwIfFailed(core, r, what, { gfn });
  }

  /** @internal */
  notifyWrite(gpa: bigint, bytes: Uint8Array): void {
    for (const u of this.users) u.trackWrite?.(gpa, bytes);
  }

  /** @internal */
  notifyRemoveRegion(base: bigint, npages: bigint): void {
    for (const u of this.users) u.trackRemoveRegion?.(base, npages);
  }
}
