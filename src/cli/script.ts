// The conformance-script runner (shared/conformance/README.md): one result
// line per operation, in the suite's vocabulary. Runs against a Kvm instance.

import { Kvm, capNumber } from "../kvm.js";
import type { Vm } from "../vm.js";
import type { Vcpu } from "../vcpu.js";
import type { GuestMemfd } from "../guest-memfd.js";
import { errnoName } from "../errors.js";
import { KVM_EXIT, EXIT_NAMES } from "../kvm-run.js";
import { PROT_NONE, PROT_READ, PROT_WRITE } from "../host-memory.js";
import {
  KVM_CHECK_EXTENSION, KVM_CREATE_VM, KVM_ENABLE_CAP, KVM_SET_USER_MEMORY_REGION, KVM_SET_USER_MEMORY_REGION2,
  kvm_userspace_memory_region, kvm_userspace_memory_region2, kvm_enable_cap, KVM_CAP, KVM_GET_DIRTY_LOG,
  KVM_CLEAR_DIRTY_LOG, KVM_RESET_DIRTY_RINGS, kvm_dirty_log, kvm_clear_dirty_log,
} from "../uapi.js";

const GIB = 1n << 30n;
const HOSTMAP_BASE = 0x100000000000n;
const HOSTMAP_STRIDE = 64n * GIB;
const HOSTMAP_MAX = 32n * GIB;
const CODE_SLOT = 32000;
const CODE_GPA = 0xfff00000n;
const CODE_SIZE = 1n << 20n;

const CAP_NAMES: Record<string, number> = {
  nr_memslots: KVM_CAP.NR_MEMSLOTS, readonly_mem: KVM_CAP.READONLY_MEM,
  multi_address_space: KVM_CAP.MULTI_ADDRESS_SPACE, sync_mmu: KVM_CAP.SYNC_MMU,
  manual_protect: KVM_CAP.MANUAL_DIRTY_LOG_PROTECT2, dirty_ring: KVM_CAP.DIRTY_LOG_RING,
  dirty_ring_acq_rel: KVM_CAP.DIRTY_LOG_RING_ACQ_REL, dirty_ring_with_bitmap: KVM_CAP.DIRTY_LOG_RING_WITH_BITMAP,
  user_memory2: KVM_CAP.USER_MEMORY2, memory_fault_info: KVM_CAP.MEMORY_FAULT_INFO,
  memory_attributes: KVM_CAP.MEMORY_ATTRIBUTES, guest_memfd: KVM_CAP.GUEST_MEMFD, vm_types: KVM_CAP.VM_TYPES,
  guest_memfd_flags: KVM_CAP.GUEST_MEMFD_FLAGS,
};

/** Operations whose capability this build does not have yet. */
const UNSUPPORTED = new Set<string>([]);
const GUEST_LIMIT = 64n * GIB;
const MAX_EXITS = 64;
const TIMEOUT_MS = 2000;
/** a7 of the runner guest's "access done" ecall. */
const RUNNER_DONE_EID = 0x52554e52n;

/**
 * The runner's guest code, at CODE_GPA: per access kind an instruction and the
 * ecall that reports it done. Stores (sb/sh/sw/sd a1, 0(a0)) at 8*k, loads
 * (lbu/lhu/lwu/ld a0, 0(a0)) at 0x20 + 8*k, k = log2(size).
 */
function runnerCode(): Uint8Array {
  const words: number[] = [];
  const ecall = 0x00000073;
  for (const f3 of [0, 1, 2, 3]) words.push(((11 << 20) | (10 << 15) | (f3 << 12) | 0x23) >>> 0, ecall);
  for (const f3 of [4, 5, 6, 3]) words.push(((10 << 15) | (f3 << 12) | (10 << 7) | 0x03) >>> 0, ecall);
  const out = new Uint8Array(words.length * 4);
  const dv = new DataView(out.buffer);
  words.forEach((w, i) => dv.setUint32(i * 4, w, true));
  return out;
}
const KNOWN = new Set(["vm", "vcpu", "cap", "check", "hostmap", "hostunmap", "poke", "peek", "set", "set2", "write", "read",
  "getlog", "clearlog", "ring", "ringreset", "gmem", "gmemclose", ...UNSUPPORTED]);

