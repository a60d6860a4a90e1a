// Edges no other test reaches: every user slot id in use at once, guest code
// and page tables in a READONLY slot, a slot's backing made read-only and
// back, and closing VMs whose backing is gone, whose vCPUs stopped mid-run, or
// from a callback inside one of their own ioctls.
import { describe, it, expect, beforeEach } from "vitest";
import { Kvm, KVM_EXIT, KVM_RUN as KVM_RUN_NR, KVM_MEM_READONLY, type Vm, type Vcpu } from "../src/index.js";
import { openKvm, code, MiB } from "./helpers.js";
import { Program, REG } from "./cpu/asm.js";
import * as A from "./cpu/asm.js";

const { a0, a1, a2, a3, a4, a5, t0, t1, s1 } = REG;
const RAM = 0x80000000n;
const PAGE = 4096n;

let kvm: Kvm;
beforeEach(async () => {
  kvm = await openKvm();
});

function load(vm: Vm, vcpu: Vcpu, p: Program): void {
  const words = p.finish();
  vm.writeGuest(p.base, new Uint8Array(words.buffer, words.byteOffset, words.byteLength));
  vcpu.pc = p.base;
}

function u64le(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, v), true);
  return b;
}

describe("every user slot id at once (KVM_USER_MEM_SLOTS = 32764)", () => {
  it("32,764 adjacent 2 MiB slots: guest stores and loads over thousands of them agree with the host's view page for page; id 32,764 is EINVAL", () => {
    const N = 32764, SLOT = 2n * MiB;
    // A full invariant check is linear in the slots: check every 1,024th update
    // while building, and everything at the end.
    expect(kvm.core.debugInvariantStride(1024)).toBeTruthy();
    const vm = kvm.createVm();
    const host = kvm.memory.mmap(BigInt(N) * SLOT);
    for (let id = 0; id < N; id++) {
      vm.setUserMemoryRegion({ slot: id, guestPhysAddr: RAM + BigInt(id) * SLOT, memorySize: SLOT, userspaceAddr: host + BigInt(id) * SLOT });
    }
    kvm.core.debugInvariantStride(1);
    expect(kvm.core.debugCheckInvariants(vm.fd)).toBeTruthy();
    expect(vm.memslots().length).toBe(N);
    expect(vm.debug.stats().nrMemslotPages).toBe(BigInt(N) * (SLOT / PAGE));

    // kvm_vm_ioctl_set_memory_region: (u16)slot >= KVM_USER_MEM_SLOTS is EINVAL
    // before anything else is looked at, even for a region that would fit.
    const free = RAM + BigInt(N) * SLOT;
    for (const slot of [N, 0x7fff, 0xffff]) {
      let err: Error | undefined;
      try {
        vm.setUserMemoryRegion({ slot, guestPhysAddr: free, memorySize: SLOT, userspaceAddr: host });
      } catch (e) {
        err = e as Error;
      }
      expect((err as { code?: string } | undefined)?.code).toBe("EINVAL");
      expect(err!.message).toContain(`slot id ${slot} is not a user slot (0..32763)`);
    }
    expect(vm.memslots().length).toBe(N);

    // The guest walks 4,000 addresses 8 slots + 5 pages + 8 bytes apart (from
    // slot 0 to slot ~32,000): at each it stores a running value and adds up
    // the word one page above, which the host wrote (half through
    // KVM's guest-memory write, half straight into the hva).
    const COUNT = 4000, STEP = 8n * SLOT + 5n * PAGE + 8n, FIRST = RAM + MiB, INC = 0x9e3779b97f4a7c15n;
    const gpaAt = (i: number) => FIRST + BigInt(i) * STEP;
    const hvaOf = (gpa: bigint) => host + (gpa - RAM);
    const words = new Map<bigint, bigint>(); // gpa -> value, the model of every non-zero word
    let sum = 0n, val = 0x1234n;
    for (let i = 0; i < COUNT; i++) {
      const above = gpaAt(i) + PAGE, v = BigInt.asUintN(64, BigInt(i + 1) * 0x10001n);
      if (i % 2 === 0) vm.writeGuest(above, u64le(v));
      else kvm.memory.poke(hvaOf(above), v, 8);
      words.set(above, v);
      sum = BigInt.asUintN(64, sum + v);
      val = BigInt.asUintN(64, val + INC);
      words.set(gpaAt(i), val);
    }
    const vcpu = vm.createVcpu(0);
    const p = new Program(RAM);
    p.li(a0, FIRST).li(a1, STEP).li(a2, COUNT).li(a3, 0x1234n).li(a5, INC).li(s1, PAGE).li(a4, 0);
    p.label("loop").emit(A.add(a3, a3, a5), A.sd(a3, a0, 0), A.add(t1, a0, s1), A.ld(t0, t1, 0), A.add(a4, a4, t0),
      A.add(a0, a0, a1), A.addi(a2, a2, -1)).to("loop", (off) => A.bne(a2, 0, off)).emit(A.ecall());
    load(vm, vcpu, p);
    expect(vcpu.run().reason).toBe(KVM_EXIT.RISCV_SBI);
    expect(vcpu.getReg(a4)).toBe(sum);
    expect(vcpu.getReg(a3)).toBe(val);

    // Page for page: the host's bytes at the hva, KVM's guest-memory read and
    // the model agree on every page the guest touched.
    const pages = new Set<bigint>();
    for (const gpa of words.keys()) pages.add(gpa & ~(PAGE - 1n));
    expect(pages.size).toBe(2 * COUNT);
    const slotsTouched = new Set([...pages].map((g) => (g - RAM) / SLOT));
    expect(slotsTouched.size).toBeGreaterThan(3900);
    for (const page of pages) {
      const want = new Uint8Array(Number(PAGE));
      const dv = new DataView(want.buffer);
      for (let off = 0n; off < PAGE; off += 8n) {
        const w = words.get(page + off);
        if (w !== undefined) dv.setBigUint64(Number(off), w, true);
      }
      const atHva = kvm.memory.read(hvaOf(page), Number(PAGE));
      const viaKvm = vm.readGuest(page, Number(PAGE));
      if (!equal(atHva, want) || !equal(viaKvm, want)) {
        expect({ page, atHva: hex(atHva, want), viaKvm: hex(viaKvm, want) }).toEqual({ page, atHva: "", viaKvm: "" });
      }
    }
    expect(kvm.core.debugCheckInvariants(vm.fd)).toBeTruthy();
    vm.close();
  });
});

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The first differing offset, as text ("" when equal). */
function hex(got: Uint8Array, want: Uint8Array): string {
  for (let i = 0; i < want.length; i++) if (got[i] !== want[i]) return `differs at +${i}: ${got[i]} != ${want[i]}`;
  return "";
}

