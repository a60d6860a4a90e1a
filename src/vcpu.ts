// Vcpu: a vCPU fd. KVM_RUN with its kvm_run struct, RISC-V registers through
// KVM_GET/SET_ONE_REG, and the memory-subsystem view of the vCPU (its
// generation-tagged last-used memslot cache).

import type { Vm } from "./vm.js";
import { lookupSlot, type Memslot } from "./memslot.js";
import { KvmError, ERRNO, throwIfFailed } from "./errors.js";
import { LOOKUP, VCPU_STAT } from "./abi.gen.js";
import { rawIoctl, checkedIoctl } from "./ioctl.js";
import { KvmRun, EXIT_NAMES } from "./kvm-run.js";
import { DirtyRing } from "./dirty.js";
import { KVM_RUN, KVM_INTERRUPT, KVM_INTERRUPT_SET, KVM_INTERRUPT_UNSET, KVM_GET_ONE_REG, KVM_SET_ONE_REG, KVM_GET_REG_LIST, KVM_PRE_FAULT_MEMORY, kvm_one_reg, kvm_pre_fault_memory, PAGE_SIZE } from "./uapi.js";
import { REG_PC, REG_MODE, coreReg, csrReg, type CsrName, REG_TIMER_COMPARE, REG_TIMER_TIME, oneRegBytes } from "./riscv.js";
import { type U64, toU64 } from "./u64.js";

/** What one KVM_RUN ended with. errno is 0 when KVM_RUN returned 0. */
export interface Exit {
  reason: number;
  name: string;
  errno: number;
}

export interface Regs {
  pc: bigint;
  /** x0..x31 (x0 is always 0). */
  x: bigint[];
  /** 1 = S-mode, 0 = U-mode. */
  mode: bigint;
}

export class Vcpu {
  readonly kvmRun: KvmRun;
  /** This vCPU's dirty ring (mmap offset 64 of a vCPU fd in Linux). */
  readonly dirtyRing: DirtyRing;
  private scratch: bigint | null = null;

  /** @internal */
  constructor(readonly vm: Vm, readonly fd: number, readonly id: number) {
    this.kvmRun = new KvmRun(vm.kvm.core, vm.kvm.core.vcpuRunStruct(fd) >>> 0);
    this.dirtyRing = new DirtyRing(vm.kvm.core, fd);
  }

  private get core() {
    return this.vm.kvm.core;
  }

  /** Raw ioctl on the vCPU fd. */
  ioctl(nr: number, arg?: Uint8Array | number | bigint): number {
    if (nr === KVM_RUN && arg === undefined) return this.runIoctl().r;
    const r = rawIoctl(this.core, this.fd, nr, arg);
    this.vm.kvm.rethrowCallbackError(); // a page-track callback that threw during KVM_RUN
    return r;
  }

  /**
   * KVM_RUN here or, with OpenOptions.vcpuWorkers, on the runner's Worker —
   * unless the VM calls back into this thread's code during a run (reader
   * hooks, page-track users), which runs where it was set up.
   */
  private runIoctl(): { r: number; check: number } {
    const kvm = this.vm.kvm;
    const there = this.vm.pageTrack.hasUsers ? null : kvm.runOnWorker(this.fd);
    if (there) return there;
    const r = rawIoctl(this.core, this.fd, KVM_RUN);
    kvm.rethrowCallbackError(); // a page-track callback that threw during KVM_RUN
    return { r, check: r < 0 ? this.core.lastFailedCheck() : 0 };
  }

  /**
   * KVM_RUN: runs the guest until an exit. Returns the exit; kvmRun holds its
   * details. EINTR (budget, signal, immediate_exit) and EFAULT with a
   * memory_fault are exits too (errno set); any other failure throws, such as
   * EOPNOTSUPP where RISC-V KVM cannot emulate what the guest did (a fetch
   * from a gpa without RAM; LR/SC/AMO on MMIO or a read-only slot).
   */
  private readonly entryHooks: (() => void)[] = [];

  /** Runs fn before every KVM_RUN of this vCPU (devices that publish state to the guest). */
  addEntryHook(fn: () => void): () => void {
    this.entryHooks.push(fn);
    return () => { const i = this.entryHooks.indexOf(fn); if (i >= 0) this.entryHooks.splice(i, 1); };
  }

  run(): Exit {
    for (const h of this.entryHooks) h();
    const { r, check } = this.runIoctl();
    return this.exitOf(r, check);
  }

