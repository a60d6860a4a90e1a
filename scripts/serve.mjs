#!/usr/bin/env node
// `npm run demo`: a tiny static server for the demo page (demo/), bound to
// 127.0.0.1 only. It serves the repository root, so the page and its Worker
// import the built package from /dist/ and the cores from /build/.
//
// Browsers cannot resolve bare module specifiers inside Workers (import maps do
// not apply there), so JavaScript is served with bare imports such as
// "@assemblyscript/loader" rewritten to their file under /node_modules/ — the
// job a bundler does for an application that depends on webkvm.
//
// Every response carries COOP/COEP (same-origin / require-corp) so the page is
// cross-origin isolated: only then does a browser give it SharedArrayBuffer,
// which the threads core's shared memory needs (the demo runs two vCPUs on
// Workers). `--no-isolation` (startServer({ isolate: false })) leaves them out:
// the page then falls back to one thread.
import { createServer } from "node:http";
import { readFile, stat } from "node:fs/promises";
import { existsSync, readFileSync } from "node:fs";
import { extname, join, normalize, resolve, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const REPO = fileURLToPath(new URL("..", import.meta.url));

const TYPES = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8", ".json": "application/json", ".map": "application/json", ".wasm": "application/wasm",
  ".bin": "application/octet-stream", ".elf": "application/octet-stream", ".txt": "text/plain; charset=utf-8",
  ".out": "text/plain; charset=utf-8", ".png": "image/png", ".svg": "image/svg+xml", ".ts": "text/plain; charset=utf-8",
};

/** "/node_modules/pkg/entry.js" for a bare specifier, or null if it is not installed. */
function resolveBare(root, spec, cache) {
  if (cache.has(spec)) return cache.get(spec);
  const parts = spec.split("/");
  const name = spec.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
  const sub = parts.slice(spec.startsWith("@") ? 2 : 1).join("/");
  let out = null;
  const dir = join(root, "node_modules", name);
  if (existsSync(join(dir, "package.json"))) {
    if (sub) out = `/node_modules/${name}/${sub}`;
    else {
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
      let e = pkg.exports;
      if (e && typeof e === "object" && "." in e) e = e["."];
      while (e && typeof e === "object") e = e.browser ?? e.import ?? e.default;
      const entry = (typeof e === "string" ? e : null) ?? pkg.module ?? pkg.main ?? "index.js";
      out = `/node_modules/${name}/${entry.replace(/^\.\//, "")}`;
    }
  }
  cache.set(spec, out);
  return out;
}

const BARE = /((?:\bfrom|\bimport)\s*\(?\s*)(["'])([^"'./][^"']*)\2/g;

function rewriteBare(root, source, cache) {
  return source.replace(BARE, (all, head, q, spec) => {
    if (/^[a-z][a-z0-9+.-]*:/i.test(spec)) return all; // node:, https:, data: …
    const to = resolveBare(root, spec, cache);
    return to ? `${head}${q}${to}${q}` : all;
  });
}

/** The headers that make a page cross-origin isolated (`crossOriginIsolated`). */
export const ISOLATION_HEADERS = { "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp" };

/**
 * Starts the server; port 0 picks a free one; isolate: false serves without
 * COOP/COEP. Resolves to { server, url, close() }.
 */
export async function startServer({ root = REPO, port = 8080, host = "127.0.0.1", isolate = true } = {}) {
  const base = resolve(root);
  const cache = new Map();
  const extra = isolate ? ISOLATION_HEADERS : {};
  const server = createServer(async (req, res) => {
    try {
      const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
      if (path === "/") { res.writeHead(302, { location: "/demo/" }); res.end(); return; }
      let file = normalize(join(base, path));
      if (file !== base && !file.startsWith(base + sep)) { res.writeHead(403).end("forbidden"); return; }
      let st = await stat(file).catch(() => null);
      if (st?.isDirectory()) { file = join(file, "index.html"); st = await stat(file).catch(() => null); }
      if (!st?.isFile()) { res.writeHead(404, { "content-type": "text/plain" }).end("not found"); return; }
      const type = TYPES[extname(file)] ?? "application/octet-stream";
      let body = await readFile(file);
      if (type.startsWith("text/javascript")) body = Buffer.from(rewriteBare(base, body.toString("utf8"), cache));
      res.writeHead(200, { ...extra, "content-type": type, "cache-control": "no-store", "content-length": body.length });
      res.end(req.method === "HEAD" ? undefined : body);
    } catch (e) {
      res.writeHead(500, { "content-type": "text/plain" }).end(String(e));
    }
  });
  await new Promise((ok, fail) => { server.once("error", fail); server.listen(port, host, ok); });
  const addr = server.address();
  const url = `http://${host}:${addr.port}/`;
  return { server, url, close: () => new Promise((ok) => { server.closeAllConnections?.(); server.close(() => ok()); }) };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const i = process.argv.indexOf("--port");
  const port = Number(i > 0 ? process.argv[i + 1] : process.env.PORT ?? 8080);
  const isolate = !process.argv.includes("--no-isolation");
  const { url } = await startServer({ port, isolate });
  if (!existsSync(join(REPO, "dist", "index.js"))) console.warn("webkvm: dist/ is missing — run `npm run build` first");
  console.log(`webkvm demo: ${url}demo/   (127.0.0.1 only; ${isolate ? "COOP/COEP: two vCPUs on Workers" : "no COOP/COEP: one thread"}; Ctrl-C stops)`);
}
