// The smp guest (guests/smp) on 1, 2 and 4 harts, and the SBI HSM extension
// the VMM implements (src/vmm/sbi.ts), rule by rule as the SBI spec and
// arch/riscv/kvm/vcpu_sbi_hsm.c give them. Harts share this thread round-robin.
import { describe, it, expect } from "vitest";
import { readFileSync } from "node:fs";
import { Machine, handleSbi, riscv } from "../src/index.js";
import { openKvm } from "./helpers.js";
import { expectSmpReference } from "./smp-check.js";
import * as A from "./cpu/asm.js";
import { REG } from "./cpu/asm.js";
// @ts-expect-error plain JS module without types
import { smpLine, smpDataGpa } from "../guests/smp/reference.mjs";

const { SBI_EXT_HSM, SBI_EXT_BASE, SBI_SUCCESS, SBI_ERR_INVALID_PARAM, SBI_ERR_INVALID_ADDRESS,
  SBI_ERR_ALREADY_AVAILABLE, SBI_ERR_NOT_SUPPORTED } = riscv;
const START = riscv.SBI_HSM_HART_START, STOP = riscv.SBI_HSM_HART_STOP, STATUS = riscv.SBI_HSM_HART_GET_STATUS;
const SUSPEND = riscv.SBI_HSM_HART_SUSPEND, STARTED = riscv.SBI_HSM_STATE_STARTED, STOPPED = riscv.SBI_HSM_STATE_STOPPED;
const RAM = 0x80000000n;
/** Where the test programs store each call's [a0, a1]. */
const OUT = 0x80100000n;

const smpImage = new Uint8Array(readFileSync(new URL("../guests/smp/smp.bin", import.meta.url)));

async function machine(vcpus: number) {
  return Machine.create({ kvm: await openKvm(), memSize: 16n << 20n, vcpus, turn: 5000 });
}

describe("smp guest: every hart its own Sv39 tables over its own partition", () => {
  it.each([1, 2, 4])("on %i hart(s) it prints the reference line and each partition holds its hart's stream", async (n) => {
    const m = await machine(n);
    m.load(smpImage);
    expectSmpReference(m, m.run({ maxInstructions: 500_000_000n }), n);
    m.close();
  });

  it("with a1 = 2 on a 4-hart machine only harts 0 and 1 take part", async () => {
    const m = await machine(4);
    m.load(smpImage, 2);
    const r = m.run({ maxInstructions: 500_000_000n });
    expect([m.output, r.stop]).toEqual([smpLine(2), "shutdown"]);
    expect(m.vm.readGuest(smpDataGpa(2), 8)).toEqual(new Uint8Array(8)); // hart 2 never ran
    m.close();
  });
});

type Call = [eid: bigint, fid: bigint, a0: bigint, a1?: bigint, a2?: bigint];

/** SBI calls in order, each [a0, a1] stored at OUT + 16 i. */
function emitCalls(p: A.Program, calls: Call[]): A.Program {
  calls.forEach(([eid, fid, a0, a1 = 0n, a2 = 0n], i) => {
    p.li(REG.a7, eid).li(REG.a6, fid).li(REG.a0, a0).li(REG.a1, a1).li(REG.a2, a2).emit(A.ecall());
    p.li(REG.t0, OUT + BigInt(16 * i)).emit(A.sd(REG.a0, REG.t0, 0), A.sd(REG.a1, REG.t0, 8));
  });
  return p;
}

/** The calls, then SRST shutdown. */
const callsProgram = (p: A.Program, calls: Call[]) =>
  emitCalls(p, calls).li(REG.a7, riscv.SBI_EXT_SRST).li(REG.a6, 0).li(REG.a0, 0).li(REG.a1, 0).emit(A.ecall());

function bytes(words: Uint32Array): Uint8Array {
  return new Uint8Array(words.buffer, words.byteOffset, words.byteLength);
}

/** Runs hart 0's calls on an n-hart machine; returns each call's [error, value] and the machine. */
async function sbiCalls(n: number, calls: Call[], setup?: (m: Machine) => void) {
  const m = await machine(n);
  m.load(bytes(callsProgram(new A.Program(RAM), calls).finish()));
  setup?.(m);
  const r = m.run({ maxInstructions: 10_000_000n });
  const out = m.vm.readGuest(OUT, 16 * calls.length);
  const dv = new DataView(out.buffer);
  const results = calls.map((_, i) => [BigInt.asIntN(64, dv.getBigUint64(16 * i, true)), dv.getBigUint64(16 * i + 8, true)]);
  return { results, m, r };
}