  /**
   * @internal What a KVM_RUN that returned r (failing check `check`) ended
   * with: the exit, or the KvmError it throws. Checked before kvm_run is read:
   * a run that fails may have no kvm_run left (its VM closed during it).
   * EOPNOTSUPP (a fetch without RAM, an instruction MMIO emulation cannot
   * decode) names the pc.
   */
  exitOf(r: number, check: number): Exit {
    if (r < 0 && r !== -ERRNO.EINTR && r !== -ERRNO.EFAULT) {
      throw new KvmError(-r, check, r === -ERRNO.EOPNOTSUPP ? { pc: this.pc } : {}, "KVM_RUN");
    }
    const reason = this.kvmRun.exitReason;
    return { reason, name: EXIT_NAMES[reason] ?? `exit${reason}`, errno: r < 0 ? -r : 0 };
  }

  /** @internal The entry hooks, for a KVM_RUN issued on another thread (vcpu-thread.ts). */
  runEntryHooks(): void {
    for (const h of this.entryHooks) h();
  }

  /**
   * A signal to the thread running this vCPU: its KVM_RUN ends with exit INTR
   * and EINTR at the next instruction boundary. On the threads core from any
   * thread; a vCPU not in KVM_RUN then returns from its next KVM_RUN at once.
   */
  kick(): void {
    this.core.vcpuKick(this.fd);
  }

  /**
   * KVM_INTERRUPT: raises (true) or lowers the guest's supervisor external
   * interrupt, sip.SEIP: what an interrupt controller in the VMM (a PLIC)
   * drives. From any thread, also while the vCPU runs on a Worker; a running
   * vCPU takes it within its current chunk of instructions.
   */
  setExternalInterrupt(level: boolean): void {
    const buf = new Uint8Array(4);
    new DataView(buf.buffer).setUint32(0, level ? KVM_INTERRUPT_SET : KVM_INTERRUPT_UNSET, true);
    checkedIoctl(this.core, this.fd, KVM_INTERRUPT, "KVM_INTERRUPT", buf, {});
  }

  /**
   * KVM_PRE_FAULT_MEMORY: maps [gpa, gpa + size) ahead of the guest, as read
   * faults would. Returns what is left of the range: size 0 when all of it
   * was mapped; a call that mapped some pages and then met a page it could
   * not map (no memslot, a slot in flux, a signal) returns the rest, and the
   * next call reports why. Throws KvmError when no page was mapped.
   */
  preFaultMemory(range: { gpa: U64; size: U64; flags?: U64 }): { gpa: bigint; size: bigint } {
    const fields = { gpa: toU64(range.gpa, "gpa"), size: toU64(range.size, "size"), flags: toU64(range.flags ?? 0, "flags") };
    const buf = kvm_pre_fault_memory.encode(fields);
    checkedIoctl(this.core, this.fd, KVM_PRE_FAULT_MEMORY, "KVM_PRE_FAULT_MEMORY", buf, fields);
    const left = kvm_pre_fault_memory.decode(buf);
    return { gpa: left.gpa, size: left.size };
  }

  /** Instructions one KVM_RUN may execute before it returns EINTR (a watchdog). */
  setBudget(instructions: number): void {
    if (!Number.isSafeInteger(instructions) || instructions <= 0) throw new RangeError(`budget ${instructions}`);
    this.core.vcpuSetBudget(this.fd, BigInt(instructions));
  }

  /** vcpu->pid: the thread (Kvm's core.threadIdOf()) that issued this vCPU's last KVM_RUN; 0 before the first. */
  get pid(): number {
    return this.core.vcpuPid(this.fd);
  }

  /**
   * kvm_vcpu_gfn_to_memslot calls since the vCPU was created (the shadow MMU's
   * faults and guest page-table walks make them), and how many the vCPU's
   * last-used slot answered without a search.
   */
  get memslotLookups(): { lookups: bigint; cacheHits: bigint } {
    return {
      lookups: BigInt.asUintN(64, BigInt(this.core.vcpuStat(this.fd, VCPU_STAT.MEMSLOT_LOOKUPS))),
      cacheHits: BigInt.asUintN(64, BigInt(this.core.vcpuStat(this.fd, VCPU_STAT.MEMSLOT_CACHE_HITS))),
    };
  }

  /** Retired instructions since the vCPU was created. */
  get instret(): bigint {
    return BigInt.asUintN(64, BigInt(this.core.vcpuInstret(this.fd)));
  }

  private scratchHva(): bigint {
    if (this.scratch === null) this.scratch = this.vm.kvm.memory.mmap(PAGE_SIZE);
    return this.scratch;
  }

