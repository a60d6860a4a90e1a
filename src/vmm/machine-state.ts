// A Machine's whole non-RAM state as plain data (MachineState): what a
// snapshot or a migration carries next to guest RAM, taken between run()
// calls and restored into a fresh VM (machine.ts: saveState, Machine.restore).
//
// It holds the configuration, the memslot layout of every address space, each
// vCPU's value of every KVM_GET_REG_LIST id, the VMM's per-hart bookkeeping
// (HSM started, halted, pending IPI and fence), the UART and PLIC (whose
// outputs are the harts' external interrupt lines) and the SBI console's input.
// checkState refuses anything a restore could not apply, naming the part, so
// that a bad state is refused before the target Kvm gets a VM.
//
// What a vCPU holds outside ONE_REG does not move, as with KVM: the counters
// behind cycle and instret (a new vCPU counts from 0, as a new host's counters
// differ), an LR reservation (the next SC fails once, as the ISA allows), and
// the fraction of a timer tick in progress (time = instructions / 10 here, so
// the destination's time may lag the source's by one tick, 100 ns).

import type { Kvm } from "../kvm.js";
import type { Vm } from "../vm.js";
import type { Vcpu } from "../vcpu.js";
import { KVM_RUN, KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY, KVM_MEM_GUEST_MEMFD, KVM_USER_MEM_SLOTS, PAGE_SIZE,
  KVM_CAP } from "../uapi.js";
import { KVM_EXIT } from "../kvm-run.js";
import { REG_LIST, REG_TIMER_STATE, oneRegBytes } from "../riscv.js";
import { U64_MAX } from "../u64.js";
import { checkUartState, type UartState } from "./devices/uart16550.js";
import { checkPlicState, type PlicState } from "./devices/plic.js";
import { RAM_BASE, PLIC_NDEV } from "./platform.js";

/** How the Machine was made: what a restore recreates before any register is set. */
export interface MachineConfig {
  /** Guest RAM bytes (the slot at RAM_BASE of address space 0). */
  memSize: bigint;
  vcpus: number;
  /** The instruction budget of one KVM_RUN given to every vCPU; null: KVM's own. */
  turn: number | null;
  /** KVM_CAP_DIRTY_LOG_RING (acqRel: its _ACQ_REL form) as enabled; null: no ring. */
  dirtyRing: { bytes: number; acqRel: boolean } | null;
  /** KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2's argument as enabled (0: off; 1 or 3 with INITIALLY_SET). */
  manualProtect: number;
  /** Address spaces of the VM (1, or 2 on an instance configured for SMM's). */
  addressSpaces: number;
}

/** A memslot as machine.memoryRegions() lists it; hva is where the source mapped it (a layout detail). */
export interface MemoryRegionInfo {
  asId: number;
  slot: number;
  gpa: bigint;
  size: bigint;
  hva: bigint;
  flags: number;
}

/** One vCPU: every KVM_GET_REG_LIST id with its KVM_GET_ONE_REG value, in the list's order. */
export interface VcpuState {
  regs: { id: bigint; value: bigint }[];
}

/** The VMM's view of a hart (machine.ts keeps these per hart). */
export interface HartFlags {
  /** SBI HSM: STARTED (else STOPPED). */
  started: boolean;
  /** Exited KVM_EXIT_HLT in the current run() and waits for an IPI. */
  halted: boolean;
  /** An SBI IPI not yet delivered (sip.SSIP is set before the hart's next KVM_RUN). */
  ipiPending: boolean;
  /** A remote sfence not yet delivered (a full flush before the hart's next KVM_RUN). */
  flushPending: boolean;
}

/** The VMM bookkeeping machine.ts hands over (its own fields stay private). */
export interface VmmState {
  harts: HartFlags[];
  /** The hart that ran last: round-robin continues after it. */
  current: number;
  /** Bytes queued for the SBI console (legacy getchar, DBCN read), oldest first. */
  sbiInput: number[];
}

/**
 * What a VM is built from before any register is set: the configuration and
 * the memslot layout (Machine.prepare; a migration's destination builds it
 * at the hello, before the guest's pages arrive).
 */
