// vCPUs running on Workers while the VMM thread changes memslots (issue 16):
// the races the memslot machinery exists for, made real. One driver per
// scenario, run by test/threads-vcpus.test.ts (Node: the test's thread is the
// VMM, node:worker_threads vCPUs) and by test/browser/threads-vmm.mjs
// (Chromium: a Web Worker is the VMM, each vCPU on a Web Worker of its own).
// Each vCPU runs in vcpu-worker.mjs, which handles its exits there and counts
// what it saw in a shared Int32Array; a driver returns those counts and the
// VMM's own observations, and vcpus-expect.ts holds the checks both runs make.
// Counts are bounded; nothing depends on timing: the VMM waits for the vCPUs'
// runs to advance, never for a time.
//
// Levers (debug threads core) show the checks can fail:
//   genInProgressOff  memslot sets published without the in-progress bit
//   srcuOff           synchronize_srcu does not wait for readers
//   mmuLockOff        no mmu_lock
//   raceSpin          how far the fault path's lookup-to-install window is widened
import { Kvm } from "../../dist/index.js";
import { vmWithCode } from "./vm.mjs";
import { spawner } from "./spawn.mjs";

/** The shared Int32Array's layout: STATE (the VMM's step), STOP, then 8 words a count, one per vCPU. */
export const CTL = { STATE: 0, STOP: 1, RUNS: 8, BAD: 16, WINDOW: 24, OTHER: 32, SEEN: 40, WORDS: 48 };
const { STATE, STOP, RUNS, BAD, WINDOW, OTHER, SEEN } = CTL;

/** The levers as the Node tests name them in the environment (WEBKVM_GEN_IN_PROGRESS_OFF=1 …). */
export function leversFromEnv(env) {
  return {
    genInProgressOff: env.WEBKVM_GEN_IN_PROGRESS_OFF === "1",
    srcuOff: env.WEBKVM_SRCU_OFF === "1",
    mmuLockOff: env.WEBKVM_MMU_LOCK_OFF === "1",
    raceSpin: env.WEBKVM_RACE_SPIN === undefined ? undefined : Number(env.WEBKVM_RACE_SPIN),
  };
}

/** The guest programs, built with the encoders of test/cpu/asm.ts (passed in: a browser cannot import TypeScript). */
export function programs({ addi, ld, sd, lui, jal, bne, add, ecall, REG }) {
  const READS = 256;
  return {
    // A (0x40000000, the slot that comes and goes) and B (0x41000000, never
    // RAM) share a shadow-table entry, 16 MiB apart. A pass reads A 256 times,
    // then B once: B's read evicts A's entry, so each pass's first read of A
    // looks A up again (its lookup-to-install window widened by the race
    // lever), and the other reads are answered by the entry it made, so a stale
    // MMIO spte (made from the old set, tagged with the new generation) lives
    // long enough to be met by a run that begins after the creation returned.
    mmioRace: [lui(REG.t1, 0x40000), lui(REG.t2, 0x41000),
      ...Array.from({ length: READS }, () => ld(REG.t0, REG.t1, 0)), ld(REG.t0, REG.t2, 0), jal(0, -4 * (READS + 1))],
    // Reads the word at 0x40001000 and reports it with an ecall, forever.
    move: [lui(REG.t1, 0x40001), ld(REG.a0, REG.t1, 0), ecall(), jal(0, -8)],
    // Each pass writes the pass number (s2) to the first word of each of 64
    // pages from s1 on, reads all back, and ends with an ecall: a0 = 0 when
    // every word held it (the SBI return overwrites a0 and a1, not s1 / s2).
    stress: [
      lui(REG.t4, 1),                                    // t4 = 4096
      addi(REG.s2, REG.s2, 1),                           // 1: pass++
      addi(REG.t1, REG.s1, 0), addi(REG.t3, 0, 64),
      sd(REG.s2, REG.t1, 0), add(REG.t1, REG.t1, REG.t4), addi(REG.t3, REG.t3, -1), bne(REG.t3, 0, -12),
      addi(REG.t1, REG.s1, 0), addi(REG.t3, 0, 64),
      ld(REG.t0, REG.t1, 0), bne(REG.t0, REG.s2, 28), add(REG.t1, REG.t1, REG.t4), addi(REG.t3, REG.t3, -1),
      bne(REG.t3, 0, -16),
      addi(REG.a0, 0, 0), ecall(), jal(0, -64),
      addi(REG.a0, 0, 1), ecall(), jal(0, -76),
    ],
    // Reads 0x40000000 and 0x41000000 (RAM pages sharing a shadow entry) forever:
    // every access faults, none exits (vcpu-thread.mjs's terminatedMidRun).
    faultLoop: [lui(REG.t1, 0x40000), lui(REG.t2, 0x41000), ld(REG.t0, REG.t1, 0), ld(REG.t0, REG.t2, 0), jal(0, -8)],
  };
}