  /** @internal Unmaps the ONE_REG argument page (the VM is closing). */
  releaseScratch(): void {
    if (this.scratch !== null) this.vm.kvm.memory.munmap(this.scratch, PAGE_SIZE);
    this.scratch = null;
  }

  /** KVM_GET_ONE_REG of a register of up to 64 bits (its size, KVM_REG_SIZE, is in the id: u32 or u64). */
  getOneReg(id: U64): bigint {
    const addr = this.scratchHva();
    checkedIoctl(this.core, this.fd, KVM_GET_ONE_REG, "KVM_GET_ONE_REG",
      kvm_one_reg.encode({ id: toU64(id, "id"), addr }), { id });
    return this.vm.kvm.memory.peek(addr, oneRegBytes(id));
  }

  /** KVM_SET_ONE_REG of a register of up to 64 bits (value truncated to the id's size). */
  setOneReg(id: U64, value: U64): void {
    const addr = this.scratchHva();
    const size = oneRegBytes(id);
    this.vm.kvm.memory.poke(addr, BigInt.asUintN(size * 8, BigInt(value)), size);
    checkedIoctl(this.core, this.fd, KVM_SET_ONE_REG, "KVM_SET_ONE_REG",
      kvm_one_reg.encode({ id: toU64(id, "id"), addr }), { id });
  }

  /**
   * KVM_GET_REG_LIST: every register id KVM_GET/SET_ONE_REG answers for this
   * vCPU, in the kernel's order. Asked twice, as a VMM does: with n = 0 (E2BIG
   * tells the count), then with room for them all.
   */
  getRegList(): bigint[] {
    const probe = new Uint8Array(8);
    const r = rawIoctl(this.core, this.fd, KVM_GET_REG_LIST, probe);
    if (r !== -ERRNO.E2BIG) throwIfFailed(this.core, r, "KVM_GET_REG_LIST", { n: 0n, ioctl: "KVM_GET_REG_LIST", nr: KVM_GET_REG_LIST });
    const dv = new DataView(probe.buffer);
    const n = Number(dv.getBigUint64(0, true));
    const list = new Uint8Array(8 + 8 * n);
    const lv = new DataView(list.buffer);
    lv.setBigUint64(0, BigInt(n), true);
    checkedIoctl(this.core, this.fd, KVM_GET_REG_LIST, "KVM_GET_REG_LIST", list, { n: BigInt(n) });
    return Array.from({ length: Number(lv.getBigUint64(0, true)) }, (_, i) => lv.getBigUint64(8 + 8 * i, true));
  }

  getRegs(): Regs {
    const x = [0n];
    for (let i = 1; i < 32; i++) x.push(this.getOneReg(coreReg(i)));
    return { pc: this.getOneReg(REG_PC), x, mode: this.getOneReg(REG_MODE) };
  }

  setRegs(r: Partial<Regs>): void {
    if (r.x) r.x.forEach((v, i) => { if (i > 0) this.setOneReg(coreReg(i), v); });
    if (r.mode !== undefined) this.setOneReg(REG_MODE, r.mode);
    if (r.pc !== undefined) this.setOneReg(REG_PC, r.pc);
  }

  getReg(n: number): bigint { return n === 0 ? 0n : this.getOneReg(coreReg(n)); }
  setReg(n: number, v: U64): void { this.setOneReg(coreReg(n), v); }
  get pc(): bigint { return this.getOneReg(REG_PC); }
  set pc(v: bigint) { this.setOneReg(REG_PC, v); }
  getCsr(name: CsrName): bigint { return this.getOneReg(csrReg(name)); }
  setCsr(name: CsrName, v: U64): void { this.setOneReg(csrReg(name), v); }
  /** The supervisor timer deadline (SBI set_timer / stimecmp), in ticks of `time`. */
  setTimer(deadline: U64): void { this.setOneReg(REG_TIMER_COMPARE, deadline); }
  get time(): bigint { return this.getOneReg(REG_TIMER_TIME); }

  /** kvm_vcpu_gfn_to_hva: the host address of a gfn through this vCPU's last-used cache (KVM_HVA_ERR_BAD without a usable slot). */
  gfnToHva(gfn: U64): bigint {
    return BigInt.asUintN(64, this.core.vcpuGfnToHvaOf(this.fd, BigInt.asIntN(64, toU64(gfn, "gfn"))));
  }

  /** kvm_vcpu_gfn_to_memslot: the slot through this vCPU's last-used cache. */
  gfnToMemslot(gfn: U64): Memslot | null {
    return lookupSlot(this.core, this.fd, 0, toU64(gfn, "gfn"), LOOKUP.VCPU);
  }
}

