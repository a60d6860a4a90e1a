// A Worker of test/threads-pfncache.test.ts's rwlock stress: joins the shared
// core, waits for the start signal, runs its read and write sections on the
// shared block and reports the torn reads it saw.
import { parentPort, workerData } from "node:worker_threads";
import { instantiateCore } from "../dist/core.js";

const { module, memory, process, block, iters, seed, locked, go } = workerData;
try {
  const core = await instantiateCore(undefined, "threads", { fn: null }, { module, memory, process });
  const signal = new Int32Array(go);
  Atomics.add(signal, 1, 1);
  Atomics.wait(signal, 0, 0);
  parentPort.postMessage({ torn: core.debugRwlockStress(block, iters, seed, locked) });
} catch (e) {
  parentPort.postMessage({ error: String(e && e.stack || e) });
}
