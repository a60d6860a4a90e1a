// vCPUs running on Worker threads while the VMM thread changes memslots (issue
// 16): the races the memslot machinery exists for, made real. Each vCPU runs
// in test/threads-vcpu-worker.mjs, which handles its exits there (as a
// selftest's vCPU thread does) and counts what it saw in a shared Int32Array;
// the test's thread is the VMM. Counts are bounded; nothing depends on timing:
// the VMM waits for the vCPUs' runs to advance, never for a time.
//
// Levers (debug threads core) show the tests can fail:
//   WEBKVM_GEN_IN_PROGRESS_OFF=1  memslot sets published without the in-progress bit
//   WEBKVM_SRCU_OFF=1             synchronize_srcu does not wait for readers
//   WEBKVM_MMU_LOCK_OFF=1         no mmu_lock
// WEBKVM_RACE_SPIN=N overrides how far the fault path's lookup-to-install window is widened.

import { describe, it, expect } from "vitest";
import { Worker } from "node:worker_threads";
import { Kvm, type Vm, type Vcpu } from "../src/index.js";
import { coreReg } from "../src/riscv.js";
import { addi, ld, sd, lui, jal, bne, add, ecall, REG } from "./cpu/asm.js";
import { vmWithCode } from "./threads-helpers.js";

const STATE = 0, STOP = 1, RUNS = 8, BAD = 16, WINDOW = 24, OTHER = 32, SEEN = 40, CTL_WORDS = 48;
const lever = (name: string) => process.env[name] === "1";

interface Fixture { kvm: Kvm; vm: Vm; vcpus: Vcpu[]; ctl: Int32Array; workers: Worker[] }

async function openThreads(raceSpin = 2000): Promise<Kvm> {
  const kvm = await Kvm.open({ core: "threads" });
  const core = kvm.core;
  core.debugGenInProgressOff(lever("WEBKVM_GEN_IN_PROGRESS_OFF"));
  core.debugSrcuOff(lever("WEBKVM_SRCU_OFF"));
  core.debugMmuLockOff(lever("WEBKVM_MMU_LOCK_OFF"));
  core.debugFaultWindowSpin(Number(process.env.WEBKVM_RACE_SPIN ?? raceSpin));
  return kvm;
}

async function startWorkers(kvm: Kvm, vm: Vm, vcpus: Vcpu[], mode: string, expect?: bigint[]): Promise<Fixture> {
  const ctlBuf = new SharedArrayBuffer(CTL_WORDS * 4);
  const ctl = new Int32Array(ctlBuf);
  const share = kvm.share();
  const workers = vcpus.map((v, index) => new Worker(new URL("./threads-vcpu-worker.mjs", import.meta.url), {
    workerData: { share, vmFd: vm.fd, vcpuFd: v.fd, ctlBuf, index, mode, expect: expect?.map(String) },
  }));
  const errors: string[] = [];
  await Promise.all(workers.map((w) => new Promise<void>((resolve, reject) => {
    w.on("message", (m) => {
      if (m.ready) resolve();
      if (m.error) { errors.push(m.error); reject(new Error(m.error)); }
    });
    w.on("error", reject);
  })));
  return { kvm, vm, vcpus, ctl, workers };
}

/** Waits (bounded by progress, not time) until vCPU i has completed `more` further runs; throws if a worker failed. */
function waitRuns(f: Fixture, i: number, more: number): void {
  const target = Atomics.load(f.ctl, RUNS + i) + more;
  for (;;) {
    const now = Atomics.load(f.ctl, RUNS + i);
    if (now >= target) return;
    if (Atomics.load(f.ctl, STOP) !== 0) throw new Error("a vCPU worker failed");
    Atomics.wait(f.ctl, RUNS + i, now, 100);
  }
}

async function stop(f: Fixture): Promise<void> {
  Atomics.store(f.ctl, STOP, 1);
  await Promise.all(f.workers.map((w) => new Promise<void>((resolve, reject) => {
    w.on("message", (m) => { if (m.done) resolve(); if (m.error) reject(new Error(m.error)); });
    w.on("exit", () => resolve());
  })));
  await Promise.all(f.workers.map((w) => w.terminate()));
}

const counts = (f: Fixture, base: number) => f.vcpus.map((_, i) => Atomics.load(f.ctl, base + i));

