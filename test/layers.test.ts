// ARCHITECTURE.md is the map of the code, and this test keeps it true: its
// `layers` blocks give every file of assembly/ and src/ a layer, and an import
// may only go to the importer's own layer or a lower one, with no import circle
// inside a layer (except the pairs a block lists as `pair: a b`).
import { describe, it, expect } from "vitest";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, dirname, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

interface LayerMap { layers: { name: string; patterns: string[] }[]; pairs: [string, string][] }

/** The ```layers ROOT blocks of ARCHITECTURE.md: one line per layer, bottom first: `name: pattern pattern …`. */
function layerMaps(text: string): Map<string, LayerMap> {
  const maps = new Map<string, LayerMap>();
  for (const m of text.matchAll(/^```layers (\S+)\n([\s\S]*?)^```/gm)) {
    const map: LayerMap = { layers: [], pairs: [] };
    for (const raw of m[2].split("\n")) {
      const line = raw.replace(/#.*/, "").trim();
      if (!line) continue;
      const [name, rest] = line.split(/:\s*/, 2);
      const words = (rest ?? "").split(/\s+/).filter(Boolean);
      if (name === "pair") map.pairs.push([words[0], words[1]]);
      else map.layers.push({ name, patterns: words });
    }
    maps.set(m[1], map);
  }
  return maps;
}

function tsFiles(dir: string, base = dir): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...tsFiles(p, base));
    else if (e.endsWith(".ts") && !e.endsWith(".d.ts")) out.push(relative(base, p));
  }
  return out.sort();
}

/** Relative imports (and re-exports) of each file, as paths relative to the root folder. */
function importsOf(root: string, file: string): string[] {
  const src = readFileSync(join(root, file), "utf8");
  const out: string[] = [];
  for (const m of src.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s+["'](\.[^"']+)["']/gm)) {
    let target = normalize(join(dirname(file), m[1])).replace(/\.js$/, "");
    if (!target.endsWith(".ts")) target += ".ts";
    out.push(target);
  }
  return out;
}

/** The layer index of a file: the longest pattern that names it (a file, or a folder ending in /). */
function layerOf(map: LayerMap, file: string): number {
  let best = -1, bestLen = -1;
  map.layers.forEach((l, i) => {
    for (const p of l.patterns) {
      const hit = p.endsWith("/") ? file.startsWith(p) : file === p;
      if (hit && p.length > bestLen) { best = i; bestLen = p.length; }
    }
  });
  return best;
}

/** Strongly connected components with more than one file (Tarjan). */
function cycles(graph: Map<string, string[]>): string[][] {
  let n = 0;
  const index = new Map<string, number>(), low = new Map<string, number>(), stack: string[] = [], on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    index.set(v, n); low.set(v, n); n++; stack.push(v); on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) { visit(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)); }
      else if (on.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const c: string[] = [];
      let w: string;
      do { w = stack.pop()!; on.delete(w); c.push(w); } while (w !== v);
      if (c.length > 1) out.push(c.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return out;
}

const maps = layerMaps(readFileSync(join(ROOT, "ARCHITECTURE.md"), "utf8"));

for (const root of ["assembly", "src"]) {
  describe(`${root}/ imports follow ARCHITECTURE.md's layers`, () => {
    const map = maps.get(root)!;
    const dir = join(ROOT, root);
    const files = tsFiles(dir).filter((f) => !f.endsWith(".gen.ts") || f === "abi.gen.ts");
    const graph = new Map(files.map((f) => [f, importsOf(dir, f).filter((t) => files.includes(t))]));

    it("ARCHITECTURE.md has a layers block for it", () => expect(map).toBeDefined());

    it("every file belongs to a layer", () => {
      expect(files.filter((f) => layerOf(map, f) < 0)).toEqual([]);
    });

    it("no import goes up a layer", () => {
      const up: string[] = [];
      for (const [f, deps] of graph) {
        for (const d of deps) {
          if (layerOf(map, d) > layerOf(map, f))
            up.push(`${f} (${map.layers[layerOf(map, f)].name}) -> ${d} (${map.layers[layerOf(map, d)].name})`);
        }
      }
      expect(up).toEqual([]);
    });

    it("no import circle, except the pairs ARCHITECTURE.md lists", () => {
      const allowed = new Set(map.pairs.map((p) => [...p].sort().join(" ")));
      expect(cycles(graph).filter((c) => !(c.length === 2 && allowed.has(c.join(" "))))).toEqual([]);
    });
  });
}

describe("the layering check itself", () => {
  it("finds an upward import and a circle", () => {
    const map = layerMaps("```layers x\nlow: a.ts\nhigh: b/\n```\n").get("x")!;
    expect(layerOf(map, "a.ts")).toBe(0);
    expect(layerOf(map, "b/c.ts")).toBe(1);
    expect(layerOf(map, "c.ts")).toBe(-1);
    expect(cycles(new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a"]], ["d", ["a"]]]))).toEqual([["a", "b", "c"]]);
  });
});
