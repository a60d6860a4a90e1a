// The vCPU surface: KVM_CREATE_VCPU limits, KVM_RUN and kvm_run, ONE_REG
// registers, SBI exits and their completion, MMIO answered through kvm_run,
// immediate_exit and the instruction budget; the UART and the MMIO bus.
import { describe, it, expect, beforeEach } from "vitest";
import { Kvm, Vm, Vcpu, KVM_RUN, KVM_EXIT, KVM_GET_ONE_REG, kvm_one_reg, riscv, MmioBus, Uart16550 } from "../src/index.js";
import { code, loadProgram, vmWithVcpu } from "./helpers.js";

let kvm: Kvm, vm: Vm, vcpu: Vcpu;
const RAM = 0x80000000n;
const ECALL = 0x00000073;
const addi = (rd: number, rs1: number, imm: number) => (((imm & 0xfff) << 20) | (rs1 << 15) | (rd << 7) | 0x13) >>> 0;
const lui = (rd: number, imm20: number) => (((imm20 & 0xfffff) << 12) | (rd << 7) | 0x37) >>> 0;
const lw = (rd: number, rs1: number, imm: number) => (((imm & 0xfff) << 20) | (rs1 << 15) | (2 << 12) | (rd << 7) | 0x03) >>> 0;
const sw = (rs2: number, rs1: number, imm: number) =>
  ((((imm >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (2 << 12) | ((imm & 0x1f) << 7) | 0x23) >>> 0;
const JAL_SELF = 0x0000006f;

const program = (words: number[]) => loadProgram(vm, vcpu, words, RAM);

beforeEach(async () => {
  ({ kvm, vm, vcpu } = await vmWithVcpu(RAM));
});

describe("KVM_CREATE_VCPU", () => {
  it("rejects duplicate ids (EEXIST) and ids past the limit (EINVAL)", () => {
    expect(code(() => vm.createVcpu(0))).toBe("EEXIST");
    expect(code(() => vm.createVcpu(16384))).toBe("EINVAL");
    expect(vm.createVcpu(16383).id).toBe(16383);
  });

  it("a new vCPU starts in S-mode at the RAM base with zeroed registers", () => {
    const r = vcpu.getRegs();
    expect([r.pc, r.mode, r.x.every((v) => v === 0n)]).toEqual([RAM, 1n, true]);
  });
});

describe("registers (KVM_GET/SET_ONE_REG)", () => {
  it("core registers, mode and CSRs round-trip; x0 stays 0", () => {
    vcpu.setReg(5, 0x1234n);
    vcpu.setReg(31, -1n);
    vcpu.setCsr("sscratch", 0xabcn);
    vcpu.setCsr("stvec", RAM + 0x100n);
    expect([vcpu.getReg(5), vcpu.getReg(31), vcpu.getReg(0)]).toEqual([0x1234n, (1n << 64n) - 1n, 0n]);
    expect([vcpu.getCsr("sscratch"), vcpu.getCsr("stvec")]).toEqual([0xabcn, RAM + 0x100n]);
    vcpu.setRegs({ mode: 0n });
    expect(vcpu.getRegs().mode).toBe(0n);
  });

  it("unknown registers are ENOENT, wrong sizes and other arches EINVAL, a bad address EFAULT", () => {
    expect(code(() => vcpu.getOneReg(riscv.coreReg(40)))).toBe("ENOENT");
    expect(code(() => vcpu.getOneReg(riscv.REG_PC & ~riscv.KVM_REG_SIZE_U64))).toBe("EINVAL");
    expect(code(() => vcpu.getOneReg(0x6030000000100000n))).toBe("EINVAL"); // an x86-looking id
    expect(code(() => vcpu.setOneReg(riscv.csrReg("satp"), 5n << 60n))).toBe("EINVAL"); // Sv57: not offered
    const bad = kvm_one_reg.encode({ id: riscv.REG_PC, addr: 0x10n });
    expect(vcpu.ioctl(KVM_GET_ONE_REG, bad)).toBe(-14);
    expect(vcpu.ioctl(KVM_GET_ONE_REG, bad.subarray(0, 15))).toBe(-14);
  });
});

describe("KVM_RUN", () => {
  it("an SBI call exits with its extension, function and arguments; ret[] lands in a0/a1", () => {
    program([addi(17, 0, 0x10), addi(16, 0, 3), addi(10, 0, 7), ECALL, addi(12, 10, 0), ECALL]);
    let exit = vcpu.run();
    expect([exit.reason, exit.errno]).toEqual([KVM_EXIT.RISCV_SBI, 0]);
    const sbi = vcpu.kvmRun.riscvSbi;
    expect([sbi.extensionId, sbi.functionId, sbi.args[0]]).toEqual([0x10n, 3n, 7n]);
    vcpu.kvmRun.setSbiReturn(-2n, 42n);
    exit = vcpu.run();
    expect(exit.reason).toBe(KVM_EXIT.RISCV_SBI);
    expect([vcpu.getReg(10), vcpu.getReg(11), vcpu.getReg(12)]).toEqual([(1n << 64n) - 2n, 42n, (1n << 64n) - 2n]);
  });

  it("an MMIO read exits with phys_addr/len/is_write and takes its data from kvm_run on the next run", () => {
    program([lui(5, 0x10000), lw(6, 5, 8), addi(7, 6, 1), sw(7, 5, 12), ECALL]);
    let exit = vcpu.run();
    let m = vcpu.kvmRun.mmio;
    expect([exit.reason, m.physAddr, m.len, m.isWrite]).toEqual([KVM_EXIT.MMIO, 0x10000008n, 4, false]);
    m.data.set([0x78, 0x56, 0x34, 0x12]);
    exit = vcpu.run();
    m = vcpu.kvmRun.mmio;
    expect([exit.reason, m.physAddr, m.len, m.isWrite, Array.from(m.data.subarray(0, 4))])
      .toEqual([KVM_EXIT.MMIO, 0x1000000cn, 4, true, [0x79, 0x56, 0x34, 0x12]]);
    expect(vcpu.run().reason).toBe(KVM_EXIT.RISCV_SBI);
    expect(vcpu.getReg(6)).toBe(0x12345678n);
  });

  it("immediate_exit returns EINTR at once; the budget bounds a run (EINTR, KVM_EXIT_INTR)", () => {
    program([JAL_SELF]);
    vcpu.kvmRun.immediateExit = 1;
    expect(vcpu.run()).toEqual({ reason: KVM_EXIT.INTR, name: "intr", errno: 4 });
    expect(vcpu.instret).toBe(0n);
    vcpu.kvmRun.immediateExit = 0;
    vcpu.setBudget(1000);
    expect(vcpu.run().errno).toBe(4);
    expect(vcpu.instret).toBe(1000n);
    expect(vcpu.ioctl(KVM_RUN)).toBe(-4);
  });

  it("wfi with a timer deadline sleeps until it (time jumps); without one it is a halt", () => {
    program([0x10500073, ECALL]); // wfi; ecall
    expect(vcpu.run().reason).toBe(KVM_EXIT.HLT);
    program([0x10500073, ECALL]);
    vcpu.setTimer(vcpu.time + 1_000_000n);
    expect(vcpu.run().reason).toBe(KVM_EXIT.RISCV_SBI);
    expect(vcpu.time >= 1_000_000n).toBe(true);
  });

  it("vCPUs keep their own state when several run in turn", () => {
    const other = vm.createVcpu(1);
    vcpu.setReg(9, 111n);
    other.setReg(9, 222n);
    program([addi(9, 9, 1), ECALL]);
    other.pc = RAM;
    vcpu.run();
    other.run();
    expect([vcpu.getReg(9), other.getReg(9)]).toEqual([112n, 223n]);
  });
});

describe("devices", () => {
  it("the UART transmits THR writes, reports LSR and receives fed bytes", () => {
    const out: number[] = [];
    const u = new Uart16550((b) => out.push(b));
    expect(u.read(5n, 1) & 0x20n).toBe(0x20n);
    u.write(0n, 1, 0x41n);
    u.feed("z");
    expect(u.read(5n, 1) & 1n).toBe(1n);
    expect(u.read(0n, 1)).toBe(0x7an);
    expect(out).toEqual([0x41]);
  });

  it("the MMIO bus dispatches by range and refuses overlaps", () => {
    const bus = new MmioBus();
    const seen: string[] = [];
    bus.register("a", 0x1000n, 0x100n, { read: (o, l) => BigInt(l) + o, write: (o, l, v) => { seen.push(`${o}:${l}:${v}`); } });
    expect(() => bus.register("b", 0x10f0n, 0x20n, { read: () => 0n, write: () => {} })).toThrow(/overlaps/);
    const d = new Uint8Array(8);
    expect(bus.access(0x1004n, 2, false, d)).toBe(true);
    expect(d[0]).toBe(6);
    d.set([1, 2]);
    bus.access(0x1008n, 2, true, d);
    expect(seen).toEqual(["8:2:513"]);
    expect(bus.access(0x2000n, 1, false, d)).toBe(false);
  });
});
