// Reader hooks. In the kernel, vCPUs and MMU notifiers read the active memslot
// set concurrently with an update. A single-threaded core cannot interleave, so
// the update calls out to the host at the points where a concurrent reader could
// run, and the host (a test, or the demo) runs readers there: lookups, guest
// accesses, pfn-cache checks. Memslot updates from inside a hook are refused.

import { vmOf } from "../kvm/kvm_host";

@external("env", "webkvm_reader_hook")
declare function readerHook(vmFd: i32, point: i32, asId: u32): void;

/** After pass 1 of DELETE/MOVE: the INVALID copy is published (generation g|bit63). */
export const HOOK_INVALID_PUBLISHED: i32 = 1;
/** After the INVALID phase settled (generation g + nr_as), before prepare. */
export const HOOK_INVALIDATED: i32 = 2;
/** A set was published by the final swap (generation still carries bit 63). */
export const HOOK_PUBLISHED: i32 = 3;
/** Between MMU-notifier invalidate_range_start and _end. */
export const HOOK_MN_INVALIDATING: i32 = 4;
/** A pfn-cache refresh resolved its page with gpc->lock dropped (hva_to_pfn_retry), before it re-checks for invalidations. */
export const HOOK_GPC_RESOLVED: i32 = 5;

export let hooksEnabled: bool = false;
export let inHook: i32 = 0;

export function setHooksEnabled(on: bool): void {
  hooksEnabled = on;
}

export function runReaderHook(vm: usize, point: i32, asId: u32): void {
  if (!hooksEnabled) return;
  inHook++;
  readerHook(vmOf(vm).fd, point, asId);
  inHook--;
}
