// A MachineState (src/vmm/machine-state.ts) as sections (section.ts), one per
// concern, as QEMU's vmstate sections: what a snapshot file and a migration's
// device-state message carry. Each is version 1:
//
//   "machine"   JSON: the config and the round-robin position (bigints as decimal strings)
//   "memslots"  u32 count, then per slot: u32 as id, u32 slot id, u32 flags, u32 0, u64 gpa, u64 size, u64 hva
//   "vcpu.N"    u32 count, then count (u64 id, u64 value) pairs: vCPU N's KVM_GET_REG_LIST registers
//   "devices"   JSON: { uart, plic } as the devices' save() gives them
//   "sbi"       JSON: { harts: per-hart HSM / halt / pending flags, input: the SBI console's bytes }
//
// All little endian. decodeState checks every length, count, version and
// value (the register ids against this vCPU's list, the vCPU count against
// the config) and throws SectionError naming the section; sections with
// other names are left to their readers.

import { SectionError, takeSection, type Section } from "./section.js";
import { checkState, checkLayout, MachineStateError, MAX_VCPUS, type MachineState, type MachineLayout, type MachineConfig, type MemoryRegionInfo,
  type VcpuState } from "../vmm/machine-state.js";

const VERSION = 1;
const SLOT_BYTES = 40;
const PAIR_BYTES = 16;
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder("utf-8", { fatal: true });

/** JSON with bigints as decimal strings. */
const json = (v: unknown): Uint8Array => utf8.encode(JSON.stringify(v, (_, x) => (typeof x === "bigint" ? x.toString() : x)));

export function encodeState(state: MachineState): Section[] {
  const c = state.config;
  const machine = { memSize: c.memSize, vcpus: c.vcpus, turn: c.turn, dirtyRing: c.dirtyRing, manualProtect: c.manualProtect,
    addressSpaces: c.addressSpaces, current: state.current };
  const slots = new Uint8Array(4 + SLOT_BYTES * state.memslots.length);
  const sv = new DataView(slots.buffer);
  sv.setUint32(0, state.memslots.length, true);
  state.memslots.forEach((m, i) => {
    const at = 4 + i * SLOT_BYTES;
    sv.setUint32(at, m.asId, true);
    sv.setUint32(at + 4, m.slot, true);
    sv.setUint32(at + 8, m.flags, true);
    sv.setBigUint64(at + 16, m.gpa, true);
    sv.setBigUint64(at + 24, m.size, true);
    sv.setBigUint64(at + 32, m.hva, true);
  });
  const vcpus = state.vcpus.map((v, n): Section => {
    const bytes = new Uint8Array(4 + PAIR_BYTES * v.regs.length);
    const dv = new DataView(bytes.buffer);
    dv.setUint32(0, v.regs.length, true);
    v.regs.forEach((r, i) => {
      dv.setBigUint64(4 + i * PAIR_BYTES, r.id, true);
      dv.setBigUint64(12 + i * PAIR_BYTES, r.value, true);
    });
    return { name: `vcpu.${n}`, version: VERSION, payload: bytes };
  });
  return [
    { name: "machine", version: VERSION, payload: json(machine) },
    { name: "memslots", version: VERSION, payload: slots },
    ...vcpus,
    { name: "devices", version: VERSION, payload: json({ uart: state.uart, plic: state.plic }) },
    { name: "sbi", version: VERSION, payload: json({ harts: state.harts, input: state.sbiInput }) },
  ];
}