describe("guest code and Sv39 page tables in a READONLY slot", () => {
  // PTE bits and the guest's layout: code, its trap handler and three page
  // tables live in a READONLY slot; data lives in a read-write slot.
  const V = 1n, R = 2n, W = 4n, X = 8n, AC = 64n, D = 128n;
  const ptr = (pa: bigint) => ((pa >> 12n) << 10n) | V;
  const leaf = (pa: bigint, flags: bigint) => ((pa >> 12n) << 10n) | flags | V;
  const RO = 0x9000_0000n, CODE = RO, HANDLER = RO + 0x1000n, ROOT = RO + 0x2000n, L1 = RO + 0x3000n;
  const L0_CODE = RO + 0x4000n, L0_DATA = RO + 0x5000n, RO_SIZE = 0x10000n;
  const CODE_VA = 0x1000_0000n, HANDLER_VA = 0x1000_1000n;
  const DATA_VA = 0x2000_0000n, NO_A_VA = 0x2000_1000n, NO_D_VA = 0x2000_2000n, PT_VA = 0x2000_3000n;
  const SCAUSE_LOAD_PAGE = 13n, SCAUSE_STORE_PAGE = 15n;

  it("Svade (RISC-V KVM's default vCPU): fetches and walks read the READONLY slot; a walk that must set A or D raises the guest's page fault and writes nothing; the guest's own PTE update there is an MMIO write exit", () => {
    const vm = kvm.createVm();
    const dataHva = kvm.memory.mmap(MiB), roHva = kvm.memory.mmap(RO_SIZE);
    vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: RAM, memorySize: MiB, userspaceAddr: dataHva });
    vm.setUserMemoryRegion({ slot: 1, flags: KVM_MEM_READONLY, guestPhysAddr: RO, memorySize: RO_SIZE, userspaceAddr: roHva });
    const ro = (gpa: bigint) => roHva + (gpa - RO);
    const pte = (table: bigint, i: number, v: bigint) => kvm.memory.poke(ro(table) + BigInt(i) * 8n, v, 8);
    pte(ROOT, 0, ptr(L1));
    pte(L1, Number((CODE_VA >> 21n) & 511n), ptr(L0_CODE));
    pte(L1, Number((DATA_VA >> 21n) & 511n), ptr(L0_DATA));
    pte(L0_CODE, 0, leaf(CODE, R | X | AC));
    pte(L0_CODE, 1, leaf(HANDLER, R | X | AC));
    pte(L0_DATA, 0, leaf(RAM, R | W | AC | D));
    pte(L0_DATA, 1, leaf(RAM + 0x1000n, R | W)); // A clear
    pte(L0_DATA, 2, leaf(RAM + 0x2000n, R | W | AC)); // D clear
    pte(L0_DATA, 3, leaf(L0_DATA, R | W | AC | D)); // the guest's own view of that table

    const { t2, t3, t4, t5 } = REG;
    const p = new Program(CODE_VA);
    p.li(t0, DATA_VA).li(t1, 0x55).emit(A.sd(t1, t0, 0), A.ld(t2, t0, 0));
    p.li(t0, NO_D_VA).emit(A.ld(t3, t0, 0), A.ecall()); // A set, D clear: a load goes through
    p.label("noA").li(t0, NO_A_VA).emit(A.ld(t4, t0, 0), A.ecall());
    p.label("noD").li(t0, NO_D_VA).emit(A.sd(t1, t0, 0), A.ecall());
    // The guest's fault handler would set D itself: a store into the READONLY slot.
    p.label("setD").li(t0, PT_VA + 2n * 8n).emit(A.ld(t5, t0, 0), A.ori(t5, t5, Number(D)), A.sd(t5, t0, 0), A.ecall());
    const words = p.finish();
    kvm.memory.write(ro(CODE), new Uint8Array(words.buffer, words.byteOffset, words.byteLength));
    kvm.memory.poke(ro(HANDLER), A.ecall(), 4);
    const roBefore = kvm.memory.read(roHva, Number(RO_SIZE));

    const vcpu = vm.createVcpu(0);
    vcpu.setCsr("stvec", HANDLER_VA);
    vcpu.setCsr("satp", (8n << 60n) | (ROOT >> 12n));
    vcpu.pc = CODE_VA;
    const faultAt = (label: string) => {
      vcpu.pc = p.addr(label);
      vcpu.setCsr("scause", 0n);
      expect(vcpu.run().reason).toBe(KVM_EXIT.RISCV_SBI);
      expect(vcpu.pc).toBe(HANDLER_VA); // the guest's handler made the SBI call
      return [vcpu.getCsr("scause"), vcpu.getCsr("stval")];
    };

    // Code fetched from the READONLY slot, walks through its tables: no exit but the SBI call.
    expect(vcpu.run().reason).toBe(KVM_EXIT.RISCV_SBI);
    expect([vcpu.getReg(t2), vcpu.getReg(t3)]).toEqual([0x55n, 0n]);
    expect(kvm.memory.peek(dataHva, 8)).toBe(0x55n);
    // A clear: the load's page fault, taken by the guest (KVM never sees it).
    expect(faultAt("noA")).toEqual([SCAUSE_LOAD_PAGE, NO_A_VA]);
    // D clear: the store's page fault; the store did not happen.
    expect(faultAt("noD")).toEqual([SCAUSE_STORE_PAGE, NO_D_VA]);
    expect(kvm.memory.peek(dataHva + 0x2000n, 8)).toBe(0n);
    // A store to a READONLY slot (gstage_page_fault: not writable) is emulated as MMIO.
    vcpu.pc = p.addr("setD");
    let exit = vcpu.run();
    const m = vcpu.kvmRun.mmio;
    expect([exit.reason, m.physAddr, m.len, m.isWrite]).toEqual([KVM_EXIT.MMIO, L0_DATA + 2n * 8n, 8, true]);
    expect(new DataView(m.data.buffer, m.data.byteOffset, 8).getBigUint64(0, true)).toBe(leaf(RAM + 0x2000n, R | W | AC | D));
    exit = vcpu.run();
    expect(exit.reason).toBe(KVM_EXIT.RISCV_SBI);
    // Nothing wrote the READONLY slot: not the walks, not the guest.
    expect(equal(kvm.memory.read(roHva, Number(RO_SIZE)), roBefore)).toBe(true);
    vm.close();
  });
});

