// The demo page's Linux mode in Chromium (demo/linux-app.js, linux-worker.js):
// the bundled Linux boots in a Worker, its console is an xterm.js terminal,
// keys typed into the terminal reach the guest's UART, and the memory map and
// heatmap show the guest's dirty-logged RAM slot. Every wait is for an event
// the page shows (a line in the terminal's buffer, a counter); the timeouts are
// only a hang's safety net. Skipped when /usr/bin/chromium is missing.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { HAVE_CHROMIUM, CHROMIUM, warnIfMissing, serveAndOpen, mainThreadWorstDelay } from "./chromium.js";
// @ts-expect-error: a plain ES module without types
import { initResultLine, INIT_FIRST_LINE_PREFIX, INIT_PAGES } from "../../guests/linux/reference.mjs";

warnIfMissing("Linux demo browser tests");

const RESULT_LINE = initResultLine().trim();
const HANG = 180_000;

type Page = any;

/** The terminal's buffer as text, one entry per logical line (rows the terminal wrapped are joined). */
function terminalLines(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const buf = (globalThis as any).webkvmTerminal.buffer.active;
    const out: string[] = [];
    for (let i = 0; i < buf.length; i++) {
      const line = buf.getLine(i);
      const text = line.translateToString(true);
      if (line.isWrapped && out.length > 0) out[out.length - 1] += text;
      else out.push(text);
    }
    return out;
  });
}

/** Waits until some line of the terminal passes `test` (an expression over `line`, evaluated in the page). */
function waitForLine(page: Page, test: string, timeout = HANG): Promise<unknown> {
  return page.waitForFunction(`(() => {
    const buf = globalThis.webkvmTerminal?.buffer.active;
    if (!buf) return false;
    const lines = [];
    for (let i = 0; i < buf.length; i++) {
      const row = buf.getLine(i);
      if (row.isWrapped && lines.length > 0) lines[lines.length - 1] += row.translateToString(true);
      else lines.push(row.translateToString(true));
    }
    return lines.some((line) => ${test});
  })()`, null, { timeout, polling: 100 });
}

/** A shell's prompt, "# ", as a line of the terminal (trailing blanks trimmed). */
const PROMPT = `line === "#" || line.startsWith("# ")`;

/** Waits until the guest powered off or its shell printed a prompt; true for a power-off. */
async function poweredOffOrPrompt(page: Page): Promise<boolean> {
  await page.waitForFunction(`document.body.dataset.poweredOff || (() => {
    const buf = globalThis.webkvmTerminal?.buffer.active;
    if (!buf) return false;
    for (let i = 0; i < buf.length; i++) { const line = buf.getLine(i).translateToString(true); if (${PROMPT}) return true; }
    return false;
  })()`, null, { timeout: HANG, polling: 100 });
  return page.evaluate(() => document.body.dataset.poweredOff !== undefined);
}