/** A JSON section's object. */
function parseJson(s: Section): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(fromUtf8.decode(s.payload));
  } catch (e) {
    throw new SectionError(s.name, `not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new SectionError(s.name, "not a JSON object");
  return v as Record<string, unknown>;
}

/** A decimal u64 string as a bigint (anything else: SectionError). */
function u64Of(section: string, field: string, v: unknown): bigint {
  if (typeof v !== "string" || !/^(0|[1-9][0-9]{0,19})$/.test(v)) throw new SectionError(section, `${field} is not a decimal u64`);
  return BigInt(v);
}

/** A binary section's payload: a u32 count and count records of `bytes` each, exactly. */
function records(s: Section, bytes: number, what: string): DataView {
  const dv = new DataView(s.payload.buffer, s.payload.byteOffset, s.payload.byteLength);
  if (s.payload.length < 4) throw new SectionError(s.name, `truncated: no ${what} count`);
  const n = dv.getUint32(0, true);
  if (s.payload.length !== 4 + n * bytes) {
    throw new SectionError(s.name, `${n} ${what} need ${4 + n * bytes} bytes, the payload has ${s.payload.length}`);
  }
  return dv;
}

function decodeMachine(s: Section): { config: MachineConfig; current: number } {
  const o = parseJson(s);
  const ring = o.dirtyRing as MachineConfig["dirtyRing"];
  const config = { memSize: u64Of(s.name, "memSize", o.memSize), vcpus: o.vcpus as number, turn: o.turn as number | null,
    dirtyRing: ring, manualProtect: o.manualProtect as number, addressSpaces: o.addressSpaces as number };
  return { config, current: o.current as number };
}

function decodeMemslots(s: Section): MemoryRegionInfo[] {
  const dv = records(s, SLOT_BYTES, "slots");
  return Array.from({ length: dv.getUint32(0, true) }, (_, i) => {
    const at = 4 + i * SLOT_BYTES;
    if (dv.getUint32(at + 12, true) !== 0) throw new SectionError(s.name, `slot record ${i}: reserved bytes are not 0`);
    return { asId: dv.getUint32(at, true), slot: dv.getUint32(at + 4, true), flags: dv.getUint32(at + 8, true),
      gpa: dv.getBigUint64(at + 16, true), size: dv.getBigUint64(at + 24, true), hva: dv.getBigUint64(at + 32, true) };
  });
}

function decodeVcpu(s: Section): VcpuState {
  const dv = records(s, PAIR_BYTES, "registers");
  return { regs: Array.from({ length: dv.getUint32(0, true) }, (_, i) =>
    ({ id: dv.getBigUint64(4 + i * PAIR_BYTES, true), value: dv.getBigUint64(12 + i * PAIR_BYTES, true) })) };
}

/** The MachineLayout of encodeState's "machine" and "memslots" sections, checked as decodeState checks them. */
export function decodeLayout(sections: readonly Section[]): MachineLayout {
  const layout = { config: decodeMachine(takeSection(sections, "machine", VERSION)).config,
    memslots: decodeMemslots(takeSection(sections, "memslots", VERSION)) };
  try {
    checkLayout(layout);
  } catch (e) {
    if (e instanceof MachineStateError) throw new SectionError(e.part, e.detail);
    throw e;
  }
  return layout;
}

/** The MachineState of encodeState's sections; SectionError naming the section for anything malformed or mismatched. */
export function decodeState(sections: readonly Section[]): MachineState {
  const { config, current } = decodeMachine(takeSection(sections, "machine", VERSION));
  const memslots = decodeMemslots(takeSection(sections, "memslots", VERSION));
  if (!Number.isInteger(config.vcpus) || config.vcpus < 1 || config.vcpus > MAX_VCPUS) {
    throw new SectionError("machine", `vcpus ${String(config.vcpus)} is not 1..${MAX_VCPUS}`);
  }
  for (const s of sections) {
    const n = /^vcpu\.(0|[1-9][0-9]*)$/.exec(s.name);
    if (s.name.startsWith("vcpu.") && (!n || Number(n[1]) >= config.vcpus)) {
      throw new SectionError(s.name, `no such vCPU: the machine has ${config.vcpus}`);
    }
  }
  const vcpus = Array.from({ length: config.vcpus }, (_, n) => decodeVcpu(takeSection(sections, `vcpu.${n}`, VERSION)));
  const devices = parseJson(takeSection(sections, "devices", VERSION));
  const sbi = parseJson(takeSection(sections, "sbi", VERSION));
  const state = { config, current, memslots, vcpus, uart: devices.uart, plic: devices.plic, harts: sbi.harts,
    sbiInput: sbi.input } as MachineState;
  try {
    checkState(state);
  } catch (e) {
    if (e instanceof MachineStateError) throw new SectionError(e.part, e.detail);
    throw e;
  }
  return state;
}
