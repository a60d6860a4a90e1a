// The conformance-script runner (conformance/README.md): each operation of a
// script against one Kvm instance, one result line per operation. Every op
// costs what the kernel's own work for it costs, whatever its arguments name
// (the dirty bitmaps: dirty-bitmap.ts).

import type { Kvm } from "../kvm.js";
import type { Vm } from "../vm.js";
import type { Vcpu } from "../vcpu.js";
import type { GuestMemfd } from "../guest-memfd.js";
import { errnoName } from "../errors.js";
import { PROT_NONE, PROT_READ, PROT_WRITE } from "../host-memory.js";
import {
  KVM_CHECK_EXTENSION, KVM_CREATE_VM, KVM_ENABLE_CAP, KVM_SET_USER_MEMORY_REGION, KVM_SET_USER_MEMORY_REGION2,
  kvm_userspace_memory_region, kvm_userspace_memory_region2, kvm_enable_cap, KVM_CAP, KVM_GET_DIRTY_LOG,
  KVM_CLEAR_DIRTY_LOG, KVM_RESET_DIRTY_RINGS, kvm_dirty_log, kvm_clear_dirty_log,
} from "../uapi.js";
import { OpError, fail, tokensOf, isName, parseNum, namedAddress, parseBits } from "./parser.js";
import { runsList, ringListOf, hex } from "./output.js";
import { BitmapBuffer } from "./dirty-bitmap.js";
import { clearLogReads } from "../dirty.js";
import { bitmapBytes } from "../bitmap.js";
import { CODE_SLOT, CODE_GPA, CODE_SIZE, GUEST_LIMIT, runnerCode, guestAccess } from "./guest.js";

const GIB = 1n << 30n;
/** The n-th hostmap reserves [BASE + n*STRIDE, +STRIDE) and maps at +1 GiB (identical HVAs to the recording). */
const HOSTMAP_BASE = 0x100000000000n;
const HOSTMAP_STRIDE = 64n * GIB;
const HOSTMAP_MAX = 32n * GIB;

const CAP_NAMES: Record<string, number> = {
  nr_memslots: KVM_CAP.NR_MEMSLOTS, readonly_mem: KVM_CAP.READONLY_MEM,
  multi_address_space: KVM_CAP.MULTI_ADDRESS_SPACE, sync_mmu: KVM_CAP.SYNC_MMU,
  manual_protect: KVM_CAP.MANUAL_DIRTY_LOG_PROTECT2, dirty_ring: KVM_CAP.DIRTY_LOG_RING,
  dirty_ring_acq_rel: KVM_CAP.DIRTY_LOG_RING_ACQ_REL, dirty_ring_with_bitmap: KVM_CAP.DIRTY_LOG_RING_WITH_BITMAP,
  user_memory2: KVM_CAP.USER_MEMORY2, memory_fault_info: KVM_CAP.MEMORY_FAULT_INFO,
  memory_attributes: KVM_CAP.MEMORY_ATTRIBUTES, guest_memfd: KVM_CAP.GUEST_MEMFD, vm_types: KVM_CAP.VM_TYPES,
  guest_memfd_flags: KVM_CAP.GUEST_MEMFD_FLAGS,
};

const accessSize = (size: bigint): 1 | 2 | 4 | 8 =>
  size === 1n || size === 2n || size === 4n || size === 8n ? (Number(size) as 1 | 2 | 4 | 8) : fail("size");

interface HostMapping { start: bigint; size: bigint; ro: boolean; unmapped: boolean }

export class ScriptRunner {
  private vm: Vm | null = null;
  private vcpu: Vcpu | null = null;
  private readonly maps = new Map<string, HostMapping>();
  /** guest_memfd files by name (one namespace with the host mappings); they outlive `vm`. */
  private readonly gmems = new Map<string, GuestMemfd>();
  private hostmaps = 0n;
  private codeHva: bigint | null = null;
  private readonly bitmap: BitmapBuffer;

