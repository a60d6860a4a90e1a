// A Worker of pfncache.mjs's race (a node:worker_threads Worker or a browser's
// module Worker): joins the shared core (the built dist/), waits for the start
// signal so every thread runs at once, plays its role
// (test/threads-pfncache-roles.mjs) and reports.
import { instantiateCore } from "../../dist/core.js";
import { remapper, toggler, user, GO, READY } from "../threads-pfncache-roles.mjs";
import { workerInput } from "./spawn.mjs";

const { data, post } = await workerInput();
const { module, memory, process, role, shared, gpc, gpa, H, D, count } = data;
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
post(result);
