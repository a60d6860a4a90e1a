// KVM_GET_REG_LIST, and a Machine's whole non-RAM state (src/vmm/machine-state.ts)
// saved, restored into a fresh Kvm, and encoded as sections (src/migration/vmstate.ts).
// Guest time is counted in instructions, so a guest that runs N instructions,
// moves, and runs M more must end exactly where one that never moved does.
import { describe, it, expect } from "vitest";
import { readFileSync } from "node:fs";
import { Machine, MachineStateError, KVM_GET_REG_LIST, KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY, KVM_CAP, riscv,
  type MachineState, type Kvm } from "../src/index.js";
import { encodeState, decodeState } from "../src/migration/vmstate.js";
import { SectionError, encodeSections, decodeSections, type Section } from "../src/migration/section.js";
import { openKvm, code } from "./helpers.js";
import { expectSmpReference } from "./smp-check.js";
// @ts-expect-error plain JS module without types
import { fnv1a64 } from "../guests/memtest/reference.mjs";

const image = (name: string) => new Uint8Array(readFileSync(new URL(`../guests/${name}/${name}.bin`, import.meta.url)));
const E2BIG = 7, EFAULT = 14;
const { REG_LIST, REG_TIMER_TIME, REG_TIMER_STATE, REG_TIMER_FREQUENCY, REG_TIMER_COMPARE } = riscv;
const SIP_SEIP = 1n << 9n;

/** A raw KVM_GET_REG_LIST: n, and `room` ids' worth of reg[]; the result, the n written back and the ids. */
function regListIoctl(vcpu: ReturnType<Kvm["createVm"]>["createVcpu"] extends (...a: never[]) => infer V ? V : never,
                      n: bigint, room: number): { r: number; n: bigint; ids: bigint[] } {
  const buf = new Uint8Array(8 + 8 * room);
  const dv = new DataView(buf.buffer);
  dv.setBigUint64(0, n, true);
  const r = vcpu.ioctl(KVM_GET_REG_LIST, buf);
  return { r, n: dv.getBigUint64(0, true), ids: Array.from({ length: room }, (_, i) => dv.getBigUint64(8 + 8 * i, true)) };
}

async function vcpu0() {
  const kvm = await openKvm();
  const vm = kvm.createVm();
  return vm.createVcpu(0);
}

describe("KVM_GET_REG_LIST", () => {
  /** The kernel's order for this vCPU, written out from arch/riscv/include/uapi/asm/kvm.h's numbering. */
  const U64 = 0x8030000000000000n, U32 = 0x8020000000000000n;
  const id = (size: bigint, type: number, index: number) => size | (BigInt(type) << 24n) | BigInt(index);
  const expected = [
    ...Array.from({ length: 33 }, (_, i) => id(U64, 2, i)), // core: pc, x1..x31, mode
    ...Array.from({ length: 11 }, (_, i) => id(U64, 3, i)), // general CSRs: sstatus .. senvcfg
    ...Array.from({ length: 4 }, (_, i) => id(U64, 4, i)), // timer: frequency, time, compare, state
    ...Array.from({ length: 33 }, (_, i) => id(U32, 5, i)), // FP_F: f0..f31, fcsr
    ...Array.from({ length: 32 }, (_, i) => id(U64, 6, i)), id(U32, 6, 32), // FP_D: f0..f31, fcsr
  ];

  it("n smaller than the register count is E2BIG, with the count written back to n (n is read as an unsigned int)", async () => {
    const v = await vcpu0();
    for (const n of [0n, BigInt(expected.length - 1), 1n << 32n]) {
      const { r, n: back, ids } = regListIoctl(v, n, expected.length);
      expect([n, r, back]).toEqual([n, -E2BIG, BigInt(expected.length)]);
      expect(ids.every((x) => x === 0n)).toBe(true); // no id was written
    }
  });

  it("lists core, general CSRs, timer, FP_F and FP_D in the kernel's order, and the host's REG_LIST is that list", async () => {
    const v = await vcpu0();
    const { r, n, ids } = regListIoctl(v, BigInt(expected.length + 5), expected.length + 5);
    expect([r, n]).toEqual([0, BigInt(expected.length)]);
    expect(ids.slice(0, expected.length)).toEqual(expected);
    expect(ids.slice(expected.length)).toEqual([0n, 0n, 0n, 0n, 0n]);
    expect(v.getRegList()).toEqual(expected);
    expect([...REG_LIST]).toEqual(expected);
  });

  it("a reg[] shorter than n says is EFAULT (put_user fails)", async () => {
    const v = await vcpu0();
    const { r, n } = regListIoctl(v, BigInt(expected.length), expected.length - 1);
    expect([r, n]).toEqual([-EFAULT, BigInt(expected.length)]);
    expect(regListIoctl(v, 0n, 0).r).toBe(-E2BIG);
    expect(v.ioctl(KVM_GET_REG_LIST, new Uint8Array(7))).toBe(-EFAULT); // not even n
  });

  it("every listed id is gettable and, written back, reads the same (the timer armed, so state is ON)", async () => {
    const v = await vcpu0();
    v.setTimer(v.time + 1000n);
    for (const reg of v.getRegList()) {
      const before = v.getOneReg(reg);
      v.setOneReg(reg, before);
      const after = v.getOneReg(reg);
      // time runs on only with instructions, and none ran
      expect([reg, after]).toEqual([reg, before]);
    }
  });

  it("ids next to the listed ones are refused by ONE_REG: the list is exactly what it answers", async () => {
    const v = await vcpu0();
    const beyond = [id(U64, 1, 0), id(U64, 2, 33), id(U64, 3, 11), id(U64, 4, 4), id(U32, 5, 33), id(U64, 6, 33), id(U64, 7, 0)];
    for (const reg of beyond) expect([reg, code(() => v.getOneReg(reg))]).not.toEqual([reg, "ok"]);
  });

  it("timer: frequency takes back only the host's (EINVAL otherwise); state OFF is EINVAL for a timer not set, ON is accepted", async () => {
    const v = await vcpu0();
    const hz = v.getOneReg(REG_TIMER_FREQUENCY);
    expect(code(() => v.setOneReg(REG_TIMER_FREQUENCY, hz))).toBe("ok");
    expect(code(() => v.setOneReg(REG_TIMER_FREQUENCY, hz + 1n))).toBe("EINVAL");
    expect(v.getOneReg(REG_TIMER_STATE)).toBe(0n);
    expect(code(() => v.setOneReg(REG_TIMER_STATE, 0n))).toBe("EINVAL");
    const compare = v.getOneReg(REG_TIMER_COMPARE);
    expect(code(() => v.setOneReg(REG_TIMER_STATE, 1n))).toBe("ok");
    expect(v.getOneReg(REG_TIMER_COMPARE)).toBe(compare); // ON leaves nothing behind (Sstc)
  });
});

