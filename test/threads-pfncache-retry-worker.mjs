// The refreshing thread of test/threads-pfncache.test.ts's hva_to_pfn_retry
// test: joins the process and refreshes the cache. Where the refresh has
// resolved the page with gpc->lock dropped (reader hook "gpc-resolved"), the
// first time it tells the main thread and waits until the main thread's
// invalidation is done, so the race is the same on every run.
import { parentPort, workerData } from "node:worker_threads";
import { instantiateCore } from "../dist/core.js";
import { HOOK } from "../dist/abi.gen.js";

const { module, memory, process, gpc, shared } = workerData;
const sig = new Int32Array(shared); // [0]: resolved (this thread), [1]: invalidated (main)
let resolved = 0;
try {
  const hook = {
    fn: (_vm, point) => {
      if (point !== HOOK.GPC_RESOLVED || ++resolved > 1) return;
      Atomics.store(sig, 0, 1);
      Atomics.notify(sig, 0);
      Atomics.wait(sig, 1, 0);
    },
  };
  const core = await instantiateCore(undefined, "threads", hook, { module, memory, process });
  core.enableReaderHooks(true);
  const r = core.gpcDoRefresh(gpc, 8n);
  parentPort.postMessage({ r, resolved, valid: core.gpcIsValid(gpc, 8n) });
} catch (e) {
  parentPort.postMessage({ error: String((e && e.stack) || e) });
}
