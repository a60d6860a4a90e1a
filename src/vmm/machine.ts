// A small VMM around the KVM surface: one VM with RAM at 0x80000000, one or
// more vCPUs (harts 0..n-1, the others STOPPED until SBI HSM starts them, as
// kvm_arch_vcpu_postcreate powers off all but the first), a UART and a PLIC on
// the MMIO bus (the PLIC drives each hart's external interrupt through
// KVM_INTERRUPT), and the SBI calls (sbi.ts; IPIs and remote fences reach a hart as
// requests taken before its next KVM_RUN). loadLinux boots a kernel with a
// generated device tree (linux.ts, device-tree.ts). Several vCPUs share this thread round-robin, one
// KVM_RUN per turn with an instruction budget. What `webkvm run`, `npm start`
// and the guest tests use.

import { Kvm } from "../kvm.js";
import type { Vm } from "../vm.js";
import type { Vcpu, Exit } from "../vcpu.js";
import { KVM_EXIT, EXIT_NAMES } from "../kvm-run.js";
import { KvmError } from "../errors.js";
import { VcpuThread } from "../vcpu-thread.js";
import { MmioBus } from "./devices/mmio-bus.js";
import { Uart16550 } from "./devices/uart16550.js";
import { Plic, PLIC_SIZE } from "./devices/plic.js";
import { handleSbi, hsmHartStart, type SbiHost, type SbiHsm } from "./sbi.js";
import { parseImage } from "./elf.js";
import { RAM_BASE, UART_BASE, UART_SIZE, UART_CLOCK_HZ, PLIC_BASE, PLIC_NDEV, UART_IRQ } from "./platform.js";
import { buildDeviceTree } from "./device-tree.js";
import { placeKernel, planBoot, type BootLayout } from "./linux.js";
import { KVM_MEM_LOG_DIRTY_PAGES, PAGE_SIZE } from "../uapi.js";
import { CSR_NAMES, REG_TIMER_COMPARE, REG_TIMER_FREQUENCY } from "../riscv.js";
import { captureState, checkState, checkLayout, checkSameLayout, buildVm, restoreRegisters, memoryRegionsOf, type MachineConfig,
  type MachineLayout, type MachineState, type MemoryRegionInfo } from "./machine-state.js";
import { type U64, toU64 } from "../u64.js";

/** sip's supervisor software interrupt bit (what an SBI IPI makes pending). */
const SIP_SSIP = 2n;
/** sip / sie's supervisor external interrupt bit (what the PLIC drives through KVM_INTERRUPT). */
const SIP_SEIP = 1n << 9n;

export interface MachineOptions {
  kvm?: Kvm;
  /** Guest RAM bytes (default 64 MiB). */
  memSize?: U64;
  /** Log dirty pages of the RAM slot. */
  dirtyLog?: boolean;
  /** Receives the UART's output as it is written. */
  onConsole?: (text: string) => void;
  /** vCPUs, hart ids 0..vcpus-1 (default 1); all but hart 0 begin STOPPED (SBI HSM starts them). */
  vcpus?: number;
  /**
   * The instruction budget of one turn (one KVM_RUN) of a hart: default 10,000
   * with several vCPUs; one vCPU keeps KVM's own budget unless this is given.
   */
  turn?: number;
  /** KVM_CAP_DIRTY_LOG_RING: ring bytes per vCPU, enabled before the vCPUs exist (as the cap requires). */
  dirtyRing?: number;
  /** Enable the ring as KVM_CAP_DIRTY_LOG_RING_ACQ_REL instead. */
  dirtyRingAcqRel?: boolean;
}