/** A program at `at` that stores a0, a1 and satp at `to`, then calls HSM hart_stop. */
function recorderAt(at: bigint, to: bigint): Uint8Array {
  const p = new A.Program(at);
  p.li(REG.t0, to).emit(A.sd(REG.a0, REG.t0, 0), A.sd(REG.a1, REG.t0, 8), A.csrrs(REG.t1, A.CSR.satp, 0), A.sd(REG.t1, REG.t0, 16));
  p.li(REG.a7, SBI_EXT_HSM).li(REG.a6, STOP).emit(A.ecall(), A.jal(0, 0));
  return bytes(p.finish());
}

const SECONDARY = 0x80200000n, RECORD = 0x80210000n;

describe("SBI HSM (vcpu_sbi_hsm.c)", () => {
  it("BASE probe_extension reports HSM with a Machine, and not for a host without HSM", async () => {
    const { results } = await sbiCalls(1, [[SBI_EXT_BASE, 3n, SBI_EXT_HSM]]);
    expect(results[0]).toEqual([SBI_SUCCESS, 1n]);
    const host = { putchar() {}, getchar: () => -1, setTimer() {}, reset() {} };
    expect(handleSbi(host, { extensionId: SBI_EXT_BASE, functionId: 3n, args: [SBI_EXT_HSM, 0n, 0n, 0n, 0n, 0n] })).toEqual([SBI_SUCCESS, 0n]);
    expect(handleSbi(host, { extensionId: SBI_EXT_HSM, functionId: STATUS, args: [0n, 0n, 0n, 0n, 0n, 0n] })).toEqual([SBI_ERR_NOT_SUPPORTED, 0n]);
  });

  it("hart_get_status: the boot hart is STARTED, every other hart begins STOPPED", async () => {
    const { results, m } = await sbiCalls(3, [[SBI_EXT_HSM, STATUS, 0n], [SBI_EXT_HSM, STATUS, 1n], [SBI_EXT_HSM, STATUS, 2n]]);
    expect(results).toEqual([[SBI_SUCCESS, STARTED], [SBI_SUCCESS, STOPPED], [SBI_SUCCESS, STOPPED]]);
    expect([0, 1, 2].map((h) => m.hartState(h))).toEqual(["started", "stopped", "stopped"]);
  });

  it("hart_get_status and hart_start of a hart id the machine lacks: SBI_ERR_INVALID_PARAM", async () => {
    const { results, m } = await sbiCalls(2, [
      [SBI_EXT_HSM, STATUS, 2n], [SBI_EXT_HSM, STATUS, -1n],
      [SBI_EXT_HSM, START, 2n, SECONDARY], [SBI_EXT_HSM, START, 1n << 32n, SECONDARY],
    ]);
    expect(results.map((r) => r[0])).toEqual([SBI_ERR_INVALID_PARAM, SBI_ERR_INVALID_PARAM, SBI_ERR_INVALID_PARAM, SBI_ERR_INVALID_PARAM]);
    expect(m.hartState(1)).toBe("stopped");
  });

  it("hart_start of a started hart (the caller itself, or one already started): SBI_ERR_ALREADY_AVAILABLE", async () => {
    const { results } = await sbiCalls(2, [
      [SBI_EXT_HSM, START, 0n, SECONDARY],
      [SBI_EXT_HSM, START, 1n, SECONDARY, 7n], [SBI_EXT_HSM, START, 1n, SECONDARY, 8n],
    ], (m) => m.vm.writeGuest(SECONDARY, bytes(Uint32Array.of(A.jal(0, 0))))); // hart 1 spins: it stays STARTED
    expect(results.map((r) => r[0])).toEqual([SBI_ERR_ALREADY_AVAILABLE, SBI_SUCCESS, SBI_ERR_ALREADY_AVAILABLE]);
  });

  it("hart_start at an address no RAM backs: SBI_ERR_INVALID_ADDRESS, and the hart stays STOPPED", async () => {
    const { results, m } = await sbiCalls(2, [[SBI_EXT_HSM, START, 1n, 0x1000n], [SBI_EXT_HSM, STATUS, 1n]]);
    expect(results).toEqual([[SBI_ERR_INVALID_ADDRESS, 0n], [SBI_SUCCESS, STOPPED]]);
    expect(m.hartState(1)).toBe("stopped");
  });

  it("hart_start checks the hart id, then the address, then the state (OpenSBI's sbi_hsm_hart_start order)", async () => {
    const { results } = await sbiCalls(2, [[SBI_EXT_HSM, START, 5n, 0x1000n], [SBI_EXT_HSM, START, 0n, 0x1000n]]);
    expect(results.map((r) => r[0])).toEqual([SBI_ERR_INVALID_PARAM, SBI_ERR_INVALID_ADDRESS]);
  });

  it("a started hart begins at start_addr in S-mode with a0 = hartid, a1 = opaque, satp = 0", async () => {
    const m = await machine(2);
    m.vm.writeGuest(SECONDARY, recorderAt(SECONDARY, RECORD));
    m.vcpus[1].setCsr("satp", (8n << 60n) | 0x80300n); // left over from an earlier life: the start resets it
    m.vcpus[1].setReg(REG.t3, 0x5555n);
    expect(m.startHart(1, SECONDARY, 0xabcdefn)).toBe(SBI_SUCCESS);
    const v = m.vcpus[1];
    expect([v.pc, v.getRegs().mode, v.getReg(REG.a0), v.getReg(REG.a1), v.getCsr("satp"), v.getReg(REG.t3)])
      .toEqual([SECONDARY, riscv.RISCV_MODE_S, 1n, 0xabcdefn, 0n, 0n]);
    m.vm.writeGuest(SECONDARY + 0x100n, recorderAt(SECONDARY + 0x100n, RECORD + 0x100n));
    m.vcpu.setRegs({ pc: SECONDARY + 0x100n, mode: riscv.RISCV_MODE_S }); // hart 0 stops itself too
    const r = m.run({ maxInstructions: 1_000_000n });
    expect(r.stop).toBe("harts-stopped");
    const rec = new DataView(m.vm.readGuest(RECORD, 24).buffer);
    expect([rec.getBigUint64(0, true), rec.getBigUint64(8, true), rec.getBigUint64(16, true)]).toEqual([1n, 0xabcdefn, 0n]);
  });

  it("hart_stop: the hart stops and is not run again; when every hart has stopped, run() returns harts-stopped", async () => {
    const m = await machine(2);
    m.vm.writeGuest(SECONDARY, recorderAt(SECONDARY, RECORD));
    const p = emitCalls(new A.Program(RAM), [[SBI_EXT_HSM, START, 1n, SECONDARY, 9n]]);
    // Then poll hart 1's status until STOPPED, store it, then stop hart 0 too.
    p.label("poll").li(REG.a7, SBI_EXT_HSM).li(REG.a6, STATUS).li(REG.a0, 1).emit(A.ecall());
    p.li(REG.t1, STOPPED).to("poll", (off) => A.bne(REG.a1, REG.t1, off));
    p.li(REG.t0, OUT + 0x100n).emit(A.sd(REG.a1, REG.t0, 0));
    p.li(REG.a7, SBI_EXT_HSM).li(REG.a6, STOP).emit(A.ecall(), A.jal(0, 0));
    m.vm.writeGuest(RAM, bytes(p.finish()));
    m.vcpu.setRegs({ pc: RAM, mode: riscv.RISCV_MODE_S });
    const r = m.run({ maxInstructions: 1_000_000n });
    expect([r.stop, m.hartState(0), m.hartState(1)]).toEqual(["harts-stopped", "stopped", "stopped"]);
    expect(new DataView(m.vm.readGuest(OUT + 0x100n, 8).buffer).getBigUint64(0, true)).toBe(STOPPED);
    const instret = m.vcpus[1].instret;
    expect(m.run({ maxInstructions: 1_000_000n }).stop).toBe("harts-stopped");
    expect(m.vcpus[1].instret).toBe(instret); // a STOPPED hart never enters KVM_RUN
  });

  it("hart_suspend: default retentive returns at once, default non-retentive is SBI_ERR_NOT_SUPPORTED, others SBI_ERR_INVALID_PARAM", async () => {
    const { results } = await sbiCalls(1, [
      [SBI_EXT_HSM, SUSPEND, 0n], [SBI_EXT_HSM, SUSPEND, 0x80000000n], [SBI_EXT_HSM, SUSPEND, 1n], [SBI_EXT_HSM, SUSPEND, 0x90000000n],
    ]);
    expect(results.map((r) => r[0])).toEqual([SBI_SUCCESS, SBI_ERR_NOT_SUPPORTED, SBI_ERR_INVALID_PARAM, SBI_ERR_INVALID_PARAM]);
  });

  it("an HSM function id the spec does not define: SBI_ERR_NOT_SUPPORTED", async () => {
    const { results } = await sbiCalls(1, [[SBI_EXT_HSM, 4n, 0n], [SBI_EXT_HSM, 0x100n, 0n]]);
    expect(results.map((r) => r[0])).toEqual([SBI_ERR_NOT_SUPPORTED, SBI_ERR_NOT_SUPPORTED]);
  });
});