describe("mprotect of a slot's backing (MMU-notifier change_protection)", () => {
  it("PROT_READ: guest stores fail KVM_RUN with EFAULT (hva_to_pfn cannot write) and retire nothing, loads still work; back to read-write the same store completes", () => {
    const vm = kvm.createVm();
    const hva = kvm.memory.mmap(MiB);
    vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: RAM, memorySize: MiB, userspaceAddr: hva });
    const DATA = RAM + 0x10000n, OTHER = RAM + 0x11000n;
    const { t2 } = REG;
    const p = new Program(RAM);
    p.label("store").emit(A.sd(t1, t0, 0), A.ecall());
    p.label("load").emit(A.ld(t2, t0, 0), A.ecall());
    const vcpu = vm.createVcpu(0);
    load(vm, vcpu, p);
    const other = vm.createVcpu(1);
    const at = (label: string, addr: bigint, value = 0n, v = vcpu) => {
      v.pc = p.addr(label);
      v.setReg(t0, addr);
      v.setReg(t1, value);
      return v.run();
    };
    // Both pages mapped writable in the guest first (their sptes are writable).
    expect(at("store", DATA, 1n).reason).toBe(KVM_EXIT.RISCV_SBI);
    expect(at("store", OTHER, 10n).reason).toBe(KVM_EXIT.RISCV_SBI);

    kvm.memory.mprotect(hva + (DATA - RAM), PAGE, "r");
    expect(kvm.core.debugCheckInvariants(vm.fd)).toBeTruthy(); // no writable spte left for a read-only hva
    // The writable spte went with the notifier: the store faults, and the fault cannot get a writable page.
    const exit = at("store", DATA, 2n);
    expect([exit.errno, exit.reason]).toEqual([14, KVM_EXIT.MEMORY_FAULT]);
    const mf = vcpu.kvmRun.memoryFault;
    expect([mf.gpa, mf.size, mf.flags]).toEqual([DATA, PAGE, 0n]);
    expect(vcpu.pc).toBe(p.addr("store")); // not retired
    expect(kvm.memory.peek(hva + (DATA - RAM), 8)).toBe(1n);
    expect(code(() => vm.writeGuest(DATA, u64le(5n)))).toBe("EFAULT");
    // Reads of the page, and writes to the page beside it, are unaffected (another vCPU;
    // the first one stays at its refused store).
    expect(at("load", DATA, 0n, other).reason).toBe(KVM_EXIT.RISCV_SBI);
    expect(other.getReg(t2)).toBe(1n);
    expect(at("store", OTHER, 11n, other).reason).toBe(KVM_EXIT.RISCV_SBI);
    expect(kvm.core.debugCheckInvariants(vm.fd)).toBeTruthy();

    kvm.memory.mprotect(hva + (DATA - RAM), PAGE, "rw");
    // KVM_RUN again on the refused store completes it.
    expect(vcpu.run().reason).toBe(KVM_EXIT.RISCV_SBI);
    expect(kvm.memory.peek(hva + (DATA - RAM), 8)).toBe(2n);
    expect(at("store", DATA, 3n).reason).toBe(KVM_EXIT.RISCV_SBI);
    vm.writeGuest(DATA + 8n, u64le(4n));
    expect([kvm.memory.peek(hva + (DATA - RAM), 8), kvm.memory.peek(hva + (DATA - RAM) + 8n, 8)]).toEqual([3n, 4n]);
    expect(kvm.memory.peek(hva + (OTHER - RAM), 8)).toBe(11n);
    expect(kvm.core.debugCheckInvariants(vm.fd)).toBeTruthy();
  });
});