/** Where Machine.restore builds the machine, and how. */
export interface RestoreOptions {
  kvm?: Kvm;
  onConsole?: (text: string) => void;
  /**
   * The new RAM: all zero (default), or every page MISSING (kvm.memory's
   * userfaultfd-style mode, registered before any vCPU exists) for a post-copy
   * destination that places pages as they arrive. Its contents are the caller's job.
   */
  memory?: "zero" | "missing";
  /**
   * Host memory the caller already filled, taken over instead of a new
   * mapping: called for each memslot whose host range it shares with no other
   * slot, it returns the hva of a private mapping of exactly that slot's size
   * holding the slot's contents, or null for a new one. Once the restore
   * succeeds the machine owns the mappings it took (a migration's destination
   * receives RAM before it has the state and must not copy it in the downtime).
   */
  adopt?: (slot: { asId: number; slot: number; gpa: bigint; size: bigint }) => bigint | null;
}

/** A machine built from its layout (Machine.prepare), waiting for its state. */
export interface PreparedMachine {
  /**
   * Sets the state (checked whole, its config and memslots against the
   * layout) and returns the machine, which owns the VM and memory from then
   * on. A state that is refused, or a failure setting it, releases everything.
   */
  apply(state: MachineState): Machine;
  /**
   * Sets a state as apply does, the machine staying prepared (a migration's
   * destination rehearses the switch-over at the hello: a state the target
   * refuses is refused then, and the code apply runs is warm when the
   * downtime needs it); apply later sets its state whole. A state that is
   * refused, or a failure setting it, releases everything.
   */
  stage(state: MachineState): void;
  /** Closes the VM and unmaps the memory it mapped (adopted memory stays the caller's); nothing once applied. */
  release(): void;
}

export interface LinuxBoot {
  /** A RISC-V kernel `Image` (with its boot header) or an ELF vmlinux. */
  kernel: Uint8Array;
  /** An initramfs (cpio, possibly compressed), placed high in RAM. */
  initrd?: Uint8Array;
  /** The kernel command line (/chosen/bootargs). */
  cmdline?: string;
  /**
   * The cpu nodes' riscv,isa (default GUEST_ISA). A VMM may advertise less
   * than the vCPU implements, as kvmtool's --disable-* options do: Linux
   * then leaves what is missing unused (without f and d, sstatus.FS stays Off).
   */
  isa?: string;
}

/** Where loadLinux put things, and the device tree it generated. */
export interface LinuxLoaded extends BootLayout {
  deviceTree: Uint8Array;
}

/** A hart as SBI HSM sees it. */
export type HartState = "started" | "stopped";

/**
 * Why run() returned. "harts-stopped": every hart called HSM hart_stop.
 * "dirty-ring-full": a vCPU's dirty ring is soft-full (KVM_EXIT_DIRTY_RING_FULL):
 * harvest, KVM_RESET_DIRTY_RINGS, and run() again.
 */
export type StopKind = "shutdown" | "reboot" | "halt" | "limit" | "memory-fault" | "unhandled-exit" | "run-failed"
  | "harts-stopped" | "dirty-ring-full";

export interface RunResult {
  stop: StopKind;
  /** The SRST reason (0 = none / success, 1 = failure) for shutdown and reboot. */
  reason: number;
  instructions: bigint;
  exits: number;
  lastExit: Exit;
  /** The hart whose exit ended the run (0 with one vCPU; for "limit" and "harts-stopped", the last one run). */
  hart: number;
  /** For "run-failed": why KVM_RUN failed (such as EOPNOTSUPP for a fetch from a gpa without RAM). */
  error?: KvmError;
}

