// A Worker of test/threads-pfncache.test.ts: joins the shared core (the built
// dist/), waits for the start signal so every thread runs at once, plays its
// role (threads-pfncache-roles.mjs) and reports.
import { parentPort, workerData } from "node:worker_threads";
import { instantiateCore } from "../dist/core.js";
import { remapper, toggler, user, GO, READY } from "./threads-pfncache-roles.mjs";

const { module, memory, process, role, shared, gpc, gpa, H, D, count } = workerData;
const sig = new Int32Array(shared);
let result;
try {
  const core = await instantiateCore(undefined, "threads", { fn: null }, { module, memory, process });
  Atomics.add(sig, READY, 1);
  Atomics.wait(sig, GO, 0);
  result = role === "remapper" ? remapper(core, sig, H, D, count)
    : role === "toggler" ? toggler(core, gpc, gpa, count, sig)
    : user(core, sig, gpc, count);
} catch (e) {
  result = { error: String(e && e.stack || e) };
}
parentPort.postMessage(result);