/** "0,5-7,63" for sorted numbers; "none" when empty. */
export function listOf(xs: number[]): string {
  if (xs.length === 0) return "none";
  const parts: string[] = [];
  for (let i = 0; i < xs.length;) {
    let j = i;
    while (j + 1 < xs.length && xs[j + 1] === xs[j] + 1) j++;
    parts.push(j === i ? `${xs[i]}` : `${xs[i]}-${xs[j]}`);
    i = j + 1;
  }
  return parts.join(",");
}

/** Ring entries in order, runs of one slot with offsets ascending by one compressed: "0:6-7,0:3". */
function ringListOf(entries: { slot: number; offset: bigint }[]): string {
  if (entries.length === 0) return "none";
  const parts: string[] = [];
  for (let i = 0; i < entries.length;) {
    let j = i;
    while (j + 1 < entries.length && entries[j + 1].slot === entries[i].slot && entries[j + 1].offset === entries[j].offset + 1n) j++;
    parts.push(`${entries[i].slot}:${entries[i].offset}${j > i ? `-${entries[j].offset}` : ""}`);
    i = j + 1;
  }
  return parts.join(",");
}

class OpError extends Error {}
const err = (what: string): never => { throw new OpError(`error ${what}`); };

interface HostMapping { start: bigint; size: bigint; ro: boolean; unmapped: boolean }

function parseNum(tok: string | undefined): bigint {
  if (tok === undefined) return err("syntax");
  const m = /^(-)?(0x[0-9a-fA-F]+|[0-9]+)$/.exec(tok);
  if (!m) return err("syntax");
  const v = BigInt(m[2]);
  if (v >= 1n << 64n) return err("syntax");
  return BigInt.asUintN(64, m[1] ? -v : v);
}

