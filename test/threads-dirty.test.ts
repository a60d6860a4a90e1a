// Issue 16: the dirty log under real concurrency (and kvm->lock, which orders
// enabling the dirty ring against creating vCPUs). vCPU threads (Workers) log
// guest writes the way the write fault path does while the main thread, the
// VMM, harvests: the bitmap with KVM_GET_DIRTY_LOG (and KVM_CLEAR_DIRTY_LOG
// under manual protect), the ring with a harvest and KVM_RESET_DIRTY_RINGS.
// Every page is written exactly once, so a bit lost to a race is a page never
// reported; the writers publish their progress, which bounds the harvests a
// write may be reported by. Counts are fixed and no result depends on timing:
// only how the threads interleave does (two short sleeps pace threads that
// would otherwise starve each other on a two-core machine).
//
// WEBKVM_DIRTY_ATOMIC_OFF pulls debug levers (assembly/debug/dirty_levers.ts):
// "mark", "get", "clear", "ring" (comma-separated) or "1" for all. Each turns
// one atomic operation into a plain load/store sequence (the ring's publishes
// an entry before its slot and offset): the tests that cover it must then
// fail. WEBKVM_THREADS_REPORT=1 prints how many harvests ran concurrently.

import { describe, it, expect } from "vitest";
import { Worker } from "node:worker_threads";
import { Kvm, Vm, KVM_CAP, KVM_MEM_LOG_DIRTY_PAGES, KVM_GET_DIRTY_LOG, KVM_CLEAR_DIRTY_LOG, KVM_ENABLE_CAP, KVM_CREATE_VCPU,
  kvm_enable_cap } from "../src/index.js";
import type { DirtyGfn } from "../src/dirty.js";
import { DIRTY_LEVER } from "../src/abi.gen.js";
import { pageOf, SLOT_PAGES } from "./threads-dirty-order.mjs";

const LEVERS = (process.env.WEBKVM_DIRTY_ATOMIC_OFF ?? "").split(",").filter((x) => x !== "").reduce((m, x) => {
  if (x === "1") return Object.values(DIRTY_LEVER).reduce((a, v) => a | v, m);
  const bit = (DIRTY_LEVER as Record<string, number>)[x.toUpperCase()];
  if (bit === undefined) throw new RangeError(`WEBKVM_DIRTY_ATOMIC_OFF: no lever ${x}`);
  return m | bit;
}, 0);
const REPORT = !!process.env.WEBKVM_THREADS_REPORT;
const PAGE = 4096n;

async function openThreads(): Promise<Kvm> {
  const kvm = await Kvm.open({ core: "threads" });
  expect(kvm.core.isThreadsBuild()).toBe(1);
  kvm.core.debugDirtyAtomicOff(LEVERS);
  return kvm;
}

/** `slots` logged slots of `pages` pages each, slot s at gfn s * pages. */
function loggedSlots(kvm: Kvm, vm: Vm, slots: number, pages: number): void {
  const bytes = BigInt(pages) * PAGE;
  const hva = kvm.memory.mmap(BigInt(slots) * bytes);
  for (let s = 0; s < slots; s++) {
    vm.setUserMemoryRegion({ slot: s, flags: KVM_MEM_LOG_DIRTY_PAGES, guestPhysAddr: BigInt(s) * bytes, memorySize: bytes, userspaceAddr: hva + BigInt(s) * bytes });
  }
}

interface Writers {
  /** progress[k]: writes thread k has completed (-1: it failed). */
  progress: Int32Array;
  results: Promise<{ waits?: number; error?: string; ms?: number }[]>;
  /** Ends every writer now (one that has not reported then reports an error). */
  stop: () => void;
}

/**
 * One Worker per vCPU fd, each making `count` writes once all are ready: to
 * gfns[k] in order, or (no gfns) to threads-dirty-order.mjs's pages. Lockstep, spacing, resets: see the worker.
 */
