// xen_shinfo's race on the pfn cache (assembly/pfncache.ts), issue 16: a
// Worker deactivates, activates and refreshes the cache while two Workers read
// and write through it and another munmaps and remaps its backing (the roles:
// test/threads-pfncache-roles.mjs). Run by test/threads-pfncache.test.ts (Node)
// and test/browser/threads-chromium.test.ts (Chromium: this driver on the
// page's VMM Web Worker, each role on a Web Worker of its own); checked by
// pfncache-expect.ts. lockOff pulls the debug lever that turns the cache's
// locks off (the race must then fail).
import { Kvm } from "../../dist/index.js";
import { PAGE, GO, READY, tag } from "../threads-pfncache-roles.mjs";
import { spawner } from "./spawn.mjs";

const MiB = 1n << 20n;

/**
 * Runs the race: rounds remaps, toggles cache cycles, up to maxAccesses per
 * user; a thread that hangs (sleeps on a lock forever) makes it return
 * { hung: true } after deadlineMs instead of blocking this thread.
 */
export async function xenShinfoRace({ lockOff = false, rounds = 4_000, toggles = 100_000, maxAccesses = 2_000_000, deadlineMs = 40_000 } = {}) {
  const kvm = await Kvm.open({ core: "threads" });
  if (kvm.core.isThreadsBuild() !== 1) throw new Error("not the threads core");
  const core = kvm.core;
  core.debugGpcLockOff(lockOff);
  const spawn = await spawner();
  const workers = [];
  try {
    const vm = kvm.createVm();
    const A = kvm.memory.mmap(1n * MiB);
    const D = kvm.memory.mmap(0x1000);
    vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0n, memorySize: 1n * MiB, userspaceAddr: A });
    const gpa = 0x3000n, H = A + gpa;
    kvm.memory.write(H, new Uint8Array(PAGE).fill(tag(0)));
    const gpc = vm.createPfnCache();
    gpc.activate(gpa, PAGE);
    const p = gpc.ptr;
    const shared = new SharedArrayBuffer(32);
    const sig = new Int32Array(shared);
    const url = new URL("./pfncache-worker.mjs", import.meta.url);
    // Every role runs in a Worker: a thread that sleeps on a lock forever (one
    // that trapped holding it) then fails the run at the deadline instead of
    // blocking this thread.
    const start = (role, count) => new Promise((resolve, reject) => {
      const w = spawn(url, { ...kvm.sharedCore(), role, shared, gpc: p, gpa, H, D, count });
      workers.push(w);
      w.onMessage((m) => { if (m.exited) reject(new Error(`${role} exited without a result`)); else resolve(m); });
    });
    const all = Promise.all([start("remapper", rounds), start("toggler", toggles), start("user", maxAccesses), start("user", maxAccesses)]);
    while (Atomics.load(sig, READY) < 4) await new Promise((r) => setTimeout(r, 1));
    Atomics.store(sig, GO, 1);
    Atomics.notify(sig, GO);
    let timer;
    const deadline = new Promise((r) => { timer = setTimeout(() => r(null), deadlineMs); });
    const done = await Promise.race([all, deadline]);
    clearTimeout(timer);
    if (done === null) return { hung: true };
    const [remapper, toggler, u1, u2] = done;
    const invariants = core.debugCheckInvariants(vm.fd);
    // Nothing is left held: the cache still works from this thread.
    gpc.refresh(PAGE);
    return { hung: false, remapper, toggler, users: [u1, u2], invariants, readAfter: gpc.read(4).length, sleeps: Number(core.debugGpcLockSleeps()) };
  } finally {
    for (const w of workers) void w.terminate();
    core.debugGpcLockOff(false);
  }
}
