// A thread of test/threads.test.ts's process: joins the shared core (the built
// dist/, since a Worker runs plain JavaScript), waits for the start signal so
// every thread enters the allocator at once, runs the allocator stress, grows
// the memory, and reports what it saw.
import { parentPort, workerData } from "node:worker_threads";
import { instantiateCore } from "../dist/core.js";

const { module, memory, process, iters, seed, go } = workerData;
try {
  const core = await instantiateCore(undefined, "threads", { fn: null }, { module, memory, process });
  const signal = new Int32Array(go);
  Atomics.add(signal, 1, 1);
  Atomics.wait(signal, 0, 0);
  const bad = core.debugHeapStress(iters, seed);
  // Grow the shared memory from this thread: the main thread must see the new pages.
  const big = core.kmalloc(8 << 20);
  core.kmfree(big);
  parentPort.postMessage({ bad, byteLength: memory.buffer.byteLength });
} catch (e) {
  parentPort.postMessage({ error: String(e && e.stack || e) });
}
