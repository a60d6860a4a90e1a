// KVM_GET_REG_LIST, and a Machine's whole non-RAM state (src/vmm/machine-state.ts)
// saved, restored into a fresh Kvm, and encoded as sections (src/migration/vmstate.ts).
// Guest time is counted in instructions, so a guest that runs N instructions,
// moves, and runs M more must end exactly where one that never moved does.
import { describe, it, expect } from "vitest";
import { readFileSync } from "node:fs";
import { Kvm, Machine, MachineStateError, KVM_GET_REG_LIST, KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY, KVM_CAP, riscv,
  type MachineState } from "../src/index.js";
import { WORKER } from "./threads-helpers.js";
import { encodeState, decodeState } from "../src/migration/vmstate.js";
import { SectionError, encodeSections, decodeSections, type Section } from "../src/migration/section.js";
import { openKvm, code } from "./helpers.js";
import { Rng } from "./rng.js";
import { Uart16550, Plic } from "../src/index.js";
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

const UART_IRQ = 1;
const PRIO = (s: number) => BigInt(4 * s), ENABLE = (c: number) => BigInt(0x2000 + 0x80 * c);
const CLAIM = (c: number) => BigInt(0x200000 + 0x1000 * c + 4);

/** The parts of a saved state a restore reproduces exactly (hvas are the destination's own; time within a tick). */
function restorable(s: MachineState) {
  return { ...s, memslots: s.memslots.map((m) => ({ ...m, hva: 0n })),
    vcpus: s.vcpus.map((v) => v.regs.filter((r) => r.id !== REG_TIMER_TIME)) };
}

