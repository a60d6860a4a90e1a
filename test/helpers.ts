import { readFileSync } from "node:fs";
import { Kvm, Machine, type OpenOptions } from "../src/index.js";

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

export const MiB = 1n << 20n;
export const GiB = 1n << 30n;

/** A file of the committed Linux guest (guests/linux). */
export const linuxFile = (name: string) => new Uint8Array(readFileSync(new URL(`../guests/linux/${name}`, import.meta.url)));

/** A 64 MiB machine on the debug core with the bundled Linux (Image + initramfs) loaded to boot with cmdline. */
export async function linuxMachine(cmdline: string): Promise<{ kvm: Kvm; m: Machine }> {
  const kvm = await openKvm();
  const m = await Machine.create({ kvm, memSize: 64n << 20n });
  m.loadLinux({ kernel: linuxFile("Image"), initrd: linuxFile("initramfs.cpio"), cmdline });
  return { kvm, m };
}
