// Where RISC-V KVM makes KVM_RUN fail rather than exit or inject a trap, and
// the rules around those failures, by the kernel function that decides:
// gstage_page_fault (arch/riscv/kvm/vcpu_exit.c) hands a g-stage fault on a
// gpa without a usable, writable-enough memslot to MMIO emulation only for
// loads and stores, any other cause (an instruction fetch) is -EOPNOTSUPP;
// kvm_riscv_vcpu_mmio_load / _store (vcpu_insn.c) decode plain loads and
// stores only, anything else (LR, SC, AMOs) is -EOPNOTSUPP; and
// kvm_riscv_vcpu_exit sets exit_reason to KVM_EXIT_UNKNOWN before it.
// This file runs guest code, so it runs on both execution tiers.
import { describe, it, expect, beforeEach } from "vitest";
import { Kvm, Vm, Vcpu, KvmError, Machine, KVM_RUN, KVM_EXIT, KVM_MEM_READONLY } from "../src/index.js";
import { openKvm, instructionBytes, loadProgram } from "./helpers.js";
import * as A from "./cpu/asm.js";
import { AMO } from "./cpu/asm.js";

const RAM = 0x80000000n;
const ROM = 0x40000000n; // a READONLY slot
const HOLE = 0x1000n; // no slot
const T0 = 5, T1 = 6, T2 = 7;
const EOPNOTSUPP = 95;
const ECALL = A.ecall();

let kvm: Kvm, vm: Vm, vcpu: Vcpu, ramHva: bigint, romHva: bigint;

const words = instructionBytes;
const program = (list: number[], at = RAM) => loadProgram(vm, vcpu, list, at);

/** li rd, v for v < 2^31 (lui + addi). */
function li(rd: number, v: bigint): number[] {
  const n = Number(v);
  const lo = ((n & 0xfff) << 20) >> 20;
  return [A.lui(rd, ((n - lo) >>> 12) & 0xfffff), A.addi(rd, rd, lo)];
}

/** KVM_RUN through the raw ioctl: the result and exit_reason, as a VMM sees them. */
function rawRun(): [number, number] {
  const r = vcpu.ioctl(KVM_RUN);
  return [r, vcpu.kvmRun.exitReason];
}

/** The typed run's failure: errno code and message, or "ok <exit>". */
function typedRun(): string {
  try {
    return `ok ${vcpu.run().name}`;
  } catch (e) {
    if (!(e instanceof KvmError)) throw e;
    return `${e.code} ${e.message}`;
  }
}

beforeEach(async () => {
  kvm = await openKvm();
  vm = kvm.createVm();
  ramHva = kvm.memory.mmap(1n << 20n);
  romHva = kvm.memory.mmap(1n << 16n);
  vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: RAM, memorySize: 1n << 20n, userspaceAddr: ramHva });
  vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: ROM, memorySize: 1n << 16n, userspaceAddr: romHva, flags: KVM_MEM_READONLY });
  vcpu = vm.createVcpu(0);
});

