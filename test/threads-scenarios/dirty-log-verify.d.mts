// The types of dirty-log-verify.mjs (the dirty_log_test host side, plain
// JavaScript so the scenarios can run it in a browser too).
import type { Machine } from "../../src/vmm/machine.js";
import type { Vm } from "../../src/vm.js";
import type { Vcpu } from "../../src/vcpu.js";

export type DirtyLogRule =
  /** A page never holds a number above the current iteration: the guest only writes numbers it read. */
  | "value-above-iteration"
  /** A page whose value changed since the previous check is in this collection (when no vCPU ran since it). */
  | "changed-not-reported"
  /** A page that changed after the previous collection is in this one. */
  | "late-change-not-reported"
  /**
   * A reported page holds this iteration's number or the previous one: nothing
   * else can have dirtied it. Except the page of a store not done yet (in
   * `inflight`), which holds what it held at the previous check.
   */
  | "reported-value-stale";

export interface DirtyLogViolation {
  rule: DirtyLogRule;
  page: number;
  value: bigint;
  iteration: bigint;
}

export interface DirtyLogCheck {
  /** The iteration the guest has been writing; the host bumps it after the check. */
  iteration: bigint;
  /** Pages (indices into the region) KVM reported since the previous check. */
  dirty: ReadonlySet<number>;
  /** The first u64 of a page now. */
  read: (page: number) => bigint;
  /**
   * No vCPU ran between the collection and these reads (one thread): a change
   * the collection lacks is a violation now. Otherwise the change may have
   * come after the collection and must be in the next one.
   */
  quiescent: boolean;
  /**
   * Pages of stores that are logged but not done: a vCPU that stopped at a
   * dirty-ring-full exit and has not run since. The fault of such a store
   * pushed its page as the entry that made the ring soft-full, and the vCPU
   * exits before the store re-executes (kvm_dirty_ring_push raises
   * KVM_REQ_DIRTY_RING_SOFT_FULL, kvm_dirty_ring_check_request acts on it
   * before the next guest entry), so the page is reported while it still holds
   * whatever it held: the selftest's "last page" exception in
   * vm_dirty_log_verify, narrowed to exactly those pages and to the value seen
   * at the previous check (no store to it has landed since).
   */
  inflight?: ReadonlySet<number>;
}

/** The dirty_log_test rules over a region of `pages` pages whose first words start at 0. */
export declare class DirtyLogVerifier {
  readonly pages: number;
  /**
   * Totals over every check: pages reported, pages seen changed, changes
   * carried to the next check; reported in-flight pages whose store had not
   * landed, and how many of those held a number the other rules call stale.
   */
  readonly stats: { checks: number; reported: number; changed: number; carried: number; inflight: number; inflightStale: number };
  constructor(pages: number);
  /** One check after a collection; the violations found (none when KVM kept every rule). */
  check(c: DirtyLogCheck): DirtyLogViolation[];
}

export interface DirtyLogRegion {
  slot: number;
  gpa: bigint;
  pages: number;
  hva: bigint;
}

/**
 * The test region: its own memslot with KVM_MEM_LOG_DIRTY_PAGES (as the
 * selftest's TEST_MEM_SLOT_INDEX), backed by fresh host memory.
 */
export declare function addDirtyLogRegion(m: Machine, r: { slot: number; gpa: bigint; pages: number }): DirtyLogRegion;

/** The first u64 of a region page, read through the VMM's mapping (not through KVM). */
export declare const readRegionPage: (m: Machine, r: DirtyLogRegion) => (page: number) => bigint;

/** Writes the iteration number the guest reads. */
export declare function setIteration(m: Machine, iteration: bigint): void;

/** Stores hart h has made (the guest's steps[h]). */
export declare function dirtylogSteps(m: Machine, hart: number): bigint;

/**
 * Starts the dirtylog guest on every hart of a Machine whose image is loaded:
 * hart h gets the parameter block at paramsGpa + 32 h (region, pages, seeds[h])
 * in a1; hart 0 through load()'s registers, the others through HSM hart_start.
 */
export declare function startDirtylog(m: Machine, entry: bigint, r: DirtyLogRegion, seeds: bigint[], paramsGpa: bigint): void;

export interface CollectOptions {
  /** Test-only fault: forget one reported page (the lowest) after KVM cleared it, as a lossy VMM would. */
  dropOne?: boolean;
  /** Ring: set to the offset of the last entry harvested from each vCPU's ring (by index), when it had any. */
  lastEntry?: number[];
}

/**
 * KVM_GET_DIRTY_LOG, then KVM_CLEAR_DIRTY_LOG of exactly what it returned
 * (KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2): the pages reported.
 */
export declare function collectBitmap(vm: Vm, r: DirtyLogRegion, opts?: CollectOptions): Set<number>;

/**
 * Harvests every vCPU's dirty ring (entries of the region's slot), then
 * KVM_RESET_DIRTY_RINGS re-protects them: the pages reported.
 */
export declare function collectRing(vm: Vm, vcpus: readonly Vcpu[], r: DirtyLogRegion, opts?: CollectOptions): Set<number>;