async function startWriters(kvm: Kvm, vcpuFds: number[], count: number, gfns?: bigint[][], lockstep = 0, spacing = 0,
  resets?: Int32Array): Promise<Writers> {
  const progress = new Int32Array(new SharedArrayBuffer(4 * vcpuFds.length));
  const go = new SharedArrayBuffer(8);
  const signal = new Int32Array(go);
  const url = new URL("./threads-dirty-worker.mjs", import.meta.url);
  const workers: Worker[] = [];
  const results = vcpuFds.map((vcpuFd, index) => new Promise<{ waits?: number; error?: string; ms?: number }>((resolve, reject) => {
    const w = new Worker(url, { workerData: { ...kvm.sharedCore(), vcpuFd, gfns: gfns && BigUint64Array.from(gfns[index]), count, index,
      progress: progress.buffer, lockstep, spacing, resets: resets?.buffer, go } });
    workers.push(w);
    w.once("message", (m) => { resolve(m); void w.terminate(); });
    w.once("exit", () => resolve({ error: `writer ${index} ended before it reported` }));
    w.once("error", reject);
  }));
  while (Atomics.load(signal, 1) < vcpuFds.length) await new Promise((r) => setTimeout(r, 1));
  Atomics.store(signal, 0, 1);
  Atomics.notify(signal, 0);
  return { progress, results: Promise.all(results), stop: () => { for (const w of workers) void w.terminate(); } };
}

type Mode = "get" | "manual" | "initially-set";

/**
 * vCPU threads write each page of `pages` pages of logged slots once, as
 * threads-dirty-order.mjs lays them out, while the main thread harvests the
 * slot they are writing in a loop, then every slot once more. Returns what the
 * harvests broke of the rule "each page is reported exactly once, by a harvest
 * of its slot that ended after the write began and no later than the first
 * one that began after it ended".
 */
async function bitmapRace(mode: Mode, writers: number, pages: number): Promise<string[]> {
  const slots = pages / SLOT_PAGES, per = pages / writers;
  const kvm = await openThreads();
  const vm = kvm.createVm();
  if (mode !== "get") vm.enableCap(KVM_CAP.MANUAL_DIRTY_LOG_PROTECT2, [mode === "initially-set" ? 3n : 1n]);
  loggedSlots(kvm, vm, slots, SLOT_PAGES);
  const vcpus = Array.from({ length: writers }, (_, i) => vm.createVcpu(i));
  // Write i of thread k is page pageOf(writers, k, i); writer[p] and index[p] invert that.
  const writer = new Uint8Array(pages), index = new Uint32Array(pages);
  for (let k = 0; k < writers; k++) for (let i = 0; i < per; i++) { const p = pageOf(writers, k, i); writer[p] = k; index[p] = i; }
  // Per harvest: its slot and the writers' progress before and after it. Per page: how many
  // harvests reported it and the first two that did.
  const slotOf: number[] = [], before: number[][] = [], after: number[][] = [];
  const count = new Uint32Array(pages), first = new Int32Array(pages), second = new Int32Array(pages);
  const problems: string[] = [];
  const w = await startWriters(kvm, vcpus.map((v) => v.fd), per, undefined, writers > 1 ? 64 / writers : 0);
  // The harvests issue the ioctls themselves (Vm.getDirtyLog's own work would let more writes pass
  // between two harvests): GET into a user buffer, which CLEAR then reads back.
  const core = kvm.core, user = kvm.memory.mmap(BigInt(SLOT_PAGES / 8));
  const harvest = (s: number): void => {
    const j = slotOf.length;
    before.push(Array.from(w.progress));
    const arg = new DataView(core.memory.buffer, core.ioctlBuffer(), 24);
    arg.setUint32(0, s, true);
    arg.setUint32(4, 0, true);
    arg.setBigUint64(8, user, true);
    let r = core.ioctl(vm.fd, KVM_GET_DIRTY_LOG, 16, 0n);
    if (r === 0 && mode !== "get") {
      arg.setUint32(4, SLOT_PAGES, true);
      arg.setBigUint64(8, 0n, true);
      arg.setBigUint64(16, user, true);
      r = core.ioctl(vm.fd, KVM_CLEAR_DIRTY_LOG, 24, 0n);
    }
    after.push(Array.from(w.progress));
    slotOf.push(s);
    if (r !== 0) problems.push(`harvest ${j} of slot ${s}: ${r}`);
    const bits = new Uint32Array(kvm.memory.read(user, SLOT_PAGES / 8).buffer);
    for (let x = 0; x < bits.length; x++) {
      for (let m = bits[x]; m !== 0; m &= m - 1) {
        const p = s * SLOT_PAGES + x * 32 + 31 - Math.clz32(m & -m);
        if (count[p] === 0) first[p] = j; else if (count[p] === 1) second[p] = j;
        count[p]++;
      }
    }
  };
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    let least = per, failed = false;
    for (const x of w.progress) { least = Math.min(least, x); failed ||= x < 0; }
    if (failed || least === per) break;
    harvest(Math.floor(pageOf(writers, 0, least) / SLOT_PAGES));
    // Two writers and this thread share the machine's two cores: let the writers run together.
    if (writers > 1) Atomics.wait(pause, 0, 0, 1);
  }
  if (Array.from(w.progress).some((x) => x !== per)) w.stop(); // a writer failed: end the others
  for (let s = 0; s < slots; s++) harvest(s); // these begin after the last write
  const res = await w.results;
  for (const r of res) if (r.error) problems.push(r.error);
  const harvestsOf: number[][] = Array.from({ length: slots }, () => []);
  slotOf.forEach((s, j) => harvestsOf[s].push(j));
  for (let p = 0; p < pages; p++) {
    const k = writer[p], i = index[p], mine = harvestsOf[Math.floor(p / SLOT_PAGES)];
    let n = count[p], j = first[p];
    if (mode === "initially-set") {
      // The slot's first harvest reports every page of it (its bit starts set);
      // a write that began before that harvest ended may be merged into it.
      if (n === 0 || j !== mine[0]) { problems.push(`page ${p}: its initial bit was not reported by its slot's first harvest`); continue; }
      n--;
      j = second[p];
      if (n === 0 && i <= after[mine[0]][k]) continue;
    }
    if (n !== 1) { problems.push(`page ${p} (write ${i} of thread ${k}): reported ${n} times`); continue; }
    if (i > after[j][k]) problems.push(`page ${p}: reported by harvest ${j}, which ended before the write began`);
    const last = mine.find((h) => before[h][k] >= i + 1);
    if (last !== undefined && j > last) problems.push(`page ${p}: reported by harvest ${j}, after harvest ${last} that began once it was written`);
  }
  expect(kvm.core.debugCheckInvariants(vm.fd)).toBe(1);
  kvm.core.debugDirtyAtomicOff(0);
  if (REPORT) console.log(`${mode}: ${slotOf.length - slots} harvests while ${writers} thread(s) wrote ${pages} pages (${res.map((r) => r.ms?.toFixed(1)).join(", ")} ms); ${problems.length} problems`);
  return problems;
}