export interface MachineLayout {
  config: MachineConfig;
  memslots: MemoryRegionInfo[];
}

export interface MachineState extends VmmState, MachineLayout {
  vcpus: VcpuState[];
  uart: UartState;
  plic: PlicState;
}

/**
 * A MachineState that cannot be restored. `part` names where, as the
 * sections of src/migration/vmstate.ts do: "machine" (config and current),
 * "memslots", "vcpu.N", "devices" (UART, PLIC) or "sbi" (harts, console input).
 */
export class MachineStateError extends Error {
  constructor(readonly part: string, readonly detail: string) {
    super(`machine state, ${part}: ${detail}`);
    this.name = "MachineStateError";
  }
}

/** Every memslot of every address space of vm, in gfn order per address space. */
export function memoryRegionsOf(vm: Vm): MemoryRegionInfo[] {
  const out: MemoryRegionInfo[] = [];
  for (let asId = 0; asId < vm.addressSpaces; asId++) {
    for (const s of vm.memslots({ asId })) {
      out.push({ asId, slot: s.id, gpa: s.guestPhysAddr, size: s.memorySize, hva: s.userspaceAddr, flags: s.flags });
    }
  }
  return out;
}

/**
 * Completes what a vCPU's last exit left open (an MMIO read's data, an SBI
 * call's return values): that lives in no register, so, as the KVM API asks
 * of a VMM before it saves a vCPU, KVM_RUN is entered once with
 * immediate_exit set; it finishes the operation and returns EINTR without
 * running an instruction. Other exits leave nothing open.
 */
function completePending(v: Vcpu): void {
  if (v.kvmRun.exitReason !== KVM_EXIT.MMIO && v.kvmRun.exitReason !== KVM_EXIT.RISCV_SBI) return;
  v.kvmRun.immediateExit = 1;
  try {
    v.ioctl(KVM_RUN);
  } finally {
    v.kvmRun.immediateExit = 0;
  }
}

/** The state of a Machine's VM, vCPUs and devices, with the VMM's bookkeeping; see Machine.saveState. */
export function captureState(vm: Vm, vcpus: readonly Vcpu[], config: Omit<MachineConfig, "manualProtect" | "addressSpaces">,
                             devices: { uart: UartState; plic: PlicState }, vmm: VmmState): MachineState {
  const memslots = memoryRegionsOf(vm);
  for (const s of memslots) {
    if ((s.flags & KVM_MEM_GUEST_MEMFD) !== 0) {
      throw new Error(`slot ${s.slot} of address space ${s.asId} is backed by a guest_memfd: its memory is not host memory a snapshot or migration can carry`);
    }
    if (s.slot >= KVM_USER_MEM_SLOTS) throw new Error(`slot ${s.slot} of address space ${s.asId} is an internal slot, which a VMM cannot recreate`);
  }
  const states = vcpus.map((v) => {
    completePending(v);
    return { regs: v.getRegList().map((id) => ({ id, value: v.getOneReg(id) })) };
  });
  return {
    config: { ...config, manualProtect: vm.debug.stats().manualDirtyLogProtect, addressSpaces: vm.addressSpaces },
    memslots, vcpus: states, ...devices,
    harts: vmm.harts.map((h) => ({ ...h })), current: vmm.current, sbiInput: [...vmm.sbiInput],
  };
}

/** KVM_MAX_VCPUS: KVM_CREATE_VCPU creates no more. */
export const MAX_VCPUS = 4096;

const isU64 = (v: unknown): v is bigint => typeof v === "bigint" && v >= 0n && v <= U64_MAX;
const isInt = (v: unknown, min: number, max: number): v is number => Number.isInteger(v) && (v as number) >= min && (v as number) <= max;
const pageAligned = (v: bigint) => v % BigInt(PAGE_SIZE) === 0n;

