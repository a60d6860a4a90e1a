// What the threads tests share: a VM running test code on n vCPUs, and where
// the built vCPU Worker script is (the tests import the TypeScript sources; a
// Worker runs the built JavaScript).
import type { Kvm, Vm, Vcpu } from "../src/index.js";
// @ts-expect-error plain JS module without types
import { RAM as RAM_JS, vmWithCode as vmWithCodeJs } from "./threads-scenarios/vm.mjs";

/** VcpuThread.start / Machine.runThreaded options: the built Worker script. */
export const WORKER = { workerUrl: new URL("../dist/vcpu-thread-worker.js", import.meta.url) };

/** RAM's gpa, and a VM with 1 MiB of RAM there holding code, and n vCPUs starting there (threads-scenarios/vm.mjs). */
export const RAM: bigint = RAM_JS;
export const vmWithCode: (kvm: Kvm, code: number[], n: number) => { vm: Vm; vcpus: Vcpu[] } = vmWithCodeJs;

/** Waits (yielding to the event loop) until vCPU i of vm is in guest mode: a run is in flight on its Worker. */
export async function inGuestMode(kvm: Kvm, vm: Vm, i: number): Promise<void> {
  // debugLockWord(vm, 9 + 4 * i): vCPU i's mode word, bit 0 set in guest mode.
  while ((kvm.core.debugLockWord(vm.fd, 9 + 4 * i) & 1) === 0) await new Promise((r) => setImmediate(r));
}
