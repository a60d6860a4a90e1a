// Issue 16, second step: VM ioctls from any thread. Every instance of the
// threads core has its own ioctl and IO buffers (assembly/layout.ts), and a
// VM's memslot updates are serialised by its slots_lock (assembly/kvm/kvm_host.ts),
// which the debug core's lockdep check asserts inside the update protocol.
// WEBKVM_SLOTS_LOCK_OFF=1 pulls the debug lever that turns slots_lock off: the
// concurrency test must then fail. WEBKVM_THREADS_REPORT=1 prints how often a
// thread slept on the lock.

import { describe, it, expect } from "vitest";
import { Worker } from "node:worker_threads";
import { Kvm } from "../src/index.js";
import { instantiateCore, bytesAt, type CoreExports } from "../src/core.js";
import { churn, slotGpa, SLOT_PAGES } from "./threads-slots-churn.mjs";
import { MiB } from "./helpers.js";

const LOCK_OFF = process.env.WEBKVM_SLOTS_LOCK_OFF === "1";

async function openThreads(): Promise<Kvm> {
  const kvm = await Kvm.open({ core: "threads" });
  expect(kvm.core.isThreadsBuild()).toBe(1);
  return kvm;
}

async function join(kvm: Kvm): Promise<CoreExports> {
  return instantiateCore(undefined, "threads", { fn: null }, kvm.sharedCore());
}

interface Share { model: [number, bigint][]; done: { creates: number; moves: number; deletes: number }; failures: string[]; threadId?: number; error?: string }

describe("threads build: per-thread ioctl scratch", () => {
  it("every instance has its own ioctl and IO buffers: one thread's call does not see another's arguments", async () => {
    const kvm = await openThreads();
    const b = await join(kvm), c = await join(kvm);
    const bufs = [kvm.core, b, c].flatMap((k) => [k.ioctlBuffer(), k.ioBuffer()]);
    expect(new Set(bufs).size).toBe(bufs.length);
    const ids = [kvm.core, b, c].map((k) => k.debugThreadId());
    expect(new Set(ids).size).toBe(3);
    expect(ids.every((i) => i > 0)).toBe(true);
    // A guest read through B lands in B's IO buffer, leaving A's as it was.
    const vm = kvm.createVm();
    const hva = kvm.memory.mmap(1n * MiB);
    vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0n, memorySize: 1n * MiB, userspaceAddr: hva });
    vm.writeGuest(0x2000n, Uint8Array.of(5, 6, 7, 8));
    bytesAt(kvm.core, kvm.core.ioBuffer(), 4).set([1, 2, 3, 4]);
    expect(b.accessGuestMemory(vm.fd, 0, 0x2000n, 4, false)).toBe(0);
    expect(bytesAt(b, b.ioBuffer(), 4)).toEqual(Uint8Array.of(5, 6, 7, 8));
    expect(bytesAt(kvm.core, kvm.core.ioBuffer(), 4)).toEqual(Uint8Array.of(1, 2, 3, 4));
  });
});

describe("threads build: slots_lock", () => {
  it("lockdep: the memslot update protocol run without slots_lock fails loudly in the debug core", async () => {
    const kvm = await openThreads();
    const vm = kvm.createVm();
    const hva = kvm.memory.mmap(1n * MiB);
    expect(() => kvm.core.debugSetMemoryRegionUnlocked(vm.fd, 1, 0n, 1n * MiB, hva)).toThrow(/slots_lock not held/);
    expect(vm.memslots()).toEqual([]);
    // Through the ioctl (which takes the lock) the same update succeeds.
    vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: 0n, memorySize: 1n * MiB, userspaceAddr: hva });
    expect(vm.memslots().map((s) => s.id)).toEqual([1]);
  });

  it("two Workers and the main thread create, move and delete disjoint slots of one VM thousands of times: the list is the threads' models, generations advanced by every update, invariants hold", async () => {
    const WORKERS = 2, PER_THREAD = 8, OPS = 2_000;
    const kvm = await openThreads();
    const core = kvm.core;
    core.debugSlotsLockOff(LOCK_OFF);
    try {
      const vm = kvm.createVm();
      const hva = kvm.memory.mmap(BigInt((WORKERS + 1) * PER_THREAD * SLOT_PAGES * 4096));
      const gen0 = vm.generation();
      const go = new SharedArrayBuffer(8);
      const signal = new Int32Array(go);
      const shared = kvm.sharedCore();
      const url = new URL("./threads-slots-worker.mjs", import.meta.url);
      const results = Array.from({ length: WORKERS }, (_, i) => new Promise<Share>((resolve, reject) => {
        const w = new Worker(url, { workerData: { ...shared, vmFd: vm.fd, hva, first: (i + 1) * PER_THREAD, count: PER_THREAD, ops: OPS, seed: 17 + i, go } });
        w.once("message", (m) => { resolve(m); void w.terminate(); });
        w.once("error", reject);
      }));
      while (Atomics.load(signal, 1) < WORKERS) await new Promise((r) => setTimeout(r, 1));
      Atomics.store(signal, 0, 1);
      Atomics.notify(signal, 0);
      let mine: Share;
      try { mine = churn(core, vm.fd, hva, 0, PER_THREAD, OPS, 5); } catch (e) { mine = { model: [], done: { creates: 0, moves: 0, deletes: 0 }, failures: [], error: String(e) }; }
      const all = [mine, ...await Promise.all(results)];
      if (process.env.WEBKVM_THREADS_REPORT) console.log(`slots_lock: ${core.debugSlotsLockSleeps()} sleeps`);

      expect(all.map((s) => s.error ?? "ok")).toEqual(all.map(() => "ok"));
      expect(all.flatMap((s) => s.failures)).toEqual([]);
      // The list is exactly what each thread left, in gfn order.
      const want = all.flatMap((s) => s.model).map(([id, gpa]) => ({ id, gpa })).sort((a, b) => (a.gpa < b.gpa ? -1 : 1));
      expect(vm.memslots().map((s) => ({ id: s.id, gpa: s.guestPhysAddr }))).toEqual(want);
      expect(vm.memslots().every((s) => !s.invalid && s.npages === BigInt(SLOT_PAGES))).toBe(true);
      // kvm_set_memslot swaps once for a create and twice (the INVALID slot, then
      // the result) for a move or delete; each swap adds the number of address spaces.
      const swaps = all.reduce((n, s) => n + s.done.creates + 2 * (s.done.moves + s.done.deletes), 0);
      expect(vm.generation() - gen0).toBe(BigInt(swaps * vm.addressSpaces));
      expect(all.reduce((n, s) => n + s.done.creates + s.done.moves + s.done.deletes, 0)).toBe((WORKERS + 1) * OPS);
      expect(core.debugCheckInvariants(vm.fd)).toBe(1);
      // Nobody holds the lock afterwards: the host API's own update goes through.
      vm.setUserMemoryRegion({ slot: 100, guestPhysAddr: slotGpa(100, false), memorySize: 4096n, userspaceAddr: hva });
      expect(core.debugCheckInvariants(vm.fd)).toBe(1);
    } finally {
      core.debugSlotsLockOff(false);
    }
  });
});
