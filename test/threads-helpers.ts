// What the threads tests share: a VM running test code on n vCPUs, and where
// the built vCPU Worker script is (the tests import the TypeScript sources; a
// Worker runs the built JavaScript).
import type { Kvm, Vm, Vcpu } from "../src/index.js";

export const RAM = 0x80000000n;

/** VcpuThread.start / Machine.runThreaded options: the built Worker script. */
export const WORKER = { workerUrl: new URL("../dist/vcpu-thread-worker.js", import.meta.url) };

/** A VM with 1 MiB of RAM at RAM holding code, and n vCPUs starting there. */
export function vmWithCode(kvm: Kvm, code: number[], n: number): { vm: Vm; vcpus: Vcpu[] } {
  const vm = kvm.createVm();
  const hva = kvm.memory.mmap(1n << 20n);
  vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: RAM, memorySize: 1n << 20n, userspaceAddr: hva });
  const bytes = new Uint8Array(code.length * 4);
  const dv = new DataView(bytes.buffer);
  code.forEach((w, i) => dv.setUint32(i * 4, w >>> 0, true));
  vm.writeGuest(RAM, bytes);
  return { vm, vcpus: Array.from({ length: n }, (_, i) => vm.createVcpu(i)) };
}

/** Waits (yielding to the event loop) until vCPU i of vm is in guest mode: a run is in flight on its Worker. */
export async function inGuestMode(kvm: Kvm, vm: Vm, i: number): Promise<void> {
  // debugLockWord(vm, 9 + 4 * i): vCPU i's mode word, bit 0 set in guest mode.
  while ((kvm.core.debugLockWord(vm.fd, 9 + 4 * i) & 1) === 0) await new Promise((r) => setImmediate(r));
}
