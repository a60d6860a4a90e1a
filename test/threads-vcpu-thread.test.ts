// VcpuThread: a vCPU's KVM_RUN on a Worker of its own, its exits handled by the
// owning thread (issue 16's host API), and what Linux's vcpu->mutex, signals
// and a dying vCPU thread mean here. Bounded by instruction budgets and by the
// guests' own exits, never by time.

import { describe, it, expect } from "vitest";
import { Kvm, VcpuThread, KVM_EXIT, type Vm } from "../src/index.js";
import { coreReg } from "../src/riscv.js";
import * as asm from "./cpu/asm.js";
import { vmWithCode, inGuestMode, WORKER } from "./threads-helpers.js";
// @ts-expect-error plain JS module without types
import { programs } from "./threads-scenarios/vcpus.mjs";
// @ts-expect-error plain JS module without types
import { twoAtOnce, terminatedMidRun, heldWords } from "./threads-scenarios/vcpu-thread.mjs";
import { expectTwoAtOnce, expectTerminatedMidRun, expectNothingHeld as expectNoneHeld } from "./threads-scenarios/vcpu-thread-expect.js";

const { addi, jal, REG } = asm;
const code = programs(asm);

/** Every lock word of the VM and the process is free, no SRCU reader is left, no vCPU is in guest mode or an ioctl. */
const expectNothingHeld = (kvm: Kvm, vm: Vm, nVcpus: number) => expectNoneHeld(heldWords(kvm, vm, nVcpus));

describe("VcpuThread: KVM_RUN on a Worker, exits handled by the VMM thread", () => {
  it("two vCPUs run at once, each on its own Worker, over one VM's memory", async () => {
    // The driver (test/threads-scenarios/vcpu-thread.mjs) also runs in Chromium (test/browser/threads-chromium.test.ts).
    expectTwoAtOnce(await twoAtOnce({ code: code.stress, passes: 50 }));
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
    const o = await terminatedMidRun({ code: code.faultLoop });
    if (process.env.WEBKVM_THREADS_REPORT === "1") console.log(`terminated inside the SRCU read section: ${o.inSection}`);
    expectTerminatedMidRun(o);
  });
});
