import { readFileSync } from "node:fs";
import { Kvm, Machine, Vm, Vcpu, type OpenOptions } from "../src/index.js";

/** The debug core's build these tests run on (test/setup.ts): "debug", or its "threads" build. */
export const TEST_CORE = process.env.WEBKVM_TEST_CORE === "threads" ? "threads" : "debug";

/** A fresh instance on the debug core. */
export async function openKvm(opts: OpenOptions = {}): Promise<Kvm> {
  const kvm = await Kvm.open({ core: TEST_CORE, ...opts });
  if (!kvm.debugCore) throw new Error("tests must run against the debug core");
  return kvm;
}

/** Runs fn and returns the KvmError code it threw ("ok" if none). */
export function code(fn: () => unknown): string {
  try {
    fn();
    return "ok";
  } catch (e) {
    const c = (e as { code?: string }).code;
    if (!c) throw e;
    return c;
  }
}

/** 32-bit instruction words as the little-endian bytes of a program. */
export function instructionBytes(list: number[]): Uint8Array {
  const b = new Uint8Array(list.length * 4);
  const dv = new DataView(b.buffer);
  list.forEach((w, i) => dv.setUint32(i * 4, w >>> 0, true));
  return b;
}

/** Writes a program of 32-bit instruction words at gpa `at` and points the vCPU's pc there. */
export function loadProgram(vm: Vm, vcpu: Vcpu, list: number[], at: bigint): void {
  vm.writeGuest(at, instructionBytes(list));
  vcpu.pc = at;
}

/** A VM with 1 MiB of RAM at gpa `ram` (slot 0) and vCPU 0, on the debug core. */
export async function vmWithVcpu(ram: bigint): Promise<{ kvm: Kvm; vm: Vm; vcpu: Vcpu }> {
  const kvm = await openKvm();
  const vm = kvm.createVm();
  vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: ram, memorySize: 1n << 20n, userspaceAddr: kvm.memory.mmap(1n << 20n) });
  return { kvm, vm, vcpu: vm.createVcpu(0) };
}

export const MiB = 1n << 20n;
export const GiB = 1n << 30n;

/** A file of the committed Linux guest (guests/linux). */
export const linuxFile = (name: string) => new Uint8Array(readFileSync(new URL(`../guests/linux/${name}`, import.meta.url)));

/** A 64 MiB machine on the debug core with the bundled Linux (Image + initramfs) loaded to boot with cmdline (and isa as riscv,isa, if given). */
export async function linuxMachine(cmdline: string, isa?: string): Promise<{ kvm: Kvm; m: Machine }> {
  const kvm = await openKvm();
  const m = await Machine.create({ kvm, memSize: 64n << 20n });
  m.loadLinux({ kernel: linuxFile("Image"), initrd: linuxFile("initramfs.cpio"), cmdline, isa });
  return { kvm, m };
}

const ascii = (b: Uint8Array) => String.fromCharCode(...b);

export interface CpioEntry { name: string; ino: number; mode: number; nlink: number; mtime: number; rdev: [number, number]; data: Uint8Array }

/** A newc ("070701") archive (the cpio format the kernel unpacks, init/initramfs.c)'s entries up to TRAILER!!!; throws on anything malformed. */
export function readNewc(buf: Uint8Array): CpioEntry[] {
  const entries: CpioEntry[] = [];
  const align4 = (n: number) => (n + 3) & ~3;
  let off = 0;
  for (;;) {
    if (off + 110 > buf.length) throw new Error(`header at ${off} runs past the end`);
    const magic = ascii(buf.subarray(off, off + 6));
    if (magic !== "070701") throw new Error(`bad magic ${JSON.stringify(magic)} at ${off}`);
    const field = (i: number) => {
      const s = ascii(buf.subarray(off + 6 + 8 * i, off + 14 + 8 * i));
      if (!/^[0-9a-fA-F]{8}$/.test(s)) throw new Error(`field ${i} at ${off} is not hex: ${JSON.stringify(s)}`);
      return parseInt(s, 16);
    };
    const [ino, mode, nlink, mtime, size, rmaj, rmin, namesize] = [field(0), field(1), field(4), field(5), field(6), field(9), field(10), field(11)];
    const nameEnd = off + 110 + namesize;
    if (namesize < 1 || nameEnd > buf.length || buf[nameEnd - 1] !== 0) throw new Error(`bad name at ${off}`);
    const name = ascii(buf.subarray(off + 110, nameEnd - 1));
    const dataStart = align4(nameEnd);
    if (dataStart + size > buf.length) throw new Error(`${name}: data runs past the end`);
    if (name === "TRAILER!!!") return entries;
    entries.push({ name, ino, mode, nlink, mtime, rdev: [rmaj, rmin], data: buf.subarray(dataStart, dataStart + size) });
    off = align4(dataStart + size);
  }
}
