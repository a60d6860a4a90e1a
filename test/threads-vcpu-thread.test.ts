// VcpuThread: a vCPU's KVM_RUN on a Worker of its own, its exits handled by the
// owning thread (issue 16's host API), and what Linux's vcpu->mutex, signals
// and a dying vCPU thread mean here. Bounded by instruction budgets and by the
// guests' own exits, never by time.

import { describe, it, expect } from "vitest";
import { Kvm, VcpuThread, KVM_EXIT, type Vm } from "../src/index.js";
import { coreReg } from "../src/riscv.js";
import { addi, ld, sd, lui, jal, bne, add, ecall, REG } from "./cpu/asm.js";
import { vmWithCode, inGuestMode, WORKER } from "./threads-helpers.js";

const LOCK = { SLOTS: 0, MMU: 1, SRCU_IDX: 2, READERS0: 3, READERS1: 4, MN_LOCK: 5, MN_COUNT: 6, HEAP: 7, MMAP: 8 };
const vcpuWord = (i: number, k: 0 | 1 | 2 | 3) => 9 + 4 * i + k; // mode, requests, SRCU held, vcpu->mutex
/** Every lock word of the VM and the process is free, no SRCU reader is left, no vCPU is in guest mode or an ioctl. */
function expectNothingHeld(kvm: Kvm, vm: Vm, nVcpus: number): void {
  const w = (i: number) => kvm.core.debugLockWord(vm.fd, i);
  expect([LOCK.SLOTS, LOCK.MMU, LOCK.READERS0, LOCK.READERS1, LOCK.MN_LOCK, LOCK.MN_COUNT, LOCK.HEAP, LOCK.MMAP].map(w))
    .toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
  for (let i = 0; i < nVcpus; i++) {
    expect(w(vcpuWord(i, 0)) & 1).toBe(0);
    expect(w(vcpuWord(i, 2))).toBe(0);
    expect(w(vcpuWord(i, 3))).toBe(0);
  }
}

