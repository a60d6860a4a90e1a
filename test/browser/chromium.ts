// Debian's Chromium for the browser tests, driven by playwright-core (which
// never downloads a browser here). One place for the path, the skip rule and
// the launch options.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** WEBKVM_CHROMIUM overrides the path (e.g. to check the skip: WEBKVM_CHROMIUM=/nonexistent). */
export const CHROMIUM = process.env.WEBKVM_CHROMIUM ?? "/usr/bin/chromium";
export const HAVE_CHROMIUM = existsSync(CHROMIUM);

/** Says why a browser test file is skipped (call once per file). */
export function warnIfMissing(what: string): void {
  if (!HAVE_CHROMIUM) console.warn(`${what} SKIPPED: ${CHROMIUM} not found (install it with: apt-get install -y chromium)`);
}

/** A headless Chromium with a fresh profile; close() also removes the profile. */
export async function launchChromium(): Promise<{ context: any; close: () => Promise<void> }> {
  const { chromium } = await import("playwright-core");
  const profile = mkdtempSync(join(tmpdir(), "webkvm-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1200, height: 820 },
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
      "--disable-sync", "--no-first-run"],
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * The page server (scripts/serve.mjs, cross-origin isolated) on a free port,
 * a Chromium, and a page in it whose uncaught errors collect in pageErrors;
 * close() ends the browser and the server.
 */
export async function serveAndOpen(): Promise<{ url: string; context: any; page: any; pageErrors: string[]; close: () => Promise<void> }> {
  const { startServer } = await import("../../scripts/serve.mjs");
  const server = await startServer({ port: 0 });
  const browser = await launchChromium();
  const page = await browser.context.newPage();
  const pageErrors: string[] = [];
  page.on("pageerror", (e: Error) => pageErrors.push(e.message));
  return {
    url: server.url, context: browser.context, page, pageErrors,
    close: async () => {
      await browser.close();
      await server.close();
    },
  };
}

/** The worst delay of 20 zero-timeouts on the page: its main thread stays free while vCPUs run elsewhere. */
export function mainThreadWorstDelay(page: any): Promise<number> {
  return page.evaluate(async () => {
    let worst = 0;
    for (let i = 0; i < 20; i++) {
      const t = performance.now();
      await new Promise((r) => setTimeout(r, 0));
      worst = Math.max(worst, performance.now() - t);
    }
    return worst;
  });
}