describe("threads build: dirty bitmap under concurrent vCPUs (mark_page_dirty_in_slot, kvm_get_dirty_log_protect, kvm_clear_dirty_log_protect)", () => {
  it("two vCPU threads set bits of the same words at once (atomic OR) while the VMM harvests: every page written is reported exactly once, none lost", async () => {
    expect((await bitmapRace("get", 2, 1 << 18)).slice(0, 8)).toEqual([]);
  });

  it("GET_DIRTY_LOG takes each word with an exchange while a vCPU thread writes in it: every page written is reported exactly once, by a harvest that overlapped or followed the write", async () => {
    expect((await bitmapRace("get", 1, 1 << 21)).slice(0, 8)).toEqual([]);
  });

  it("manual protect: GET, then CLEAR_DIRTY_LOG with fetch-and-AND-NOT, while a vCPU thread writes in the words: every page written is reported exactly once", async () => {
    expect((await bitmapRace("manual", 1, 1 << 21)).slice(0, 8)).toEqual([]);
  });

  it("manual protect with INITIALLY_SET: the initial bits are harvested while a vCPU thread writes, and every later write is reported exactly once", async () => {
    expect((await bitmapRace("initially-set", 1, 1 << 21)).slice(0, 8)).toEqual([]);
  });
});

describe("threads build: dirty ring under a concurrent vCPU (kvm_dirty_ring_push, kvm_dirty_ring_reset)", () => {
  it("a vCPU thread pushes while the main thread harvests (acquire) and resets: every push is harvested exactly once, in order, with its slot and offset", async () => {
    const PAGES = 4096, N = 200_000;
    const kvm = await openThreads();
    const vm = kvm.createVm();
    vm.enableDirtyRing(4096, true); // 256 entries, soft-full at 192
    loggedSlots(kvm, vm, 1, PAGES);
    const vcpu = vm.createVcpu(0);
    const offsets = Array.from({ length: N }, (_, i) => BigInt((i * 37) % PAGES));
    // The writer is spaced so that the harvester mostly waits at the ring's head, reading each entry as
    // it is published; it resets every 64 entries, so the writer also reuses entries all along, and
    // sleeps while its ring is soft-full until a reset wakes it.
    const resets = new Int32Array(new SharedArrayBuffer(4));
    const writers = await startWriters(kvm, [vcpu.fd], N, [offsets], 0, 1000, resets);
    const got: DirtyGfn[] = [];
    const SOFT_LIMIT = 256 - 64;
    let reset = 0, rounds = 0, pending = 0, idle = 0, stuck = 0;
    for (;;) {
      const e = vcpu.dirtyRing.harvest();
      for (const x of e) got.push(x);
      pending += e.length;
      const done = Atomics.load(writers.progress, 0);
      if (pending >= 64 || (done === N && e.length === 0 && pending > 0)) {
        reset += vm.resetDirtyRings();
        rounds++;
        // The vCPU thread sleeps while its ring is soft-full: wake it (the VMM's kick).
        Atomics.add(resets, 0, 1);
        Atomics.notify(resets, 0);
        pending = 0;
      }
      if (e.length > 0) continue;
      // Once every push returned, all are published: a few empty harvests end the loop. So does a ring
      // that stays soft-full with nothing to harvest (entries lost or never released): the writer
      // sleeps for good then, and this thread, which never yields, must not wait for it.
      if (done < 0 || (done === N && ++idle > 1000)) break;
      stuck = done - reset >= SOFT_LIMIT ? stuck + 1 : 0;
      if (stuck > 1000) break;
    }
    if (Atomics.load(writers.progress, 0) !== N) writers.stop();
    const [result] = await writers.results;
    kvm.core.debugDirtyAtomicOff(0);
    if (REPORT) console.log(`ring: ${rounds} resets, the writer slept ${result.waits} times on a soft-full ring (${result.ms?.toFixed(1)} ms)`);
    expect(result.error).toBeUndefined();
    expect(got.length).toBe(N);
    const wrong = got.flatMap((e, i) => (e.slot === 0 && e.offset === offsets[i] ? [] : [`entry ${i}: slot ${e.slot} offset ${e.offset}, pushed offset ${offsets[i]}`]));
    expect(wrong.slice(0, 8)).toEqual([]);
    expect(reset).toBe(N);
    expect(vm.resetDirtyRings()).toBe(0);
    expect(kvm.core.debugCheckInvariants(vm.fd)).toBe(1);
  });
});