describe("KVM_RUN failures (RISC-V KVM)", () => {
  it("gstage_page_fault: an instruction fetch from a gpa without a memslot fails KVM_RUN with -EOPNOTSUPP, exit_reason KVM_EXIT_UNKNOWN, no trap, pc at the target", () => {
    program([...li(T0, HOLE), A.jalr(0, T0, 0)]);
    const sepc = vcpu.getCsr("sepc"), scause = vcpu.getCsr("scause");
    expect(rawRun()).toEqual([-EOPNOTSUPP, KVM_EXIT.UNKNOWN]);
    expect([vcpu.pc, vcpu.getCsr("sepc"), vcpu.getCsr("scause"), vcpu.instret]).toEqual([HOLE, sepc, scause, 3n]);
    // Nothing was emulated or injected: running again faults again.
    expect(rawRun()).toEqual([-EOPNOTSUPP, KVM_EXIT.UNKNOWN]);
    expect(vcpu.instret).toBe(3n);
  });

  it("gstage_page_fault: a VM with no memslots at all fails its first KVM_RUN with -EOPNOTSUPP (set_memory_region_test's first case)", () => {
    const empty = kvm.createVm();
    const v = empty.createVcpu(0);
    expect(v.ioctl(KVM_RUN)).toBe(-EOPNOTSUPP);
    expect(v.kvmRun.exitReason).toBe(KVM_EXIT.UNKNOWN);
    expect([v.pc, v.instret]).toEqual([RAM, 0n]);
  });

  it("gstage_page_fault: the fetch fails wherever the gpa lies outside usable memory, above the largest gfn too", () => {
    for (const target of [0x0n, 0x7ffff000n, RAM + (1n << 20n), 1n << 52n]) {
      vcpu.pc = target;
      expect(rawRun()).toEqual([-EOPNOTSUPP, KVM_EXIT.UNKNOWN]);
      expect(vcpu.pc).toBe(target);
    }
  });

  it("gstage_page_fault: a fetch whose Sv39 walk reads a page table outside RAM fails KVM_RUN with -EOPNOTSUPP (the implicit access faults with the fetch's cause)", () => {
    const root = RAM + 0x10000n, va = 0x3000_0000n;
    // root[0] points at a level-1 table at 0x1000_0000, where there is no memory.
    vm.writeGuest(root, new Uint8Array(new BigUint64Array([((0x1000_0000n >> 12n) << 10n) | 1n]).buffer));
    vcpu.setCsr("satp", (8n << 60n) | (root >> 12n));
    vcpu.pc = va;
    expect(rawRun()).toEqual([-EOPNOTSUPP, KVM_EXIT.UNKNOWN]);
    expect([vcpu.pc, vcpu.instret]).toEqual([va, 0n]);
  });

  it("gstage_page_fault: a fetch from a READONLY slot executes (only store faults on it are MMIO)", () => {
    // kvm.memory writes the host backing directly: the slot is read-only only to the guest.
    kvm.memory.write(romHva, words([A.addi(T2, 0, 42), ECALL]));
    vcpu.pc = ROM;
    expect(rawRun()).toEqual([0, KVM_EXIT.RISCV_SBI]);
    expect(vcpu.getReg(T2)).toBe(42n);
  });

  it("gstage_page_fault: deleting the slot that holds the running guest's code makes the next fetch fail KVM_RUN with -EOPNOTSUPP", () => {
    // A loop that calls the host each round, long enough for the translation tier to take it.
    program([A.addi(T1, T1, 1), ECALL, A.jal(0, -8)]);
    for (let i = 0; i < 100; i++) expect(rawRun()).toEqual([0, KVM_EXIT.RISCV_SBI]);
    expect(vcpu.getReg(T1)).toBe(100n);
    vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: RAM, memorySize: 0n, userspaceAddr: 0n });
    expect(rawRun()).toEqual([-EOPNOTSUPP, KVM_EXIT.UNKNOWN]);
    expect([vcpu.pc, vcpu.getReg(T1)]).toEqual([RAM + 8n, 100n]); // the last ecall completed: pc is at the jal
    // The code comes back with the slot: the loop goes on where it stopped.
    vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: RAM, memorySize: 1n << 20n, userspaceAddr: ramHva });
    expect(rawRun()).toEqual([0, KVM_EXIT.RISCV_SBI]);
    expect(vcpu.getReg(T1)).toBe(101n);
  });

  it("gstage_page_fault: a fetch from a slot being deleted retries (EINTR) while it is INVALID, and fails with -EOPNOTSUPP once it is gone", () => {
    program([...li(T0, ROM), A.jalr(0, T0, 0)]);
    kvm.memory.write(romHva, words([ECALL]));
    let during: [number, number] | null = null;
    kvm.setReaderHook((_vm, point) => {
      if (point === "invalidated" && during === null) during = rawRun();
    });
    vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: ROM, memorySize: 0n, userspaceAddr: 0n, flags: KVM_MEM_READONLY });
    kvm.setReaderHook(null);
    expect(during).toEqual([-4, KVM_EXIT.INTR]);
    expect(vcpu.pc).toBe(ROM);
    expect(rawRun()).toEqual([-EOPNOTSUPP, KVM_EXIT.UNKNOWN]);
  });

  it("gstage_page_fault: both tiers agree: a translated loop that jumps out of RAM fails the run at the same pc and count", () => {
    // 200 rounds of a counted loop (translated after 64 offers by default, at once with threshold 1), then jalr into the hole.
    program([...li(T0, HOLE), A.addi(T1, 0, 200), A.addi(T1, T1, -1), A.bne(T1, 0, -4), A.jalr(0, T0, 0)]);
    expect(rawRun()).toEqual([-EOPNOTSUPP, KVM_EXIT.UNKNOWN]);
    expect([vcpu.pc, vcpu.instret, vcpu.getReg(T1)]).toEqual([HOLE, 2n + 1n + 400n + 1n, 0n]);
  });

  it("kvm_riscv_vcpu_mmio_load/_store: an AMO aimed at MMIO fails KVM_RUN with -EOPNOTSUPP; nothing retires, no MMIO exit", () => {
    for (const inst of [A.amo(AMO.add, 32, T2, T0, T1), A.amo(AMO.swap, 64, T2, T0, T1), A.amo(AMO.maxu, 64, T2, T0, T1)]) {
      program([...li(T0, 0x10000000n), A.addi(T2, 0, 7), inst, ECALL]);
      const instret = vcpu.instret;
      expect(rawRun()).toEqual([-EOPNOTSUPP, KVM_EXIT.UNKNOWN]);
      expect([vcpu.pc, vcpu.instret - instret, vcpu.getReg(T2)]).toEqual([RAM + 12n, 3n, 7n]);
    }
  });

  it("kvm_riscv_vcpu_mmio_load: LR aimed at MMIO fails KVM_RUN with -EOPNOTSUPP (LR is not a load it decodes)", () => {
    for (const inst of [A.lr_w(T2, T0), A.lr_d(T2, T0)]) {
      program([...li(T0, 0x10000000n), inst, ECALL]);
      expect(rawRun()).toEqual([-EOPNOTSUPP, KVM_EXIT.UNKNOWN]);
      expect(vcpu.pc).toBe(RAM + 8n);
    }
  });

  it("kvm_riscv_vcpu_mmio_store: on a READONLY slot an AMO or an SC (store faults) fails KVM_RUN with -EOPNOTSUPP, an LR reads memory", () => {
    kvm.memory.poke(romHva + 0x100n, 0x1234n, 8);
    // LR maps the page for reading and takes a reservation; the SC's store faults.
    program([...li(T0, ROM + 0x100n), A.lr_d(T2, T0), A.sc_d(T1, T0, T0), ECALL]);
    expect(rawRun()).toEqual([-EOPNOTSUPP, KVM_EXIT.UNKNOWN]);
    expect([vcpu.pc, vcpu.getReg(T2)]).toEqual([RAM + 12n, 0x1234n]);
    program([...li(T0, ROM + 0x100n), A.amo(AMO.or, 64, T2, T0, T0), ECALL]);
    expect(rawRun()).toEqual([-EOPNOTSUPP, KVM_EXIT.UNKNOWN]);
    expect(vcpu.pc).toBe(RAM + 8n);
    expect(kvm.memory.peek(romHva + 0x100n, 8)).toBe(0x1234n);
  });

  it("kvm_riscv_vcpu_mmio_load/_store: plain loads and stores stay MMIO exits (MMIO reads, MMIO and READONLY-slot writes)", () => {
    program([...li(T0, 0x10000000n), A.lw(T2, T0, 0), ...li(T1, ROM), A.sd(T0, T1, 8), ECALL]);
    expect(rawRun()).toEqual([0, KVM_EXIT.MMIO]);
    expect(vcpu.kvmRun.mmio.physAddr).toBe(0x10000000n);
    expect(rawRun()).toEqual([0, KVM_EXIT.MMIO]);
    const m = vcpu.kvmRun.mmio;
    expect([m.physAddr, m.len, m.isWrite]).toEqual([ROM + 8n, 8, true]);
    expect(rawRun()).toEqual([0, KVM_EXIT.RISCV_SBI]);
  });

  it("Vcpu.run() surfaces the failure as a KvmError EOPNOTSUPP naming the rule; the raw ioctl returns -95", () => {
    program([...li(T0, HOLE), A.jalr(0, T0, 0)]);
    expect(typedRun()).toMatch(/^EOPNOTSUPP EOPNOTSUPP: KVM_RUN: .*fetched an instruction at pc 0x1000 from a gpa without usable RAM/);
    expect(vcpu.ioctl(KVM_RUN)).toBe(-95);
    program([...li(T0, 0x10000000n), A.lr_w(T2, T0)]);
    expect(typedRun()).toMatch(/^EOPNOTSUPP EOPNOTSUPP: KVM_RUN: .*access at pc 0x80000008 is by .*cannot decode \(LR, SC or an AMO\)/);
  });

  it("Machine.run() stops with run-failed and the KvmError when the guest jumps where there is no RAM", async () => {
    const m = await Machine.create({ kvm: await openKvm(), memSize: 1n << 20n });
    m.load(words([...li(T0, HOLE), A.jalr(0, T0, 0)]));
    const r = m.run();
    expect([r.stop, r.instructions, r.lastExit.name, r.lastExit.errno, r.error?.code]).toEqual(["run-failed", 3n, "unknown", 95, "EOPNOTSUPP"]);
  });
});