describe("closing a VM (kvm_destroy_vm) in awkward states", () => {
  const live = () => kvm.core.statLiveAllocations() as number;

  /** Backing for three 1 MiB slots, its host page tables already built (they belong to the mm, not to a VM). */
  function backing(): bigint {
    kvm.createVm().close(); // the VM list exists from the first VM on
    const hva = kvm.memory.mmap(3n * MiB);
    for (let i = 0n; i < 3n; i++) kvm.memory.read(hva + i * MiB, 1);
    return hva;
  }

  /** A VM with three slots on `hva`, one dirty-logged, and a vCPU that wrote a page of each (writable sptes). */
  function busyVm(hva: bigint): { vm: Vm; vcpu: Vcpu; p: Program } {
    const vm = kvm.createVm();
    for (let i = 0; i < 3; i++) {
      vm.setUserMemoryRegion({ slot: i, flags: i === 2 ? 1 : 0, guestPhysAddr: RAM + BigInt(i) * MiB, memorySize: MiB,
        userspaceAddr: hva + BigInt(i) * MiB });
    }
    const p = new Program(RAM);
    p.li(t0, RAM + 0x8000n).emit(A.sd(t0, t0, 0));
    p.li(t0, RAM + MiB).emit(A.sd(t0, t0, 0));
    p.li(t0, RAM + 2n * MiB).emit(A.sd(t0, t0, 0), A.ecall());
    p.label("mmio").li(t0, 0x1000_0000n).emit(A.lw(t1, t0, 0), A.ecall());
    p.label("spin").to("spin", (off) => A.jal(0, off));
    const vcpu = vm.createVcpu(0);
    load(vm, vcpu, p);
    expect(vcpu.run().reason).toBe(KVM_EXIT.RISCV_SBI);
    return { vm, vcpu, p };
  }

  /** The instance still works: a new VM on new memory runs a guest to its SBI call. */
  function freshVmRuns(): void {
    const vm = kvm.createVm();
    vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: RAM, memorySize: MiB, userspaceAddr: kvm.memory.mmap(MiB) });
    const vcpu = vm.createVcpu(0);
    const p = new Program(RAM);
    p.li(t0, RAM + 0x1000n).li(t1, 77).emit(A.sd(t1, t0, 0), A.ld(a0, t0, 0), A.ecall());
    load(vm, vcpu, p);
    expect(vcpu.run().reason).toBe(KVM_EXIT.RISCV_SBI);
    expect(vcpu.getReg(a0)).toBe(77n);
    vm.close();
  }

  it("backing unmapped first (munmap zaps the sptes), then close: every allocation and frame is released, nothing traps", () => {
    const hva = backing();
    const allocs = live(), frames = kvm.memory.framesInUse;
    const { vm } = busyVm(hva);
    const gpc = vm.createPfnCache();
    gpc.activate(RAM + 0x8000n, 8);
    expect(kvm.memory.framesInUse).toBeGreaterThan(frames + 3);
    expect(kvm.core.slotRmapCount(vm.fd, RAM >> 12n)).toBeGreaterThan(0);
    kvm.memory.munmap(hva, 3n * MiB);
    const rmaps = () => [0n, 1n, 2n].map((i) => kvm.core.slotRmapCount(vm.fd, (RAM + i * MiB) >> 12n));
    expect(rmaps()).toEqual([0, 0, 0]); // the notifier zapped every spte
    expect(kvm.core.debugCheckInvariants(vm.fd)).toBeTruthy();
    const fd = vm.fd;
    vm.close();
    expect(kvm.core.vmLive(fd)).toBeFalsy();
    expect([live(), kvm.memory.framesInUse]).toEqual([allocs, frames]);
    freshVmRuns();
  });

  it("vCPUs stopped on an MMIO exit and on the budget (both mid-instruction-stream), then close: all released; their fds are EBADF", () => {
    const hva = backing();
    const allocs = live(), frames = kvm.memory.framesInUse;
    const { vm, vcpu, p } = busyVm(hva);
    vcpu.pc = p.addr("mmio");
    expect(vcpu.run().reason).toBe(KVM_EXIT.MMIO); // the load waits for its data
    const other = vm.createVcpu(1);
    other.pc = p.addr("spin");
    other.setBudget(500);
    expect(other.run().errno).toBe(4);
    vm.close();
    expect(live()).toBe(allocs);
    expect([vcpu.ioctl(KVM_RUN_NR), other.ioctl(KVM_RUN_NR)]).toEqual([-9, -9]);
    kvm.memory.munmap(hva, 3n * MiB);
    expect(kvm.memory.framesInUse).toBe(frames);
    freshVmRuns();
  });

  it("closed by host code inside its own KVM_RUN (a page-track write callback): the run stops after that store with EBADF, the VM goes as the run returns", () => {
    const hva = backing();
    const allocs = live(), frames = kvm.memory.framesInUse;
    const { vm, vcpu } = busyVm(hva);
    const p = new Program(RAM + 0x10000n);
    p.li(t0, RAM + 0x9000n).li(t1, 1).emit(A.sd(t1, t0, 0), A.sd(t1, t0, 8), A.ecall());
    load(vm, vcpu, p);
    const seen: bigint[] = [];
    vm.pageTrack.register({ trackWrite: (gpa) => { seen.push(gpa); vm.close(); } });
    vm.pageTrack.addWriteTracking((RAM + 0x9000n) >> 12n);
    let err: unknown;
    try {
      vcpu.run();
    } catch (e) {
      err = e;
    }
    expect((err as { code?: string }).code).toBe("EBADF");
    expect((err as Error).message).toContain("closed during this KVM_RUN");
    expect(seen).toEqual([RAM + 0x9000n]); // the second store never ran
    expect(kvm.memory.peek(hva + 0x9000n, 8)).toBe(1n);
    expect(kvm.memory.peek(hva + 0x9008n, 8)).toBe(0n);
    expect(live()).toBe(allocs);
    kvm.memory.munmap(hva, 3n * MiB);
    expect(kvm.memory.framesInUse).toBe(frames);
    freshVmRuns();
  });
  it("closed by host code inside its own KVM_SET_USER_MEMORY_REGION (a page-track callback at DELETE commit): the delete completes, the VM goes as the ioctl returns", () => {
    const hva = backing();
    const allocs = live(), frames = kvm.memory.framesInUse;
    const { vm } = busyVm(hva);
    const removed: bigint[] = [];
    vm.pageTrack.register({ trackRemoveRegion: (base) => { removed.push(base); vm.close(); } });
    vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: RAM + MiB, memorySize: 0n, userspaceAddr: hva + MiB });
    expect(removed).toEqual([(RAM + MiB) >> 12n]);
    expect(vm.ioctl(KVM_RUN_NR)).toBe(-9);
    expect(live()).toBe(allocs);
    kvm.memory.munmap(hva, 3n * MiB);
    expect(kvm.memory.framesInUse).toBe(frames);
    freshVmRuns();
  });
  it("the same for an internal slot deleted by __x86_set_memory_region", () => {
    backing(); // the VM list and the mm's VMA array exist from here on
    const allocs = live();
    const vm = kvm.createVm();
    vm.x86SetMemoryRegion(32765, 0xfee00000n, 0x1000n);
    const removed: bigint[] = [];
    vm.pageTrack.register({ trackRemoveRegion: (base) => { removed.push(base); vm.close(); } });
    vm.x86SetMemoryRegion(32765, 0n, 0n);
    expect(removed).toEqual([0xfee00n]);
    expect(live()).toBe(allocs);
    freshVmRuns();
  });
  it("a page-track callback that throws inside KVM_RUN: the exception reaches the caller once the run returns, and the VM still closes with everything released", () => {
    const hva = backing();
    const allocs = live(), frames = kvm.memory.framesInUse;
    const { vm, vcpu } = busyVm(hva);
    const p = new Program(RAM + 0x10000n);
    p.li(t0, RAM + 0x9000n).li(t1, 5).emit(A.sd(t1, t0, 0), A.ecall());
    load(vm, vcpu, p);
    vm.pageTrack.register({ trackWrite: () => { throw new Error("callback failed"); } });
    vm.pageTrack.addWriteTracking((RAM + 0x9000n) >> 12n);
    expect(() => vcpu.run()).toThrow("callback failed");
    expect(kvm.memory.peek(hva + 0x9000n, 8)).toBe(5n); // the store itself was done before the callback
    expect(kvm.core.debugCheckInvariants(vm.fd)).toBeTruthy();
    vm.close();
    expect(live()).toBe(allocs);
    kvm.memory.munmap(hva, 3n * MiB);
    expect(kvm.memory.framesInUse).toBe(frames);
    freshVmRuns();
  });
});
