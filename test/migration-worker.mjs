// The destination of a migration on a thread of its own (test/migration.test.ts):
// its own Kvm receives over the MessagePort it is given, reports the memory and
// state it resumed with, runs the guest on as the source will, and reports again.
import { parentPort } from "node:worker_threads";
import { Kvm } from "../dist/index.js";
import { receiveMigration } from "../dist/migration/incoming.js";
import { PortTransport } from "../dist/migration/transport-port.js";
import { setIteration } from "./threads-scenarios/dirty-log-verify.mjs";

const memoryOf = (m) => m.memoryRegions().map((r) => m.kvm.memory.read(r.hva, Number(r.size)));

parentPort.once("message", async ({ port, core, iteration, instructions }) => {
  try {
    const kvm = await Kvm.open({ core });
    const { machine: m, resumedAt } = await receiveMigration(new PortTransport(port), { kvm });
    const state = m.saveState();
    parentPort.postMessage({ resumed: { memory: memoryOf(m), pc: m.vcpu.pc, vcpus: state.vcpus, resumedAt } });
    setIteration(m, iteration + 1n);
    for (let left = instructions; left > 0n;) left -= m.run({ maxInstructions: left }).instructions;
    parentPort.postMessage({ ran: { memory: memoryOf(m), pc: m.vcpu.pc } });
  } catch (e) {
    parentPort.postMessage({ error: String(e?.stack ?? e) });
  }
});