async function openThreads(levers, raceSpin) {
  const kvm = await Kvm.open({ core: "threads" });
  const core = kvm.core;
  core.debugGenInProgressOff(!!levers.genInProgressOff);
  core.debugSrcuOff(!!levers.srcuOff);
  core.debugMmuLockOff(!!levers.mmuLockOff);
  core.debugFaultWindowSpin(levers.raceSpin ?? raceSpin);
  return kvm;
}

async function startWorkers(kvm, vm, vcpus, mode, markers) {
  const spawn = await spawner();
  const ctlBuf = new SharedArrayBuffer(CTL.WORDS * 4);
  const ctl = new Int32Array(ctlBuf);
  const share = kvm.share();
  const url = new URL("./vcpu-worker.mjs", import.meta.url);
  const workers = vcpus.map((v, index) => spawn(url, {
    share, vmFd: vm.fd, vcpuFd: v.fd, ctlBuf, index, mode, expect: markers?.map(String),
  }));
  const done = workers.map((w) => new Promise((resolve, reject) => w.onMessage((m) => {
    if (m.done || m.exited) resolve();
    if (m.error) reject(new Error(m.error));
  })));
  done.forEach((p) => p.catch(() => {})); // a failure also sets STOP, which waitRuns reports
  await Promise.all(workers.map((w) => new Promise((resolve, reject) => w.onMessage((m) => {
    if (m.ready) resolve();
    if (m.error) reject(new Error(m.error));
    if (m.exited) reject(new Error("a vCPU worker exited before it was ready"));
  }))));
  return { kvm, vm, vcpus, ctl, workers, done };
}

/** Waits (bounded by progress, not time) until vCPU i has completed `more` further runs; throws if a worker failed. */
function waitRuns(f, i, more) {
  const target = Atomics.load(f.ctl, RUNS + i) + more;
  for (;;) {
    const now = Atomics.load(f.ctl, RUNS + i);
    if (now >= target) return;
    if (Atomics.load(f.ctl, STOP) !== 0) throw new Error("a vCPU worker failed");
    Atomics.wait(f.ctl, RUNS + i, now, 100);
  }
}

async function stop(f) {
  Atomics.store(f.ctl, STOP, 1);
  await Promise.all(f.done);
  await Promise.all(f.workers.map((w) => w.terminate()));
}

const counts = (f, base) => f.vcpus.map((_, i) => Atomics.load(f.ctl, base + i));
const summary = (f) => ({ runs: counts(f, RUNS), bad: counts(f, BAD), window: counts(f, WINDOW), other: counts(f, OTHER), seen: counts(f, SEEN) });

/**
 * Seed 003's race: slot 1 (one page at A) is created and deleted `rounds`
 * times while 2 vCPUs read it; after each creation returns the VMM counts
 * vCPU shadow entries for A that are still valid MMIO sptes (`stale`).
 */