/** Guest RAM of every slot copied from src's host memory into dst's (what a snapshot or migration carries). */
function copyRam(src: Machine, dst: Machine): void {
  const to = dst.memoryRegions();
  for (const r of src.memoryRegions()) {
    const d = to.find((x) => x.asId === r.asId && x.slot === r.slot)!;
    dst.kvm.memory.write(d.hva, src.kvm.memory.read(r.hva, Number(r.size)));
  }
}

/** Saves src, restores it on a new Kvm with its RAM: the destination machine. */
async function move(src: Machine): Promise<Machine> {
  const state = src.saveState();
  const dst = await Machine.restore(decodeState(decodeSections(encodeSections(encodeState(state)))), { kvm: await openKvm() });
  copyRam(src, dst);
  return dst;
}

/** Everything a guest can see of a machine but time (which only the fraction of a tick in progress may tell apart). */
function observable(m: Machine) {
  const s = m.saveState();
  const regs = s.vcpus.map((v) => v.regs.filter((r) => r.id !== REG_TIMER_TIME));
  const time = s.vcpus.map((v) => v.regs.find((r) => r.id === REG_TIMER_TIME)!.value);
  const ram = m.memoryRegions().map((r) => fnv1a64(m.kvm.memory.read(r.hva, Number(r.size))) as bigint);
  return { regs, time, ram, harts: s.harts, current: s.current, uart: s.uart, plic: s.plic, sbiInput: s.sbiInput };
}

/** src and dst after both ran the same instruction budget, then to the end: equal in all a guest sees. */
function expectSameFuture(src: Machine, dst: Machine, budget: bigint) {
  const outSrc = src.output.length, outDst = dst.output.length;
  const a = src.run({ maxInstructions: budget }), b = dst.run({ maxInstructions: budget });
  expect([b.stop, b.instructions, b.hart]).toEqual([a.stop, a.instructions, a.hart]);
  const oa = observable(src), ob = observable(dst);
  expect({ ...ob, time: undefined }).toEqual({ ...oa, time: undefined });
  ob.time.forEach((t, h) => expect(Number(oa.time[h] - t)).toBeLessThanOrEqual(1)); // the dropped fraction of a tick
  expect(dst.output.slice(outDst)).toBe(src.output.slice(outSrc));
  return { a, b };
}

describe("Machine.saveState / Machine.restore", () => {
  it("memtest moved after N instructions runs M more exactly as the unmoved one: registers, CSRs, RAM, console", async () => {
    const src = await Machine.create({ kvm: await openKvm(), memSize: 8n << 20n });
    src.load(image("memtest"), 512 * 1024);
    expect(src.run({ maxInstructions: 3_000_000n }).stop).toBe("limit");
    const dst = await move(src);
    expectSameFuture(src, dst, 2_000_000n);
    const { a } = expectSameFuture(src, dst, 100_000_000n);
    expect([a.stop, a.reason]).toEqual(["shutdown", 0]);
    expect(dst.output).toMatch(/^memtest ok checksum=0x[0-9a-f]{16}\n$/);
    expect(src.output).toBe(dst.output);
  });

  it("the smp guest on 4 harts, moved mid-way, finishes as the unmoved one (HSM states, round-robin position, partitions)", async () => {
    const src = await Machine.create({ kvm: await openKvm(), memSize: 16n << 20n, vcpus: 4, turn: 5000 });
    src.load(image("smp"));
    expect(src.run({ maxInstructions: 1_234_567n }).stop).toBe("limit");
    expect([1, 2, 3].some((h) => src.hartState(h) === "started")).toBe(true);
    const dst = await move(src);
    for (let i = 0; i < 5; i++) expectSameFuture(src, dst, 77_777n); // the same hart runs each turn
    const { b } = expectSameFuture(src, dst, 500_000_000n);
    expectSmpReference(dst, b, 4);
  });

  it("hello moved mid-line prints the rest of its line on the destination's UART", async () => {
    const src = await Machine.create({ kvm: await openKvm(), memSize: 16n << 20n });
    src.load(image("hello"));
    src.run({ maxInstructions: 400n });
    while (src.output.length < 5) src.run({ maxInstructions: 50n });
    const before = src.output;
    const dst = await move(src);
    expectSameFuture(src, dst, 10_000_000n);
    expect(before + dst.output).toBe("Hello from webkvm!\n");
  });
});
