// Real-browser tests: Debian's Chromium (headless) driven by playwright-core.
// The package runs the validation golden in the page, and the demo page boots
// the guests in a Worker; a slot move must change the heatmap and the console.
// Skipped when /usr/bin/chromium is missing (apt-get install -y chromium).
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CHROMIUM, HAVE_CHROMIUM, warnIfMissing, launchChromium } from "./chromium.js";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const GOLDEN = join(REPO, "conformance/golden");
const SHOTS = join(REPO, "test-results/browser");

warnIfMissing("browser tests");

type Server = { url: string; close: () => Promise<void> };

describe.skipIf(!HAVE_CHROMIUM)(`in Chromium (${CHROMIUM}; skipped when it is missing)`, () => {
  let server: Server;
  let context: any;
  let browser: Awaited<ReturnType<typeof launchChromium>> | undefined;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    const { startServer } = await import("../../scripts/serve.mjs");
    server = await startServer({ port: 0 });
    browser = await launchChromium();
    context = browser.context;
    mkdirSync(SHOTS, { recursive: true });
  }, 30_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
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

  it("demo page: hello boots in a Worker; the dirty band moves at any host speed; a slot move changes the heatmap and the console", async () => {
    const page = await context.newPage();
    page.on("pageerror", (e: Error) => pageErrors.push(e.message));
    const nodeRequests: string[] = [];
    page.on("request", (r: { url(): string }) => { if (!r.url().startsWith(server.url)) nodeRequests.push(r.url()); });
    await page.goto(server.url + "demo/");
    await page.waitForFunction(() => document.body.dataset.ready === "1" || document.body.dataset.error, null, { timeout: 20_000 });
    expect(await page.evaluate(() => document.body.dataset.error ?? "")).toBe("");
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
    const worstDelay = await page.evaluate(async () => {
      let worst = 0;
      for (let i = 0; i < 20; i++) {
        const t = performance.now();
        await new Promise((r) => setTimeout(r, 0));
        worst = Math.max(worst, performance.now() - t);
      }
      return worst;
    });
    expect(worstDelay).toBeLessThan(250);

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
});
