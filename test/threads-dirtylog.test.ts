// dirty_log_test with the dirtylog guest on 2 vCPUs, each on its own Worker
// (VcpuThread), while this thread collects: the driver is
// test/threads-scenarios/dirtylog.mjs (which says how each mode collects and
// what it excuses), run here on node:worker_threads and by
// test/browser/threads-chromium.test.ts in Chromium, both checked by
// threads-scenarios/dirtylog-expect.ts.

import { describe, it } from "vitest";
import { readFileSync } from "node:fs";
// @ts-expect-error plain JS module without types
import { dirtyLogTest } from "./threads-scenarios/dirtylog.mjs";
import { expectDirtyLogKept, expectLossCaught } from "./threads-scenarios/dirtylog-expect.js";

const image = new Uint8Array(readFileSync(new URL("../guests/dirtylog/dirtylog.bin", import.meta.url)));
const ITERATIONS = 16;

describe.each<"bitmap" | "ring">(["bitmap", "ring"])("dirty_log_test, 2 vCPUs on Workers, collected by %s while they run", (mode) => {
  it("every page that changed was reported (in this collection or, if it changed during it, the next); no page exceeds the iteration", async () => {
    expectDirtyLogKept(await dirtyLogTest({ mode, image, iterations: ITERATIONS }));
  });

  it("a collector that loses one reported page per collection is caught", async () => {
    expectLossCaught(await dirtyLogTest({ mode, image, iterations: ITERATIONS, faults: { dropOne: true } }));
  });
});