describe("what a restore reproduces", () => {
  it("the UART's registers, receive FIFO and pending interrupts, and the PLIC's claims, pending bits and lines", async () => {
    const src = await Machine.create({ kvm: await openKvm(), memSize: 4n << 20n, vcpus: 2, turn: 1000 });
    const { uart, plic } = src;
    plic.write(PRIO(UART_IRQ), 4, 1n);
    plic.write(PRIO(5), 4, 3n);
    plic.write(ENABLE(0), 4, BigInt((1 << UART_IRQ) | (1 << 5)));
    plic.write(ENABLE(1), 4, BigInt(1 << UART_IRQ));
    uart.write(3n, 1, 0x83n); // DLAB: the divisor latch
    uart.write(0n, 1, 0x0cn);
    uart.write(3n, 1, 0x03n);
    uart.write(7n, 1, 0x5an);
    uart.write(1n, 1, 0x03n); // received data and THR empty interrupts: THRE is pending at once
    expect(plic.read(CLAIM(1), 4)).toBe(BigInt(UART_IRQ)); // hart 1 claims the UART
    uart.feed("abc");
    plic.setIrq(5, true); // pending for hart 0, above its threshold: hart 0's line is high
    expect([plic.lineOf(0), plic.lineOf(1), uart.irq]).toEqual([true, false, true]);
    const dst = await move(src);
    expect(dst.uart.save()).toEqual(src.uart.save());
    expect(dst.plic.save()).toEqual(src.plic.save());
    const seip = (m: Machine) => m.vcpus.map((v) => (v.getCsr("sip") & SIP_SEIP) !== 0n);
    expect(seip(dst)).toEqual([true, false]);
    // Both go on alike: the claim completes, the FIFO drains, IIR acknowledges THRE.
    for (const m of [src, dst]) {
      m.plic.write(CLAIM(1), 4, BigInt(UART_IRQ));
      expect([0, 1, 2, 3].map(() => Number(m.uart.read(0n, 1)))).toEqual([0x61, 0x62, 0x63, 0]);
      expect(m.uart.read(2n, 1)).toBe(0xc2n);
      expect(m.plic.read(CLAIM(0), 4)).toBe(5n);
    }
    expect(dst.uart.save()).toEqual(src.uart.save());
    expect(dst.plic.save()).toEqual(src.plic.save());
    expect(seip(dst)).toEqual(seip(src));
  });

  it("the harts' HSM states, pending IPIs and fences, the round-robin position and the SBI console's input", async () => {
    const src = await Machine.create({ kvm: await openKvm(), memSize: 4n << 20n, vcpus: 3 });
    src.feedConsole("queued");
    const state = src.saveState();
    state.harts[1] = { started: true, halted: true, ipiPending: true, flushPending: false };
    state.harts[2] = { started: false, halted: false, ipiPending: false, flushPending: true };
    state.current = 2;
    const dst = await Machine.restore(state, { kvm: await openKvm() });
    expect(restorable(dst.saveState())).toEqual(restorable(state));
    expect([dst.hartState(0), dst.hartState(1), dst.hartState(2)]).toEqual(["started", "started", "stopped"]);
  });

  it("a prepared machine staged with one state and applied with another holds the applied one whole (the SBI console's input not added twice)", async () => {
    const src = await Machine.create({ kvm: await openKvm(), memSize: 4n << 20n, vcpus: 2 });
    src.feedConsole("first");
    const staged = src.saveState();
    src.vcpu.setReg(5, 0x1234n);
    src.feedConsole("+more");
    const final = src.saveState();
    final.current = 1;
    final.harts[1] = { started: true, halted: false, ipiPending: true, flushPending: false };
    const prepared = await Machine.prepare(staged, { kvm: await openKvm() });
    prepared.stage(staged);
    prepared.stage(staged);
    const dst = prepared.apply(final);
    expect(restorable(dst.saveState())).toEqual(restorable(final));
  });

  it("the config and the memslots of every address space: flags, dirty ring, manual protect, host-memory aliasing", async () => {
    const kvm = await openKvm({ config: { addressSpaces: 2 } });
    const src = await Machine.create({ kvm, memSize: 4n << 20n, vcpus: 2, turn: 777, dirtyRing: 8192, dirtyRingAcqRel: true });
    src.vm.enableCap(KVM_CAP.MANUAL_DIRTY_LOG_PROTECT2, [3]);
    const rom = kvm.memory.mmap(1n << 20n);
    src.vm.setUserMemoryRegion({ slot: 7, guestPhysAddr: 0x20000000n, memorySize: 1n << 20n, userspaceAddr: rom, flags: KVM_MEM_READONLY });
    // Address space 1 sees the second MiB of RAM, logged: the same host memory as slot 0's.
    src.vm.setUserMemoryRegion({ slot: 3, asId: 1, guestPhysAddr: 0x80000000n, memorySize: 1n << 20n,
      userspaceAddr: src.ramHva + (1n << 20n), flags: KVM_MEM_LOG_DIRTY_PAGES });
    const state = src.saveState();
    expect(state.config).toEqual({ memSize: 4n << 20n, vcpus: 2, turn: 777, dirtyRing: { bytes: 8192, acqRel: true },
      manualProtect: 3, addressSpaces: 2 });
    const dstKvm = await openKvm({ config: { addressSpaces: 2 } });
    const dst = await Machine.restore(state, { kvm: dstKvm });
    expect(restorable(dst.saveState())).toEqual(restorable(state));
    expect(dst.vcpus.map((v) => v.dirtyRing.size)).toEqual(src.vcpus.map((v) => v.dirtyRing.size));
    const alias = dst.memoryRegions().find((r) => r.asId === 1)!;
    expect(alias.hva - dst.ramHva).toBe(1n << 20n);
    dst.vm.writeGuest(0x80100000n, new Uint8Array([42]));
    expect(dst.vm.readGuest(0x80000000n, 1, 1)).toEqual(new Uint8Array([42]));
  });

  it("saveState refuses while the harts are in runThreaded (a state is taken between runs)", async () => {
    let err: unknown = null;
    const m: Machine = await Machine.create({ kvm: await Kvm.open({ core: "threads" }), memSize: 16n << 20n, vcpus: 2,
      turn: 200_000, onConsole: () => {
        try {
          if (err === null) m.saveState();
        } catch (e) {
          err = e;
        }
      } });
    m.load(image("smp"));
    expect((await m.runThreaded(WORKER)).stop).toBe("shutdown");
    expect(String(err)).toMatch(/saveState: the harts are in runThreaded/);
    expect(m.saveState().vcpus.length).toBe(2); // after the run it may
    m.close();
  });

  it("saveState refuses a guest_memfd-backed slot, naming it", async () => {
    const kvm = await openKvm();
    const m = await Machine.create({ kvm, memSize: 4n << 20n });
    const g = m.vm.createGuestMemfd({ size: 1n << 20n });
    m.vm.setUserMemoryRegion2({ slot: 2, flags: 1 << 2, guestPhysAddr: 0x40000000n, memorySize: 1n << 20n,
      userspaceAddr: kvm.memory.mmap(1n << 20n), guestMemfd: g });
    expect(() => m.saveState()).toThrow(/slot 2 of address space 0 is backed by a guest_memfd/);
  });
});

/** A UART on source 1 of a 2-context PLIC, recording what the guest would see: reads, output bytes, line changes. */
function devicePair() {
  const seen: string[] = [];
  const plic = new Plic(31, 2, (c, high) => seen.push(`line ${c} ${high}`));
  const uart = new Uart16550((b) => seen.push(`out ${b}`), (high) => plic.setIrq(UART_IRQ, high));
  return { uart, plic, seen };
}