function checkConfig(s: Pick<MachineLayout, "config">): void {
  const fail = (detail: string): never => { throw new MachineStateError("machine", detail); };
  const c = s.config;
  if (typeof c !== "object" || c === null) fail("no config");
  if (!isU64(c.memSize) || c.memSize === 0n || !pageAligned(c.memSize)) fail(`memSize ${String(c.memSize)} is not a page-aligned u64 above 0`);
  if (!isInt(c.vcpus, 1, MAX_VCPUS)) fail(`vcpus ${String(c.vcpus)} is not 1..${MAX_VCPUS}`);
  if (c.turn !== null && !isInt(c.turn, 1, Number.MAX_SAFE_INTEGER)) fail(`turn ${String(c.turn)} is neither null nor a positive integer`);
  if (c.dirtyRing !== null && (typeof c.dirtyRing !== "object" || !isInt(c.dirtyRing.bytes, 1, 0xffffffff) ||
      typeof c.dirtyRing.acqRel !== "boolean")) fail("dirtyRing is neither null nor { bytes, acqRel }");
  if (![0, 1, 3].includes(c.manualProtect)) fail(`manualProtect ${String(c.manualProtect)} is not 0, 1 or 3`);
  if (c.addressSpaces !== 1 && c.addressSpaces !== 2) fail(`addressSpaces ${String(c.addressSpaces)} is not 1 or 2`);
}

function checkCurrent(s: MachineState): void {
  if (!isInt(s.current, 0, s.config.vcpus - 1)) throw new MachineStateError("machine", `current hart ${String(s.current)} is not one of the ${s.config.vcpus}`);
}

function checkMemslots(s: MachineLayout): void {
  const fail = (detail: string): never => { throw new MachineStateError("memslots", detail); };
  if (!Array.isArray(s.memslots)) fail("not a list");
  const seen = new Set<string>();
  for (const m of s.memslots) {
    if (typeof m !== "object" || m === null) fail("a slot is not an object");
    const name = `slot ${String(m?.slot)} of address space ${String(m?.asId)}`;
    if (!isInt(m.asId, 0, s.config.addressSpaces - 1)) fail(`${name}: no such address space`);
    if (!isInt(m.slot, 0, KVM_USER_MEM_SLOTS - 1)) fail(`${name}: not a user slot id`);
    if (seen.has(`${m.asId}/${m.slot}`)) fail(`${name}: listed twice`);
    seen.add(`${m.asId}/${m.slot}`);
    if (!isInt(m.flags, 0, KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY)) fail(`${name}: flags ${String(m.flags)} are not LOG_DIRTY_PAGES|READONLY`);
    for (const f of ["gpa", "size", "hva"] as const) {
      if (!isU64(m[f]) || !pageAligned(m[f])) fail(`${name}: ${f} ${String(m[f])} is not a page-aligned u64`);
    }
    if (m.size === 0n || m.gpa + m.size > U64_MAX + 1n || m.hva + m.size > U64_MAX + 1n) fail(`${name}: empty or wraps`);
  }
  for (let as = 0; as < s.config.addressSpaces; as++) {
    const slots = s.memslots.filter((m) => m.asId === as).sort((a, b) => (a.gpa < b.gpa ? -1 : 1));
    slots.forEach((m, i) => {
      if (i > 0 && slots[i - 1].gpa + slots[i - 1].size > m.gpa) fail(`slots ${slots[i - 1].slot} and ${m.slot} of address space ${as} overlap`);
    });
  }
  if (!s.memslots.some((m) => m.asId === 0 && m.gpa === RAM_BASE && m.size === s.config.memSize)) {
    fail(`no RAM slot (address space 0, gpa ${RAM_BASE.toString(16)}, memSize bytes)`);
  }
}

