// Real-browser tests: Debian's Chromium (headless) driven by playwright-core.
// The package runs the validation golden in the page. The demo page's memory-slots mode (?guest=slots), served
// with COOP/COEP, runs two vCPUs on Web Workers over one shared memory; served
// without them it falls back to one thread, says so, and boots the guests in a
// Worker, where a slot move must change the heatmap and the console.
// Skipped when /usr/bin/chromium is missing (apt-get install -y chromium).
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CHROMIUM, HAVE_CHROMIUM, warnIfMissing, launchChromium, mainThreadWorstDelay } from "./chromium.js";
// @ts-expect-error plain JS module without types
import { smpLine } from "../../guests/smp/reference.mjs";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const GOLDEN = join(REPO, "conformance/golden");
const SHOTS = join(REPO, "test-results/browser");

warnIfMissing("browser tests");

type Server = { url: string; close: () => Promise<void> };

describe.skipIf(!HAVE_CHROMIUM)(`in Chromium (${CHROMIUM}; skipped when it is missing)`, () => {
  let server: Server;     // with COOP/COEP: the page is cross-origin isolated
  let plain: Server;      // without them
  let context: any;
  let browser: Awaited<ReturnType<typeof launchChromium>> | undefined;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    const { startServer } = await import("../../scripts/serve.mjs");
    server = await startServer({ port: 0 });
    plain = await startServer({ port: 0, isolate: false });
    browser = await launchChromium();
    context = browser.context;
    mkdirSync(SHOTS, { recursive: true });
  }, 30_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await plain?.close();
  });

  it("runs the validation golden through the package, line for line", async () => {
    const page = await context.newPage();
    page.on("pageerror", (e: Error) => pageErrors.push(e.message));
    await page.goto(server.url + "test/browser/blank.html");
    const text = readFileSync(join(GOLDEN, "validation.txt"), "utf8");
    const expected = readFileSync(join(GOLDEN, "validation.out"), "utf8").split("\n").filter((l) => l !== "");
    // A string, not a function: vitest would rewrite a function's import() for Node.
    const got: string[] = await page.evaluate(`(async (script) => {
      const { Kvm } = await import("/dist/index.js");
      const { runScript } = await import("/dist/conformance/index.js");
      const kvm = await Kvm.open({ core: "debug" });   // the wasm found with new URL(..., import.meta.url)
      if (!kvm.debugCore) throw new Error("expected the debug core");
      return runScript(script, kvm);
    })(${JSON.stringify(text)})`);
    expect(got.length).toBe(expected.length);
    expect(got).toEqual(expected);
    await page.close();
  }, 30_000);

  it("demo page without COOP/COEP: falls back to one thread and says so; hello boots in a Worker; the dirty band moves at any host speed; a slot move changes the heatmap and the console", async () => {
    const page = await context.newPage();
    page.on("pageerror", (e: Error) => pageErrors.push(e.message));
    const nodeRequests: string[] = [];
    page.on("request", (r: { url(): string }) => { if (!r.url().startsWith(plain.url)) nodeRequests.push(r.url()); });
    await page.goto(plain.url + "demo/?guest=slots");
    expect(await page.evaluate(() => globalThis.crossOriginIsolated)).toBe(false);
    await page.waitForFunction(() => document.body.dataset.ready === "1" || document.body.dataset.error, null, { timeout: 20_000 });
    expect(await page.evaluate(() => document.body.dataset.error ?? "")).toBe("");
    expect(await page.evaluate(() => document.body.dataset.mode)).toBe("single");
    const mode = await page.evaluate(() => document.getElementById("mode")!.textContent ?? "");
    expect(mode).toMatch(/^Single-thread mode: this page is not cross-origin isolated/);
    expect(mode).toContain("no SharedArrayBuffer");
    expect(await page.evaluate(() => (document.getElementById("vcpu-panel") as HTMLElement).hidden)).toBe(true);
    await page.waitForFunction(() => Number((document.getElementById("heatmap") as HTMLElement).dataset.harvests) >= 3,
      null, { timeout: 10_000 });
    const consoleText = () => page.evaluate(() => document.getElementById("console")!.textContent ?? "");
    await page.waitForFunction(() => /[A-Z]\s*$/.test(document.getElementById("console")!.textContent ?? ""), null, { timeout: 10_000 });
    expect(await consoleText()).toContain("Hello from webkvm!");
    expect(await consoleText()).toContain("[hello: shutdown (reason 0)");
    const mapText = () => page.evaluate(() => document.getElementById("map")!.textContent ?? "");
    expect(await mapText()).toContain("0x40000000");
    expect(await mapText()).toContain("address space 1");
    await page.screenshot({ path: join(SHOTS, "demo-before-move.png") });

    // the vCPU runs in the Worker: the page's own event loop stays free (timer latency while the guest runs)
    expect(await mainThreadWorstDelay(page)).toBeLessThan(250);

    // The writer is paced by guest time, which the worker keeps with the wall clock: harvests
    // see a band that moves, never a saturated slot, whatever the host's speed.
    const harvest = () => page.evaluate(() => {
      const c = document.getElementById("heatmap") as HTMLCanvasElement;
      return { n: Number(c.dataset.harvests), pages: (c.dataset.pages ?? "").split(",").filter(Boolean).map(Number) };
    });
    const seen: { n: number; pages: number[] }[] = [];
    while (seen.length < 4) {
      const h = await harvest();
      if (h.pages.length > 0 && h.n !== seen.at(-1)?.n) seen.push(h);
      await new Promise((r) => setTimeout(r, 150));
    }
    for (const h of seen) expect(h.pages.length).toBeLessThan(512);   // not every page of the slot
    const distinct = new Set(seen.map((h) => h.pages.join(",")));
    expect(distinct.size).toBeGreaterThan(1);                          // the pattern moves between harvests

    const before = await page.evaluate(() => {
      const c = document.getElementById("heatmap") as HTMLCanvasElement;
      return { base: c.dataset.base, harvests: Number(c.dataset.harvests),
        console: document.getElementById("console")!.textContent!.length,
        generation: /generation (\d+)/.exec(document.getElementById("map")!.textContent ?? "")?.[1] };
    });
    expect(before.base).toBe("0x40000000");
    // the page must stay responsive while the vCPU runs: the click is handled at once
    await page.click("#btn-move");
    await page.waitForFunction(() => /moved to 0x60000000/.test(document.getElementById("last-op")!.textContent ?? ""), null, { timeout: 5_000 });
    await page.waitForFunction((h: number) => {
      const c = document.getElementById("heatmap") as HTMLCanvasElement;
      return c.dataset.base === "0x60000000" && Number(c.dataset.harvests) >= h + 3 && Number(c.dataset.dirty) > 0;
    }, before.harvests, { timeout: 10_000 });
    // the guest keeps printing after the move (it follows the slot through its mailbox)
    await page.waitForFunction(() => /moved to 0x60000000[^\n]*\]\n[A-Z]/.test(document.getElementById("console")!.textContent ?? ""),
      null, { timeout: 10_000 });
    const after = await page.evaluate(() => {
      const c = document.getElementById("heatmap") as HTMLCanvasElement;
      return { base: c.dataset.base, dirty: Number(c.dataset.dirty), console: document.getElementById("console")!.textContent!,
        generation: /generation (\d+)/.exec(document.getElementById("map")!.textContent ?? "")?.[1] };
    });
    expect(after.base).toBe("0x60000000");
    expect(after.dirty).toBeGreaterThan(0);
    expect(after.dirty).toBeLessThan(512);
    expect(after.console.length).toBeGreaterThan(before.console);
    expect(after.console).toContain("[host: slot 1 moved to 0x60000000");
    expect(BigInt(after.generation!)).toBeGreaterThan(BigInt(before.generation!));
    expect(await mapText()).toContain("0x60000000");
    await page.screenshot({ path: join(SHOTS, "demo-after-move.png") });

    // delete, re-create, dirty logging off: the map follows
    await page.click("#btn-delete");
    await page.waitForFunction(() => /deleted/.test(document.getElementById("last-op")!.textContent ?? ""), null, { timeout: 5_000 });
    expect(await mapText()).not.toContain("0x60000000");
    await page.click("#btn-create");
    await page.waitForFunction(() => /re-created/.test(document.getElementById("last-op")!.textContent ?? ""), null, { timeout: 5_000 });
    await page.click("#btn-log");
    await page.waitForFunction(() => /logging off/.test(document.getElementById("last-op")!.textContent ?? ""), null, { timeout: 5_000 });
    expect(await mapText()).toContain("0x60000000");
    expect(await page.evaluate(() => document.querySelector('tr[data-slot="0:1"]')?.textContent ?? "")).not.toContain("LOG_DIRTY");
    await page.screenshot({ path: join(SHOTS, "demo-logging-off.png") });

    expect(nodeRequests).toEqual([]);
    expect(pageErrors).toEqual([]);
    await page.close();
  }, 45_000);
  it("demo page with COOP/COEP: two vCPUs, each on its own Web Worker over one shared memory, both make progress; the smp guest's line and partitions check out; the status bar shows measured MIPS", async () => {
    const page = await context.newPage();
    page.on("pageerror", (e: Error) => pageErrors.push(e.message));
    await page.goto(server.url + "demo/?guest=slots");
    expect(await page.evaluate(() => globalThis.crossOriginIsolated)).toBe(true);
    // demo/app.js imports the mode's module after the page's load event
    await page.waitForFunction(() => document.body.dataset.mode, null, { timeout: 20_000 });
    expect(await page.evaluate(() => document.body.dataset.mode)).toBe("threads");
    // Phase 1: the smp guest on 2 harts (Machine.runThreaded), checked in the VMM's Worker
    await page.waitForFunction(() => document.body.dataset.smp || document.body.dataset.error, null, { timeout: 60_000 });
    expect(await page.evaluate(() => document.body.dataset.error ?? "")).toBe("");
    expect(await page.evaluate(() => document.body.dataset.smp)).toBe("ok");
    // ... and here, against the reference computed in Node
    const consoleText = await page.evaluate(() => document.getElementById("console")!.textContent ?? "");
    expect(consoleText).toContain(smpLine(2));
    expect(consoleText).toContain("partitions 0:ok 1:ok");
    // the core's memory, posted to the page, is a SharedArrayBuffer here too
    expect(await page.evaluate(() => document.body.dataset.sharedMemory)).toBe("1");

    // Phase 2: the dirtylog guest on both vCPUs; each counts its stores in guest memory (steps[h])
    const rows = () => page.evaluate(() => [...document.querySelectorAll("#vcpus tr[data-vcpu]")].map((r) => {
      const d = (r as HTMLElement).dataset;
      return { steps: d.steps!, instructions: d.instructions!, thread: d.thread! };
    }));
    await page.waitForFunction(() => [...document.querySelectorAll("#vcpus tr[data-vcpu]")]
      .filter((r) => BigInt((r as HTMLElement).dataset.steps!) > 0n).length === 2, null, { timeout: 30_000 });
    const first = await rows();
    expect(first.length).toBe(2);
    expect(new Set(first.map((r) => r.thread)).size).toBe(2);   // two Worker threads of the process
    // both keep going: each one's counters grow past what they were
    await page.waitForFunction((before: string[]) => {
      const now = [...document.querySelectorAll("#vcpus tr[data-vcpu]")].map((r) => BigInt((r as HTMLElement).dataset.steps!));
      return now.length === 2 && now.every((s, i) => s > BigInt(before[i]));
    }, first.map((r) => r.steps), { timeout: 30_000 });
    const second = await rows();
    second.forEach((r, i) => expect(BigInt(r.instructions)).toBeGreaterThan(BigInt(first[i].instructions)));
    // a vCPU's KVM_RUN began while the other's was in flight
    await page.waitForFunction(() => Number((document.getElementById("vcpus") as HTMLElement).dataset.concurrentRuns) > 0,
      null, { timeout: 30_000 });
    // the dirty log is harvested while they run
    await page.waitForFunction(() => Number((document.getElementById("heatmap") as HTMLElement).dataset.harvests) >= 3,
      null, { timeout: 30_000 });

    // MIPS measured from guest instruction counts over wall time: a positive figure per vCPU and in total
    await page.waitForFunction(() => {
      const d = (document.getElementById("mips") as HTMLElement).dataset;
      return Number(d.total) > 0 && (d.vcpus ?? "").split(",").every((v) => Number(v) > 0);
    }, null, { timeout: 30_000 });
    const mips = await page.evaluate(() => {
      const el = document.getElementById("mips") as HTMLElement;
      return { text: el.textContent ?? "", total: Number(el.dataset.total), vcpus: el.dataset.vcpus!.split(",").map(Number) };
    });
    expect(mips.text).toMatch(/^vCPU 0 \d+ MIPS · vCPU 1 \d+ MIPS · total \d+ MIPS$/);
    expect(mips.vcpus.length).toBe(2);
    for (const v of mips.vcpus) expect(v).toBeGreaterThan(0);
    expect(mips.total).toBeCloseTo(mips.vcpus[0] + mips.vcpus[1], 6);

    // everything that may wait runs in Workers: the page's event loop stays free
    expect(await mainThreadWorstDelay(page)).toBeLessThan(250);
    await page.screenshot({ path: join(SHOTS, "demo-threads.png") });
    expect(pageErrors).toEqual([]);
    await page.close();
  }, 120_000);
});
