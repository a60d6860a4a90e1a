// VcpuThread (a vCPU's KVM_RUN on a Worker of its own, its exits handled by
// the owning thread) in the scenarios that need no Node API: run by
// test/threads-vcpu-thread.test.ts (Node) and test/browser/threads-chromium.test.ts
// (Chromium: the owning thread is the page's VMM Web Worker, and VcpuThread
// starts its vCPU Workers from there). Checked by vcpu-thread-expect.ts.
// Bounded by instruction budgets and by the guests' own exits, never by time.
import { Kvm, VcpuThread, KVM_EXIT } from "../../dist/index.js";
import { vmWithCode } from "./vm.mjs";

const LOCK = { SLOTS: 0, MMU: 1, SRCU_IDX: 2, READERS0: 3, READERS1: 4, MN_LOCK: 5, MN_COUNT: 6, HEAP: 7, MMAP: 8 };
/** vCPU i's lock words: k = 0 mode, 1 requests, 2 SRCU held, 3 vcpu->mutex. */
export const vcpuWord = (i, k) => 9 + 4 * i + k;

/**
 * The lock words that must be free when nothing is held: the VM's and the
 * process's locks (0 each), and per vCPU its guest-mode bit, SRCU-held and
 * vcpu->mutex words (0 each).
 */
export function heldWords(kvm, vm, nVcpus) {
  const w = (i) => kvm.core.debugLockWord(vm.fd, i);
  return {
    locks: [LOCK.SLOTS, LOCK.MMU, LOCK.READERS0, LOCK.READERS1, LOCK.MN_LOCK, LOCK.MN_COUNT, LOCK.HEAP, LOCK.MMAP].map(w),
    vcpus: Array.from({ length: nVcpus }, (_, i) => [w(vcpuWord(i, 0)) & 1, w(vcpuWord(i, 2)), w(vcpuWord(i, 3))]),
  };
}

const tick = typeof setImmediate === "function"
  ? () => new Promise((r) => setImmediate(r))
  : () => new Promise((r) => { const c = new MessageChannel(); c.port1.onmessage = () => { c.port1.close(); r(); }; c.port2.postMessage(0); });

/** Waits (yielding to the event loop) until vCPU i of vm is in guest mode: a run is in flight on its Worker. */
export async function inGuestMode(kvm, vm, i) {
  while ((kvm.core.debugLockWord(vm.fd, vcpuWord(i, 0)) & 1) === 0) await tick();
}

/**
 * Two vCPUs at once, each on its own Worker, over one VM's memory: code (the
 * stress program of vcpus.mjs) writes s2 = 1..passes to 64 pages of each
 * vCPU's partition and verifies them, `passes` runs each.
 */
export async function twoAtOnce({ code, passes = 50 }) {
  const kvm = await Kvm.open({ core: "threads" });
  const { vm, vcpus } = vmWithCode(kvm, code, 2);
  const BASE = 0x90000000n, PART = 64n * 4096n;
  vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: BASE, memorySize: 2n * PART, userspaceAddr: kvm.memory.mmap(2n * PART) });
  vcpus.forEach((v, i) => v.setReg(9, BASE + BigInt(i) * PART)); // s1: the vCPU's partition
  const threads = await Promise.all(vcpus.map((v) => VcpuThread.start(kvm, v)));
  const exits = await Promise.all(threads.map(async (t) => {
    const seen = [];
    for (let k = 0; k < passes; k++) {
      const e = await t.run();
      seen.push({ reason: e.reason, a0: String(t.vcpu.kvmRun.riscvSbi.args[0]) });
    }
    return seen;
  }));
  const lastPage = [0, 1].map((i) => {
    const page = vm.readGuest(BASE + BigInt(i) * PART + 63n * 4096n, 8);
    return Number(new DataView(page.buffer, page.byteOffset).getBigUint64(0, true));
  });
  const threadIds = threads.map((t) => t.threadId);
  await Promise.all(threads.map((t) => t.terminate()));
  return { passes, threadIds, exits, lastPage, held: heldWords(kvm, vm, 2), SBI: KVM_EXIT.RISCV_SBI };
}

/**
 * A vCPU Worker terminated in the middle of a run (almost always inside its
 * SRCU read section): code faults on every access and never exits (two RAM
 * pages at 0x40000000 and 0x41000000 sharing a shadow entry, the fault window
 * widened). Then two memslot updates and a run from this thread.
 */
export async function terminatedMidRun({ code }) {
  const kvm = await Kvm.open({ core: "threads" });
  kvm.core.debugFaultWindowSpin(200_000);
  const { vm, vcpus } = vmWithCode(kvm, code, 1);
  vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: 0x40000000n, memorySize: 4096n, userspaceAddr: kvm.memory.mmap(4096n) });
  vm.setUserMemoryRegion({ slot: 2, guestPhysAddr: 0x41000000n, memorySize: 4096n, userspaceAddr: kvm.memory.mmap(4096n) });
  vcpus[0].setBudget(Number.MAX_SAFE_INTEGER);
  const t = await VcpuThread.start(kvm, vcpus[0]);
  const run = t.run();
  await inGuestMode(kvm, vm, 0);
  for (let n = 0; n < 1000 && kvm.core.debugLockWord(vm.fd, vcpuWord(0, 2)) === 0; n++) await tick();
  const inSection = kvm.core.debugLockWord(vm.fd, vcpuWord(0, 2)) !== 0;
  await t.terminate();
  const runError = await run.then(() => "", (e) => String(e?.message ?? e));
  const held = heldWords(kvm, vm, 1);
  // The next memslot updates wait for no one.
  const hva = kvm.memory.mmap(4096n);
  vm.setUserMemoryRegion({ slot: 3, guestPhysAddr: 0x50000000n, memorySize: 4096n, userspaceAddr: hva });
  vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: 0x40000000n, memorySize: 0n, userspaceAddr: hva });
  // The vCPU is usable again from this thread: its next access to A is MMIO now.
  vcpus[0].setBudget(1000);
  kvm.core.debugFaultWindowSpin(0);
  const after = vcpus[0].run().reason;
  const heldAfter = heldWords(kvm, vm, 1);
  vm.close();
  return { inSection, runError, held, heldAfter, afterReason: after, MMIO: KVM_EXIT.MMIO };
}
