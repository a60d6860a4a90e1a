// Issue 16: pfn-cache check and refresh under the cache's locks (assembly/pfncache.ts).
// A user touches the cached page only inside one core call that holds gpc->lock
// for read; activate, deactivate and refresh serialise on refresh_lock and change
// the cache under gpc->lock for write; the MMU-notifier invalidation takes it for
// write too, so munmap cannot free a frame a user is still reading.
// WEBKVM_GPC_LOCK_OFF=1 pulls the debug lever that turns those locks off: the
// race test must then fail; WEBKVM_RWLOCK_OFF=1 runs the rwlock stress without
// its lock, which must fail too. WEBKVM_THREADS_REPORT=1 prints what each
// thread saw.

import { describe, it, expect } from "vitest";
import { Worker } from "node:worker_threads";
import { Kvm } from "../src/index.js";
import { instantiateCore, type CoreExports } from "../src/core.js";
import { PAGE } from "./threads-pfncache-roles.mjs";
// @ts-expect-error plain JS module without types
import { xenShinfoRace } from "./threads-scenarios/pfncache.mjs";
import { expectRaceKept } from "./threads-scenarios/pfncache-expect.js";
import { code, MiB } from "./helpers.js";

const LOCK_OFF = process.env.WEBKVM_GPC_LOCK_OFF === "1";
const RWLOCK_OFF = process.env.WEBKVM_RWLOCK_OFF === "1";

async function openThreads(): Promise<Kvm> {
  const kvm = await Kvm.open({ core: "threads" });
  expect(kvm.core.isThreadsBuild()).toBe(1);
  return kvm;
}

async function join(kvm: Kvm): Promise<CoreExports> {
  return instantiateCore(undefined, "threads", { fn: null }, kvm.sharedCore());
}

describe("threads build: rwlock.ts", () => {
  it("three Workers and the main thread in read and write sections of one rwlock: no reader sees a half-done write, no write is lost", async () => {
    const WORKERS = 3, ITERS = 200_000;
    const kvm = await openThreads();
    const core = kvm.core;
    const block = core.debugRwlockBlock();
    expect(block).not.toBe(0);
    const go = new SharedArrayBuffer(8);
    const signal = new Int32Array(go);
    const url = new URL("./threads-rwlock-worker.mjs", import.meta.url);
    const workers: Worker[] = [];
    const results = Array.from({ length: WORKERS }, (_, i) => new Promise<{ torn?: number; error?: string }>((resolve, reject) => {
      const w = new Worker(url, { workerData: { ...kvm.sharedCore(), block, iters: ITERS, seed: 3 + i, locked: !RWLOCK_OFF, go } });
      workers.push(w);
      w.once("message", resolve);
      w.once("error", reject);
    }));
    try {
      while (Atomics.load(signal, 1) < WORKERS) await new Promise((r) => setTimeout(r, 1));
      const sleeps0 = core.debugGpcLockSleeps();
      Atomics.store(signal, 0, 1);
      Atomics.notify(signal, 0);
      const mine = core.debugRwlockStress(block, ITERS, 99, !RWLOCK_OFF);
      const all = [{ torn: mine }, ...await Promise.all(results)];
      if (process.env.WEBKVM_THREADS_REPORT) console.log(`rwlock: ${JSON.stringify(all)}, ${core.debugGpcLockSleeps() - sleeps0} sleeps`);
      expect(all.map((r) => r.error ?? r.torn)).toEqual(all.map(() => 0));
      expect(core.debugRwlockWritesAdd(block)).toBe(1);
    } finally {
      for (const w of workers) void w.terminate();
    }
  });
});

