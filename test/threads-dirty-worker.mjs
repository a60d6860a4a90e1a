// A vCPU thread of test/threads-dirty.test.ts: joins the shared core (the built
// dist/), waits for the start signal, then logs `count` guest writes on behalf
// of its vCPU, as the write fault path logs them (debugVcpuMarkPageDirty):
// write i to gfn gfns[i], or without gfns to threads-dirty-order.mjs's page. After each one it publishes how many it has logged
// (progress[index]), so the main thread can bound when each write happened.
// With `lockstep` n, it starts its writes n at a time, once every thread has
// done as many as it has (so all threads write the same bitmap words at once);
// with `spacing` n, it computes n xorshift steps before each write (the guest's
// other work: a harvester polling the ring then keeps up with it).
// While the vCPU's dirty ring is soft-full it would not enter the guest: it
// sleeps until the main thread has reset the ring (it counts its resets in
// resets[0] and wakes this thread), then retries. Waits are bounded in count.
import { parentPort, workerData } from "node:worker_threads";
import { instantiateCore } from "../dist/core.js";
import { pageOf } from "./threads-dirty-order.mjs";

const RETRIES = 200_000_000;
const { module, memory, process, vcpuFd, gfns, count, index, progress, lockstep, spacing, resets, go } = workerData;
const resetCount = resets && new Int32Array(resets);
const writers = new Int32Array(progress).length;
const done = new Int32Array(progress);
try {
  const core = await instantiateCore(undefined, "threads", { fn: null }, { module, memory, process });
  const signal = new Int32Array(go);
  Atomics.add(signal, 1, 1);
  Atomics.wait(signal, 0, 0);
  let waits = 0, work = index + 1;
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const gfn = gfns ? gfns[i] : BigInt(pageOf(writers, index, i));
    for (let n = 0; n < spacing; n++) { work ^= work << 13; work ^= work >>> 17; work ^= work << 5; }
    if (lockstep && i % lockstep === 0) {
      for (let m = 0, n = 0; m < done.length; n++) {
        const d = Atomics.load(done, m);
        if (d < 0) throw new Error(`thread ${m} failed`);
        if (d >= i) m++;
        else if (n === RETRIES) throw new Error(`thread ${m} still at ${d} of ${i} writes`);
      }
    }
    let r;
    for (let n = 0; ; n++) {
      const seen = resetCount ? Atomics.load(resetCount, 0) : 0;
      if ((r = core.debugVcpuMarkPageDirty(vcpuFd, gfn)) !== 0) break;
      if (n === RETRIES) throw new Error(`ring still soft-full after ${RETRIES} tries at write ${i}`);
      if (resetCount) Atomics.wait(resetCount, 0, seen, 1000); // the timeout only keeps a lost wake-up from hanging
      waits++;
    }
    if (r !== 1) throw new Error(`gfn ${gfn}: ${r}`);
    Atomics.store(done, index, i + 1);
  }
  parentPort.postMessage({ waits, work, ms: performance.now() - t0 });
} catch (e) {
  Atomics.store(done, index, -1);
  parentPort.postMessage({ error: String(e && e.stack || e) });
}