export class Machine {
  readonly bus = new MmioBus();
  readonly uart: Uart16550;
  /** The interrupt controller: the UART is its source UART_IRQ; context N drives hart N's sip.SEIP (KVM_INTERRUPT). */
  readonly plic: Plic;
  /** Everything the guest wrote to its console (UART and SBI putchar). */
  output = "";
  /** The boot hart's vCPU (vcpus[0]). */
  readonly vcpu: Vcpu;
  private stopped: { kind: StopKind; reason: number } | null = null;
  private readonly decoder = new TextDecoder();
  /** The decoder may hold part of a UTF-8 sequence (the last console byte was not ASCII). */
  private decoding = false;
  /** Each hart's SbiHost, made on its first SBI exit. */
  private readonly sbiHosts: SbiHost[] = [];
  /** HSM state per hart: hart 0 starts STARTED, the others STOPPED. */
  private readonly started: boolean[];
  /** The hart that ran last (round-robin continues after it). */
  private current = 0;
  /** Harts that exited KVM_EXIT_HLT in this run(): they sit out until an IPI wakes them. */
  private readonly halted: boolean[];
  /** Requests for a hart, taken before its next KVM_RUN: an SBI IPI (sip.SSIP) and a remote sfence (a full flush). */
  private readonly ipiPending: boolean[];
  private readonly flushPending: boolean[];
  /** While runThreaded runs: a hart with a request is kicked out of the KVM_RUN it may be in. */
  private threaded = false;
  /** runThreaded: harts sent a remote sfence by the exit being handled; the caller resumes once they left KVM_RUN. */
  private fenced: number[] = [];
  /** Bytes for the SBI console (legacy getchar, DBCN read). */
  private readonly sbiInput: number[] = [];
  /** The CSR and timer values of a new vCPU, restored when HSM starts a hart (KVM_REQ_VCPU_RESET). */
  private readonly resetState: { csrs: bigint[]; timerCompare: bigint };

  private constructor(readonly kvm: Kvm, readonly vm: Vm, readonly vcpus: readonly Vcpu[], readonly ramHva: bigint,
                      readonly memSize: bigint, private readonly setup: Pick<MachineConfig, "turn" | "dirtyRing">,
                      private readonly onConsole?: (t: string) => void) {
    this.vcpu = vcpus[0];
    this.resetState = { csrs: CSR_NAMES.map((c) => this.vcpu.getCsr(c)), timerCompare: this.vcpu.getOneReg(REG_TIMER_COMPARE) };
    this.started = vcpus.map((_, i) => i === 0);
    this.halted = vcpus.map(() => false);
    this.ipiPending = vcpus.map(() => false);
    this.flushPending = vcpus.map(() => false);
    this.plic = new Plic(PLIC_NDEV, vcpus.length, (hart, high) => this.externalInterrupt(hart, high));
    this.uart = new Uart16550((b) => this.console(b), (high) => this.plic.setIrq(UART_IRQ, high));
    this.bus.register("uart", UART_BASE, 0x100n, this.uart);
    this.bus.register("plic", PLIC_BASE, PLIC_SIZE, this.plic);
  }

