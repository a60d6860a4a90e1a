// A small VMM around the KVM surface: one VM with RAM at 0x80000000, one vCPU,
// a UART on the MMIO bus, and the SBI calls. What `webkvm run`, `npm start`
// and the guest tests use.

import { Kvm } from "../kvm.js";
import type { Vm } from "../vm.js";
import type { Vcpu, Exit } from "../vcpu.js";
import { KVM_EXIT, EXIT_NAMES } from "../kvm-run.js";
import { KvmError } from "../errors.js";
import { MmioBus } from "./devices/mmio-bus.js";
import { Uart16550 } from "./devices/uart16550.js";
import { handleSbi, type SbiHost } from "./sbi.js";
import { parseImage } from "./elf.js";
import { RAM_BASE, UART_BASE } from "./platform.js";
import { KVM_MEM_LOG_DIRTY_PAGES } from "../uapi.js";
import { type U64, toU64 } from "../u64.js";

export interface MachineOptions {
  kvm?: Kvm;
  /** Guest RAM bytes (default 64 MiB). */
  memSize?: U64;
  /** Log dirty pages of the RAM slot. */
  dirtyLog?: boolean;
  /** Receives the UART's output as it is written. */
  onConsole?: (text: string) => void;
}

export type StopKind = "shutdown" | "reboot" | "halt" | "limit" | "memory-fault" | "unhandled-exit" | "run-failed";

export interface RunResult {
  stop: StopKind;
  /** The SRST reason (0 = none / success, 1 = failure) for shutdown and reboot. */
  reason: number;
  instructions: bigint;
  exits: number;
  lastExit: Exit;
  /** For "run-failed": why KVM_RUN failed (such as EOPNOTSUPP for a fetch from a gpa without RAM). */
  error?: KvmError;
}

export class Machine {
  readonly bus = new MmioBus();
  readonly uart: Uart16550;
  /** Everything the guest wrote to its console (UART and SBI putchar). */
  output = "";
  private stopped: { kind: StopKind; reason: number } | null = null;
  private readonly decoder = new TextDecoder();

  private constructor(readonly kvm: Kvm, readonly vm: Vm, readonly vcpu: Vcpu, readonly ramHva: bigint,
                      readonly memSize: bigint, private readonly onConsole?: (t: string) => void) {
    this.uart = new Uart16550((b) => this.console(b));
    this.bus.register("uart", UART_BASE, 0x100n, this.uart);
  }

  static async create(opts: MachineOptions = {}): Promise<Machine> {
    const kvm = opts.kvm ?? (await Kvm.open());
    const memSize = toU64(opts.memSize ?? 64n << 20n, "memSize");
    const vm = kvm.createVm();
    const ram = kvm.memory.mmap(memSize);
    vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: RAM_BASE, memorySize: memSize, userspaceAddr: ram,
      flags: opts.dirtyLog ? KVM_MEM_LOG_DIRTY_PAGES : 0 });
    const vcpu = vm.createVcpu(0);
    return new Machine(kvm, vm, vcpu, ram, memSize, opts.onConsole);
  }

  private console(byte: number): void {
    const s = this.decoder.decode(new Uint8Array([byte]), { stream: true });
    this.output += s;
    this.onConsole?.(s);
  }

  /** Loads a flat image (at the RAM base) or an ELF; the vCPU starts at its entry with a1 = arg. */
  load(image: Uint8Array, arg: U64 = 0): bigint {
    const img = parseImage(image, RAM_BASE);
    for (const s of img.segments) this.vm.writeGuest(s.gpa, s.bytes);
    this.vcpu.setRegs({ pc: img.entry, mode: 1n });
    this.vcpu.setReg(10, 0);
    this.vcpu.setReg(11, toU64(arg, "arg"));
    return img.entry;
  }

  private sbiHost(): SbiHost {
    return {
      putchar: (b) => this.console(b),
      getchar: () => -1,
      setTimer: (t) => this.vcpu.setTimer(t),
      reset: (type, reason) => { this.stopped = { kind: type === 0 ? "shutdown" : "reboot", reason }; },
    };
  }

  /** Runs until the guest shuts down, halts for good, faults, KVM_RUN fails, or maxInstructions pass. */
  run(opts: { maxInstructions?: bigint } = {}): RunResult {
    const start = this.vcpu.instret;
    let exits = 0;
    this.stopped = null;
    const host = this.sbiHost();
    for (;;) {
      let exit: Exit;
      try {
        exit = this.vcpu.run();
      } catch (e) {
        // KVM_RUN failed (as a VMM sees it, e.g. kvmtool's "KVM_RUN failed"): the guest stops.
        if (!(e instanceof KvmError)) throw e;
        const reason = this.vcpu.kvmRun.exitReason;
        const lastExit = { reason, name: EXIT_NAMES[reason] ?? `exit${reason}`, errno: e.errno };
        return { stop: "run-failed", reason: 0, instructions: this.vcpu.instret - start, exits: exits + 1, lastExit, error: e };
      }
      exits++;
      const done = (kind: StopKind, reason = 0): RunResult =>
        ({ stop: kind, reason, instructions: this.vcpu.instret - start, exits, lastExit: exit });
      if (exit.reason === KVM_EXIT.MMIO) {
        const m = this.vcpu.kvmRun.mmio;
        if (!this.bus.access(m.physAddr, m.len, m.isWrite, m.data) && !m.isWrite) m.data.fill(0);
      } else if (exit.reason === KVM_EXIT.RISCV_SBI) {
        const [err, val] = handleSbi(host, this.vcpu.kvmRun.riscvSbi);
        this.vcpu.kvmRun.setSbiReturn(err, val);
        if (this.stopped) {
          const s = this.stopped as { kind: StopKind; reason: number };
          return done(s.kind, s.reason);
        }
      } else if (exit.reason === KVM_EXIT.INTR) {
        // budget used up: a chance to stop
      } else if (exit.reason === KVM_EXIT.HLT) {
        return done("halt");
      } else if (exit.reason === KVM_EXIT.MEMORY_FAULT) {
        return done("memory-fault");
      } else {
        return done("unhandled-exit");
      }
      if (opts.maxInstructions !== undefined && this.vcpu.instret - start >= opts.maxInstructions) return done("limit");
    }
  }

  close(): void {
    this.vm.close();
  }
}
