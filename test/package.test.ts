// The published package: what `npm pack` puts in the tarball, and that the
// browser path of the built modules never reaches a Node built-in statically.
import { describe, it, expect } from "vitest";
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const REPO = fileURLToPath(new URL("../", import.meta.url));

function packedFiles(): string[] {
  const out = execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: REPO, encoding: "utf8",
    stdio: ["ignore", "pipe", "ignore"] });
  return (JSON.parse(out)[0].files as { path: string }[]).map((f) => f.path).sort();
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

describe("npm package", () => {
  it("packs only what users need: dist/, build/*.wasm, bin/, README, package.json", () => {
    const files = packedFiles();
    const allowed = [/^dist\/.+\.(js|d\.ts|js\.map)$/, /^build\/(debug|release|threads|threads-release)\.wasm$/, /^bin\/[^/]+\.js$/,
      /^README\.md$/, /^package\.json$/, /^LICEN[CS]E(\.md)?$/];
    expect(files.filter((f) => !allowed.some((re) => re.test(f)))).toEqual([]);
    for (const need of ["package.json", "README.md", "dist/index.js", "dist/index.d.ts", "dist/core.js",
      "dist/cli/main.js", "build/release.wasm", "build/debug.wasm", "build/threads.wasm", "build/threads-release.wasm", "bin/webkvm.js"]) expect(files).toContain(need);
    expect(files.filter((f) => /(^|\/)(test|tests|bench|src|assembly|demo|scripts|guests)\//.test(f) || /\.test\./.test(f))).toEqual([]);
  });

  it("the package.json points at what is packed (exports, types, bin)", () => {
    const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8"));
    expect(pkg.type).toBe("module");
    expect(pkg.exports["."].types).toBe("./dist/index.d.ts");
    expect(pkg.exports["."].default).toBe("./dist/index.js");
    expect(pkg.types).toBe("./dist/index.d.ts");
  });

  it("no module of the library imports a Node built-in statically (node:fs only for file: URLs, hidden from bundlers)", () => {
    const dist = join(REPO, "dist");
    for (const file of walk(dist).filter((f) => f.endsWith(".js"))) {
      const rel = relative(dist, file).split("\\").join("/");
      if (rel.startsWith("cli/")) continue; // the CLI (cli/main.js and the files of its commands) is Node-only
      const src = readFileSync(file, "utf8");
      expect(src, rel).not.toMatch(/\bfrom\s*["'](node:|fs|path|url|os|child_process)/);
      expect(src, rel).not.toMatch(/\bimport\s*\(\s*["']node:/);
      expect(src, rel).not.toMatch(/\brequire\s*\(/);
    }
    const core = readFileSync(join(dist, "core.js"), "utf8");
    expect(core).toMatch(/import\(\/\* webpackIgnore: true \*\/ \/\* @vite-ignore \*\/ fsModule\)/);
    expect(core).toContain('new URL("../build/release.wasm", import.meta.url)');
    expect(core).toContain('new URL("../build/debug.wasm", import.meta.url)');
  });
});
