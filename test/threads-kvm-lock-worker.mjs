// A thread of test/threads-dirty.test.ts's kvm->lock tests: joins the shared
// core (the built dist/), says it is about to issue one VM ioctl (state[0] = 1),
// issues it (the struct in `bytes` copied to its ioctl buffer, or the scalar
// `arg`), and reports the result (state[1], then state[0] = 2).
import { parentPort, workerData } from "node:worker_threads";
import { instantiateCore } from "../dist/core.js";

const { module, memory, process, vmFd, nr, bytes, arg, state } = workerData;
const s = new Int32Array(state);
try {
  const core = await instantiateCore(undefined, "threads", { fn: null }, { module, memory, process });
  if (bytes) new Uint8Array(core.memory.buffer, core.ioctlBuffer(), bytes.length).set(bytes);
  Atomics.store(s, 0, 1);
  const r = core.ioctl(vmFd, nr, bytes ? bytes.length : -1, arg);
  Atomics.store(s, 1, r);
  Atomics.store(s, 0, 2);
  parentPort.postMessage({ r });
} catch (e) {
  Atomics.store(s, 0, 2);
  parentPort.postMessage({ error: String(e && e.stack || e) });
}
