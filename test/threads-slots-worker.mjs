// A Worker of test/threads-slots-lock.test.ts: joins the shared core (the built
// dist/), waits for the start signal so every thread updates memslots at once,
// churns its own slot ids and reports what it left.
import { parentPort, workerData } from "node:worker_threads";
import { instantiateCore } from "../dist/core.js";
import { churn } from "./threads-slots-churn.mjs";

const { module, memory, process, vmFd, hva, first, count, ops, seed, go } = workerData;
try {
  const core = await instantiateCore(undefined, "threads", { fn: null }, { module, memory, process });
  const signal = new Int32Array(go);
  Atomics.add(signal, 1, 1);
  Atomics.wait(signal, 0, 0);
  parentPort.postMessage({ ...churn(core, vmFd, hva, first, count, ops, seed), threadId: core.debugThreadId() });
} catch (e) {
  parentPort.postMessage({ error: String(e && e.stack || e) });
}