  /** The operations by name. */
  private readonly ops = new Map<string, (a: string[]) => string>([
    ["vm", (a) => this.opVm(a)],
    ["vcpu", () => this.ensureVcpu()],
    ["cap", (a) => this.opCap(a)],
    ["check", (a) => this.opCheck(a)],
    ["hostmap", (a) => this.opHostmap(a)],
    ["hostunmap", (a) => this.opHostunmap(a)],
    ["peek", (a) => this.opPeekPoke(false, a)],
    ["poke", (a) => this.opPeekPoke(true, a)],
    ["set", (a) => this.opSet(false, a)],
    ["set2", (a) => this.opSet(true, a)],
    ["write", (a) => this.opAccess(true, a)],
    ["read", (a) => this.opAccess(false, a)],
    ["getlog", (a) => this.opGetlog(a)],
    ["clearlog", (a) => this.opClearlog(a)],
    ["ring", (a) => this.opRing(a)],
    ["ringreset", (a) => this.opRingreset(a)],
    ["gmem", (a) => this.opGmem(a)],
    ["gmemclose", (a) => this.opGmemclose(a)],
  ]);

  constructor(private readonly kvm: Kvm) {
    this.bitmap = new BitmapBuffer(kvm.memory);
  }

  /** The current VM and vCPU (null when there is none), for tools and tests. */
  get currentVm(): Vm | null { return this.vm; }
  get currentVcpu(): Vcpu | null { return this.vcpu; }

  /** Runs every operation of a script; returns one line per operation. */
  run(text: string): string[] {
    const out: string[] = [];
    for (const raw of text.split("\n")) {
      const toks = tokensOf(raw);
      if (toks.length > 0) out.push(this.op(toks));
    }
    return out;
  }

  /** Runs one script line (a trailing comment is allowed); returns its output line. */
  line(text: string): string {
    return this.op(tokensOf(text));
  }

  /** Runs one operation given as tokens; returns its output line. */
  op(toks: string[]): string {
    try {
      const run = this.ops.get(toks[0]);
      return run ? run(toks.slice(1)) : fail("unknown-op");
    } catch (e) {
      if (e instanceof OpError) return e.message;
      throw e;
    }
  }

  /** The guest_memfd files of the script, by name (for tests). */
  guestMemfd(name: string): GuestMemfd | undefined {
    return this.gmems.get(name);
  }

  /** Closes the VM and the guest_memfd files, and unmaps the runner's bitmap buffer. */
  close(): void {
    this.closeVm();
    for (const g of this.gmems.values()) g.close();
    this.bitmap.release();
  }

  private needVm(): Vm {
    return this.vm ?? fail("novm");
  }

  private result(r: number): string {
    return r < 0 ? errnoName(-r) : "ok";
  }

  /** An HVA argument: ID, ID+OFF, ID-OFF (from host mapping ID) or a raw number. */
  private hva(tok: string | undefined): bigint {
    if (tok === undefined) return fail("syntax");
    const at = namedAddress(tok);
    if (!at) return parseNum(tok);
    const map = this.maps.get(at.name) ?? fail("badid");
    if (at.sign === null) return map.start;
    const off = parseNum(at.off!);
    return BigInt.asUintN(64, at.sign === "+" ? map.start + off : map.start - off);
  }

  private opVm(a: string[]): string {
    const type = a.length > 0 ? parseNum(a[0]) : 0n;
    if (a.length > 1) return fail("syntax");
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
    if (r < 0) return fail(`codeslot ${errnoName(-r)}`);
    try {
      this.vcpu = vm.createVcpu(0);
    } catch (e) {
      return errnoName((e as { errno: number }).errno);
    }
    return "ok";
  }