describe("threads: vCPUs on Workers while the VMM changes memslots", () => {
  it("seed 003's race: once a slot's creation returned, no vCPU reads MMIO there again (update in-progress bit)", async () => {
    // A (the slot that comes and goes) and B (never RAM) share a shadow-table
    // entry, 16 MiB apart. A pass reads A 32 times, then B once: B's read
    // evicts A's entry, so each pass's first read of A looks A up again (its
    // lookup-to-install window widened by the race lever), and the other 31
    // reads are answered by the entry it made, so a stale MMIO spte (made from
    // the old set, tagged with the new generation) lives long enough to be met
    // by a run that begins after the creation returned.
    const A = 0x40000000n;
    const READS = 256;
    const code = [lui(REG.t1, 0x40000), lui(REG.t2, 0x41000),
      ...Array.from({ length: READS }, () => ld(REG.t0, REG.t1, 0)), ld(REG.t0, REG.t2, 0), jal(0, -4 * (READS + 1))];
    const kvm = await openThreads(50_000);
    const { vm, vcpus } = vmWithCode(kvm, code, 2);
    const size = 4096n;
    const hva = kvm.memory.mmap(size);
    const f = await startWorkers(kvm, vm, vcpus, "mmio-race", [A]);
    // The full invariant check after each update would hold the VMM long
    // enough for a stale entry to be evicted before the ioctl returns: check
    // every 100th update (and once at the end).
    kvm.core.debugInvariantStride(100);
    const ROUNDS = 1500;
    let stale = 0;
    for (let k = 0; k < ROUNDS; k++) {
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
    expect(kvm.core.debugCheckInvariants(vm.fd)).toBe(1);
    if (process.env.WEBKVM_THREADS_REPORT === "1") {
      console.log(`seed 003: bad ${counts(f, BAD)} window ${counts(f, WINDOW)} runs ${counts(f, RUNS)} ` +
        `MMIO sptes made across a generation change ${kvm.core.debugLockSleeps(4)}, valid stale entries ${stale}`);
    }
    expect(stale).toBe(0);
    expect(counts(f, OTHER)).toEqual([0, 0]);
    expect(counts(f, BAD)).toEqual([0, 0]);
    // The vCPUs did meet the window: MMIO exits while a creation or deletion was in flight.
    expect(counts(f, WINDOW).every((n) => n > 0)).toBe(true);
  });

  for (const zapAll of [true, false]) {
    it(`move while running: after the ioctl returns a vCPU never sees the old backing, MMIO only inside the window (SLOT_ZAP_ALL ${zapAll ? "on" : "off"})`, async () => {
      const G0 = 0x40001000n;
      const code = [lui(REG.t1, 0x40001), ld(REG.a0, REG.t1, 0), ecall(), jal(0, -8)];
      const kvm = await openThreads();
      const { vm, vcpus } = vmWithCode(kvm, code, 1);
      if (!zapAll) vm.enableCap(213, [1n << 7n]); // KVM_CAP_DISABLE_QUIRKS2: KVM_X86_QUIRK_SLOT_ZAP_ALL
      const X = 0x1111_2222_3333_4444n, Y = 0x5555_6666_7777_8888n;
      const hva = kvm.memory.mmap(8192n);
      kvm.memory.poke(hva, X, 8);
      kvm.memory.poke(hva + 4096n, Y, 8);
      vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: G0, memorySize: 8192n, userspaceAddr: hva });
      const f = await startWorkers(kvm, vm, vcpus, "move", [X, Y]);
      const MOVES = 1000;
      for (let k = 0; k < MOVES; k++) {
        Atomics.store(f.ctl, STATE, 2 * k + 1);
        vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: k % 2 === 0 ? G0 - 4096n : G0, memorySize: 8192n, userspaceAddr: hva });
        Atomics.store(f.ctl, STATE, 2 * k + 2);
        waitRuns(f, 0, 2);
      }
      await stop(f);
      expect(counts(f, OTHER)).toEqual([0]);
      expect(counts(f, BAD)).toEqual([0]);
      expect(counts(f, SEEN)[0]).toBeGreaterThanOrEqual(MOVES);
    });
  }

  it("memslot_modification_stress: 2 vCPUs write their partitions while a 1-page slot below comes and goes 10,000 times", async () => {
    // Each pass writes the pass number (s2) to the first word of each of 64
    // pages from s1 on, reads all back, and ends with an ecall: a0 = 0 when
    // every word held it (the SBI return overwrites a0 and a1, not s1 / s2).
    const code = [
      lui(REG.t4, 1),                                    // t4 = 4096
      addi(REG.s2, REG.s2, 1),                           // 1: pass++
      addi(REG.t1, REG.s1, 0), addi(REG.t3, 0, 64),
      sd(REG.s2, REG.t1, 0), add(REG.t1, REG.t1, REG.t4), addi(REG.t3, REG.t3, -1), bne(REG.t3, 0, -12),
      addi(REG.t1, REG.s1, 0), addi(REG.t3, 0, 64),
      ld(REG.t0, REG.t1, 0), bne(REG.t0, REG.s2, 28), add(REG.t1, REG.t1, REG.t4), addi(REG.t3, REG.t3, -1),
      bne(REG.t3, 0, -16),
      addi(REG.a0, 0, 0), ecall(), jal(0, -64),
      addi(REG.a0, 0, 1), ecall(), jal(0, -76),
    ];
    const kvm = await openThreads();
    const { vm, vcpus } = vmWithCode(kvm, code, 2);
    const PART = 64n * 4096n, BASE = 0x90000000n;
    const data = kvm.memory.mmap(2n * PART);
    vm.setUserMemoryRegion({ slot: 2, guestPhysAddr: BASE, memorySize: 2n * PART, userspaceAddr: data });
    vcpus.forEach((v, i) => v.setOneReg(coreReg(REG.s1), BASE + BigInt(i) * PART));
    const below = kvm.memory.mmap(4096n);
    const f = await startWorkers(kvm, vm, vcpus, "stress");
    kvm.core.debugInvariantStride(100); // the full check every 100th update (and at the end)
    const UPDATES = 10_000;
    for (let k = 0; k < UPDATES / 2; k++) {
      vm.setUserMemoryRegion({ slot: 3, guestPhysAddr: BASE - 4096n, memorySize: 4096n, userspaceAddr: below });
      vm.setUserMemoryRegion({ slot: 3, guestPhysAddr: BASE - 4096n, memorySize: 0n, userspaceAddr: below });
    }
    for (let i = 0; i < 2; i++) waitRuns(f, i, 2);
    await stop(f);
    expect(kvm.core.debugCheckInvariants(vm.fd)).toBe(1);
    expect(counts(f, OTHER)).toEqual([0, 0]);
    expect(counts(f, BAD)).toEqual([0, 0]);
    expect(counts(f, SEEN).every((n) => n > 0)).toBe(true);
  });
});
