// The CPU test surface: a fresh debug core per Cpu, whose exports drive the
// interpreter directly on a one-slot VM (assembly/debug/cpu_harness.ts), every
// access going through the real shadow MMU.

import { readFileSync } from "node:fs";
import { Program } from "./asm";
import { jitLink } from "../../src/jit";


export const RAM_BASE = 0x80000000n;
export const PAGE = 4096n;

export const CAUSE = {
  fetchMisaligned: 0n, fetchAccess: 1n, illegal: 2n, breakpoint: 3n, loadMisaligned: 4n, loadAccess: 5n,
  storeMisaligned: 6n, storeAccess: 7n, ecallU: 8n, fetchPage: 12n, loadPage: 13n, storePage: 15n,
} as const;
export const INTERRUPT = 1n << 63n;

export interface Exports {
  memory: WebAssembly.Memory;
  [name: string]: any;
}

/** A fresh instance of the debug core, or the bench core (the CPU's test surface is in their exports). */
export async function instantiate(build: "debug" | "bench" = "debug"): Promise<Exports> {
  const bytes = readFileSync(new URL(`../../build/${build}.wasm`, import.meta.url));
  const jit = jitLink();
  const { instance } = await WebAssembly.instantiate(bytes, {
    env: {
      ...jit.imports,
      abort(msg: number, file: number, line: number, col: number) {
        throw new Error(`core abort at ${line}:${col}`);
      },
      webkvm_reader_hook() {},
      webkvm_track_write() {},
      webkvm_track_remove_region() {},
    },
  });
  const ex = instance.exports as unknown as Exports;
  jit.attach(ex as never);
  return ex;
}

/** One vCPU with its own RAM, reset to S-mode at RAM_BASE. */
export class Cpu {
  readonly EXIT_BUDGET: number;
  readonly EXIT_SBI: number;
  readonly EXIT_WFI: number;
  readonly EXIT_MEM: number;
  readonly EXIT_INTR: number;

  constructor(readonly ex: Exports) {
    this.EXIT_BUDGET = ex.EXIT_BUDGET.value;
    this.EXIT_SBI = ex.EXIT_SBI.value;
    this.EXIT_WFI = ex.EXIT_WFI.value;
    this.EXIT_MEM = ex.EXIT_MEM.value;
    this.EXIT_INTR = ex.EXIT_INTR.value;
  }

  static async create(ramBytes = 8 << 20): Promise<Cpu> {
    const ex = await instantiate();
    if (!ex.isDebugBuild()) throw new Error("build/debug.wasm is not a debug build");
    if (ex.memInit(BigInt(ramBytes)) !== 0) throw new Error("memInit failed");
    ex.cpuReset(RAM_BASE);
    return new Cpu(ex);
  }

  // ---- registers ----
  x(r: number): bigint { return BigInt.asUintN(64, this.ex.cpuGetX(r)); }
  xs(r: number): bigint { return BigInt.asIntN(64, this.ex.cpuGetX(r)); }
  setX(r: number, v: bigint | number): void { this.ex.cpuSetX(r, BigInt.asIntN(64, BigInt(v))); }
  get pc(): bigint { return BigInt.asUintN(64, this.ex.cpuGetPc()); }
  set pc(v: bigint) { this.ex.cpuSetPc(BigInt.asIntN(64, v)); }
  get priv(): number { return this.ex.cpuGetPriv(); }
  set priv(p: number) { this.ex.cpuSetPriv(p); }
  csr(n: number): bigint { return BigInt.asUintN(64, this.ex.cpuGetCsr(n)); }
  setCsr(n: number, v: bigint | number): void { this.ex.cpuSetCsr(n, BigInt.asIntN(64, BigInt(v))); }
  get instret(): bigint { return BigInt.asUintN(64, this.ex.cpuInstret()); }
  get time(): bigint { return BigInt.asUintN(64, this.ex.cpuGetTime()); }

  run(budget = 1_000_000): number { return this.ex.cpuRun(budget); }

  // ---- guest physical memory (the VM's RAM slot, through kvm_read/write_guest) ----
  private phys(gpa: bigint, len: number, write: boolean): DataView {
    if (this.ex.memPhys(gpa, len, write) !== 0) throw new Error(`GPA 0x${gpa.toString(16)} is not RAM`);
    return new DataView(this.ex.memory.buffer, this.ex.ioBuffer(), len);
  }
  private put(gpa: bigint, len: number, fill: (dv: DataView) => void): void {
    fill(new DataView(this.ex.memory.buffer, this.ex.ioBuffer(), len));
    this.phys(gpa, len, true);
  }
  u8(gpa: bigint): number { return this.phys(gpa, 1, false).getUint8(0); }
  u32(gpa: bigint): number { return this.phys(gpa, 4, false).getUint32(0, true); }
  u64(gpa: bigint): bigint { return this.phys(gpa, 8, false).getBigUint64(0, true); }
  setU8(gpa: bigint, v: number): void { this.put(gpa, 1, (d) => d.setUint8(0, v)); }
  setU32(gpa: bigint, v: number): void { this.put(gpa, 4, (d) => d.setUint32(0, v >>> 0, true)); }
  setU64(gpa: bigint, v: bigint): void { this.put(gpa, 8, (d) => d.setBigUint64(0, BigInt.asUintN(64, v), true)); }
  writeBytes(gpa: bigint, bytes: Uint8Array): void {
    for (let done = 0; done < bytes.length; done += 65536) {
      const part = bytes.subarray(done, done + 65536);
      new Uint8Array(this.ex.memory.buffer, this.ex.ioBuffer(), part.length).set(part);
      if (this.ex.memPhys(gpa + BigInt(done), part.length, true) !== 0) throw new Error("not RAM");
    }
  }

  /** Writes a program's words at its physical base (its base when translation is off). */
  load(p: Program | Uint32Array | number[], gpa?: bigint): void {
    const words = p instanceof Program ? p.finish() : Uint32Array.from(p);
    const at = gpa ?? (p instanceof Program ? p.base : RAM_BASE);
    words.forEach((w, i) => this.setU32(at + BigInt(i * 4), w));
  }

  /** Loads words at RAM_BASE, resets pc there and runs them until budget or an exit. */
  exec(words: number[], budget = words.length): number {
    this.load(words);
    this.pc = RAM_BASE;
    return this.run(budget);
  }
}