  private opCap(a: string[]): string {
    const vm = this.needVm();
    if (a.length === 0) return fail("syntax");
    let cap: bigint, arg0: bigint, flags = 0n;
    if (a[0] === "manual_protect") {
      if (a.length > 2) return fail("syntax");
      cap = BigInt(KVM_CAP.MANUAL_DIRTY_LOG_PROTECT2);
      arg0 = a.length === 1 ? 1n : a[1] === "initially_set" ? 3n : parseNum(a[1]);
    } else if (a[0] === "dirty_ring" || a[0] === "dirty_ring_acq_rel") {
      if (a.length !== 2) return fail("syntax");
      cap = BigInt(a[0] === "dirty_ring" ? KVM_CAP.DIRTY_LOG_RING : KVM_CAP.DIRTY_LOG_RING_ACQ_REL);
      arg0 = parseNum(a[1]);
    } else {
      if (a.length < 2 || a.length > 3) return fail("syntax");
      cap = parseNum(a[0]);
      arg0 = parseNum(a[1]);
      if (a.length === 3) flags = parseNum(a[2]);
    }
    const bytes = kvm_enable_cap.encode({ cap: BigInt.asUintN(32, cap), flags: BigInt.asUintN(32, flags), arg0 });
    return this.result(vm.ioctl(KVM_ENABLE_CAP, bytes));
  }

  private opCheck(a: string[]): string {
    if (a.length !== 1) return fail("syntax");
    const cap = CAP_NAMES[a[0]] !== undefined ? BigInt(CAP_NAMES[a[0]]) : parseNum(a[0]);
    const r = this.vm ? this.vm.ioctl(KVM_CHECK_EXTENSION, cap) : this.kvm.ioctl(KVM_CHECK_EXTENSION, cap);
    return r < 0 ? errnoName(-r) : `ok ${r}`;
  }

  private opHostmap(a: string[]): string {
    if (a.length < 2 || a.length > 3 || !isName(a[0])) return fail("syntax");
    if (a.length === 3 && a[2] !== "ro") return fail("syntax");
    const size = parseNum(a[1]);
    if (this.maps.has(a[0]) || this.gmems.has(a[0])) return fail("exists");
    if (size > HOSTMAP_MAX) return fail("toobig");
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
    if (a.length !== 1 || !isName(a[0])) return fail("syntax");
    const m = this.maps.get(a[0]) ?? fail("badid");
    if (m.unmapped) return fail("unmapped");
    // The pages go and the range stays reserved (PROT_NONE), never reused.
    this.kvm.memory.mmap(m.size, { addr: m.start, prot: PROT_NONE });
    m.unmapped = true;
    return "ok";
  }

  private opPeekPoke(poke: boolean, a: string[]): string {
    const nargs = poke ? 2 : 1;
    if (a.length < nargs || a.length > nargs + 1) return fail("syntax");
    const at = namedAddress(a[0]);
    const value = poke ? parseNum(a[1]) : 0n;
    const size = a.length > nargs ? parseNum(a[nargs]) : 4n;
    if (!at) {
      parseNum(a[0]);
      return fail("badid");
    }
    const map = this.maps.get(at.name) ?? fail("badid");
    const off = at.off === null ? 0n : parseNum(at.off);
    const sz = accessSize(size);
    if (map.unmapped) return fail("unmapped");
    if (at.sign === "-" && off !== 0n) return fail("range");
    if (off + size > map.size) return fail("range");
    if (poke && map.ro) return fail("readonly");
    if (poke) {
      this.kvm.memory.poke(map.start + off, value, sz);
      return "ok";
    }
    return `ok ${hex(this.kvm.memory.peek(map.start + off, sz))}`;
  }

  private opSet(v2: boolean, a: string[]): string {
    if (a.length !== (v2 ? 7 : 5)) return fail("syntax");
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
    if (slot === BigInt(CODE_SLOT)) return fail("reserved");
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
    if (a.length < n || a.length > n + 1) return fail("syntax");
    const gpa = parseNum(a[0]);
    const value = write ? parseNum(a[1]) : 0n;
    const size = a.length > n ? parseNum(a[n]) : 4n;
    this.needVm();
    const sz = accessSize(size);
    if (gpa + size > GUEST_LIMIT) return fail("range");
    if (gpa < CODE_GPA + CODE_SIZE && gpa + size > CODE_GPA) return fail("reserved");
    const created = this.ensureVcpu();
    if (created !== "ok") return created;
    return guestAccess(this.vcpu!, write, gpa, value, sz) ?? fail("too-many-exits");
  }