describe.skipIf(!HAVE_CHROMIUM)(`the demo page's Linux mode in Chromium (${CHROMIUM})`, () => {
  let env: Awaited<ReturnType<typeof serveAndOpen>> | undefined;
  let page: Page;
  let pageErrors: string[] = [];
  const elsewhere: string[] = [];

  beforeAll(async () => {
    env = await serveAndOpen();
    ({ page, pageErrors } = env);
    const url = env.url;
    page.on("request", (r: { url(): string }) => { if (!r.url().startsWith(url)) elsewhere.push(r.url()); });
    await page.goto(url + "demo/");   // Linux is the page's default mode
  }, 60_000);

  afterAll(async () => {
    await env?.close();
  });

  it("boots the bundled Linux in a Worker: the terminal shows the kernel's banner, then /init's first line and its ok line; the status bar gives the boot time and MIPS", async () => {
    expect(await page.evaluate(() => document.body.dataset.guest)).toBe("linux");
    // Linux boots in the Worker: the page's own event loop stays free meanwhile (once the kernel prints)
    await waitForLine(page, `/^Linux version \\d/.test(line)`);
    expect(await mainThreadWorstDelay(page)).toBeLessThan(250);
    await waitForLine(page, `line === ${JSON.stringify(RESULT_LINE)}`);
    expect(await page.evaluate(() => document.body.dataset.error ?? "")).toBe("");
    const lines = await terminalLines(page);
    const banner = lines.findIndex((l) => /^Linux version \d+\.\d+\.\d+ /.test(l));
    const first = lines.findIndex((l) => l.startsWith(INIT_FIRST_LINE_PREFIX));
    const ok = lines.indexOf(RESULT_LINE);
    expect(banner).toBeGreaterThanOrEqual(0);
    expect(first).toBeGreaterThan(banner);
    expect(ok).toBeGreaterThan(first);
    expect(lines.some((l) => l.includes("ttyS0 at MMIO 0x10000000"))).toBe(true);   // the 16550 is the console
    // the boot time (to the kernel's "Run /init") and a MIPS figure, measured in the Worker
    await page.waitForFunction(() => Number(document.body.dataset.bootMs) > 0 && Number(document.getElementById("mips")!.dataset.total) > 0,
      null, { timeout: HANG });
    const status = await page.evaluate(() => document.getElementById("mips")!.textContent ?? "");
    expect(status).toMatch(/^booted to \/init in \d+\.\d\d s · \d+ MIPS · [\d.]+ M instructions · [\d,]+ exits · [\d,]+ MMU faults$/);
    console.log(`Linux demo in Chromium: ${status}`);
    // xterm.js and everything else came from the page's own server (no CDN)
    expect(elsewhere).toEqual([]);
    expect(pageErrors).toEqual([]);
  }, HANG);

  it("the memory map shows the guest's RAM slot with LOG_DIRTY_PAGES, and the heatmap's harvests hold the pages the running guest wrote (at least /init's region and its child's copy of it)", async () => {
    await waitForLine(page, `line === ${JSON.stringify(RESULT_LINE)}`);
    const row = await page.evaluate(() => document.querySelector('tr[data-slot="0:0"]')?.textContent ?? "");
    expect(row).toContain("0x80000000");
    expect(row).toContain("0x84000000");   // 64 MiB
    expect(row).toContain("16384");
    expect(row).toContain("LOG_DIRTY_PAGES");
    // The worker drops the pages it wrote loading the images; what the harvests see is the guest's.
    // /init's region and the child's copy-on-write copy are live at once: 2 × INIT_PAGES distinct pages.
    await page.waitForFunction((min: number) => Number((document.getElementById("heatmap") as HTMLElement).dataset.touched) >= min,
      2 * INIT_PAGES, { timeout: HANG });
    const heat = await page.evaluate(() => ({ ...(document.getElementById("heatmap") as HTMLElement).dataset }));
    expect(heat.base).toBe("0x80000000");
    expect(Number(heat.harvests)).toBeGreaterThan(1);
    expect(Number(heat.touched)).toBeLessThanOrEqual(16384);
  }, HANG);

  it("`poweroff` typed at the shell powers the guest off, the terminal says so and Enter reboots: the kernel's banner and /init's ok line come again", async () => {
    expect(await poweredOffOrPrompt(page), "the guest powered off before its shell's prompt").toBe(false);
    await page.click("#terminal");
    await page.keyboard.type("poweroff");
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => document.body.dataset.poweredOff === "shutdown", null, { timeout: HANG });
    await waitForLine(page, `line.startsWith("[webkvm: Linux powered off (SBI system reset, reason 0)")`);
    expect(await page.evaluate(() => (document.getElementById("btn-reboot") as HTMLButtonElement).disabled)).toBe(false);
    await page.click("#terminal");
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => document.body.dataset.boots === "2", null, { timeout: HANG });
    await page.waitForFunction(`(() => {
      const buf = globalThis.webkvmTerminal.buffer.active;
      let n = 0;
      for (let i = 0; i < buf.length; i++) if (buf.getLine(i).translateToString(true) === ${JSON.stringify(RESULT_LINE)}) n++;
      return n === 2;
    })()`, null, { timeout: HANG, polling: 100 });
    const lines = await terminalLines(page);
    expect(lines.filter((l) => /^Linux version \d/.test(l)).length).toBe(2);
    expect(lines).toContain("[webkvm: rebooting]");
    expect(pageErrors).toEqual([]);
  }, HANG);

  it("keys typed into the terminal reach the guest's UART: held at the kernel's \"Run /init\", the UART queues them; resumed, the guest reads them all and its tty echoes them", async () => {
    const held = await env!.context.newPage();
    held.on("pageerror", (e: Error) => pageErrors.push(e.message));
    await held.goto(env!.url + "demo/?pauseAt=" + encodeURIComponent("Run /init"));
    await held.waitForFunction(() => document.body.dataset.paused === "1" || document.body.dataset.error, null, { timeout: HANG });
    expect(await held.evaluate(() => document.body.dataset.error ?? "")).toBe("");
    expect((await terminalLines(held)).some((l) => l.startsWith("Run /init"))).toBe(true);
    await held.click("#terminal");
    await held.keyboard.type("typed");
    await held.keyboard.press("Enter");                        // xterm.js sends "\r"
    // The guest is held, so nothing reads them: six bytes wait in the UART's receive queue.
    await held.waitForFunction(() => document.getElementById("input-state")!.dataset.fed === "6", null, { timeout: HANG });
    expect(await held.evaluate(() => document.getElementById("input-state")!.dataset.pending)).toBe("6");
    await held.click("#btn-pause");                            // "Resume"
    await held.waitForFunction(() => document.getElementById("input-state")!.dataset.pending === "0", null, { timeout: HANG });
    // the 8250 driver read them; the tty echoes what it got (ICRNL: the Enter comes back as a new line)
    await held.waitForFunction(`(() => {
      const buf = globalThis.webkvmTerminal.buffer.active;
      let text = "";
      for (let i = 0; i < buf.length; i++) text += buf.getLine(i).translateToString(true) + "\\n";
      return /Run \\/init[^]*typed\\n/.test(text);
    })()`, null, { timeout: HANG, polling: 100 });
    expect(pageErrors).toEqual([]);
    await held.close();
  }, HANG);

  it("the shell on the console: at its prompt the guest idles (the worker sleeps), and `echo browser-ok` typed into the terminal prints browser-ok on a line of its own", async () => {
    const shell = await env!.context.newPage();
    shell.on("pageerror", (e: Error) => pageErrors.push(e.message));
    await shell.goto(env!.url + "demo/");
    await waitForLine(shell, `line === ${JSON.stringify(RESULT_LINE)}`);
    if (await poweredOffOrPrompt(shell)) {
      const lines = await terminalLines(shell);
      await shell.close();
      expect.fail(`the guest powered off instead of starting a shell:\n${lines.slice(-8).join("\n")}`);
    }
    // the shell waits in read(): the guest idles in wfi and the worker sleeps the idle time off; a key wakes it
    await shell.waitForFunction(() => document.body.dataset.idle === "1", null, { timeout: HANG });
    await shell.click("#terminal");
    await shell.keyboard.type("echo browser-ok");
    await shell.keyboard.press("Enter");
    await waitForLine(shell, `line === "browser-ok"`);
    const lines = await terminalLines(shell);
    expect(lines).toContain("browser-ok");
    expect(lines.some((l) => l.endsWith("echo browser-ok"))).toBe(true);   // the command line, echoed
    expect(pageErrors).toEqual([]);
    await shell.close();
  }, HANG);

  it("Save snapshot keeps the running Linux as a Blob; Restore runs it in a fresh Kvm: the shell at its prompt answers there", async () => {
    const snap = await env!.context.newPage();
    snap.on("pageerror", (e: Error) => pageErrors.push(e.message));
    await snap.goto(env!.url + "demo/");
    if (await poweredOffOrPrompt(snap)) {
      await snap.close();
      expect.fail("the guest powered off instead of starting a shell");
    }
    await snap.waitForFunction(() => document.body.dataset.idle === "1", null, { timeout: HANG });
    await snap.click("#btn-snapshot");
    await snap.waitForFunction(() => document.body.dataset.snapshots === "1", null, { timeout: HANG });
    const bytes = Number(await snap.evaluate(() => document.body.dataset.snapshotBytes));
    expect(bytes).toBeGreaterThan(1 << 20);
    expect(bytes).toBeLessThan(64 << 20);   // zero pages are not stored
    await snap.click("#terminal");
    await snap.keyboard.type("echo before-restore");
    await snap.keyboard.press("Enter");
    await waitForLine(snap, `line === "before-restore"`);
    await snap.click("#btn-restore");
    await snap.waitForFunction(() => document.body.dataset.restores === "1" || document.body.dataset.snapshotError, null, { timeout: HANG });
    expect(await snap.evaluate(() => document.body.dataset.snapshotError ?? "")).toBe("");
    await waitForLine(snap, `line.startsWith("[webkvm: restored a snapshot in ")`);
    await snap.click("#terminal");
    await snap.keyboard.type("echo after-restore");
    await snap.keyboard.press("Enter");
    await waitForLine(snap, `line === "after-restore"`);
    expect(pageErrors).toEqual([]);
    await snap.close();
  }, HANG);
});