  static async create(opts: MachineOptions = {}): Promise<Machine> {
    const n = opts.vcpus ?? 1;
    if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`vcpus ${n}`);
    const turn = opts.turn ?? (n > 1 ? 10_000 : undefined);
    if (turn !== undefined && (!Number.isSafeInteger(turn) || turn <= 0)) throw new RangeError(`turn ${turn}`);
    const kvm = opts.kvm ?? (await Kvm.open());
    const memSize = toU64(opts.memSize ?? 64n << 20n, "memSize");
    const vm = kvm.createVm();
    if (opts.dirtyRing !== undefined) vm.enableDirtyRing(opts.dirtyRing, opts.dirtyRingAcqRel);
    const ram = kvm.memory.mmap(memSize);
    vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: RAM_BASE, memorySize: memSize, userspaceAddr: ram,
      flags: opts.dirtyLog ? KVM_MEM_LOG_DIRTY_PAGES : 0 });
    const vcpus = Array.from({ length: n }, (_, i) => vm.createVcpu(i));
    if (turn !== undefined) for (const v of vcpus) v.setBudget(turn);
    const dirtyRing = opts.dirtyRing === undefined ? null : { bytes: opts.dirtyRing, acqRel: opts.dirtyRingAcqRel ?? false };
    return new Machine(kvm, vm, vcpus, ram, memSize, { turn: turn ?? null, dirtyRing }, opts.onConsole);
  }

  /**
   * The whole non-RAM state (machine-state.ts), taken between run() calls:
   * each vCPU first completes what its last exit left open (KVM_RUN with
   * immediate_exit). Refuses guest_memfd-backed and internal memslots, and a
   * machine whose harts are in runThreaded().
   */
  saveState(): MachineState {
    if (this.threaded) throw new Error("saveState: the harts are in runThreaded(); a state is taken between runs");
    return captureState(this.vm, this.vcpus, { memSize: this.memSize, vcpus: this.vcpus.length, ...this.setup },
      { uart: this.uart.save(), plic: this.plic.save() },
      { harts: this.vcpus.map((_, h) => ({ started: this.started[h], halted: this.halted[h], ipiPending: this.ipiPending[h],
        flushPending: this.flushPending[h] })), current: this.current, sbiInput: this.sbiInput });
  }

  /**
   * A Machine in a fresh VM (on opts.kvm, or a new Kvm) in the saved state:
   * the same memslots over new host memory (see RestoreOptions.memory), vCPUs,
   * registers, devices and VMM bookkeeping; the guest's RAM contents are the
   * caller's to copy. A state that cannot be restored is refused
   * (MachineStateError) before any VM is created; a later failure (the target
   * refusing a register value) closes the new VM and unmaps its memory.
   */
  static async restore(state: MachineState, opts: RestoreOptions = {}): Promise<Machine> {
    checkState(state);
    return (await Machine.prepare(state, opts)).apply(state);
  }

  /**
   * The first half of restore, for a caller that knows the layout before the
   * state (a migration's destination, at the hello): the VM, its memslots over
   * new (or adopted) host memory and its vCPUs, as restore makes them. A
   * layout that cannot be built is refused (MachineStateError) before any VM
   * is created; a later failure closes the VM and unmaps its memory.
   */
  static async prepare(layout: MachineLayout, opts: RestoreOptions = {}): Promise<PreparedMachine> {
    checkLayout(layout);
    const kvm = opts.kvm ?? (await Kvm.open());
    const built = buildVm(kvm, layout, opts.memory ?? "zero", opts.adopt);
    let m: Machine;
    try {
      const c = layout.config;
      m = new Machine(kvm, built.vm, built.vcpus, built.ramHva, c.memSize, { turn: c.turn, dirtyRing: c.dirtyRing }, opts.onConsole);
    } catch (e) {
      built.release();
      throw e;
    }
    let open = true;
    const release = () => {
      if (open) built.release();
      open = false;
    };
    const set = (state: MachineState): void => {
      if (!open) throw new Error("the prepared machine was applied or released already");
      try {
        checkState(state);
        checkSameLayout(layout, state);
        built.vcpus.forEach((v, h) => restoreRegisters(v, state.vcpus[h]));
        m.uart.restore(state.uart);
        m.plic.restore(state.plic);
        state.harts.forEach((f, h) => {
          ({ started: m.started[h], halted: m.halted[h], ipiPending: m.ipiPending[h], flushPending: m.flushPending[h] } = f);
          built.vcpus[h].setExternalInterrupt(m.plic.lineOf(h)); // the PLIC's output is the hart's sip.SEIP
        });
        m.current = state.current;
        m.sbiInput.length = 0; // the state's input, not a staged one's too
        for (const b of state.sbiInput) m.sbiInput.push(b);
      } catch (e) {
        release();
        throw e;
      }
    };
    const apply = (state: MachineState): Machine => {
      set(state);
      open = false; // the machine owns it all now
      return m;
    };
    return { apply, stage: set, release };
  }

  /** Every memslot of every address space with its host address: the guest memory a snapshot or migration copies. */
  memoryRegions(): MemoryRegionInfo[] {
    return memoryRegionsOf(this.vm);
  }

  private console(byte: number): void {
    // ASCII with no UTF-8 sequence in progress is its own character: no decoder call (a boot prints thousands).
    const s = byte < 0x80 && !this.decoding ? String.fromCharCode(byte) : this.decoder.decode(new Uint8Array([byte]), { stream: true });
    this.decoding = byte >= 0x80; // an ASCII byte through the decoder ends whatever sequence it held
    this.output += s;
    this.onConsole?.(s);
  }

  /** Loads a flat image (at the RAM base) or an ELF; the boot hart starts at its entry with a1 = arg. */
  load(image: Uint8Array, arg: U64 = 0): bigint {
    const img = parseImage(image, RAM_BASE);
    for (const s of img.segments) this.vm.writeGuest(s.gpa, s.bytes);
    this.vcpu.setRegs({ pc: img.entry, mode: 1n });
    this.vcpu.setReg(10, 0);
    this.vcpu.setReg(11, toU64(arg, "arg"));
    return img.entry;
  }

  /**
   * Boots Linux as kvmtool does (linux.ts): the kernel at RAM base + its text
   * offset, the initrd high in RAM, a device tree generated from this
   * machine (device-tree.ts) above it; hart 0 enters the kernel in S-mode with
   * a0 = 0, a1 = the device tree, satp = 0; the other harts stay STOPPED
   * until the kernel starts them through SBI HSM.
   */
  loadLinux(boot: LinuxBoot): LinuxLoaded {
    const kernel = placeKernel(boot.kernel, RAM_BASE);
    const tree = (initrd?: { start: bigint; end: bigint }) => buildDeviceTree({
      harts: this.vcpus.length, memory: [{ base: RAM_BASE, size: this.memSize }],
      timebaseHz: Number(this.vcpu.getOneReg(REG_TIMER_FREQUENCY)),
      uart: { base: UART_BASE, size: UART_SIZE, clockHz: UART_CLOCK_HZ, irq: UART_IRQ },
      plic: { base: PLIC_BASE, size: PLIC_SIZE, ndev: PLIC_NDEV }, bootargs: boot.cmdline ?? "", initrd, isa: boot.isa,
    });
    // The tree's size does not depend on the initrd's addresses, only on whether there is one.
    const sizing = tree(boot.initrd ? { start: 0n, end: 0n } : undefined);
    const layout = planBoot(kernel, RAM_BASE, this.memSize, sizing.length, boot.initrd?.length);
    const deviceTree = tree(layout.initrd);
    for (const p of kernel.pieces) this.vm.writeGuest(p.gpa, p.bytes);
    if (boot.initrd && layout.initrd) this.vm.writeGuest(layout.initrd.start, boot.initrd);
    this.vm.writeGuest(layout.dtb, deviceTree);
    this.vcpu.setCsr("satp", 0n);
    this.vcpu.setRegs({ pc: kernel.entry, mode: 1n });
    this.vcpu.setReg(10, 0);
    this.vcpu.setReg(11, layout.dtb);
    return { ...layout, deviceTree };
  }

  /** Queues bytes for the SBI console: legacy getchar and DBCN read take them (the UART has its own, uart.feed). */
  feedConsole(bytes: Uint8Array | string): void {
    for (const b of typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes) this.sbiInput.push(b);
  }

  /** A hart's HSM state. */
  hartState(hartid: number): HartState {
    if (!Number.isInteger(hartid) || hartid < 0 || hartid >= this.vcpus.length) throw new RangeError(`hart ${hartid}`);
    return this.started[hartid] ? "started" : "stopped";
  }

  /**
   * SBI HSM hart_start, called by the VMM itself: starts a STOPPED hart at
   * startAddr with a0 = hartid and a1 = opaque. Returns the SBI error code
   * (SBI_SUCCESS = 0n) a guest's call would get.
   */
  startHart(hartid: U64, startAddr: U64, opaque: U64 = 0): bigint {
    return hsmHartStart(this.hsm(-1), toU64(hartid, "hartid"), toU64(startAddr, "startAddr"), toU64(opaque, "opaque"));
  }

  /** The HSM view for a call made by `caller` (-1: the VMM). */
  private hsm(caller: number): SbiHsm {
    return {
      harts: this.vcpus.length,
      started: (h) => this.started[h],
      executable: (gpa) => this.vm.isVisibleGfn(gpa / BigInt(PAGE_SIZE)),
      start: (h, addr, opaque) => this.powerOn(h, addr, opaque),
      stopSelf: () => { if (caller >= 0) this.started[caller] = false; },
    };
  }

  /** kvm_riscv_reset_vcpu with the HSM start context: the new-vCPU state, then pc, a0, a1, S-mode. */
  private powerOn(hartid: number, startAddr: bigint, opaque: bigint): void {
    const v = this.vcpus[hartid];
    CSR_NAMES.forEach((c, i) => v.setCsr(c, this.resetState.csrs[i]));
    v.setOneReg(REG_TIMER_COMPARE, this.resetState.timerCompare);
    const x = new Array<bigint>(32).fill(0n);
    x[10] = BigInt(hartid);
    x[11] = opaque;
    v.setRegs({ x, pc: startAddr, mode: 1n });
    this.started[hartid] = true;
    this.halted[hartid] = false;
    this.ipiPending[hartid] = false; // the reset clears pending interrupts
  }

  /**
   * The PLIC moved hart's external interrupt line: KVM_INTERRUPT (which reaches
   * a hart running on a Worker too); a hart halted in wfi wakes to take it.
   */
  private externalInterrupt(hart: number, high: boolean): void {
    this.vcpus[hart].setExternalInterrupt(high);
    if (high) this.halted[hart] = false;
  }

  /** A request for a hart: a halted hart wakes; one in KVM_RUN on a Worker is kicked out to take it. */
  private request(hart: number, pending: boolean[]): void {
    pending[hart] = true;
    this.halted[hart] = false;
    if (this.threaded) {
      this.vcpus[hart].kick();
      if (pending === this.flushPending) this.fenced.push(hart);
    }
  }

  /** Takes a hart's requests before its KVM_RUN (it is not running: its registers may be set). */
  private takeRequests(hart: number): void {
    const v = this.vcpus[hart];
    if (this.ipiPending[hart]) {
      this.ipiPending[hart] = false;
      v.setCsr("sip", v.getCsr("sip") | SIP_SSIP);
    }
    if (this.flushPending[hart]) {
      this.flushPending[hart] = false;
      v.setCsr("satp", v.getCsr("satp")); // a satp write drops every cached translation of the vCPU
    }
  }

  /** Guest-physical RAM for DBCN: null / false where no memslot backs a page of the range. */
  private guestRange(gpa: bigint, len: number): boolean {
    if (len === 0) return true;
    const page = BigInt(PAGE_SIZE);
    if (gpa + BigInt(len) > 1n << 64n) return false;
    for (let g = gpa / page; g <= (gpa + BigInt(len) - 1n) / page; g++) if (!this.vm.isVisibleGfn(g)) return false;
    return true;
  }

  private sbiHost(hart: number): SbiHost {
    return {
      putchar: (b) => this.console(b),
      getchar: () => this.sbiInput.shift() ?? -1,
      setTimer: (t) => this.vcpus[hart].setTimer(t),
      reset: (type, reason) => { this.stopped = { kind: type === 0 ? "shutdown" : "reboot", reason }; },
      hsm: this.hsm(hart),
      harts: this.vcpus.length,
      sendIpi: (h) => this.request(h, this.ipiPending),
      remoteSfence: (h) => this.request(h, this.flushPending),
      guestMemory: {
        read: (gpa, len) => (this.guestRange(gpa, len) ? this.vm.readGuest(gpa, len) : null),
        write: (gpa, bytes) => {
          if (!this.guestRange(gpa, bytes.length)) return false;
          this.vm.writeGuest(gpa, bytes);
          return true;
        },
      },
    };
  }

  private instret(): bigint {
    let n = 0n;
    for (const v of this.vcpus) n += v.instret;
    return n;
  }

  /** The next STARTED, not halted hart after the current one, round-robin; -1 when none is. */
  private nextHart(): number {
    const n = this.vcpus.length;
    for (let i = 1; i <= n; i++) {
      const h = (this.current + i) % n;
      if (this.started[h] && !this.halted[h]) return h;
    }
    return -1;
  }

  /**
   * Runs until the guest shuts down, every running hart halts for good, a
   * hart faults, KVM_RUN fails, every hart has stopped, a dirty ring is full,
   * or maxInstructions (over all harts) pass. Several harts take turns: one
   * KVM_RUN each.
   */
  run(opts: { maxInstructions?: bigint } = {}): RunResult {
    const start = this.instret();
    let exits = 0;
    this.stopped = null;
    this.halted.fill(false); // a new run() tries them again, as re-entering KVM_RUN does
    for (;;) {
      const next = this.nextHart();
      if (next < 0) {
        const lastExit = { reason: this.vcpus[this.current].kvmRun.exitReason, name: "", errno: 0 };
        lastExit.name = EXIT_NAMES[lastExit.reason] ?? `exit${lastExit.reason}`;
        const stop = this.started.includes(true) ? "halt" : "harts-stopped"; // the started ones are halted
        return { stop, reason: 0, instructions: this.instret() - start, exits, lastExit, hart: this.current };
      }
      const hart = this.current = next;
      const vcpu = this.vcpus[hart];
      let exit: Exit;
      try {
        this.takeRequests(hart);
        exit = vcpu.run();
      } catch (e) {
        // KVM_RUN failed (as a VMM sees it, e.g. kvmtool's "KVM_RUN failed"): the guest stops.
        if (!(e instanceof KvmError)) throw e;
        const reason = vcpu.kvmRun.exitReason;
        const lastExit = { reason, name: EXIT_NAMES[reason] ?? `exit${reason}`, errno: e.errno };
        return { stop: "run-failed", reason: 0, instructions: this.instret() - start, exits: exits + 1, lastExit, hart, error: e };
      }
      exits++;
      const done = (kind: StopKind, reason = 0): RunResult =>
        ({ stop: kind, reason, instructions: this.instret() - start, exits, lastExit: exit, hart });
      const stop = this.handleExit(hart, exit);
      if (stop !== null) return done(stop, this.stopReason(stop));
      if (exit.reason === KVM_EXIT.HLT && this.nextHart() < 0) return done("halt");
      if (opts.maxInstructions !== undefined && this.instret() - start >= opts.maxInstructions) return done("limit");
    }
  }

  /** The SRST reason of a shutdown or reboot stop, else 0. */
  private stopReason(stop: StopKind): number {
    return (stop === "shutdown" || stop === "reboot") && this.stopped ? (this.stopped as { reason: number }).reason : 0;
  }

  /** What one exit of a hart asks of the VMM: done here (null), or why the run stops. */
  private handleExit(hart: number, exit: Exit): StopKind | null {
    const vcpu = this.vcpus[hart];
    if (exit.reason === KVM_EXIT.MMIO) {
      const m = vcpu.kvmRun.mmio;
      if (!this.bus.access(m.physAddr, m.len, m.isWrite, m.data) && !m.isWrite) m.data.fill(0);
      return null;
    }
    if (exit.reason === KVM_EXIT.RISCV_SBI) {
      const [err, val] = handleSbi(this.sbiHosts[hart] ??= this.sbiHost(hart), vcpu.kvmRun.riscvSbi);
      vcpu.kvmRun.setSbiReturn(err, val);
      return this.stopped ? (this.stopped as { kind: StopKind }).kind : null;
    }
    if (exit.reason === KVM_EXIT.INTR) return null; // budget used up, or a kick: a chance to stop
    if (exit.reason === KVM_EXIT.HLT) {
      // An IPI that arrived while the hart was on its way to this halt wakes it at once (kvm_arch_vcpu_runnable).
      // So does an external interrupt raised meanwhile that sie enables (wfi itself found none).
      const external = this.plic.lineOf(hart) && (vcpu.getCsr("sie") & SIP_SEIP) !== 0n;
      if (!this.ipiPending[hart] && !external) this.halted[hart] = true;
      return null;
    }
    if (exit.reason === KVM_EXIT.MEMORY_FAULT) return "memory-fault";
    if (exit.reason === KVM_EXIT.DIRTY_RING_FULL) return "dirty-ring-full";
    return "unhandled-exit";
  }

  /**
   * run() with every hart on a Worker of its own (VcpuThread; the Machine's
   * Kvm must run the threads core): the harts execute at once and this thread
   * handles their exits as run() does, starting a hart's Worker loop when SBI
   * HSM starts it. Runs until the guest shuts down, an exit stops the run, or
   * every hart has halted or stopped; no instruction limit (each KVM_RUN is
   * still bounded by the vCPU's budget). `workerUrl` as for VcpuThread.start.
   */
  async runThreaded(opts: { workerUrl?: URL } = {}): Promise<RunResult> {
    const threads = await Promise.all(this.vcpus.map((v) => VcpuThread.start(this.kvm, v, opts)));
    const start = this.instret();
    let exits = 0;
    let result: Omit<RunResult, "instructions" | "exits"> | null = null;
    this.stopped = null;
    this.halted.fill(false);
    this.threaded = true;
    const loops = new Map<number, Promise<void>>();
    /** The KVM_RUN each hart is in. */
    const running = new Map<number, Promise<Exit>>();
    const live = (h: number) => this.started[h] && !this.halted[h];
    const loop = async (hart: number): Promise<void> => {
      const t = threads[hart];
      while (result === null && live(hart)) {
        let exit: Exit;
        try {
          this.takeRequests(hart);
          const run = t.run();
          running.set(hart, run);
          exit = await run;
        } catch (e) {
          if (!(e instanceof KvmError)) throw e;
          const reason = t.vcpu.kvmRun.exitReason;
          result ??= { stop: "run-failed", reason: 0, lastExit: { reason, name: EXIT_NAMES[reason] ?? `exit${reason}`, errno: e.errno },
            hart, error: e };
          break;
        } finally {
          running.delete(hart);
        }
        exits++;
        this.fenced = [];
        const stop = this.handleExit(hart, exit);
        if (stop !== null) result ??= { stop, reason: this.stopReason(stop), lastExit: exit, hart };
        // A remote sfence returns once its targets are out of KVM_RUN: their loops take the flush before they
        // run again (their continuations run before this one), as KVM waits for KVM_REQ_HFENCE.
        const targets = this.fenced.flatMap((h) => running.get(h) ?? []);
        if (targets.length > 0) await Promise.allSettled(targets);
        for (let h = 0; h < threads.length; h++) if (live(h) && !loops.has(h)) loops.set(h, loop(h));
      }
      loops.delete(hart);
      if (result !== null) for (const other of threads) other.kick(); // the others' runs end at once
    };
    for (let h = 0; h < threads.length; h++) if (live(h)) loops.set(h, loop(h));
    while (loops.size > 0) await Promise.race(loops.values());
    this.threaded = false;
    await Promise.all(threads.map((t) => t.terminate()));
    const hart = (result as { hart: number } | null)?.hart ?? 0;
    const lastExit = { reason: this.vcpus[hart].kvmRun.exitReason, name: "", errno: 0 };
    lastExit.name = EXIT_NAMES[lastExit.reason] ?? `exit${lastExit.reason}`;
    const end = result ?? { stop: this.started.includes(true) ? "halt" : "harts-stopped", reason: 0, lastExit, hart };
    return { ...end, instructions: this.instret() - start, exits } as RunResult;
  }

  close(): void {
    this.vm.close();
  }
}