  /**
   * Pages of the slot a dirty-log ioctl names, 0 when there is none: the most
   * KVM reads from or writes to its bitmap (it checks the slot first). Found by
   * id as the ioctl finds it, not by a snapshot of every slot.
   */
  private slotPages(slot: bigint): number {
    const n = this.vm!.slotNpages(Number(slot & 0xffffn), Number(slot >> 16n));
    return n < 0n ? 0 : Number(n);
  }

  private opGetlog(a: string[]): string {
    if (a.length !== 1) return fail("syntax");
    const slot = BigInt.asUintN(32, parseNum(a[0]));
    if (slot === BigInt(CODE_SLOT)) return fail("reserved");
    const vm = this.needVm();
    const pages = this.slotPages(slot);
    const hva = this.bitmap.at(bitmapBytes(pages));
    const r = vm.ioctl(KVM_GET_DIRTY_LOG, kvm_dirty_log.encode({ slot, dirty_bitmap: hva }));
    if (r < 0) return errnoName(-r);
    return `dirty ${runsList(this.bitmap.read(pages))}`;
  }

  private opClearlog(a: string[]): string {
    if (a.length < 3 || a.length > 4) return fail("syntax");
    const slot = BigInt.asUintN(32, parseNum(a[0]));
    const first = parseNum(a[1]);
    const num = BigInt.asUintN(32, parseNum(a[2]));
    const runs = parseBits(a[3] ?? "all");
    if (slot === BigInt(CODE_SLOT)) return fail("reserved");
    const vm = this.needVm();
    const reads = clearLogReads(this.vm!.slotNpages(Number(slot & 0xffffn), Number(slot >> 16n)), first, Number(num));
    const hva = this.bitmap.write(reads, runs);
    return this.result(vm.ioctl(KVM_CLEAR_DIRTY_LOG,
      kvm_clear_dirty_log.encode({ slot, num_pages: num, first_page: first, dirty_bitmap: hva })));
  }

  private opRing(a: string[]): string {
    if (a.length !== 0) return fail("syntax");
    const created = this.ensureVcpu();
    if (created !== "ok") return created;
    const ring = this.vcpu!.dirtyRing;
    if (ring.size === 0) return fail("noring");
    return `ring ${ringListOf(ring.harvest())}`;
  }

  private opRingreset(a: string[]): string {
    if (a.length !== 0) return fail("syntax");
    const r = this.needVm().ioctl(KVM_RESET_DIRTY_RINGS);
    return r < 0 ? errnoName(-r) : `ok ${r}`;
  }

  /** The fd for set2's GMEM: a guest_memfd name (fd -1 once closed), `vmfd`, or a raw number. */
  private gmemFd(tok: string): bigint {
    if (tok === "vmfd") return BigInt(this.needVm().fd);
    if (isName(tok)) {
      const g = this.gmems.get(tok) ?? fail("badid");
      return BigInt.asUintN(32, BigInt(g.isClosed ? -1 : g.fd));
    }
    return BigInt.asUintN(32, parseNum(tok));
  }

  /** KVM_CREATE_GUEST_MEMFD on the current VM; the file is named ID. */
  private opGmem(a: string[]): string {
    if (a.length !== 3 || !isName(a[0])) return fail("syntax");
    const size = parseNum(a[1]);
    const flags = parseNum(a[2]);
    if (this.maps.has(a[0]) || this.gmems.has(a[0])) return fail("exists");
    const vm = this.needVm();
    try {
      this.gmems.set(a[0], vm.createGuestMemfd({ size, flags }));
    } catch (e) {
      return errnoName((e as { errno: number }).errno);
    }
    return "ok";
  }

  private opGmemclose(a: string[]): string {
    if (a.length !== 1 || !isName(a[0])) return fail("syntax");
    const g = this.gmems.get(a[0]) ?? fail("badid");
    if (g.isClosed) return fail("closed");
    g.close();
    return "ok";
  }
}
