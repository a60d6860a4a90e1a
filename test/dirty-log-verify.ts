// The host side of a dirty_log_test (tools/testing/selftests/kvm/dirty_log_test.c)
// for the dirtylog guest (guests/dirtylog): a rule checker that knows nothing of
// KVM (vm_dirty_log_verify's rules, with the previous values remembered), the
// two ways of collecting what KVM reported (GET_DIRTY_LOG + CLEAR_DIRTY_LOG
// under manual protect, and the dirty ring), and the guest's set-up on a
// Machine. Shared by the single-threaded test (test/dirtylog-guest.test.ts)
// and any test that runs the same guest on Worker vCPUs.
import type { Machine } from "../src/vmm/machine.js";
import type { Vm } from "../src/vm.js";
import type { Vcpu } from "../src/vcpu.js";
import { KVM_MEM_LOG_DIRTY_PAGES } from "../src/uapi.js";
// @ts-expect-error plain JS module without types
import { DIRTYLOG_ITERATION, dirtylogParams, dirtylogStepsGpa } from "../guests/dirtylog/reference.mjs";

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
export class DirtyLogVerifier {
  private readonly last: bigint[];
  /** Pages that changed after a (non-quiescent) collection: the next one must report them. */
  private pending = new Set<number>();
  /**
   * Totals over every check: pages reported, pages seen changed, changes
   * carried to the next check; reported in-flight pages whose store had not
   * landed, and how many of those held a number the other rules call stale.
   */
  readonly stats = { checks: 0, reported: 0, changed: 0, carried: 0, inflight: 0, inflightStale: 0 };

  constructor(readonly pages: number) {
    if (!Number.isSafeInteger(pages) || pages <= 0) throw new RangeError(`pages ${pages}`);
    this.last = new Array<bigint>(pages).fill(0n);
  }

  /** One check after a collection; the violations found (none when KVM kept every rule). */
  check(c: DirtyLogCheck): DirtyLogViolation[] {
    const out: DirtyLogViolation[] = [];
    const fail = (rule: DirtyLogRule, page: number, value: bigint) => out.push({ rule, page, value, iteration: c.iteration });
    const pending = this.pending;
    this.pending = new Set();
    this.stats.checks++;
    for (let page = 0; page < this.pages; page++) {
      const value = c.read(page);
      const reported = c.dirty.has(page);
      if (value > c.iteration) fail("value-above-iteration", page, value);
      if (pending.has(page) && !reported) fail("late-change-not-reported", page, value);
      if (reported) {
        this.stats.reported++;
        const notLanded = c.inflight?.has(page) === true && value === this.last[page];
        if (notLanded) this.stats.inflight++;
        if (value + 1n < c.iteration) {
          if (notLanded) this.stats.inflightStale++;
          else fail("reported-value-stale", page, value);
        }
      }
      if (value !== this.last[page]) {
        this.stats.changed++;
        if (!reported) {
          if (c.quiescent) fail("changed-not-reported", page, value);
          else { this.pending.add(page); this.stats.carried++; }
        }
      }
      this.last[page] = value;
    }
    return out;
  }
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
export function addDirtyLogRegion(m: Machine, r: { slot: number; gpa: bigint; pages: number }): DirtyLogRegion {
  const size = BigInt(r.pages) * 4096n;
  const hva = m.kvm.memory.mmap(size);
  m.vm.setUserMemoryRegion({ slot: r.slot, guestPhysAddr: r.gpa, memorySize: size, userspaceAddr: hva, flags: KVM_MEM_LOG_DIRTY_PAGES });
  return { ...r, hva };
}

/** The first u64 of a region page, read through the VMM's mapping (not through KVM). */
export const readRegionPage = (m: Machine, r: DirtyLogRegion) => (page: number): bigint =>
  m.kvm.memory.peek(r.hva + BigInt(page) * 4096n, 8);

/** Writes the iteration number the guest reads. */
export function setIteration(m: Machine, iteration: bigint): void {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, iteration, true);
  m.vm.writeGuest(DIRTYLOG_ITERATION, b);
}

/** Stores hart h has made (the guest's steps[h]). */
export function dirtylogSteps(m: Machine, hart: number): bigint {
  return new DataView(m.vm.readGuest(dirtylogStepsGpa(hart), 8).buffer).getBigUint64(0, true);
}

/**
 * Starts the dirtylog guest on every hart of a Machine whose image is loaded:
 * hart h gets the parameter block at paramsGpa + 32 h (region, pages, seeds[h])
 * in a1; hart 0 through load()'s registers, the others through HSM hart_start.
 */
export function startDirtylog(m: Machine, entry: bigint, r: DirtyLogRegion, seeds: bigint[], paramsGpa: bigint): void {
  seeds.forEach((seed, h) => {
    const at = paramsGpa + 32n * BigInt(h);
    m.vm.writeGuest(at, dirtylogParams({ base: r.gpa, pages: r.pages, seed }));
    if (h === 0) m.vcpu.setReg(11, at);
    else if (m.startHart(h, entry, at) !== 0n) throw new Error(`hart ${h} did not start`);
  });
}

export interface CollectOptions {
  /** Test-only fault: forget one reported page (the lowest) after KVM cleared it, as a lossy VMM would. */
  dropOne?: boolean;
  /** Ring: set to the offset of the last entry harvested from each vCPU's ring (by index), when it had any. */
  lastEntry?: number[];
}

function dropLowest(s: Set<number>, opts: CollectOptions): Set<number> {
  if (opts.dropOne && s.size > 0) s.delete(Math.min(...s));
  return s;
}

/**
 * KVM_GET_DIRTY_LOG, then KVM_CLEAR_DIRTY_LOG of exactly what it returned
 * (KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2): the pages reported.
 */
export function collectBitmap(vm: Vm, r: DirtyLogRegion, opts: CollectOptions = {}): Set<number> {
  const bitmap = vm.getDirtyLog(r.slot);
  vm.clearDirtyLog(r.slot, 0, r.pages, bitmap);
  const out = new Set<number>();
  for (let p = 0; p < r.pages; p++) if (bitmap[p >> 3] & (1 << (p & 7))) out.add(p);
  return dropLowest(out, opts);
}

/**
 * Harvests every vCPU's dirty ring (entries of the region's slot), then
 * KVM_RESET_DIRTY_RINGS re-protects them: the pages reported.
 */
export function collectRing(vm: Vm, vcpus: readonly Vcpu[], r: DirtyLogRegion, opts: CollectOptions = {}): Set<number> {
  const out = new Set<number>();
  vcpus.forEach((v, i) => {
    for (const e of v.dirtyRing.harvest()) {
      if (e.slot !== r.slot) continue;
      out.add(Number(e.offset));
      if (opts.lastEntry) opts.lastEntry[i] = Number(e.offset);
    }
  });
  vm.resetDirtyRings();
  return dropLowest(out, opts);
}
