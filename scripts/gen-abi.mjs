#!/usr/bin/env node
// Writes src/abi.gen.ts, the host's one view of what the core (assembly/)
// defines, so that no number crosses the wasm/TS boundary twice:
//
// - constants: every `export const` of the modules in GROUPS whose name matches
//   the group, with the value the AssemblyScript compiler computes for it (a
//   small wasm that re-exports them is compiled and read; nothing is parsed
//   but the names);
// - CoreExports: every export of the debug build's entry (assembly/harness.ts:
//   index.ts plus the test surface) with its signature, from the bindings asc
//   writes next to the debug build (build/debug.d.ts; run `npm run build:wasm`
//   first), as the raw wasm exports take and return them; CORE_TEST_SURFACE
//   names the exports the release build (index.ts alone) lacks.
//
// Run by `npm run build:ts` before tsc. The output is not committed.

import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join, relative } from "node:path";
import asc from "assemblyscript/asc";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
process.chdir(ROOT); // asc resolves the entry from the working directory
const OUT = join(ROOT, "src/abi.gen.ts");
const WORK = join(ROOT, "build/abi");

/**
 * [object in src/abi.gen.ts, module of assembly/, names it takes, what the object is].
 * A group whose pattern is a prefix (/^CHECK_/) drops it from its keys; the others keep the names whole.
 */
const GROUPS = [
  ["ERRNO", "errno", /^E[A-Z0-9]+$/, "Linux errno values (asm-generic/errno-base.h, errno.h)."],
  ["CHECK", "errno", /^CHECK_/, "Which check failed (lastFailedCheck): src/errors.ts keys a message to each."],
  ["SNAP", "layout", /^SNAP_/, "Memslot snapshot records (snapshotMemslots, lookupGfn)."],
  ["KVM_RUN_LAYOUT", "layout", /^KVM_RUN_/, "struct kvm_run: field offsets and the bytes per vCPU."],
  ["MAPPING", "layout", /^MAPPING_/, "A host mapping record (mappingAt)."],
  ["PAGE", "layout", /^PAGE_(SIZE|SHIFT)$/, "The page size of guest and host memory."],
  ["DIRTY_GFN", "dirty/ring", /^KVM_DIRTY_GFN_BYTES$/, "struct kvm_dirty_gfn: bytes per ring entry."],
  ["MMAN", "hostmm/vma", /^(PROT|MAP)_\w+$/, "mmap(2) prot and flags bits (asm-generic/mman-common.h)."],
  ["VM_STAT", "selectors", /^VM_STAT_/, "vmStat(fd, which)."],
  ["MMU_STAT", "selectors", /^MMU_STAT_/, "mmuStat(which)."],
  ["VCPU_STAT", "selectors", /^VCPU_STAT_/, "vcpuStat(fd, which)."],
  ["JIT_STAT", "selectors", /^JIT_STAT_/, "jitStat(which)."],
  ["GMEM_STAT", "selectors", /^GMEM_STAT_/, "gmemFileStat(fd, which)."],
  ["LOOKUP", "selectors", /^LOOKUP_/, "lookupGfn(fd, asId, gfn, mode)."],
  ["CORRUPT", "selectors", /^CORRUPT_/, "debugCorruptForTest(fd, what)."],
  ["INJECT", "debug/inject", /^INJECT_/, "injectFault(point, errno, skip)."],
  ["DIRTY_LEVER", "debug/dirty_levers", /^DIRTY_LEVER_/, "debugDirtyAtomicOff(mask): the dirty log's atomics each lever replaces."],
  ["HOOK", "debug/hooks", /^HOOK_/, "The point argument of the reader hook (env.webkvm_reader_hook)."],
  // The kernel's uapi as the core implements it; src/uapi.ts and src/kvm-run.ts
  // define it for users, and test/abi.test.ts holds the two equal.
  ["CORE_IOCTL", "kvm/ioctl", /^KVM_[A-Z0-9_]+$/, "The ioctl numbers the core dispatches."],
  ["CORE_CAP", "kvm/caps", /^KVM_CAP_/, "The capabilities KVM_CHECK_EXTENSION knows."],
  ["CORE_MEMSLOT", "memslots/slot", /^KVM_[A-Z0-9_]+$/, "Memslot flags and limits."],
  ["CORE_EXIT", "layout", /^KVM_EXIT_/, "The exit reasons KVM_RUN reports."],
];

/** Exported constant names of an assembly/ module, in source order. */
function constNames(module) {
  const src = readFileSync(join(ROOT, "assembly", module + ".ts"), "utf8");
  return [...src.matchAll(/^export const (\w+)\s*:/gm)].map((m) => m[1]);
}

