// The native baselines: compiled at bench time with the machine's C compiler
// (cc -O2, or $CC) into a temp directory, run, and their "key value" lines parsed.
// A missing compiler, a failed compile or an unusable /dev/kvm gives
// { skipped: "reason" } and the suites print that reason instead of a number.
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const SRC = fileURLToPath(new URL("./", import.meta.url));
const CC = process.env.CC || "cc";
let dir = null;
const built = new Map();

function workDir() {
  if (!dir) {
    dir = mkdtempSync(join(tmpdir(), "webkvm-bench-"));
    process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  }
  return dir;
}

/** Compile bench/native/NAME.c once per run: the binary's path, or { skipped }. */
export function build(name) {
  if (built.has(name)) return built.get(name);
  let result;
  const probe = spawnSync(CC, ["--version"], { encoding: "utf8" });
  if (probe.error || probe.status !== 0) {
    result = { skipped: `no C compiler (${CC}: ${probe.error ? probe.error.code : `exit ${probe.status}`})` };
  } else {
    const out = join(workDir(), name);
    const cc = spawnSync(CC, ["-O2", "-o", out, join(SRC, `${name}.c`)], { encoding: "utf8" });
    result = cc.status === 0 ? { path: out } : { skipped: `${CC} -O2 ${name}.c failed: ${(cc.stderr || "").trim().split("\n")[0]}` };
  }
  built.set(name, result);
  return result;
}

/** Run a built helper; parse "key value" lines (numbers where they parse). */
export function run(name, args, { timeoutMs = 300_000 } = {}) {
  const b = build(name);
  if (b.skipped) return { skipped: b.skipped };
  const r = spawnSync(b.path, args.map(String), { encoding: "utf8", timeout: timeoutMs });
  const out = { raw: {} };
  for (const line of (r.stdout || "").split("\n")) {
    const m = /^(\S+) ?(.*)$/.exec(line);
    if (!m) continue;
    out.raw[m[1]] = m[2];
    out[m[1]] = m[2] !== "" && !Number.isNaN(Number(m[2])) ? Number(m[2]) : m[2];
  }
  if (typeof out.skip === "string") return { skipped: out.skip };
  // A helper that fails is reported, not fatal: the other figures still count.
  if (r.error) return { skipped: `${name} ${args.join(" ")} failed: ${r.error.code}` };
  if (r.status !== 0) {
    return { skipped: `${name} ${args.join(" ")} failed: ${out.error || (r.stderr || "").trim() || `exit ${r.status}`}` };
  }
  return out;
}

/** Write u64 words to a temp file for a helper to read; returns its path. */
export function writeU64(file, words) {
  const path = join(workDir(), file);
  const buf = new BigUint64Array(words.length);
  for (let i = 0; i < words.length; i++) buf[i] = BigInt(words[i]);
  writeFileSync(path, new Uint8Array(buf.buffer));
  return path;
}
