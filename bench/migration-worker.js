// The destination of bench/migration.js: a Worker with its own Kvm (release
// core) that receives the migration over the MessagePort it is handed, then
// asks the resumed dirtier guest to verify all of its memory and reports.
import { parentPort } from "node:worker_threads";
import { Kvm, receiveMigration, PortTransport } from "../dist/index.js";
import { requestVerify, verifyPending, readDirtierStatus } from "../guests/dirtier/reference.mjs";

parentPort.once("message", async ({ port, sliceInstructions }) => {
  try {
    const kvm = await Kvm.open({ core: "release" });
    const incoming = await receiveMigration(new PortTransport(port), { kvm, sliceInstructions: BigInt(sliceInstructions) });
    const m = incoming.machine;
    requestVerify(m.vm);
    for (let guard = 0; verifyPending(m.vm); guard++) {
      if (guard > 100_000) throw new Error("the guest does not answer the verify request");
      const r = m.run({ maxInstructions: 5_000_000n });
      if (r.stop !== "limit") throw new Error(`the guest stopped on the destination: ${r.stop}`);
    }
    const s = readDirtierStatus(m.vm);
    parentPort.postMessage({ resumedAt: incoming.resumedAt, postcopy: incoming.postcopy, result: Number(s.result),
      bad: Number(s.bad), checked: Number(s.checked) });
  } catch (e) {
    parentPort.postMessage({ error: String(e?.stack ?? e) });
  }
});