/** One random access of a guest (or device) to the pair. */
function randomOp(rng: Rng, d: ReturnType<typeof devicePair>): void {
  const k = rng.int(7);
  if (k === 0) d.seen.push(`uart ${d.uart.read(BigInt(rng.int(8)), 1)}`);
  else if (k === 1) d.uart.write(BigInt(rng.int(8)), 1, BigInt(rng.int(256)));
  else if (k === 2) d.uart.feed(new Uint8Array([rng.int(256), rng.int(256)]).subarray(0, rng.range(1, 2)));
  else if (k === 3) d.plic.setIrq(rng.range(2, 4), rng.chance(0.5)); // other devices' lines
  else {
    // PLIC registers: priorities of sources 0..4, pending, context 0/1 enables, thresholds and claim/complete.
    const offs = [0n, 4n, 8n, 12n, 16n, 0x1000n, 0x2000n, 0x2080n, 0x200000n, 0x200004n, 0x201000n, 0x201004n];
    const off = offs[rng.int(offs.length)];
    if (k === 4) d.seen.push(`plic ${off} ${d.plic.read(off, 4)}`);
    else d.plic.write(off, 4, BigInt(off >= 0x200000n && (off & 4n) !== 0n ? rng.int(5) : rng.int(8) | (rng.chance(0.3) ? 0x1e : 0)));
  }
}

describe("device save / restore against an unmoved pair", () => {
  it.each([1, 2, 3, 4, 5, 6, 7, 8])("seed %i: random accesses, a move at a random point, the same accesses after: same reads, output, lines", (seed) => {
    const rng = new Rng(seed);
    const ops = Array.from({ length: 400 }, () => rng.u32());
    const cut = rng.range(1, 399);
    const a = devicePair(), b = devicePair();
    ops.slice(0, cut).forEach((x) => randomOp(new Rng(x), a));
    b.uart.restore(a.uart.save());
    b.plic.restore(a.plic.save());
    a.seen.length = 0;
    ops.slice(cut).forEach((x) => { randomOp(new Rng(x), a); randomOp(new Rng(x), b); });
    expect(b.seen).toEqual(a.seen);
    expect(b.uart.save()).toEqual(a.uart.save());
    expect(b.plic.save()).toEqual(a.plic.save());
  });
});

/** A small machine's state, encoded. */
async function sampleSections(vcpus = 2): Promise<{ state: MachineState; sections: Section[] }> {
  const m = await Machine.create({ kvm: await openKvm(), memSize: 4n << 20n, vcpus });
  m.load(image("smp"));
  m.run({ maxInstructions: 50_000n });
  m.uart.feed("in");
  m.feedConsole("sbi");
  const state = m.saveState();
  return { state, sections: encodeState(state) };
}

const edit = (sections: Section[], name: string, fn: (s: Section) => Section | null): Section[] =>
  sections.flatMap((s) => (s.name === name ? (fn(s) ?? []) : [s]));
const u32At = (s: Section, at: number, v: number): Section => {
  const payload = s.payload.slice();
  new DataView(payload.buffer).setUint32(at, v, true);
  return { ...s, payload };
};
const jsonEdit = (s: Section, fn: (o: Record<string, any>) => void): Section => {
  const o = JSON.parse(new TextDecoder().decode(s.payload));
  fn(o);
  return { ...s, payload: new TextEncoder().encode(JSON.stringify(o)) };
};
const u64At = (s: Section, at: number, v: bigint): Section => {
  const payload = s.payload.slice();
  new DataView(payload.buffer).setBigUint64(at, v, true);
  return { ...s, payload };
};

