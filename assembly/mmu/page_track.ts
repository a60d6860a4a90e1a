// x86 page tracking (kvm_page_track.c): per-slot 16-bit write-track counters and
// external notifier users (as KVMGT). A gfn with a non-zero counter is never
// mapped writable: a guest write to it faults, is performed ("emulated") by the
// fault path, and then every user hears track_write. Users hear
// track_remove_region when a slot is deleted, at commit. While a user is
// registered, MOVE is refused (kvm/set_memslot.ts, arch prepare).

import { Vm, activeSet } from "../kvm/kvm_host";
import { setOf, gfnSlotAt, gfnCap, gfnNext } from "../memslots/set";
import { slotOf } from "../memslots/slot";
import { gfnToMemslotInSet } from "../memslots/search";
import { SlotArch } from "./rmap";
import { writeProtectGfnMask } from "./mmu";
import { kzalloc } from "../kalloc";
import { fail, EINVAL, ENOMEM, CHECK_TRACK_NO_SLOT, CHECK_ALLOC_SLOT } from "../errno";

@external("env", "webkvm_track_write")
declare function trackWriteHook(vmFd: i32, gpa: u64, data: usize, len: i32): void;
@external("env", "webkvm_track_remove_region")
declare function trackRemoveRegionHook(vmFd: i32, baseGfn: u64, npages: u64): void;

/** Counter overflow / underflow attempts (the kernel WARNs and does nothing). */
export let trackWarnings: u32 = 0;

@inline function counters(slot: usize): usize {
  const a = slotOf(slot).arch;
  return a == 0 ? 0 : changetype<SlotArch>(a).writeTrack;
}

/** Is write tracking on for the VM (an external user registered, counters exist)? */
@inline export function writeTrackingEnabled(vm: Vm): bool {
  return vm.writeTrackingEnabled != 0;
}

/** Allocates the counters of one slot (arch prepare of CREATE / MOVE when tracking is on). */
export function allocWriteTrack(slot: usize): bool {
  const a = changetype<SlotArch>(slotOf(slot).arch);
  if (a.writeTrack != 0) return true;
  a.writeTrack = kzalloc(<usize>(slotOf(slot).npages << 1));
  return a.writeTrack != 0;
}

/** kvm_page_track_write_tracking_enable + register: counters for every existing slot. */
export function registerExternalUser(vm: Vm): i32 {
  if (vm.writeTrackingEnabled == 0) {
    for (let as: u32 = 0; as < vm.nrAs; as++) {
      const s = setOf(activeSet(vm, as));
      for (let i = gfnNext(s, 0); i < gfnCap(s); i = gfnNext(s, i + 1)) {
        if (!allocWriteTrack(gfnSlotAt(s, i))) return fail(CHECK_ALLOC_SLOT, ENOMEM);
      }
    }
    vm.writeTrackingEnabled = 1;
  }
  vm.externalTrackers++;
  return 0;
}

export function unregisterExternalUser(vm: Vm): void {
  if (vm.externalTrackers > 0) vm.externalTrackers--;
}

/** The counter of gfn (0 when the slot has none). */
export function trackCount(slot: usize, gfn: u64): u32 {
  const c = counters(slot);
  return c == 0 ? 0 : <u32>load<u16>(c + <usize>((gfn - slotOf(slot).baseGfn) << 1));
}

/** kvm_write_track_add_gfn / _remove_gfn (delta +1 / -1) through AS 0. */
export function changeWriteTracking(vm: Vm, gfn: u64, delta: i32): i32 {
  const slot = gfnToMemslotInSet(activeSet(vm, 0), gfn);
  if (slot == 0) return fail(CHECK_TRACK_NO_SLOT, EINVAL);
  if (!allocWriteTrack(slot)) return fail(CHECK_ALLOC_SLOT, ENOMEM);
  const p = counters(slot) + <usize>((gfn - slotOf(slot).baseGfn) << 1);
  const v = <i32>load<u16>(p) + delta;
  if (v < 0 || v > 0xffff) {
    trackWarnings++;
    return 0;
  }
  store<u16>(p, <u16>v);
  // A newly tracked gfn loses every writable mapping at once.
  if (delta > 0) writeProtectGfnMask(vm, slot, gfn, 1);
  return 0;
}

/** kvm_page_track_write: after the emulated write, every external user hears it. */
export function notifyTrackWrite(vm: Vm, gpa: u64, data: usize, len: i32): void {
  if (vm.externalTrackers != 0) trackWriteHook(vm.fd, gpa, data, len);
}

/** kvm_page_track_delete_slot: at DELETE commit, before the slot is freed. */
export function notifyTrackRemoveRegion(vm: Vm, slot: usize): void {
  if (vm.externalTrackers != 0) trackRemoveRegionHook(vm.fd, slotOf(slot).baseGfn, slotOf(slot).npages);
}
