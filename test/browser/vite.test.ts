// A Vite app built in a test imports webkvm and runs a guest: `vite build` of
// test/browser/vite-app (which imports "webkvm" as a package) into a temp dir,
// the output served on 127.0.0.1 and opened in Debian's Chromium. Vite must emit
// the core's wasm (dist/core.js names it with new URL(..., import.meta.url)) and
// the page must boot the hello guest with it.
// Skipped when /usr/bin/chromium is missing (apt-get install -y chromium).
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { createServer } from "node:http";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { CHROMIUM, HAVE_CHROMIUM, warnIfMissing, launchChromium } from "./chromium.js";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const APP = fileURLToPath(new URL("./vite-app/", import.meta.url));

warnIfMissing("vite app test");

const MIME: Record<string, string> = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".wasm": "application/wasm",
  ".bin": "application/octet-stream",
};

type Server = { url: string; requests: string[]; close: () => Promise<void> };

/** A static server for the built app, on 127.0.0.1 (a free port). */
function serve(dir: string): Promise<Server> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    requests.push(path);
    const file = normalize(join(dir, path.endsWith("/") ? path + "index.html" : path));
    if (!file.startsWith(dir + sep) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end("not found");
      return;
    }
    res.writeHead(200, { "content-type": MIME[extname(file)] ?? "application/octet-stream" });
    res.end(readFileSync(file));
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as { port: number };
    resolve({ url: `http://127.0.0.1:${port}/`, requests,
      close: () => new Promise<void>((r) => server.close(() => r())) });
  }));
}

describe.skipIf(!HAVE_CHROMIUM)(`a Vite app in Chromium (${CHROMIUM}; skipped when it is missing)`, () => {
  let out: string;
  let server: Server;
  let context: any;
  let browser: Awaited<ReturnType<typeof launchChromium>> | undefined;
  const resolved: Record<string, string> = {};

  beforeAll(async () => {
    out = mkdtempSync(join(tmpdir(), "webkvm-vite-"));
    const { build } = await import("vite");
    await build({
      root: APP,
      configFile: false,
      logLevel: "silent",
      // the guest image (916 bytes) would be inlined as a data: URL; emit it as a file like any real asset
      build: { outDir: out, emptyOutDir: true, assetsInlineLimit: 0 },
      // records what "webkvm" resolved to (Vite's resolver, through the package's `exports` map)
      plugins: [{
        name: "record-webkvm",
        enforce: "post",
        load(id: string) { if (id.startsWith(join(REPO, "dist"))) resolved[id.slice(REPO.length)] = id; return null; },
      }],
    });
    server = await serve(out);
    browser = await launchChromium();
    context = browser.context;
  }, 30_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (out) rmSync(out, { recursive: true, force: true });
  });

  it("the build resolves webkvm through the package's exports and emits the core's wasm and the guest", () => {
    const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8"));
    expect(pkg.name).toBe("webkvm");
    expect(Object.keys(resolved)).toContain(pkg.exports["."].default.replace(/^\.\//, ""));
    const assets = readdirSync(join(out, "assets"));
    const release = assets.find((f) => /^release-.*\.wasm$/.test(f));
    expect(release, `assets: ${assets.join(", ")}`).toBeDefined();
    expect(readFileSync(join(out, "assets", release!)).equals(readFileSync(join(REPO, "build/release.wasm")))).toBe(true);
    const hello = assets.find((f) => /^hello-.*\.bin$/.test(f));
    expect(hello, `assets: ${assets.join(", ")}`).toBeDefined();
    expect(readFileSync(join(out, "assets", hello!)).equals(readFileSync(join(REPO, "guests/hello/hello.bin")))).toBe(true);
    // the bundle names the emitted wasm, not the repo's build/ directory
    const js = assets.filter((f) => f.endsWith(".js")).map((f) => readFileSync(join(out, "assets", f), "utf8")).join("\n");
    expect(js).toContain(release);
    expect(js).not.toContain("../build/release.wasm");
  });

  it("the page imports webkvm, loads the emitted wasm and runs the hello guest", async () => {
    const page = await context.newPage();
    const pageErrors: string[] = [];
    page.on("pageerror", (e: Error) => pageErrors.push(e.message));
    const foreign: string[] = [];
    page.on("request", (r: { url(): string }) => { if (!r.url().startsWith(server.url)) foreign.push(r.url()); });
    await page.goto(server.url);
    await page.waitForFunction(() => document.body.dataset.output !== undefined || document.body.dataset.error !== undefined,
      null, { timeout: 10_000 });
    expect(await page.evaluate(() => document.body.dataset.error ?? "")).toBe("");
    expect(await page.evaluate(() => document.body.dataset.output)).toContain("Hello from webkvm!");
    expect(await page.evaluate(() => document.body.dataset.stop)).toBe("shutdown 0");
    expect(await page.evaluate(() => document.getElementById("out")!.textContent)).toContain("Hello from webkvm!");
    // the wasm and the guest came from the built app (the release core: browsers have no WEBKVM_CORE)
    expect(server.requests.some((p) => /^\/assets\/release-.*\.wasm$/.test(p))).toBe(true);
    expect(server.requests.some((p) => /^\/assets\/hello-.*\.bin$/.test(p))).toBe(true);
    expect(server.requests.some((p) => /debug-.*\.wasm$/.test(p))).toBe(false);
    expect(foreign).toEqual([]);
    expect(pageErrors).toEqual([]);
    await page.close();
  }, 20_000);
});
