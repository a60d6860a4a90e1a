// A vCPU thread of the scenarios in vcpus.mjs (a node:worker_threads Worker or
// a browser's module Worker): joins the process (Kvm.join), adopts its vCPU and
// runs it in a loop, handling its exits here as a selftest's vCPU thread does,
// while the VMM thread changes memslots. What it sees is counted in the shared
// Int32Array `ctl` (layout: CTL in vcpus.mjs).
import { Kvm, KVM_EXIT } from "../../dist/index.js";
import { workerInput } from "./spawn.mjs";
import { CTL } from "./vcpus.mjs";

const { data, post } = await workerInput();
const { share, vmFd, vcpuFd, ctlBuf, index, mode, expect: markers } = data;
const ctl = new Int32Array(ctlBuf);
const { STATE, STOP, RUNS, BAD, WINDOW, OTHER, SEEN } = CTL;

try {
  const kvm = await Kvm.join(share);
  const vcpu = kvm.vmFromFd(vmFd).vcpuFromFd(vcpuFd);
  post({ ready: true });
  while (Atomics.load(ctl, STOP) === 0) {
    const s0 = Atomics.load(ctl, STATE);
    const exit = vcpu.run();
    const s1 = Atomics.load(ctl, STATE);
    const settled = s0 === s1 && (mode === "mmio-race" ? s0 % 4 === 2 : s0 % 2 === 0);
    if (mode === "mmio-race") {
      // Slot present for the whole run (created before it began, delete not yet begun): never MMIO.
      // expect[0]: the slot's gpa; MMIO exits elsewhere (the page that is never RAM) end every pass.
      if (exit.reason === KVM_EXIT.MMIO) {
        const mmio = vcpu.kvmRun.mmio;
        mmio.data.fill(0);
        if (mmio.physAddr >> 12n !== BigInt(markers[0]) >> 12n) Atomics.add(ctl, SEEN + index, 1);
        else if (settled) Atomics.add(ctl, BAD + index, 1);
        else Atomics.add(ctl, WINDOW + index, 1);
      } else if (exit.reason !== KVM_EXIT.INTR) Atomics.add(ctl, OTHER + index, 1);
    } else if (mode === "move") {
      // state 2k: settled at position k % 2 (0: where it was created, 1: a page lower); odd: an ioctl in flight.
      if (exit.reason === KVM_EXIT.RISCV_SBI) {
        const v = vcpu.kvmRun.riscvSbi.args[0];
        Atomics.add(ctl, SEEN + index, 1);
        if (settled && v !== BigInt(markers[(s0 / 2) % 2])) Atomics.add(ctl, BAD + index, 1);
      } else if (exit.reason === KVM_EXIT.MMIO) {
        vcpu.kvmRun.mmio.data.fill(0);
        if (settled) Atomics.add(ctl, BAD + index, 1);
        else Atomics.add(ctl, WINDOW + index, 1);
      } else Atomics.add(ctl, OTHER + index, 1);
    } else if (mode === "stress") {
      // Every run must end by the guest's own exit (an ecall after each verified pass, a0 = 0).
      if (exit.reason !== KVM_EXIT.RISCV_SBI || exit.errno !== 0) Atomics.add(ctl, OTHER + index, 1);
      else if (vcpu.kvmRun.riscvSbi.args[0] !== 0n) Atomics.add(ctl, BAD + index, 1);
      else Atomics.add(ctl, SEEN + index, 1);
    }
    Atomics.add(ctl, RUNS + index, 1);
    Atomics.notify(ctl, RUNS + index);
  }
  post({ done: true });
} catch (e) {
  Atomics.store(ctl, STOP, 1);
  post({ error: String((e && e.stack) || e) });
}