describe("threads build: kvm->lock (kvm_vm_ioctl_enable_dirty_log_ring, kvm_vm_ioctl_create_vcpu)", () => {
  /** Issues one VM ioctl on a Worker while this thread holds kvm->lock; returns whether it waited, and its result. */
  async function whileHeld(kvm: Kvm, vm: Vm, nr: number, bytes: Uint8Array | undefined, arg: bigint): Promise<{ waited: boolean; r: number }> {
    const core = kvm.core;
    expect(core.debugKvmLock(vm.fd, true)).toBe(0);
    const state = new Int32Array(new SharedArrayBuffer(8));
    const url = new URL("./threads-kvm-lock-worker.mjs", import.meta.url);
    const done = new Promise<{ r?: number; error?: string }>((resolve, reject) => {
      const w = new Worker(url, { workerData: { ...kvm.sharedCore(), vmFd: vm.fd, nr, bytes, arg, state: state.buffer } });
      w.once("message", (m) => { resolve(m); void w.terminate(); });
      w.once("error", reject);
    });
    // The ioctl either sleeps on the lock (its word becomes 2: held, with a sleeper) or returns.
    while (core.debugKvmLockWord(vm.fd) !== 2 && Atomics.load(state, 0) !== 2) await new Promise((r) => setTimeout(r, 1));
    const waited = Atomics.load(state, 0) !== 2;
    expect(core.debugKvmLock(vm.fd, false)).toBe(0);
    const m = await done;
    expect(m.error).toBeUndefined();
    return { waited, r: m.r! };
  }

  it("KVM_ENABLE_CAP(DIRTY_LOG_RING) from another thread waits for kvm->lock, then sets the size: the next vCPU gets the ring", async () => {
    const kvm = await openThreads();
    const vm = kvm.createVm();
    const bytes = kvm_enable_cap.encode({ cap: KVM_CAP.DIRTY_LOG_RING, flags: 0, arg0: 4096n, arg1: 0n, arg2: 0n, arg3: 0n });
    const { waited, r } = await whileHeld(kvm, vm, KVM_ENABLE_CAP, bytes, 0n);
    expect(waited).toBe(true);
    expect(r).toBe(0);
    expect(vm.createVcpu(0).dirtyRing.size).toBe(256);
  });

  it("KVM_CREATE_VCPU from another thread waits for kvm->lock, then creates: enabling the ring afterwards is EINVAL", async () => {
    const kvm = await openThreads();
    const vm = kvm.createVm();
    const { waited, r } = await whileHeld(kvm, vm, KVM_CREATE_VCPU, undefined, 0n);
    expect(waited).toBe(true);
    expect(r).toBeGreaterThanOrEqual(0);
    expect(kvm.core.vcpuDirtyRingEntries(r)).toBe(0);
    expect(() => vm.enableDirtyRing(4096)).toThrow(/EINVAL/);
  });
});