describe("Machine({ vcpus })", () => {
  it("round-robin: running harts alternate, each KVM_RUN a turn of at most `turn` instructions", async () => {
    const m = await Machine.create({ kvm: await openKvm(), memSize: 16n << 20n, vcpus: 2, turn: 1000 });
    const spin = bytes(Uint32Array.of(A.addi(REG.t0, REG.t0, 1), A.jal(0, -4)));
    m.vm.writeGuest(SECONDARY, spin);
    m.vm.writeGuest(RAM, spin);
    m.vcpu.setRegs({ pc: RAM, mode: riscv.RISCV_MODE_S });
    expect(m.startHart(1, SECONDARY)).toBe(SBI_SUCCESS);
    const r = m.run({ maxInstructions: 100_000n });
    expect(r.stop).toBe("limit");
    const [i0, i1] = m.vcpus.map((v) => v.instret);
    expect(i0 + i1).toBe(r.instructions);
    expect(r.exits).toBeGreaterThanOrEqual(Number(r.instructions) / 1000);
    for (const i of [i0, i1]) expect(Number(i) / Number(r.instructions)).toBeGreaterThan(0.45);
  });

  it("a hart that halts for good (WFI, no timer) sits out while the others run; halt once every running hart has", async () => {
    const m = await machine(2);
    m.vm.writeGuest(SECONDARY, bytes(Uint32Array.of(A.wfi(), A.jal(0, -4))));
    const p = emitCalls(new A.Program(RAM), [[SBI_EXT_HSM, START, 1n, SECONDARY]]);
    p.li(REG.t1, 20_000).label("spin").emit(A.addi(REG.t1, REG.t1, -1)).to("spin", (off) => A.bne(REG.t1, 0, off));
    callsProgram(p, [[SBI_EXT_HSM, STATUS, 1n]]);
    m.load(bytes(p.finish()));
    const r = m.run({ maxInstructions: 10_000_000n });
    expect([r.stop, r.hart]).toEqual(["shutdown", 0]); // hart 0 finished its loop after hart 1 halted
    expect(m.hartState(1)).toBe("started"); // halted is not STOPPED

    const both = await machine(2);
    both.vm.writeGuest(SECONDARY, bytes(Uint32Array.of(A.wfi(), A.jal(0, -4))));
    const q = emitCalls(new A.Program(RAM), [[SBI_EXT_HSM, START, 1n, SECONDARY]]).emit(A.wfi(), A.jal(0, -4));
    both.load(bytes(q.finish()));
    expect(both.run({ maxInstructions: 10_000_000n }).stop).toBe("halt");
  });

  it("vcpus and turn must be positive integers (RangeError)", async () => {
    const kvm = await openKvm();
    for (const bad of [{ vcpus: 0 }, { vcpus: 1.5 }, { vcpus: 2, turn: 0 }, { turn: -1 }]) await expect(Machine.create({ kvm, ...bad })).rejects.toThrow(RangeError);
  });

  it("hart ids are 0..vcpus-1; hartState of any other is a RangeError", async () => {
    const m = await machine(2);
    expect(m.vcpus.map((v) => v.id)).toEqual([0, 1]);
    expect(m.vcpu).toBe(m.vcpus[0]);
    expect(() => m.hartState(2)).toThrow(RangeError);
  });
});