describe("threads build: pfn cache locks", () => {
  it("hva_to_pfn_retry: an invalidation from another thread between the refresh's lookup and its re-check makes it resolve the page again", async () => {
    const kvm = await openThreads();
    const vm = kvm.createVm();
    const hva = kvm.memory.mmap(1n * MiB);
    vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0n, memorySize: 1n * MiB, userspaceAddr: hva });
    kvm.memory.poke(hva + 0x3000n, 0x55n);
    const gpc = vm.createPfnCache();
    gpc.activate(0x3000n, 8);
    expect(kvm.core.migratePages(hva + 0x3000n, 0x1000n)).toBe(1); // invalidates the cache: the refresh resolves the page
    const p = (gpc as unknown as { ptr: number }).ptr;
    const shared = new SharedArrayBuffer(8);
    const sig = new Int32Array(shared);
    const w = new Worker(new URL("./threads-pfncache-retry-worker.mjs", import.meta.url), { workerData: { ...kvm.sharedCore(), gpc: p, shared } });
    try {
      const done = new Promise<{ r: number; resolved: number; valid: number; error?: string }>((resolve, reject) => {
        w.once("message", resolve);
        w.once("error", reject);
      });
      // The Worker resolved the page and waits with gpc->lock dropped: the page migrates under it.
      while (Atomics.load(sig, 0) === 0) await new Promise((r) => setImmediate(r));
      expect(kvm.core.migratePages(hva + 0x3000n, 0x1000n)).toBe(1);
      Atomics.store(sig, 1, 1);
      Atomics.notify(sig, 1);
      const res = await done;
      expect(res.error).toBeUndefined();
      expect([res.r, res.resolved, res.valid]).toEqual([0, 2, 1]);
      // The cache maps the frame the guest sees now, not the one migrated away.
      expect(gpc.read(1)[0]).toBe(0x55);
      gpc.write(new Uint8Array([0x66]));
      expect(vm.readGuest(0x3000n, 1)[0]).toBe(0x66);
    } finally {
      void w.terminate();
    }
  });

  it("lockdep: __kvm_gpc_refresh without refresh_lock and kvm_gpc_check without gpc->lock fail loudly in the debug core", async () => {
    const kvm = await openThreads();
    const vm = kvm.createVm();
    const hva = kvm.memory.mmap(1n * MiB);
    vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0n, memorySize: 1n * MiB, userspaceAddr: hva });
    const gpc = vm.createPfnCache();
    gpc.activate(0x2000n, 8);
    const p = (gpc as unknown as { ptr: number }).ptr;
    expect(() => kvm.core.debugGpcRefreshUnlocked(p)).toThrow(/refresh_lock not held/);
    const b = await join(kvm);
    expect(() => b.debugGpcCheckUnlocked(p, 8n)).toThrow(/gpc->lock not held/);
    // Through the API (which takes the locks) the same calls succeed, from either thread.
    gpc.refresh(8);
    expect(b.gpcIsValid(p, 8n)).toBe(1);
    expect(gpc.check(8)).toBe(true);
  });

  it("on the threads core, writes and reads go through the cache, munmap invalidates it and a refresh of the unmapped page is EFAULT", async () => {
    const kvm = await openThreads();
    const vm = kvm.createVm();
    const hva = kvm.memory.mmap(1n * MiB);
    vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0n, memorySize: 1n * MiB, userspaceAddr: hva });
    const gpc = vm.createPfnCache();
    gpc.activate(0x3010n, 16);
    gpc.write(Uint8Array.of(1, 2, 3, 4));
    expect(Array.from(vm.readGuest(0x3010n, 4))).toEqual([1, 2, 3, 4]);
    expect(Array.from(gpc.read(4))).toEqual([1, 2, 3, 4]);
    expect(code(() => gpc.read(PAGE))).toBe("EINVAL");
    kvm.memory.munmap(hva + 0x3000n, 0x1000);
    expect([gpc.valid, gpc.check(16)]).toEqual([false, false]);
    expect(code(() => gpc.read(4))).toBe("EFAULT");
    expect(kvm.core.debugCheckInvariants(vm.fd)).toBe(1);
  });

  it("xen_shinfo's race: a Worker deactivates, activates and refreshes the cache while two Workers read and write through it and another munmaps and remaps its backing: no access reaches a freed frame, invariants hold, nothing hangs", async () => {
    // The driver (test/threads-scenarios/pfncache.mjs) also runs in Chromium (test/browser/threads-chromium.test.ts).
    const o = await xenShinfoRace({ lockOff: LOCK_OFF, rounds: 4_000, toggles: 100_000, maxAccesses: 2_000_000, deadlineMs: 40_000 });
    if (process.env.WEBKVM_THREADS_REPORT) console.log(JSON.stringify({ users: o.users?.map((u: { seen: unknown }) => u.seen), remapper: { corrupted: o.remapper?.corrupted }, toggler: o.toggler, sleeps: o.sleeps }));
    expectRaceKept(o);
  }, 60_000);
});