describe("VcpuThread: KVM_RUN on a Worker, exits handled by the VMM thread", () => {
  it("two vCPUs run at once, each on its own Worker, over one VM's memory", async () => {
    // s2 = 1..N written to 64 pages from s1, read back, then ecall with a0 = 0 (1 on a mismatch).
    const code = [
      lui(REG.t4, 1), addi(REG.s2, REG.s2, 1),
      addi(REG.t1, REG.s1, 0), addi(REG.t3, 0, 64),
      sd(REG.s2, REG.t1, 0), add(REG.t1, REG.t1, REG.t4), addi(REG.t3, REG.t3, -1), bne(REG.t3, 0, -12),
      addi(REG.t1, REG.s1, 0), addi(REG.t3, 0, 64),
      ld(REG.t0, REG.t1, 0), bne(REG.t0, REG.s2, 28), add(REG.t1, REG.t1, REG.t4), addi(REG.t3, REG.t3, -1), bne(REG.t3, 0, -16),
      addi(REG.a0, 0, 0), ecall(), jal(0, -64),
      addi(REG.a0, 0, 1), ecall(), jal(0, -76),
    ];
    const kvm = await Kvm.open({ core: "threads" });
    const { vm, vcpus } = vmWithCode(kvm, code, 2);
    const BASE = 0x90000000n, PART = 64n * 4096n;
    vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: BASE, memorySize: 2n * PART, userspaceAddr: kvm.memory.mmap(2n * PART) });
    vcpus.forEach((v, i) => v.setOneReg(coreReg(REG.s1), BASE + BigInt(i) * PART));
    const threads = await Promise.all(vcpus.map((v) => VcpuThread.start(kvm, v, WORKER)));
    expect(new Set(threads.map((t) => t.threadId)).size).toBe(2);
    const PASSES = 50;
    await Promise.all(threads.map(async (t) => {
      for (let k = 0; k < PASSES; k++) {
        const e = await t.run();
        expect(e.reason).toBe(KVM_EXIT.RISCV_SBI);
        expect(t.vcpu.kvmRun.riscvSbi.args[0]).toBe(0n);
      }
    }));
    for (let i = 0; i < 2; i++) {
      const page = vm.readGuest(BASE + BigInt(i) * PART + 63n * 4096n, 8);
      expect(new DataView(page.buffer, page.byteOffset).getBigUint64(0, true)).toBe(BigInt(PASSES));
    }
    await Promise.all(threads.map((t) => t.terminate()));
    expectNothingHeld(kvm, vm, 2);
  });

  it("kick: a run in flight on the Worker ends with exit INTR and EINTR (a pending signal)", async () => {
    const kvm = await Kvm.open({ core: "threads" });
    const { vm, vcpus } = vmWithCode(kvm, [addi(REG.t0, REG.t0, 1), jal(0, -4)], 1);
    vcpus[0].setBudget(Number.MAX_SAFE_INTEGER);
    const t = await VcpuThread.start(kvm, vcpus[0], WORKER);
    const run = t.run();
    await inGuestMode(kvm, vm, 0); // the guest loops forever: only the kick ends this run
    t.kick();
    const e = await run;
    expect([e.reason, e.errno]).toEqual([KVM_EXIT.INTR, 4]);
    expect(vcpus[0].getOneReg(coreReg(REG.t0))).toBeGreaterThan(0n);
    // A kick while no run is in flight stays pending: the next run returns at once, having run nothing.
    t.kick();
    const before = vcpus[0].getOneReg(coreReg(REG.t0));
    expect(await t.run()).toMatchObject({ reason: KVM_EXIT.INTR, errno: 4 });
    expect(vcpus[0].getOneReg(coreReg(REG.t0))).toBe(before);
    await t.terminate();
    expectNothingHeld(kvm, vm, 1);
  });

  it("vcpu->mutex: a vCPU ioctl from another thread while KVM_RUN runs waits for the run, then sees its result", async () => {
    const kvm = await Kvm.open({ core: "threads" });
    const { vm, vcpus } = vmWithCode(kvm, [addi(REG.t0, REG.t0, 1), jal(0, -4)], 1);
    const BUDGET = 4_000_000;
    vcpus[0].setBudget(BUDGET);
    const t = await VcpuThread.start(kvm, vcpus[0], WORKER);
    const sleeps = kvm.core.debugLockSleeps(1);
    const run = t.run();
    await inGuestMode(kvm, vm, 0); // the Worker is in KVM_RUN, holding vcpu->mutex
    const t0 = vcpus[0].getOneReg(coreReg(REG.t0)); // blocks on vcpu->mutex until KVM_RUN returns
    const e = await run;
    expect([e.reason, e.errno]).toEqual([KVM_EXIT.INTR, 4]); // the budget ran out
    // The read came after the run: it sees the whole run's work (two instructions per increment).
    expect(t0).toBe(BigInt(BUDGET / 2));
    expect(kvm.core.debugLockSleeps(1)).toBeGreaterThan(sleeps);
    await t.terminate();
    expectNothingHeld(kvm, vm, 1);
  });

  it("a vCPU Worker terminated in the middle of a run (inside its SRCU read section) leaves nothing held: the next memslot update completes and the VM closes", async () => {
    // Two RAM pages that share a shadow entry: every access faults (and the
    // fault's window is widened), no access exits, so the run never ends on its
    // own and the vCPU is almost always inside its SRCU read section, often
    // holding mmu_lock or the mmap_lock, when the Worker stops.
    const code = [lui(REG.t1, 0x40000), lui(REG.t2, 0x41000), ld(REG.t0, REG.t1, 0), ld(REG.t0, REG.t2, 0), jal(0, -8)];
    const kvm = await Kvm.open({ core: "threads" });
    kvm.core.debugFaultWindowSpin(200_000);
    const { vm, vcpus } = vmWithCode(kvm, code, 1);
    vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: 0x40000000n, memorySize: 4096n, userspaceAddr: kvm.memory.mmap(4096n) });
    vm.setUserMemoryRegion({ slot: 2, guestPhysAddr: 0x41000000n, memorySize: 4096n, userspaceAddr: kvm.memory.mmap(4096n) });
    vcpus[0].setBudget(Number.MAX_SAFE_INTEGER);
    const t = await VcpuThread.start(kvm, vcpus[0], WORKER);
    const run = t.run();
    await inGuestMode(kvm, vm, 0);
    for (let n = 0; n < 1000 && kvm.core.debugLockWord(vm.fd, vcpuWord(0, 2)) === 0; n++) await new Promise((r) => setImmediate(r));
    const inSection = kvm.core.debugLockWord(vm.fd, vcpuWord(0, 2));
    await t.terminate();
    await expect(run).rejects.toThrow(/terminated/);
    if (process.env.WEBKVM_THREADS_REPORT === "1") console.log(`terminated inside the SRCU read section: ${inSection !== 0}`);
    expectNothingHeld(kvm, vm, 1);
    // The next memslot updates wait for no one.
    const hva = kvm.memory.mmap(4096n);
    vm.setUserMemoryRegion({ slot: 3, guestPhysAddr: 0x50000000n, memorySize: 4096n, userspaceAddr: hva });
    vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: 0x40000000n, memorySize: 0n, userspaceAddr: hva });
    // The vCPU is usable again from this thread: its next access to A is MMIO now.
    vcpus[0].setBudget(1000);
    kvm.core.debugFaultWindowSpin(0);
    expect(vcpus[0].run().reason).toBe(KVM_EXIT.MMIO);
    vm.close();
  });
});
