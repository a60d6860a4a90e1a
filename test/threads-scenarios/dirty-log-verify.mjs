// The host side of a dirty_log_test (tools/testing/selftests/kvm/dirty_log_test.c)
// for the dirtylog guest (guests/dirtylog): a rule checker that knows nothing of
// KVM (vm_dirty_log_verify's rules, with the previous values remembered), the
// two ways of collecting what KVM reported (GET_DIRTY_LOG + CLEAR_DIRTY_LOG
// under manual protect, and the dirty ring), and the guest's set-up on a
// Machine. Shared by the single-threaded test (test/dirtylog-guest.test.ts) and
// the Worker-vCPU scenario (dirtylog.mjs, run in Node and in Chromium), so it is
// plain JavaScript; its types (and the rules' meanings) are in dirty-log-verify.d.mts.
import { KVM_MEM_LOG_DIRTY_PAGES } from "../../dist/index.js";
import { DIRTYLOG_ITERATION, dirtylogParams, dirtylogStepsGpa } from "../../guests/dirtylog/reference.mjs";

/** The dirty_log_test rules over a region of `pages` pages whose first words start at 0. */
export class DirtyLogVerifier {
  /**
   * Totals over every check: pages reported, pages seen changed, changes
   * carried to the next check; reported in-flight pages whose store had not
   * landed, and how many of those held a number the other rules call stale.
   */
  stats = { checks: 0, reported: 0, changed: 0, carried: 0, inflight: 0, inflightStale: 0 };

  constructor(pages) {
    if (!Number.isSafeInteger(pages) || pages <= 0) throw new RangeError(`pages ${pages}`);
    this.pages = pages;
    this.last = new Array(pages).fill(0n);
    /** Pages that changed after a (non-quiescent) collection: the next one must report them. */
    this.pending = new Set();
  }

  /** One check after a collection; the violations found (none when KVM kept every rule). */
  check(c) {
    const out = [];
    const fail = (rule, page, value) => out.push({ rule, page, value, iteration: c.iteration });
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

/**
 * The test region: its own memslot with KVM_MEM_LOG_DIRTY_PAGES (as the
 * selftest's TEST_MEM_SLOT_INDEX), backed by fresh host memory.
 */
export function addDirtyLogRegion(m, r) {
  const size = BigInt(r.pages) * 4096n;
  const hva = m.kvm.memory.mmap(size);
  m.vm.setUserMemoryRegion({ slot: r.slot, guestPhysAddr: r.gpa, memorySize: size, userspaceAddr: hva, flags: KVM_MEM_LOG_DIRTY_PAGES });
  return { ...r, hva };
}

/** The first u64 of a region page, read through the VMM's mapping (not through KVM). */
export const readRegionPage = (m, r) => (page) =>
  m.kvm.memory.peek(r.hva + BigInt(page) * 4096n, 8);

/** Writes the iteration number the guest reads. */
export function setIteration(m, iteration) {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, iteration, true);
  m.vm.writeGuest(DIRTYLOG_ITERATION, b);
}

/** Stores hart h has made (the guest's steps[h]). */
export function dirtylogSteps(m, hart) {
  return new DataView(m.vm.readGuest(dirtylogStepsGpa(hart), 8).buffer).getBigUint64(0, true);
}

/**
 * Starts the dirtylog guest on every hart of a Machine whose image is loaded:
 * hart h gets the parameter block at paramsGpa + 32 h (region, pages, seeds[h])
 * in a1; hart 0 through load()'s registers, the others through HSM hart_start.
 */
export function startDirtylog(m, entry, r, seeds, paramsGpa) {
  seeds.forEach((seed, h) => {
    const at = paramsGpa + 32n * BigInt(h);
    m.vm.writeGuest(at, dirtylogParams({ base: r.gpa, pages: r.pages, seed }));
    if (h === 0) m.vcpu.setReg(11, at);
    else if (m.startHart(h, entry, at) !== 0n) throw new Error(`hart ${h} did not start`);
  });
}

function dropLowest(s, opts) {
  if (opts.dropOne && s.size > 0) s.delete(Math.min(...s));
  return s;
}

/**
 * KVM_GET_DIRTY_LOG, then KVM_CLEAR_DIRTY_LOG of exactly what it returned
 * (KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2): the pages reported.
 */
export function collectBitmap(vm, r, opts = {}) {
  const bitmap = vm.getDirtyLog(r.slot);
  vm.clearDirtyLog(r.slot, 0, r.pages, bitmap);
  const out = new Set();
  for (let p = 0; p < r.pages; p++) if (bitmap[p >> 3] & (1 << (p & 7))) out.add(p);
  return dropLowest(out, opts);
}

/**
 * Harvests every vCPU's dirty ring (entries of the region's slot), then
 * KVM_RESET_DIRTY_RINGS re-protects them: the pages reported.
 */
export function collectRing(vm, vcpus, r, opts = {}) {
  const out = new Set();
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
