// vCPUs running on Worker threads while the VMM thread changes memslots (issue
// 16): the scenarios of test/threads-scenarios/vcpus.mjs on node:worker_threads
// (the test's thread is the VMM). test/browser/threads-chromium.test.ts runs the
// same drivers in Chromium; both check them with threads-scenarios/vcpus-expect.ts.
//
// Levers (debug threads core) show the tests can fail:
//   WEBKVM_GEN_IN_PROGRESS_OFF=1  memslot sets published without the in-progress bit
//   WEBKVM_SRCU_OFF=1             synchronize_srcu does not wait for readers
//   WEBKVM_MMU_LOCK_OFF=1         no mmu_lock
// WEBKVM_RACE_SPIN=N overrides how far the fault path's lookup-to-install window is widened.

import { describe, it } from "vitest";
import * as asm from "./cpu/asm.js";
// @ts-expect-error plain JS module without types
import { programs, leversFromEnv, mmioRace, moveWhileRunning, modificationStress } from "./threads-scenarios/vcpus.mjs";
import { expectMmioRace, expectMove, expectStress } from "./threads-scenarios/vcpus-expect.js";

const code = programs(asm);
const levers = leversFromEnv(process.env);

describe("threads: vCPUs on Workers while the VMM changes memslots", () => {
  it("seed 003's race: once a slot's creation returned, no vCPU reads MMIO there again (update in-progress bit)", async () => {
    const r = await mmioRace({ code: code.mmioRace, levers, rounds: 1500 });
    if (process.env.WEBKVM_THREADS_REPORT === "1") {
      console.log(`seed 003: bad ${r.bad} window ${r.window} runs ${r.runs} ` +
        `MMIO sptes made across a generation change ${r.mmioAcrossGeneration}, valid stale entries ${r.stale}`);
    }
    expectMmioRace(r);
  });

  for (const zapAll of [true, false]) {
    it(`move while running: after the ioctl returns a vCPU never sees the old backing, MMIO only inside the window (SLOT_ZAP_ALL ${zapAll ? "on" : "off"})`, async () => {
      expectMove(await moveWhileRunning({ code: code.move, levers, zapAll, moves: 1000 }));
    });
  }

  it("memslot_modification_stress: 2 vCPUs write their partitions while a 1-page slot below comes and goes 10,000 times", async () => {
    expectStress(await modificationStress({ code: code.stress, levers, updates: 10_000 }));
  });
});