/** The tokens of one script line: the comment dropped, split on whitespace. */
const tokensOf = (line: string) => line.replace(/#.*/, "").trim().split(/\s+/).filter(Boolean);
const isName = (t: string) => /^[A-Za-z][A-Za-z0-9_]{0,30}$/.test(t);

export class ScriptRunner {
  private vm: Vm | null = null;
  private vcpu: Vcpu | null = null;
  private readonly maps = new Map<string, HostMapping>();
  /** guest_memfd files by name (one namespace with the host mappings); they outlive `vm`. */
  private readonly gmems = new Map<string, GuestMemfd>();
  private hostmaps = 0n;
  private codeHva: bigint | null = null;

  constructor(private readonly kvm: Kvm) {}

  /** The current VM and vCPU (null when there is none), for tools and tests. */
  get currentVm(): Vm | null { return this.vm; }
  get currentVcpu(): Vcpu | null { return this.vcpu; }

  /** Runs every operation of a script; returns one line per operation. */
  run(text: string): string[] {
    const out: string[] = [];
    for (const raw of text.split("\n")) {
      const toks = tokensOf(raw);
      if (toks.length === 0) continue;
      out.push(this.op(toks));
    }
    return out;
  }

  /** Runs one script line (a trailing comment is allowed); returns its output line. */
  line(text: string): string {
    return this.op(tokensOf(text));
  }

  op(toks: string[]): string {
    try {
      return this.exec(toks[0], toks.slice(1));
    } catch (e) {
      if (e instanceof OpError) return e.message;
      throw e;
    }
  }

  private needVm(): Vm {
    return this.vm ?? err("novm");
  }

  private result(r: number): string {
    return r < 0 ? errnoName(-r) : "ok";
  }

  private hva(tok: string | undefined): bigint {
    if (tok === undefined) return err("syntax");
    const m = /^([A-Za-z][A-Za-z0-9_]*)([+-].+)?$/.exec(tok);
    if (!m) return parseNum(tok);
    if (!isName(m[1])) return err("syntax");
    const map = this.maps.get(m[1]) ?? err("badid");
    if (!m[2]) return map.start;
    const off = parseNum(m[2].slice(1));
    return BigInt.asUintN(64, m[2][0] === "+" ? map.start + off : map.start - off);
  }

  private exec(op: string, a: string[]): string {
    if (!KNOWN.has(op)) return err("unknown-op");
    if (UNSUPPORTED.has(op)) return err("unsupported");
    switch (op) {
      case "vm": return this.opVm(a);
      case "vcpu": return this.ensureVcpu();
      case "cap": return this.opCap(a);
      case "check": return this.opCheck(a);
      case "hostmap": return this.opHostmap(a);
      case "hostunmap": return this.opHostunmap(a);
      case "peek": case "poke": return this.opPeekPoke(op, a);
      case "set": case "set2": return this.opSet(op, a);
      case "write": case "read": return this.opAccess(op === "write", a);
      case "getlog": return this.opGetlog(a);
      case "clearlog": return this.opClearlog(a);
      case "ring": return this.opRing(a);
      case "ringreset": return this.opRingreset(a);
      case "gmem": return this.opGmem(a);
      case "gmemclose": return this.opGmemclose(a);
    }
    return err("unknown-op");
  }

  private opVm(a: string[]): string {
    const type = a.length > 0 ? parseNum(a[0]) : 0n;
    if (a.length > 1) return err("syntax");
    this.closeVm();
    const fd = this.kvm.ioctl(KVM_CREATE_VM, type);
    if (fd < 0) return errnoName(-fd);
    this.vm = this.kvm.vmFromFd(fd);
    return "ok";
  }

  private closeVm(): void {
    this.vm?.close();
    this.vm = null;
    this.vcpu = null;
  }

  /** The runner's code slot, then vCPU 0 (README "Reserved resources"). */
  private ensureVcpu(): string {
    const vm = this.needVm();
    if (this.vcpu) return "ok";
    if (this.codeHva === null) {
      this.codeHva = this.kvm.memory.mmap(CODE_SIZE);
      this.kvm.memory.write(this.codeHva, runnerCode());
    }
    const region = kvm_userspace_memory_region.encode({
      slot: CODE_SLOT, flags: 0, guest_phys_addr: CODE_GPA, memory_size: CODE_SIZE, userspace_addr: this.codeHva,
    });
    const r = vm.ioctl(KVM_SET_USER_MEMORY_REGION, region);
    if (r < 0) return err(`codeslot ${errnoName(-r)}`);
    try {
      this.vcpu = vm.createVcpu(0);
    } catch (e) {
      return errnoName((e as { errno: number }).errno);
    }
    return "ok";
  }

  private opCap(a: string[]): string {
    const vm = this.needVm();
    if (a.length === 0) return err("syntax");
    let cap: bigint, arg0: bigint, flags = 0n;
    if (a[0] === "manual_protect") {
      if (a.length > 2) return err("syntax");
      cap = BigInt(KVM_CAP.MANUAL_DIRTY_LOG_PROTECT2);
      arg0 = a.length === 1 ? 1n : a[1] === "initially_set" ? 3n : parseNum(a[1]);
    } else if (a[0] === "dirty_ring" || a[0] === "dirty_ring_acq_rel") {
      if (a.length !== 2) return err("syntax");
      cap = BigInt(a[0] === "dirty_ring" ? KVM_CAP.DIRTY_LOG_RING : KVM_CAP.DIRTY_LOG_RING_ACQ_REL);
      arg0 = parseNum(a[1]);
    } else {
      if (a.length < 2 || a.length > 3) return err("syntax");
      cap = parseNum(a[0]);
      arg0 = parseNum(a[1]);
      if (a.length === 3) flags = parseNum(a[2]);
    }
    const bytes = kvm_enable_cap.encode({ cap: BigInt.asUintN(32, cap), flags: BigInt.asUintN(32, flags), arg0 });
    return this.result(vm.ioctl(KVM_ENABLE_CAP, bytes));
  }

  private opCheck(a: string[]): string {
    if (a.length !== 1) return err("syntax");
    const cap = CAP_NAMES[a[0]] !== undefined ? BigInt(CAP_NAMES[a[0]]) : parseNum(a[0]);
    const r = this.vm ? this.vm.ioctl(KVM_CHECK_EXTENSION, cap) : this.kvm.ioctl(KVM_CHECK_EXTENSION, cap);
    return r < 0 ? errnoName(-r) : `ok ${r}`;
  }

  private opHostmap(a: string[]): string {
    if (a.length < 2 || a.length > 3 || !isName(a[0])) return err("syntax");
    if (a.length === 3 && a[2] !== "ro") return err("syntax");
    const size = parseNum(a[1]);
    if (this.maps.has(a[0]) || this.gmems.has(a[0])) return err("exists");
    if (size > HOSTMAP_MAX) return err("toobig");
    const rounded = (size + 0xfffn) & ~0xfffn;
    const ro = a.length === 3;
    const reserve = HOSTMAP_BASE + this.hostmaps * HOSTMAP_STRIDE;
    try {
      this.kvm.memory.mmap(HOSTMAP_STRIDE, { addr: reserve, prot: PROT_NONE });
      const start = this.kvm.memory.mmap(rounded, { addr: reserve + GIB, prot: ro ? PROT_READ : PROT_READ | PROT_WRITE });
      this.maps.set(a[0], { start, size: rounded, ro, unmapped: false });
    } catch (e) {
      return errnoName((e as { errno: number }).errno);
    }
    this.hostmaps++;
    return "ok";
  }

  private opHostunmap(a: string[]): string {
    if (a.length !== 1 || !isName(a[0])) return err("syntax");
    const m = this.maps.get(a[0]) ?? err("badid");
    if (m.unmapped) return err("unmapped");
    // The pages go and the range stays reserved (PROT_NONE), never reused.
    this.kvm.memory.mmap(m.size, { addr: m.start, prot: PROT_NONE });
    m.unmapped = true;
    return "ok";
  }

  private opPeekPoke(op: string, a: string[]): string {
    const poke = op === "poke";
    const nargs = poke ? 2 : 1;
    if (a.length < nargs || a.length > nargs + 1) return err("syntax");
    const m = /^([A-Za-z][A-Za-z0-9_]*)(?:([+-])(.+))?$/.exec(a[0]);
    const value = poke ? parseNum(a[1]) : 0n;
    const size = a.length > nargs ? parseNum(a[nargs]) : 4n;
    if (!m || !isName(m[1])) {
      parseNum(a[0]);
      return err("badid");
    }
    const map = this.maps.get(m[1]) ?? err("badid");
    const off = m[3] === undefined ? 0n : parseNum(m[3]);
    if (size !== 1n && size !== 2n && size !== 4n && size !== 8n) return err("size");
    if (map.unmapped) return err("unmapped");
    if (m[2] === "-" && off !== 0n) return err("range");
    if (off + size > map.size) return err("range");
    if (poke && map.ro) return err("readonly");
    const at = map.start + off;
    const sz = Number(size) as 1 | 2 | 4 | 8;
    if (poke) {
      this.kvm.memory.poke(at, value, sz);
      return "ok";
    }
    return `ok 0x${this.kvm.memory.peek(at, sz).toString(16)}`;
  }

  private opSet(op: string, a: string[]): string {
    const v2 = op === "set2";
    if (a.length !== (v2 ? 7 : 5)) return err("syntax");
    const slot = BigInt.asUintN(32, parseNum(a[0]));
    const flags = BigInt.asUintN(32, parseNum(a[1]));
    const gpa = parseNum(a[2]);
    const size = parseNum(a[3]);
    const hva = this.hva(a[4]);
    let fd = 0n, off = 0n;
    if (v2) {
      fd = this.gmemFd(a[5]);
      off = parseNum(a[6]);
    }
    if (slot === BigInt(CODE_SLOT)) return err("reserved");
    const vm = this.needVm();
    const fields = { slot, flags, guest_phys_addr: gpa, memory_size: size, userspace_addr: hva };
    const bytes = v2
      ? kvm_userspace_memory_region2.encode({ ...fields, guest_memfd_offset: off, guest_memfd: fd })
      : kvm_userspace_memory_region.encode(fields);
    return this.result(vm.ioctl(v2 ? KVM_SET_USER_MEMORY_REGION2 : KVM_SET_USER_MEMORY_REGION, bytes));
  }

  /** One guest store or load instruction, with the exits it causes. */
  private opAccess(write: boolean, a: string[]): string {
    const n = write ? 2 : 1;
    if (a.length < n || a.length > n + 1) return err("syntax");
    const gpa = parseNum(a[0]);
    const value = write ? parseNum(a[1]) : 0n;
    const size = a.length > n ? parseNum(a[n]) : 4n;
    this.needVm();
    if (size !== 1n && size !== 2n && size !== 4n && size !== 8n) return err("size");
    if (gpa + size > GUEST_LIMIT) return err("range");
    if (gpa < CODE_GPA + CODE_SIZE && gpa + size > CODE_GPA) return err("reserved");
    const created = this.ensureVcpu();
    if (created !== "ok") return created;
    const vcpu = this.vcpu!;
    const k = [1n, 2n, 4n, 8n].indexOf(size);
    vcpu.setReg(10, gpa);
    vcpu.setReg(11, value);
    vcpu.setReg(17, RUNNER_DONE_EID);
    vcpu.pc = CODE_GPA + BigInt((write ? 0 : 0x20) + 8 * k);
    const parts: string[] = [];
    const deadline = Date.now() + TIMEOUT_MS;
    for (let exits = 0; exits < MAX_EXITS; exits++) {
      const exit = vcpu.run();
      const run = vcpu.kvmRun;
      if (exit.errno !== 0 && exit.errno !== 4) {
        let line = errnoName(exit.errno);
        if (exit.reason === KVM_EXIT.MEMORY_FAULT) {
          const f = run.memoryFault;
          line += ` memory_fault gpa=0x${f.gpa.toString(16)} size=0x${f.size.toString(16)} flags=0x${f.flags.toString(16)}`;
        }
        parts.push(line);
        return parts.join("; ");
      }
      switch (exit.reason) {
        case KVM_EXIT.MMIO: {
          const m = run.mmio;
          if (m.isWrite) {
            const bytes = Array.from(m.data.subarray(0, m.len), (b) => b.toString(16).padStart(2, "0")).join("");
            parts.push(`mmio write 0x${m.physAddr.toString(16)} ${m.len} ${bytes}`);
          } else {
            parts.push(`mmio read 0x${m.physAddr.toString(16)} ${m.len}`);
            m.data.fill(0);
          }
          continue;
        }
        case KVM_EXIT.RISCV_SBI:
          if (run.riscvSbi.extensionId === RUNNER_DONE_EID) {
            parts.push(write ? "ok" : `ok 0x${vcpu.getReg(10).toString(16)}`);
            return parts.join("; ");
          }
          parts.push("riscv_sbi");
          return parts.join("; ");
        case KVM_EXIT.INTR:
          if (Date.now() > deadline) { parts.push("timeout"); return parts.join("; "); }
          continue;
        case KVM_EXIT.DIRTY_RING_FULL: parts.push("dirty_ring_full"); return parts.join("; ");
        case KVM_EXIT.SHUTDOWN: parts.push("shutdown"); return parts.join("; ");
        case KVM_EXIT.HLT: parts.push("hlt"); return parts.join("; ");
        default: parts.push(EXIT_NAMES[exit.reason] ?? `exit${exit.reason}`); return parts.join("; ");
      }
    }
    return err("too-many-exits");
  }

  /** Host memory for a dirty bitmap of `pages` pages (grown as needed). */
  private bitmapHva(pages: bigint): bigint {
    const need = ((pages + 63n) / 64n) * 8n;
    if (!this.bitmapBuf || this.bitmapBuf.size < need) {
      const size = need < 4096n ? 4096n : (need + 4095n) & ~4095n;
      this.bitmapBuf = { hva: this.kvm.memory.mmap(size), size };
    }
    return this.bitmapBuf.hva;
  }
  private bitmapBuf: { hva: bigint; size: bigint } | null = null;

  private slotPages(slot: bigint): bigint {
    const vm = this.vm!;
    const as = Number(slot >> 16n);
    return vm.memslots({ asId: as }).find((s) => BigInt(s.id) === (slot & 0xffffn))?.npages ?? 64n;
  }

  private opGetlog(a: string[]): string {
    if (a.length !== 1) return err("syntax");
    const slot = BigInt.asUintN(32, parseNum(a[0]));
    if (slot === BigInt(CODE_SLOT)) return err("reserved");
    const vm = this.needVm();
    const pages = this.slotPages(slot);
    const hva = this.bitmapHva(pages);
    const r = vm.ioctl(KVM_GET_DIRTY_LOG, kvm_dirty_log.encode({ slot, dirty_bitmap: hva }));
    if (r < 0) return errnoName(-r);
    const bytes = this.kvm.memory.read(hva, Number((pages + 63n) / 64n) * 8);
    const dirty: number[] = [];
    for (let i = 0; i < Number(pages); i++) if (bytes[i >> 3] & (1 << (i & 7))) dirty.push(i);
    return `dirty ${listOf(dirty)}`;
  }

  private opClearlog(a: string[]): string {
    if (a.length < 3 || a.length > 4) return err("syntax");
    const slot = BigInt.asUintN(32, parseNum(a[0]));
    const first = parseNum(a[1]);
    const num = BigInt.asUintN(32, parseNum(a[2]));
    const words = Number((num + 63n) / 64n);
    const bits = new Uint8Array(Math.max(8, words * 8));
    const spec = a[3] ?? "all";
    if (spec === "all") {
      for (let i = 0n; i < num; i++) bits[Number(i >> 3n)] |= 1 << Number(i & 7n);
    } else if (spec !== "none") {
      for (const part of spec.split(",")) {
        const m = /^(\d+)(?:-(\d+))?$/.exec(part);
        if (!m) return err("syntax");
        const lo = Number(m[1]), hi = m[2] === undefined ? lo : Number(m[2]);
        if (hi < lo) return err("syntax");
        for (let i = lo; i <= hi && i < Number(num); i++) bits[i >> 3] |= 1 << (i & 7);
      }
    }
    if (slot === BigInt(CODE_SLOT)) return err("reserved");
    const vm = this.needVm();
    const hva = this.bitmapHva(num);
    this.kvm.memory.write(hva, bits.subarray(0, words * 8));
    return this.result(vm.ioctl(KVM_CLEAR_DIRTY_LOG,
      kvm_clear_dirty_log.encode({ slot, num_pages: num, first_page: first, dirty_bitmap: hva })));
  }

  private opRing(a: string[]): string {
    if (a.length !== 0) return err("syntax");
    const created = this.ensureVcpu();
    if (created !== "ok") return created;
    const ring = this.vcpu!.dirtyRing;
    if (ring.size === 0) return err("noring");
    return `ring ${ringListOf(ring.harvest())}`;
  }

  private opRingreset(a: string[]): string {
    if (a.length !== 0) return err("syntax");
    const vm = this.needVm();
    const r = vm.ioctl(KVM_RESET_DIRTY_RINGS);
    return r < 0 ? errnoName(-r) : `ok ${r}`;
  }

  /** The fd for set2's GMEM: a guest_memfd name (fd -1 once closed), `vmfd`, or a raw number. */
  private gmemFd(tok: string): bigint {
    if (tok === "vmfd") return BigInt(this.needVm().fd);
    if (isName(tok)) {
      const g = this.gmems.get(tok) ?? err("badid");
      return BigInt.asUintN(32, BigInt(g.isClosed ? -1 : g.fd));
    }
    return BigInt.asUintN(32, parseNum(tok));
  }

  /** KVM_CREATE_GUEST_MEMFD on the current VM; the file is named ID. */
  private opGmem(a: string[]): string {
    if (a.length !== 3 || !isName(a[0])) return err("syntax");
    const size = parseNum(a[1]);
    const flags = parseNum(a[2]);
    if (this.maps.has(a[0]) || this.gmems.has(a[0])) return err("exists");
    const vm = this.needVm();
    try {
      this.gmems.set(a[0], vm.createGuestMemfd({ size, flags }));
    } catch (e) {
      return errnoName((e as { errno: number }).errno);
    }
    return "ok";
  }

  private opGmemclose(a: string[]): string {
    if (a.length !== 1 || !isName(a[0])) return err("syntax");
    const g = this.gmems.get(a[0]) ?? err("badid");
    if (g.isClosed) return err("closed");
    g.close();
    return "ok";
  }

  /** The guest_memfd files of the script, by name (for tests). */
  guestMemfd(name: string): GuestMemfd | undefined {
    return this.gmems.get(name);
  }

  close(): void {
    this.closeVm();
    for (const g of this.gmems.values()) g.close();
  }
}

/** Runs a script in a fresh instance. */
export async function runScript(text: string, kvm?: Kvm): Promise<string[]> {
  const k = kvm ?? (await Kvm.open());
  const runner = new ScriptRunner(k);
  try {
    return runner.run(text);
  } finally {
    runner.close();
  }
}