describe("encodeState / decodeState", () => {
  it("decode(encode(state)) is the state, also through the section container's bytes", async () => {
    const { state, sections } = await sampleSections();
    expect(sections.map((s) => s.name)).toEqual(["machine", "memslots", "vcpu.0", "vcpu.1", "devices", "sbi"]);
    expect(decodeState(sections)).toEqual(state);
    expect(decodeState(decodeSections(encodeSections(sections)))).toEqual(state);
    expect(decodeState([...sections, { name: "pages", version: 9, payload: new Uint8Array(3) }])).toEqual(state); // others' sections
  });

  type Corruption = [rule: string, section: string, fn: (s: Section[]) => Section[]];
  const corruptions: Corruption[] = [
    ["a truncated vCPU section", "vcpu.0", (s) => edit(s, "vcpu.0", (x) => ({ ...x, payload: x.payload.subarray(0, x.payload.length - 8) }))],
    ["a vCPU section without even its count", "vcpu.1", (s) => edit(s, "vcpu.1", (x) => ({ ...x, payload: x.payload.subarray(0, 3) }))],
    ["a truncated memslots section", "memslots", (s) => edit(s, "memslots", (x) => ({ ...x, payload: x.payload.subarray(0, 30) }))],
    ["a section of another version", "machine", (s) => edit(s, "machine", (x) => ({ ...x, version: 2 }))],
    ["a vCPU section of another version", "vcpu.1", (s) => edit(s, "vcpu.1", (x) => ({ ...x, version: 0 }))],
    ["a register count the payload does not hold", "vcpu.0", (s) => edit(s, "vcpu.0", (x) => u32At(x, 0, 115))],
    ["a slot count the payload does not hold", "memslots", (s) => edit(s, "memslots", (x) => u32At(x, 0, 2))],
    ["fewer registers than the vCPU has", "vcpu.0", (s) => edit(s, "vcpu.0", (x) => {
      const y = u32At(x, 0, 113);
      return { ...y, payload: y.payload.subarray(0, y.payload.length - 16) };
    })],
    ["a register id this vCPU does not have", "vcpu.1", (s) => edit(s, "vcpu.1", (x) => u64At(x, 4 + 16 * 40, 0x8030000001000000n))],
    ["registers out of the list's order", "vcpu.0", (s) => edit(s, "vcpu.0", (x) => u64At(x, 4, REG_LIST[1]))],
    ["a value wider than its u32 register", "vcpu.0", (s) => edit(s, "vcpu.0", (x) => u64At(x, 12 + 16 * (REG_LIST.length - 1), 1n << 32n))],
    ["a missing vCPU section (the config says 2 vCPUs)", "vcpu.1", (s) => edit(s, "vcpu.1", () => null)],
    ["a vCPU section past the config's count", "vcpu.2", (s) => [...s, { ...s[2], name: "vcpu.2" }]],
    ["a vCPU count the config does not allow", "machine", (s) => edit(s, "machine", (x) => jsonEdit(x, (o) => { o.vcpus = 0; }))],
    ["a section twice", "devices", (s) => [...s, s[4]]],
    ["a missing section", "sbi", (s) => edit(s, "sbi", () => null)],
    ["a memSize that is no decimal u64", "machine", (s) => edit(s, "machine", (x) => jsonEdit(x, (o) => { o.memSize = "0x400000"; }))],
    ["a config field of the wrong type", "machine", (s) => edit(s, "machine", (x) => jsonEdit(x, (o) => { o.turn = "fast"; }))],
    ["a slot in an address space the VM lacks", "memslots", (s) => edit(s, "memslots", (x) => u32At(x, 4, 1))],
    ["JSON that does not parse", "devices", (s) => edit(s, "devices", (x) => ({ ...x, payload: x.payload.subarray(0, 10) }))],
    ["a UART byte register out of range", "devices", (s) => edit(s, "devices", (x) => jsonEdit(x, (o) => { o.uart.lcr = 256; }))],
    ["a UART interrupt level its registers contradict", "devices", (s) => edit(s, "devices", (x) => jsonEdit(x, (o) => { o.uart.irq = !o.uart.irq; }))],
    ["a PLIC of another size", "devices", (s) => edit(s, "devices", (x) => jsonEdit(x, (o) => { o.plic.contexts = 3; }))],
    ["a PLIC line its sources contradict", "devices", (s) => edit(s, "devices", (x) => jsonEdit(x, (o) => { o.plic.output[1] = !o.plic.output[1]; }))],
    ["hart flags for another number of harts", "sbi", (s) => edit(s, "sbi", (x) => jsonEdit(x, (o) => { o.harts.pop(); }))],
    ["a console input value that is no byte", "sbi", (s) => edit(s, "sbi", (x) => jsonEdit(x, (o) => { o.input.push(256); }))],
  ];

  it.each(corruptions)("%s is refused, naming section %s", async (_rule, section, corrupt) => {
    const { sections } = await sampleSections();
    let err: unknown;
    try {
      decodeState(corrupt(sections));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SectionError);
    expect((err as SectionError).section).toBe(section);
  });
});