export async function mmioRace({ code, levers = {}, rounds = 1500 }) {
  const A = 0x40000000n;
  const kvm = await openThreads(levers, 50_000);
  const { vm, vcpus } = vmWithCode(kvm, code, 2);
  const size = 4096n;
  const hva = kvm.memory.mmap(size);
  const f = await startWorkers(kvm, vm, vcpus, "mmio-race", [A]);
  // The full invariant check after each update would hold the VMM long
  // enough for a stale entry to be evicted before the ioctl returns: check
  // every 100th update (and once at the end).
  kvm.core.debugInvariantStride(100);
  let stale = 0;
  for (let k = 0; k < rounds; k++) {
    Atomics.store(f.ctl, STATE, 4 * k + 1);
    vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: A, memorySize: size, userspaceAddr: hva });
    Atomics.store(f.ctl, STATE, 4 * k + 2);
    // The state a stale read comes from: a vCPU's shadow entry for A still an MMIO spte valid now.
    for (const v of vcpus) if (kvm.core.debugValidMmioSpte(v.fd, A >> 12n)) stale++;
    for (let i = 0; i < vcpus.length; i++) waitRuns(f, i, 2);
    Atomics.store(f.ctl, STATE, 4 * k + 3);
    vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: A, memorySize: 0n, userspaceAddr: hva });
    Atomics.store(f.ctl, STATE, 4 * k + 4);
    for (let i = 0; i < vcpus.length; i++) waitRuns(f, i, 2);
  }
  await stop(f);
  return { rounds, stale, invariants: kvm.core.debugCheckInvariants(vm.fd), mmioAcrossGeneration: Number(kvm.core.debugLockSleeps(4)), ...summary(f) };
}

/**
 * Move while running: slot 1 (two pages holding X and Y) moves a page down
 * and back `moves` times under 1 vCPU reading its second page's gpa;
 * zapAll false disables KVM_X86_QUIRK_SLOT_ZAP_ALL first.
 */
export async function moveWhileRunning({ code, levers = {}, zapAll, moves = 1000 }) {
  const G0 = 0x40001000n;
  const kvm = await openThreads(levers, 2000);
  const { vm, vcpus } = vmWithCode(kvm, code, 1);
  if (!zapAll) vm.enableCap(213, [1n << 7n]); // KVM_CAP_DISABLE_QUIRKS2: KVM_X86_QUIRK_SLOT_ZAP_ALL
  const X = 0x1111_2222_3333_4444n, Y = 0x5555_6666_7777_8888n;
  const hva = kvm.memory.mmap(8192n);
  kvm.memory.poke(hva, X, 8);
  kvm.memory.poke(hva + 4096n, Y, 8);
  vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: G0, memorySize: 8192n, userspaceAddr: hva });
  const f = await startWorkers(kvm, vm, vcpus, "move", [X, Y]);
  for (let k = 0; k < moves; k++) {
    Atomics.store(f.ctl, STATE, 2 * k + 1);
    vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: k % 2 === 0 ? G0 - 4096n : G0, memorySize: 8192n, userspaceAddr: hva });
    Atomics.store(f.ctl, STATE, 2 * k + 2);
    waitRuns(f, 0, 2);
  }
  await stop(f);
  return { moves, ...summary(f) };
}

/**
 * memslot_modification_stress: 2 vCPUs write and verify their 64-page
 * partitions of slot 2 while a 1-page slot just below comes and goes (`updates` ioctls).
 */
export async function modificationStress({ code, levers = {}, updates = 10_000 }) {
  const kvm = await openThreads(levers, 2000);
  const { vm, vcpus } = vmWithCode(kvm, code, 2);
  const PART = 64n * 4096n, BASE = 0x90000000n;
  const data = kvm.memory.mmap(2n * PART);
  vm.setUserMemoryRegion({ slot: 2, guestPhysAddr: BASE, memorySize: 2n * PART, userspaceAddr: data });
  vcpus.forEach((v, i) => v.setReg(9, BASE + BigInt(i) * PART)); // s1: the vCPU's partition
  const below = kvm.memory.mmap(4096n);
  const f = await startWorkers(kvm, vm, vcpus, "stress");
  kvm.core.debugInvariantStride(100); // the full check every 100th update (and at the end)
  for (let k = 0; k < updates / 2; k++) {
    vm.setUserMemoryRegion({ slot: 3, guestPhysAddr: BASE - 4096n, memorySize: 4096n, userspaceAddr: below });
    vm.setUserMemoryRegion({ slot: 3, guestPhysAddr: BASE - 4096n, memorySize: 0n, userspaceAddr: below });
  }
  for (let i = 0; i < 2; i++) waitRuns(f, i, 2);
  await stop(f);
  return { updates, invariants: kvm.core.debugCheckInvariants(vm.fd), ...summary(f) };
}