function checkVcpus(s: MachineState): void {
  if (!Array.isArray(s.vcpus) || s.vcpus.length !== s.config.vcpus) {
    throw new MachineStateError("machine", `${Array.isArray(s.vcpus) ? s.vcpus.length : "no"} vCPU states for ${s.config.vcpus} vCPUs`);
  }
  s.vcpus.forEach((v, n) => {
    const fail = (detail: string): never => { throw new MachineStateError(`vcpu.${n}`, detail); };
    if (!Array.isArray(v?.regs) || v.regs.length !== REG_LIST.length) {
      fail(`${Array.isArray(v?.regs) ? v.regs.length : "no"} registers, the vCPU has ${REG_LIST.length}`);
    }
    v.regs.forEach((r, i) => {
      if (r.id !== REG_LIST[i]) {
        fail(REG_LIST.includes(r.id) ? `register ${i} is 0x${r.id.toString(16)}, the list has 0x${REG_LIST[i].toString(16)} there`
          : `register id 0x${String(r.id?.toString(16))} is not one of this vCPU's`);
      }
      if (!isU64(r.value) || r.value >> BigInt(8 * oneRegBytes(r.id)) !== 0n) fail(`register 0x${r.id.toString(16)}: value ${String(r.value)} does not fit it`);
    });
  });
}

function checkDevices(s: MachineState): void {
  try {
    checkUartState(s.uart);
    checkPlicState(s.plic, PLIC_NDEV, s.config.vcpus);
  } catch (e) {
    throw new MachineStateError("devices", e instanceof Error ? e.message : String(e));
  }
}

function checkSbi(s: MachineState): void {
  const fail = (detail: string): never => { throw new MachineStateError("sbi", detail); };
  if (!Array.isArray(s.harts) || s.harts.length !== s.config.vcpus) fail(`hart flags for ${Array.isArray(s.harts) ? s.harts.length : "no"} harts, not ${s.config.vcpus}`);
  s.harts.forEach((h, i) => {
    for (const f of ["started", "halted", "ipiPending", "flushPending"] as const) {
      if (typeof h?.[f] !== "boolean") fail(`hart ${i}: ${f} is not a boolean`);
    }
  });
  if (!Array.isArray(s.sbiInput) || !s.sbiInput.every((b) => isInt(b, 0, 255))) fail("the console input is not a list of bytes");
}

/** Refuses (MachineStateError naming the part) a layout a prepare could not build: checkState's checks of those parts. */
export function checkLayout(l: MachineLayout): void {
  if (typeof l !== "object" || l === null) throw new MachineStateError("machine", "not a layout");
  checkConfig(l);
  checkMemslots(l);
}

/**
 * Refuses (MachineStateError naming the part) a state whose config or
 * memslots are not the layout a machine was prepared for.
 */
export function checkSameLayout(prepared: MachineLayout, s: MachineLayout): void {
  const c = prepared.config, d = s.config;
  const ring = (r: MachineConfig["dirtyRing"]) => (r === null ? "none" : `${r.bytes}/${r.acqRel}`);
  if (c.memSize !== d.memSize || c.vcpus !== d.vcpus || c.turn !== d.turn || ring(c.dirtyRing) !== ring(d.dirtyRing) ||
      c.manualProtect !== d.manualProtect || c.addressSpaces !== d.addressSpaces) {
    throw new MachineStateError("machine", "the configuration is not the one the machine was prepared for");
  }
  const key = (m: MemoryRegionInfo) => `${m.asId}/${m.slot}/${m.flags}/${m.gpa}/${m.size}/${m.hva}`;
  const a = prepared.memslots.map(key).sort(), b = s.memslots.map(key).sort();
  if (a.length !== b.length || a.some((k, i) => k !== b[i])) {
    throw new MachineStateError("memslots", "the memslot layout is not the one the machine was prepared for");
  }
}

/** Refuses (MachineStateError naming the part) a state a restore could not apply; run before anything is created. */
export function checkState(s: MachineState): void {
  if (typeof s !== "object" || s === null) throw new MachineStateError("machine", "not a state");
  checkConfig(s);
  checkCurrent(s);
  checkMemslots(s);
  checkVcpus(s);
  checkDevices(s);
  checkSbi(s);
}

/** What buildVm made: the VM, its vCPUs and the RAM slot's new hva; release() undoes it all. */
export interface BuiltVm { vm: Vm; vcpus: Vcpu[]; ramHva: bigint; release(): void }

