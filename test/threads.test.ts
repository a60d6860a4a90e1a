// The threads build's foundation (issue 16, first step): one process's core
// instantiated by several threads over one shared memory. Each instance sees
// the process's state (assembly/threads.ts's process block), and the heap and
// frame allocators hold under real concurrency (node:worker_threads).
// WEBKVM_THREADS_LOCK_OFF=1 pulls the debug lever that turns the heap lock off:
// the concurrency test must then fail. WEBKVM_THREADS_REPORT=1 prints how often
// a thread slept on the lock (its slow path ran).

import { describe, it, expect } from "vitest";
import { readFileSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { Kvm } from "../src/index.js";
import { instantiateCore, bytesAt, type CoreExports } from "../src/core.js";
import { MiB } from "./helpers.js";

const LOCK_OFF = process.env.WEBKVM_THREADS_LOCK_OFF === "1";

async function openThreads(): Promise<Kvm> {
  const kvm = await Kvm.open({ core: "threads" });
  expect(kvm.debugCore).toBe(true);
  expect(kvm.core.isThreadsBuild()).toBe(1);
  return kvm;
}

/** A second instance of the same process on this thread (what a Worker does, without the Worker). */
async function join(kvm: Kvm): Promise<CoreExports> {
  return instantiateCore(undefined, "threads", { fn: null }, kvm.sharedCore());
}

describe("threads build: one process, several instances over one shared memory", () => {
  it("its memory is a shared memory the host created, imported by every instance", async () => {
    const kvm = await openThreads();
    const b = await join(kvm);
    expect(kvm.core.memory.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(b.memory).toBe(kvm.core.memory);
  });

  it("a second instance sees the first's VM: memslot lookup and guest reads give the same answers", async () => {
    const kvm = await openThreads();
    const vm = kvm.createVm();
    const hva = kvm.memory.mmap(2n * MiB);
    vm.setUserMemoryRegion({ slot: 3, guestPhysAddr: 0x100000n, memorySize: 2n * MiB, userspaceAddr: hva });
    const data = Uint8Array.from({ length: 64 }, (_, i) => (i * 7 + 1) & 0xff);
    vm.writeGuest(0x100000n + 0x3000n, data);

    const b = await join(kvm);
    const a = kvm.core;
    // memslot lookup (the snapshot record lands in each instance's own IO buffer)
    for (const gfn of [0x100n, 0x1ffn, 0x300n]) {
      const hitA = a.lookupGfn(vm.fd, 0, gfn, 0);
      const snapA = bytesAt(a, a.ioBuffer(), 48).slice();
      const hitB = b.lookupGfn(vm.fd, 0, gfn, 0);
      const snapB = bytesAt(b, b.ioBuffer(), 48).slice();
      expect(hitB).toBe(hitA);
      if (hitA) expect(snapB).toEqual(snapA);
    }
    expect(b.gfnToHva(vm.fd, 0, 0x103n, false)).toBe(a.gfnToHva(vm.fd, 0, 0x103n, false));
    // guest read through B
    expect(b.accessGuestMemory(vm.fd, 0, 0x103000n, 64, false)).toBe(0);
    expect(bytesAt(b, b.ioBuffer(), 64)).toEqual(data);
    // and B's update is A's: a slot deleted through B is gone for A
    expect(b.vmLive(vm.fd)).toBe(1);
    expect(b.generation(vm.fd, 0)).toBe(vm.generation());
    expect(b.statLiveAllocations()).toBe(a.statLiveAllocations());
    expect(b.debugCheckInvariants(vm.fd)).toBe(1);
  });

  it("joining does not re-initialise the process: the heap, fd table, mappings and static regions survive a new instance", async () => {
    const kvm = await openThreads();
    const vm = kvm.createVm();
    const hva = kvm.memory.mmap(1n * MiB);
    kvm.memory.write(hva, Uint8Array.of(1, 2, 3));
    const live = kvm.core.statLiveAllocations(), maps = kvm.core.mappingCount();
    // this instance's IO buffer (no data segment in the threads build: joining must not re-zero it)
    bytesAt(kvm.core, kvm.core.ioBuffer(), 4).set([9, 8, 7, 6]);
    await join(kvm);
    await join(kvm);
    expect(bytesAt(kvm.core, kvm.core.ioBuffer(), 4)).toEqual(Uint8Array.of(9, 8, 7, 6));
    expect(kvm.core.statLiveAllocations()).toBe(live);
    expect(kvm.core.mappingCount()).toBe(maps);
    expect(kvm.core.vmLive(vm.fd)).toBe(1);
    expect(kvm.memory.read(hva, 3)).toEqual(Uint8Array.of(1, 2, 3));
    // the heap still works for both: an allocation through A is not handed out again through B
    const b = await join(kvm);
    const p = kvm.core.kmalloc(256), q = b.kmalloc(256);
    expect(p).not.toBe(q);
    kvm.core.kmfree(p); b.kmfree(q);
    expect(kvm.core.statLiveAllocations()).toBe(live);
  });

  it("bad input: a translation tier asked of the threads core is a RangeError; sharedCore() of a default core an error", async () => {
    await expect(Kvm.open({ core: "threads", jit: 64 })).rejects.toThrow(RangeError);
    const plain = await Kvm.open({ core: "debug" });
    expect(() => plain.sharedCore()).toThrow(/not the threads build/);
  });

  it("the core never executes memory.atomic.wait (Node 20's Liftoff miscompiles around it): contended locks sleep in the host", () => {
    const wat = readFileSync(new URL("../build/threads.wat", import.meta.url), "utf8");
    expect(wat).toContain("(memory $0 32 65536 shared)");
    expect(wat).toMatch(/i32\.atomic\.rmw\.cmpxchg/);
    expect(wat).not.toMatch(/memory\.atomic\.wait/);
    expect(wat).toContain('(import "env" "webkvm_futex_wait"');
  });
});

describe("threads build: the heap lock under real concurrency (worker_threads)", () => {
  it("workers allocate and free heap blocks and frames while the main thread creates and deletes memslots: no block handed out twice, the accounting and invariants hold", async () => {
    const WORKERS = 2, ITERS = 20_000, ROUNDS = 1_500;
    const kvm = await openThreads();
    const core = kvm.core;
    core.debugHeapLockOff(LOCK_OFF);
    const vm = kvm.createVm();
    const hva = kvm.memory.mmap(4n * MiB);
    const churn = (slot: number) => {
      vm.setUserMemoryRegion({ slot, guestPhysAddr: BigInt(slot) << 21n, memorySize: 2n * MiB, userspaceAddr: hva });
      vm.writeGuest(BigInt(slot) << 21n, Uint8Array.of(slot));
      vm.setUserMemoryRegion({ slot, guestPhysAddr: BigInt(slot) << 21n, memorySize: 0n, userspaceAddr: hva });
    };
    churn(1); // warm up the memslot arrays so the baseline below is steady
    const live = core.statLiveAllocations(); // exact (statHeapBytes is not: frees may omit the size)
    const frames = core.statFramesInUse();
    const bufferBefore = core.memory.buffer.byteLength;

    const go = new SharedArrayBuffer(8);
    const signal = new Int32Array(go);
    const shared = kvm.sharedCore();
    const url = new URL("./threads-worker.mjs", import.meta.url);
    const results = Array.from({ length: WORKERS }, (_, i) => new Promise<{ bad?: number; byteLength?: number; error?: string }>((resolve, reject) => {
      const w = new Worker(url, { workerData: { ...shared, iters: ITERS, seed: i + 1, go } });
      w.once("message", (m) => { resolve(m); void w.terminate(); });
      w.once("error", reject);
    }));
    // Start everyone at once, the main thread included.
    while (Atomics.load(signal, 1) < WORKERS) await new Promise((r) => setTimeout(r, 1));
    Atomics.store(signal, 0, 1);
    Atomics.notify(signal, 0);
    let mainBad = 0;
    for (let r = 0; r < ROUNDS; r++) {
      churn(1 + (r % 8));
      if (r % 100 === 0) mainBad += core.debugHeapStress(200, 100 + r);
    }
    const out = await Promise.all(results);
    core.debugHeapLockOff(false);
    if (process.env.WEBKVM_THREADS_REPORT) console.log(`heap lock: ${core.debugHeapLockSleeps()} sleeps`);

    expect(out.map((o) => o.error ?? "ok")).toEqual(out.map(() => "ok"));
    expect(out.map((o) => o.bad)).toEqual(out.map(() => 0));
    expect(mainBad).toBe(0);
    expect(core.statLiveAllocations()).toBe(live);
    expect(core.statFramesInUse()).toBe(frames);
    expect(core.debugCheckInvariants(vm.fd)).toBe(1);
    // A worker grew the memory: this thread reaches the new pages.
    const grown = Math.max(...out.map((o) => o.byteLength!));
    expect(grown).toBeGreaterThan(bufferBefore);
    expect(() => bytesAt(core, grown - 16, 16)).not.toThrow();
    // And the heap is still whole: a fresh allocation round trip through this thread.
    expect(core.debugHeapStress(2_000, 999)).toBe(0);
    expect(core.statLiveAllocations()).toBe(live);
  });
});