describe("Machine.restore refuses without touching the target Kvm", () => {
  /** The target's VM fds and mappings before and after fn. */
  async function untouched(kvm: Kvm, fn: () => Promise<unknown>): Promise<unknown> {
    const probe = kvm.createVm();
    const fd = probe.fd;
    probe.close();
    const mappings = kvm.memory.mappings().length;
    let err: unknown;
    try {
      await fn();
    } catch (e) {
      err = e;
    }
    expect(kvm.memory.mappings().length).toBe(mappings);
    const next = kvm.createVm();
    expect(next.fd).toBe(fd); // no VM was left open
    next.close();
    return err;
  }

  it("a state that fails validation (an unknown register id) is refused before any VM exists", async () => {
    const { state } = await sampleSections();
    state.vcpus[1].regs[5] = { id: 0x8030000002000021n, value: 0n };
    const kvm = await openKvm();
    const err = await untouched(kvm, () => Machine.restore(state, { kvm }));
    expect(err).toBeInstanceOf(MachineStateError);
    expect((err as MachineStateError).part).toBe("vcpu.1");
  });

  it("a state the target refuses late (another timer frequency) leaves no VM and no mapping behind", async () => {
    const { state } = await sampleSections();
    state.vcpus[0].regs.find((r) => r.id === REG_TIMER_FREQUENCY)!.value += 1n;
    const kvm = await openKvm();
    const err = await untouched(kvm, () => Machine.restore(state, { kvm }));
    expect(String(err)).toMatch(/EINVAL: KVM_SET_ONE_REG/);
  });

  it("prepare builds the VM, memslots and vCPUs from the layout alone; apply sets the state: the machine restore makes", async () => {
    const { state } = await sampleSections();
    const kvm = await openKvm();
    const prepared = await Machine.prepare({ config: state.config, memslots: state.memslots }, { kvm });
    expect(kvm.memory.mappings().length).toBeGreaterThan(0); // the memory is there before the state is
    const m = prepared.apply(state);
    const again = await Machine.restore(state, { kvm: await openKvm() });
    const { memslots: a, ...restA } = m.saveState();
    const { memslots: b, ...restB } = again.saveState();
    expect(restA).toEqual(restB);
    expect(a.map(({ hva: _, ...x }) => x)).toEqual(b.map(({ hva: _, ...x }) => x));
    expect(() => prepared.apply(state)).toThrow(/applied or released already/);
  });

  it("apply refuses a state of another layout than the prepared one, and leaves no VM and no mapping behind", async () => {
    const { state } = await sampleSections();
    const kvm = await openKvm();
    for (const [part, other] of [
      ["memslots", { ...state, memslots: state.memslots.map((x) => ({ ...x, flags: x.flags ^ KVM_MEM_LOG_DIRTY_PAGES })) }],
      ["machine", { ...state, config: { ...state.config, turn: (state.config.turn ?? 5) + 1 } }],
    ] as const) {
      const err = await untouched(kvm, async () => (await Machine.prepare(state, { kvm })).apply(other));
      expect(err).toBeInstanceOf(MachineStateError);
      expect((err as MachineStateError).part).toBe(part);
    }
  });

  it("memory: \"missing\" registers the new RAM MISSING before any vCPU exists", async () => {
    const { state } = await sampleSections(1);
    const kvm = await openKvm();
    const m = await Machine.restore(state, { kvm, memory: "missing" });
    expect(kvm.memory.isMissing(m.ramHva)).toBe(true);
  });

  it("adopt: a slot's memory the caller filled is taken over, not copied; a refused restore leaves it to the caller", async () => {
    const src = await Machine.create({ kvm: await openKvm(), memSize: 8n << 20n });
    src.load(image("memtest"), 512 * 1024);
    expect(src.run({ maxInstructions: 3_000_000n }).stop).toBe("limit");
    const state = src.saveState();
    const kvm = await openKvm();
    const [ram] = src.memoryRegions();
    const filled = kvm.memory.mmap(ram.size);
    kvm.memory.write(filled, src.kvm.memory.read(ram.hva, Number(ram.size)));
    const asked: number[] = [];
    const adopt = (slot: { slot: number; size: bigint }) => { asked.push(slot.slot); return slot.size === ram.size ? filled : null; };
    // Refused late (the target rejects a timer frequency): the filled mapping is still the caller's, untouched.
    const bad = structuredClone(state);
    bad.vcpus[0].regs.find((r) => r.id === REG_TIMER_FREQUENCY)!.value += 1n;
    await expect(Machine.restore(bad, { kvm, adopt })).rejects.toThrow(/EINVAL/);
    expect(kvm.memory.mappings().some((m) => m.start === filled)).toBe(true);
    const frames = kvm.memory.framesInUse;
    const dst = await Machine.restore(state, { kvm, adopt });
    expect(asked).toEqual([0, 0]);
    expect(dst.ramHva).toBe(filled);
    expect(kvm.memory.framesInUse - frames).toBeLessThan(8); // no second copy of the RAM
    expectSameFuture(src, dst, 2_000_000n);
  });
});