/** Compiles an entry re-exporting the grouped constants; returns name -> { value, type } as asc computed them. */
async function constantValues(groups) {
  mkdirSync(WORK, { recursive: true });
  const byModule = new Map();
  for (const g of groups) for (const n of g.names) {
    if (!byModule.has(g.module)) byModule.set(g.module, new Set());
    byModule.get(g.module).add(n);
  }
  const entry = join(WORK, "constants.ts");
  writeFileSync(entry, [...byModule].map(([m, names]) =>
    `export { ${[...names].join(", ")} } from "${relative(WORK, join(ROOT, "assembly", m)).split("\\").join("/")}";`).join("\n") + "\n");
  const files = {};
  const { error, stderr } = await asc.main([relative(ROOT, entry), "--config", "none", "--runtime", "incremental",
    "--use", "WEBKVM_DEBUG=0", "--use", "WEBKVM_THREADS=0", "--outFile", "constants.wasm", "--bindings", "raw"], {
    writeFile: (name, contents) => { files[name.replace(/^.*[\\/]/, "")] = contents; },
    stdout: { write() {} },
  });
  if (error) throw new Error(`asc could not compile the ABI constants:\n${stderr.toString()}`);
  const types = new Map([...files["constants.d.ts"].toString().matchAll(
    /export const (\w+): \{\s*\/\*\* @type `(\w+)` \*\//g)].map((m) => [m[1], m[2]]));
  const { instance: { exports } } = await WebAssembly.instantiate(files["constants.wasm"], { env: { abort() {} } });
  const out = new Map();
  for (const [name, g] of Object.entries(exports)) {
    if (!(g instanceof WebAssembly.Global)) continue;
    const type = types.get(name);
    let value = g.value;
    // Wasm globals are signed: restore the unsigned types' values.
    if (type === "u64") value = BigInt.asUintN(64, value);
    else if (type === "u32" || type === "usize") value >>>= 0;
    out.set(name, { value, type });
  }
  return out;
}

function literal(v) {
  return typeof v === "bigint" ? `${v}n` : Number.isInteger(v) && Math.abs(v) >= 4096 ? `0x${v.toString(16)}` : `${v}`;
}

// ---- CoreExports from asc's bindings ----

/** The raw wasm value an AssemblyScript type crosses the boundary as. */
function rawType(t, where, isReturn) {
  if (t === "void") return "void";
  if (t === "bool") return isReturn ? "0 | 1" : "boolean";
  if (t === "i64" || t === "u64") return "bigint";
  if (/^(i8|u8|i16|u16|i32|u32|isize|usize|f32|f64)$/.test(t)) return "number";
  throw new Error(`${where}: type ${t} cannot cross the core's ABI (numbers only)`);
}

/** Each `export function` / `export const` of the bindings' declaration, with its AssemblyScript types. */
function coreExports(dts) {
  const out = [];
  const re = /\/\*\*([\s\S]*?)\*\/\s*export (function|const) (\w+)([^;]*);/g;
  for (const m of dts.matchAll(re)) {
    const [, doc, kind, name, rest] = m;
    if (kind === "const") {
      if (name === "memory") out.push({ name, decl: "WebAssembly.Memory", arity: "memory" });
      else {
        const t = /@type `(\w+)`/.exec(rest)?.[1];
        out.push({ name, decl: "WebAssembly.Global", arity: "global", doc: `a global of type ${t}` });
      }
      continue;
    }
    const params = [...doc.matchAll(/@param (\w+) `(\w+)`/g)].map((p) => [p[1], p[2]]);
    const declared = /^\(([^)]*)\)/.exec(rest)[1].split(",").map((s) => s.trim()).filter(Boolean);
    if (declared.length !== params.length || declared.some((d) => d.includes("?"))) {
      throw new Error(`${name}: the bindings declare (${declared.join(", ")}) but document ${params.length} typed parameters`);
    }
    const ret = /@returns `(\w+)`/.exec(doc)?.[1] ?? "void";
    const sig = `(${params.map(([p, t]) => `${p}: ${rawType(t, name, false)}`).join(", ")}) => ${rawType(ret, name, true)}`;
    const asSig = `${name}(${params.map(([p, t]) => `${p}: ${t}`).join(", ")}): ${ret}`;
    const source = doc.trim().split("\n")[0].replace(/^\*\s*/, "").trim();
    out.push({ name, decl: sig, arity: params.length, doc: `\`${asSig}\` (${source})` });
  }
  return out;
}

/**
 * The exports only the debug and bench builds have: what assembly/harness.ts adds
 * to index.ts (its own functions, its re-exports, and every export of a module it
 * re-exports whole). The release build compiles index.ts alone.
 */
function testSurface() {
  const src = readFileSync(join(ROOT, "assembly/harness.ts"), "utf8");
  const names = [...src.matchAll(/^export function (\w+)/gm)].map((m) => m[1]);
  for (const m of src.matchAll(/^export \{([^}]*)\} from/gm)) {
    names.push(...m[1].split(",").map((s) => s.trim().split(/\s+as\s+/).pop()).filter(Boolean));
  }
  for (const m of src.matchAll(/^export \* from "\.\/(.+)";/gm)) {
    if (m[1] === "index") continue;
    const mod = readFileSync(join(ROOT, "assembly", m[1] + ".ts"), "utf8");
    names.push(...[...mod.matchAll(/^export (?:function|const|let) (\w+)/gm)].map((x) => x[1]));
  }
  return names;
}

// ---- main ----

const groups = GROUPS.map(([object, module, match, doc]) => ({
  object, module, doc, match, keepNames: !match.source.endsWith("_"),
  names: constNames(module).filter((n) => match.test(n)),
}));
for (const g of groups) if (g.names.length === 0) throw new Error(`${g.object}: no constant of assembly/${g.module}.ts matches ${g.match}`);
const values = await constantValues(groups);

const dtsPath = join(ROOT, "build/debug.d.ts");
let dts;
try {
  dts = readFileSync(dtsPath, "utf8");
} catch {
  throw new Error(`${relative(ROOT, dtsPath)} is missing: run \`npm run build:wasm\` first (asc writes it with the debug core)`);
}
const exportsList = coreExports(dts);
const surface = testSurface();
for (const n of surface) if (!exportsList.some((e) => e.name === n)) throw new Error(`${n}: assembly/harness.ts exports it but the debug core does not`);

const lines = [
  "// Generated by scripts/gen-abi.mjs from assembly/ (`npm run build:ts` rewrites it): do not edit, not committed.",
  "// Constants hold the values the AssemblyScript compiler computed; CoreExports is asc's bindings of the core.",
  "",
];
for (const g of groups) {
  lines.push(`/** assembly/${g.module}.ts: ${g.doc} */`, `export const ${g.object} = {`);
  for (const n of g.names) {
    const v = values.get(n);
    if (!v) throw new Error(`${n}: asc did not export it`);
    const key = g.keepNames ? n : n.slice(g.match.exec(n)[0].length);
    lines.push(`  ${key}: ${literal(v.value)},`);
  }
  lines.push("} as const;", "");
}
{
  // The threads build imports its memory: the host creates it with the limits the core was compiled for.
  const asconfig = JSON.parse(readFileSync(join(ROOT, "asconfig.json"), "utf8"));
  const t = { ...asconfig.options, ...asconfig.targets.threads };
  if (!t.importMemory || !t.sharedMemory) throw new Error("asconfig.json: the threads target must import a shared memory");
  lines.push("/** asconfig.json's `threads` target: the pages of the shared memory the host creates for it. */",
    `export const THREADS_MEMORY = { initial: ${t.initialMemory}, maximum: ${t.maximumMemory} } as const;`, "");
}
lines.push(
  "/**",
  " * Every export of the debug and bench cores (assembly/harness.ts: index.ts and the test surface)",
  " * as the raw wasm export (the release core lacks CORE_TEST_SURFACE): i64/u64 are",
  " * signed bigints, u32/usize signed numbers (`>>> 0` them), a bool returns 0 or 1.",
  " */",
  "export interface CoreExports {",
);
for (const e of exportsList) {
  if (e.doc) lines.push(`  /** ${e.doc} */`);
  lines.push(`  ${e.name}: ${e.decl};`);
}
lines.push("}", "");
lines.push(
  "/** Each export's parameter count (or kind): test/abi.test.ts holds the instance to it. */",
  "export const CORE_EXPORTS: Readonly<Record<keyof CoreExports, number | \"global\" | \"memory\">> = {",
  ...exportsList.map((e) => `  ${e.name}: ${typeof e.arity === "number" ? e.arity : `"${e.arity}"`},`),
  "};",
  "",
  "/** The exports of the test and bench surface (assembly/harness.ts), absent from the release core. */",
  "export const CORE_TEST_SURFACE: readonly (keyof CoreExports)[] = [",
  ...surface.map((n) => `  "${n}",`),
  "];",
  "",
);
writeFileSync(OUT, lines.join("\n"));
console.log(`${relative(ROOT, OUT)}: ${groups.reduce((n, g) => n + g.names.length, 0)} constants in ${groups.length} groups, ${exportsList.length} core exports`);
