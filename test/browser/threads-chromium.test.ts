// Issue 16 in Chromium: the threads scenarios of test/threads-scenarios/ (the
// same drivers test/threads-vcpus.test.ts runs on node:worker_threads) run in
// test/browser/threads.html, served with COOP/COEP: the VMM on a Web Worker,
// each vCPU on a Web Worker of its own, over one shared memory. The checks are
// the Node tests' own (threads-scenarios/*-expect.ts), with the same counts.
// The levers work here too: WEBKVM_GEN_IN_PROGRESS_OFF=1 (and the others
// test/threads-vcpus.test.ts lists) and WEBKVM_GPC_LOCK_OFF=1 are passed to
// the page's drivers. WEBKVM_THREADS_REPORT=1 prints each driver's result.
// Skipped when /usr/bin/chromium is missing (apt-get install -y chromium).
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { HAVE_CHROMIUM, CHROMIUM, warnIfMissing, serveAndOpen } from "./chromium.js";
import * as asm from "../cpu/asm.js";
// @ts-expect-error plain JS module without types
import { programs, leversFromEnv } from "../threads-scenarios/vcpus.mjs";
import { expectMmioRace, expectMove, expectStress } from "../threads-scenarios/vcpus-expect.js";
import { expectDirtyLogKept, expectLossCaught } from "../threads-scenarios/dirtylog-expect.js";
import { expectRaceKept } from "../threads-scenarios/pfncache-expect.js";
import { expectTwoAtOnce, expectTerminatedMidRun } from "../threads-scenarios/vcpu-thread-expect.js";

warnIfMissing("browser threads tests");

const code = programs(asm);
const levers = leversFromEnv(process.env);
const report = process.env.WEBKVM_THREADS_REPORT === "1";

describe.skipIf(!HAVE_CHROMIUM)(`issue 16's threads scenarios in Chromium (${CHROMIUM}; skipped when it is missing)`, () => {
  let env: Awaited<ReturnType<typeof serveAndOpen>> | undefined;
  let page: any;
  let pageErrors: string[] = [];

  beforeAll(async () => {
    env = await serveAndOpen();
    ({ page, pageErrors } = env);
    await page.goto(env.url + "test/browser/threads.html");
    await page.waitForFunction(() => (globalThis as any).scenariosReady === true, null, { timeout: 10_000 });
  }, 30_000);

  afterAll(async () => {
    await env?.close();
    expect(pageErrors).toEqual([]);
  });

  /** Runs a scenario's driver in the page's VMM Worker; a string, not a function: vitest would rewrite a function for Node. */
  async function run(name: string, params: object): Promise<any> {
    const r = await page.evaluate(`window.runScenario(${JSON.stringify(name)}, ${JSON.stringify(params)})`);
    if (report) console.log(`Chromium ${name}: ${JSON.stringify(r)}`);
    return r;
  }

  it("the page is cross-origin isolated (SharedArrayBuffer, shared wasm memory)", async () => {
    expect(await page.evaluate(() => globalThis.crossOriginIsolated)).toBe(true);
  });

  it("seed 003's race: once a slot's creation returned, no vCPU reads MMIO there again (update in-progress bit)", async () => {
    expectMmioRace(await run("mmioRace", { code: code.mmioRace, levers, rounds: 1500 }));
  }, 300_000); // a safety net: 56 s seen here with the 2 cores shared by four other jobs

  it("memslot_modification_stress: 2 vCPUs write their partitions while a 1-page slot below comes and goes 10,000 times", async () => {
    expectStress(await run("modificationStress", { code: code.stress, levers, updates: 10_000 }));
  }, 120_000);

  for (const zapAll of [true, false]) {
    it(`move while running: after the ioctl returns a vCPU never sees the old backing, MMIO only inside the window (SLOT_ZAP_ALL ${zapAll ? "on" : "off"})`, async () => {
      expectMove(await run("moveWhileRunning", { code: code.move, levers, zapAll, moves: 1000 }));
    }, 120_000);
  }

  for (const mode of ["bitmap", "ring"]) {
    it(`dirty_log_test, 2 vCPUs on Workers, collected by ${mode} while they run: every page that changed was reported (in this collection or, if it changed during it, the next); no page exceeds the iteration`, async () => {
      expectDirtyLogKept(await run("dirtyLogTest", { mode, iterations: 16 }));
    }, 120_000);

    it(`dirty_log_test by ${mode}: a collector that loses one reported page per collection is caught`, async () => {
      expectLossCaught(await run("dirtyLogTest", { mode, iterations: 16, faults: { dropOne: true } }));
    }, 120_000);
  }

  it("xen_shinfo's race on the pfn cache: a Worker deactivates, activates and refreshes the cache while two Workers read and write through it and another munmaps and remaps its backing: no access reaches a freed frame, invariants hold, nothing hangs", async () => {
    expectRaceKept(await run("xenShinfoRace", { lockOff: process.env.WEBKVM_GPC_LOCK_OFF === "1",
      rounds: 4_000, toggles: 100_000, maxAccesses: 2_000_000, deadlineMs: 40_000 }));
  }, 60_000);

  it("VcpuThread from a Worker: two vCPUs run at once, each on its own Worker, over one VM's memory", async () => {
    expectTwoAtOnce(await run("twoAtOnce", { code: code.stress, passes: 50 }));
  }, 60_000);

  // A browser's Worker.terminate() returns before the thread stops: VcpuThread.terminate() ends the run
  // first there (a kick), so the thread goes idle, holding nothing (src/vcpu-thread.ts).
  it("VcpuThread: a vCPU Worker terminated in the middle of a run (inside its SRCU read section) leaves nothing held: the next memslot update completes and the VM closes", async () => {
    expectTerminatedMidRun(await run("terminatedMidRun", { code: code.faultLoop }));
  }, 60_000);
});