/**
 * A fresh VM on kvm as the state describes it, before any register is set:
 * capabilities (the dirty ring before the vCPUs, as it must be), the memslots
 * over new host memory (all zero, or registered MISSING with
 * kvm.memory.registerMissing before a vCPU exists) laid out as the source's
 * were (slots that shared host memory share it again), and the vCPUs with
 * their turn budget. On failure the VM is closed and the memory unmapped again.
 */
export function buildVm(kvm: Kvm, s: MachineLayout, memory: "zero" | "missing",
                        adopt?: (slot: { asId: number; slot: number; gpa: bigint; size: bigint }) => bigint | null): BuiltVm {
  const c = s.config;
  const vm = kvm.createVm(c.addressSpaces === 1 ? {} : { addressSpaces: 2 });
  const mapped: { at: bigint; length: bigint }[] = [];
  const release = () => {
    vm.close();
    for (const r of mapped) kvm.memory.munmap(r.at, r.length);
  };
  try {
    if (c.manualProtect !== 0) vm.enableCap(KVM_CAP.MANUAL_DIRTY_LOG_PROTECT2, [c.manualProtect]);
    if (c.dirtyRing !== null) vm.enableDirtyRing(c.dirtyRing.bytes, c.dirtyRing.acqRel);
    // The source's host ranges, merged where slots overlap in host memory: one new mapping each.
    const ranges: { lo: bigint; hi: bigint; at: bigint }[] = [];
    for (const m of [...s.memslots].sort((a, b) => (a.hva < b.hva ? -1 : 1))) {
      const last = ranges[ranges.length - 1];
      if (last && m.hva <= last.hi) last.hi = m.hva + m.size > last.hi ? m.hva + m.size : last.hi;
      else ranges.push({ lo: m.hva, hi: m.hva + m.size, at: 0n });
    }
    for (const r of ranges) {
      // A range that is one slot's alone may be memory the caller filled already (RestoreOptions.adopt).
      const alone = s.memslots.filter((m) => m.hva >= r.lo && m.hva < r.hi);
      const given = memory === "zero" && adopt && alone.length === 1 && alone[0].hva === r.lo && alone[0].size === r.hi - r.lo
        ? adopt({ asId: alone[0].asId, slot: alone[0].slot, gpa: alone[0].gpa, size: alone[0].size }) : null;
      if (given !== null) {
        r.at = given; // not in `mapped`: a failed restore leaves it to the caller
        continue;
      }
      r.at = kvm.memory.mmap(r.hi - r.lo);
      mapped.push({ at: r.at, length: r.hi - r.lo });
      if (memory === "missing") kvm.memory.registerMissing(r.at, r.hi - r.lo);
    }
    const hvaOf = (hva: bigint) => {
      const r = ranges.find((x) => hva >= x.lo && hva < x.hi)!;
      return r.at + (hva - r.lo);
    };
    for (const m of s.memslots) {
      vm.setUserMemoryRegion({ slot: m.slot, asId: m.asId, guestPhysAddr: m.gpa, memorySize: m.size,
        userspaceAddr: hvaOf(m.hva), flags: m.flags });
    }
    const vcpus = Array.from({ length: c.vcpus }, (_, i) => vm.createVcpu(i));
    if (c.turn !== null) for (const v of vcpus) v.setBudget(c.turn);
    const ram = s.memslots.find((m) => m.asId === 0 && m.gpa === RAM_BASE)!;
    return { vm, vcpus, ramHva: hvaOf(ram.hva), release };
  } catch (e) {
    release();
    throw e;
  }
}

/**
 * Sets every saved register of a vCPU in the list's order (core, CSRs, timer,
 * FP), as the kernel takes them: the timer's frequency is only checked (the
 * host's is fixed), time restores the guest's clock, compare its deadline;
 * state is written only when ON, as QEMU does (OFF is refused for a timer
 * that is not set, and compare already says whether one is).
 */
export function restoreRegisters(v: Vcpu, state: VcpuState): void {
  for (const { id, value } of state.regs) {
    if (id === REG_TIMER_STATE && value === 0n) continue;
    v.setOneReg(id, value);
  }
}
