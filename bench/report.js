// The bench report: every figure with its baseline, ratio and target as one
// table (printed at the end of a run), and bench/results/latest.html — a
// self-contained page whose charts are inline SVG drawn here (no CDN, no
// network, no script in the page).
//
//   node bench/report.js [results.json] [--png]
// re-renders the HTML from a results file (default bench/results/latest.json);
// --png also screenshots it with headless chromium next to the HTML (not committed).
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { fileURLToPath, pathToFileURL } from "node:url";

// ---------------------------------------------------------------- figures

/**
 * One row per figure: { group, name, value, unit, baseline, baselineValue, ratio,
 * target: { on: "ratio" | "value", op: "<=" | ">=", limit } | undefined, met }.
 */
export function figures(report) {
  const out = [];
  const add = (f) => {
    if (f.error !== undefined) {
      // Not a figure (bench/churn-vcpus.js: the vCPUs did not run during any timed block): shown, and not met.
      if (f.target) f.met = false;
      out.push(f);
      return;
    }
    if (f.value === undefined || Number.isNaN(f.value)) return;
    if (f.ratio === undefined && f.baselineValue !== undefined) f.ratio = f.value / f.baselineValue;
    if (f.target) {
      const x = f.target.on === "ratio" ? f.ratio : f.value;
      f.met = x === undefined ? undefined : f.target.op === "<=" ? x <= f.target.limit : x >= f.target.limit;
      if (f.met === false) f.over = f.target.op === "<=" ? x / f.target.limit : f.target.limit / x;
    }
    out.push(f);
  };
  const suite = (name) => report.suites.find((s) => s.name === name);

  const lookup = suite("gfn-to-hva");
  for (const r of lookup?.rows ?? []) {
    const g = `gfn→hva, ${r.slots} slots`;
    add({ group: "lookup", name: `${g}: wasm random`, value: r.wasmRandomNs, unit: "ns", baseline: "native C random",
      baselineValue: r.nativeRandomNs, target: r.targetWasmVsNativeRandom ? { on: "ratio", op: "<=", limit: r.targetWasmVsNativeRandom } : undefined });
    add({ group: "lookup", name: `${g}: wasm random vs native C of the same index`, value: r.wasmRandomNs, unit: "ns",
      baseline: "webkvm's gfn index in C (gfnindex.c)", baselineValue: r.nativeIndexRandomNs,
      target: r.targetWasmVsNativeIndex ? { on: "ratio", op: "<=", limit: r.targetWasmVsNativeIndex } : undefined });
    add({ group: "lookup", name: `${g}: wasm sequential`, value: r.wasmSequentialNs, unit: "ns", baseline: "native C sequential",
      baselineValue: r.nativeSequentialNs });
    add({ group: "lookup", name: `${g}: wasm last-used hit`, value: r.wasmHitNs, unit: "ns", baseline: "native C sequential",
      baselineValue: r.nativeSequentialNs, target: r.targetHitNs ? { on: "value", op: "<=", limit: r.targetHitNs } : undefined });
    add({ group: "lookup", name: `${g}: TS binary search`, value: r.tsBinaryNs, unit: "ns", baseline: "native C random",
      baselineValue: r.nativeRandomNs });
    add({ group: "lookup", name: `${g}: wasm random vs TS`, value: r.wasmRandomNs, unit: "ns", baseline: "TS binary search",
      baselineValue: r.tsBinaryNs });
  }

  const churn = suite("memslot-churn");
  for (const r of churn?.rows ?? []) {
    for (const kind of ["create", "flags", "move", "delete"]) {
      const k = r[kind];
      add({ group: "churn", name: `churn ${r.slots} slots: ${kind === "flags" ? "flags-only" : kind}`, value: k.webkvmNs, unit: "ns",
        baseline: "kernel", baselineValue: k.kernelNs, target: k.target === undefined ? undefined : { on: "ratio", op: "<=", limit: k.target } });
    }
    add({ group: "churn", name: `churn ${r.slots} slots: populate 0..${r.slots - 1}`, value: r.populateNs, unit: "ns",
      baseline: "kernel", baselineValue: r.kernelPopulateNs });
  }

  const churnVcpus = suite("memslot-churn-vcpus");
  for (const r of churnVcpus?.rows ?? []) {
    for (const kind of ["create", "flags", "move", "delete"]) {
      const k = r[kind];
      add({ group: "churn", name: `churn ${r.slots} slots, ${r.vcpus} running vCPUs: ${kind === "flags" ? "flags-only" : kind}`,
        value: k.webkvmNs, unit: "ns", baseline: `kernel, ${r.vcpus} running vCPU threads`, baselineValue: k.kernelNs,
        target: k.target === undefined ? undefined : { on: "ratio", op: "<=", limit: k.target },
        error: k.errors?.length ? k.errors.join("; ") : undefined });
    }
  }

  const d = suite("dirty-log");
  if (d) {
    add({ group: "dirty", name: "GET_DIRTY_LOG clean 16 GiB", value: d.getCleanNs, unit: "ns", baseline: "kernel",
      baselineValue: d.kernelGetCleanNs, target: { on: "ratio", op: "<=", limit: d.targetGetCleanVsKernel ?? 0.1 } });
    add({ group: "dirty", name: "GET_DIRTY_LOG clean 16 GiB (absolute)", value: d.getCleanNs, unit: "ns",
      target: { on: "value", op: "<=", limit: d.targetGetCleanNs } });
    add({ group: "dirty", name: "GET_DIRTY_LOG fully dirty 16 GiB", value: d.getDirtyNs, unit: "ns", baseline: "kernel",
      baselineValue: d.kernelGetDirtyNs, target: { on: "ratio", op: "<=", limit: d.targetGetDirtyVsKernel ?? 1 } });
    add({ group: "dirty", name: "CLEAR_DIRTY_LOG fully dirty 16 GiB", value: d.clearFullyDirtyNs, unit: "ns", baseline: "kernel",
      baselineValue: d.kernelClearFullyDirtyNs });
    add({ group: "dirty", name: `dirty ring harvest (${d.ringEntries} entries)`, value: d.ringHarvestNs / d.ringEntries, unit: "ns/entry" });
    add({ group: "dirty", name: `dirty ring reset (${d.ringEntries} entries)`, value: d.ringResetNs / d.ringEntries, unit: "ns/entry" });
  }

  const c = suite("conformance");
  if (c) {
    add({ group: "conformance", name: `runner: slowest extreme line (${c.slowestLine})`, value: c.slowestLineNs, unit: "ns",
      target: { on: "value", op: "<=", limit: c.targetLineNs } });
    add({ group: "conformance", name: `runner: extremes.txt, ${c.scriptLines} lines`, value: c.scriptNs, unit: "ns" });
  }

  const g = suite("guest");
  if (g) {
    const m = g.mips;
    add({ group: "guest", name: "guest MIPS, translated (every access through the sptes)", value: m.mips, unit: "MIPS",
      baseline: m.qemu ? `QEMU TCG ${m.qemu.version}, same run` : `QEMU TCG: ${m.qemuSkipped ? `skipped (${m.qemuSkipped})` : "not measured"}`,
      baselineValue: m.qemu?.mips, target: m.qemu ? { on: "ratio", op: ">=", limit: m.targetVsQemu ?? 3 } : undefined });
    add({ group: "guest", name: "guest MIPS, translated, against TinyEMU-wasm", value: m.mips, unit: "MIPS",
      baseline: "TinyEMU-wasm (recorded)", baselineValue: m.targetMips });
    if (m.qemu) {
      add({ group: "guest", name: "QEMU TCG on the same workload, same run (start-up subtracted)", value: m.qemu.mips, unit: "MIPS",
        baseline: "QEMU 7.2 TCG (recorded)", baselineValue: m.qemu.recordedMips });
    }
    add({ group: "guest", name: "TinyEMU-wasm, fixed reference (recorded once)", value: m.targetMips, unit: "MIPS" });
    if (g.threads !== undefined) {
      add({ group: "guest", name: "threads core: 2 vCPUs on 2 Workers, MIPS together", value: g.threads.twoMips, unit: "MIPS",
        baseline: "1 vCPU on a Worker, same run", baselineValue: g.threads.oneMips,
        target: { on: "ratio", op: ">=", limit: g.threads.targetRatio } });
    }
    if (g.mips.interpreterMips !== undefined) {
      add({ group: "guest", name: "guest MIPS, interpreter only (translation off)", value: m.interpreterMips, unit: "MIPS",
        baseline: "TinyEMU-wasm (recorded)", baselineValue: m.targetMips,
        target: m.targetInterpreterVsTinyemu ? { on: "ratio", op: ">=", limit: m.targetInterpreterVsTinyemu } : undefined });
    }
    add({ group: "guest", name: "guest store, spte hit", value: g.store.spteHitNs, unit: "ns", baseline: "plain wasm store",
      baselineValue: g.store.plainNs });
    // Guests' hot stores run in translated code: that figure carries the target; the memory layer's
    // (what the interpreter calls) is shown beside it.
    const translated = g.store.translatedStoreNs !== undefined;
    add({ group: "guest", name: "guest store, spte-hit extra cost (memory layer)", value: g.store.extraNs, unit: "ns",
      target: translated ? undefined : { on: "value", op: "<=", limit: g.store.targetExtraNs } });
    if (translated) {
      add({ group: "guest", name: "translated guest store (sd, spte hit)", value: g.store.translatedStoreNs, unit: "ns",
        baseline: "plain wasm store", baselineValue: g.store.plainNs });
      add({ group: "guest", name: "translated guest store, extra cost", value: g.store.translatedStoreNs - g.store.plainNs,
        unit: "ns", target: { on: "value", op: "<=", limit: g.store.targetExtraNs } });
    }
  }
  const sn = suite("snapshot");
  if (sn) {
    const of = `${sn.touchedMiB} MiB touched`;
    add({ group: "snapshot", name: `full snapshot size per GiB touched (${of})`, value: sn.bytesPerGiB / 2 ** 30, unit: "GiB" });
    add({ group: "snapshot", name: `full snapshot write per GiB touched (${of})`, value: sn.writeMsPerGiB, unit: "ms" });
    add({ group: "snapshot", name: `restore into a fresh Kvm per GiB touched (${of})`, value: sn.restoreMsPerGiB, unit: "ms" });
    add({ group: "snapshot", name: `incremental snapshot write per GiB dirtied (${sn.dirtiedMiB.toFixed(1)} MiB)`, value: sn.incrementalMsPerGiB, unit: "ms" });
  }

  const ml = suite("mips-linux");
  if (ml) {
    add({ group: "linux", name: `reference workload as a Linux user process (${ml.iters} iterations)`, value: ml.linuxMips, unit: "MIPS",
      baseline: "the same loop bare-metal, translation tier on", baselineValue: ml.bareMips });
  }
  const mig = suite("live-migration");
  for (const r of mig?.rows ?? []) {
    const g = `migration ${r.mode}, ${r.memMiB} MiB guest dirtying ${r.rateMiB} MiB/s`;
    if (r.error !== undefined) {
      add({ group: "migration", name: g, error: r.error });
      continue;
    }
    add({ group: "migration", name: `${g}: total`, value: r.totalMs, unit: "ms" });
    if (r.mode !== "postcopy" && r.reachedMiB !== undefined) add({ group: "migration", name: `${g}: rate reached`, value: r.reachedMiB, unit: "MiB/s" });
    add({ group: "migration", name: `${g}: downtime${r.converged || r.mode === "postcopy" ? "" : " (did not converge)"}`, value: r.downtimeMs, unit: "ms",
      target: r.rateMiB === 64 ? { on: "value", op: "<=", limit: mig.targetDowntimeMs } : undefined });
    add({ group: "migration", name: `${g}: data pages sent ÷ pages holding data`, value: r.sentRatio, unit: "x",
      target: { on: "value", op: "<=", limit: mig.targetSentRatio } });
  }
  const l = suite("linux-boot");
  if (l) {
    for (const [k, what] of [["firstLineMs", "to the init's first line"], ["powerOffMs", "to power-off"]]) {
      add({ group: "linux", name: `Linux boot ${what} (best of ${l.runs})`, value: l.webkvm[k], unit: "ms",
        baseline: l.qemu ? "QEMU TCG, same kernel + initramfs" : `QEMU TCG: skipped (${l.qemuSkipped})`,
        baselineValue: l.qemu?.[k], target: l.qemu ? { on: "ratio", op: "<=", limit: l.targetVsQemu } : undefined });
    }
    // What the memory subsystem did in one boot: counts, no targets.
    const c = l.counts;
    for (const [k, name] of [["instructions", "guest instructions"], ["exits", "exits to the VMM"],
      ["pageFaults", "page faults (shadow MMU)"], ["sptesLive", "sptes present at power-off"], ["sptesZapped", "sptes zapped"],
      ["flushes", "TLB flushes"], ["remoteFlushes", "remote TLB flushes"],
      ["memslotLookups", "memslot lookups"], ["memslotCacheHits", "memslot lookups the last-used slot answered"], ["dirtyPages", "dirty pages (one GET_DIRTY_LOG)"]]) {
      add({ group: "linux", name: `Linux boot: ${name}`, value: c[k], unit: "" });
    }
  }
  return out;
}

// ---------------------------------------------------------------- text table

export function fmtNum(v, unit = "") {
  if (v === undefined || v === null || Number.isNaN(v)) return "-";
  if (unit === "ns") {
    if (v >= 1e6) return `${(v / 1e6).toPrecision(3)} ms`;
    if (v >= 1e3) return `${(v / 1e3).toPrecision(3)} µs`;
    return `${v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0)} ns`;
  }
  if (unit === "" && Number.isInteger(v)) return String(v); // a count
  const s = v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
  return unit ? `${s} ${unit}` : s;
}

function fmtRatio(r) {
  if (r === undefined || Number.isNaN(r)) return "-";
  return `${r < 0.01 ? r.toPrecision(2) : r < 10 ? r.toFixed(3) : r.toFixed(1)}x`;
}

function fmtTarget(t, unit) {
  if (!t) return "-";
  const op = t.op === "<=" ? "≤" : "≥";
  return t.on === "ratio" ? `${op} ${t.limit}x` : `${op} ${fmtNum(t.limit, unit)}`;
}

export function status(f) {
  if (f.error !== undefined) return `ERROR: ${f.error}`;
  if (!f.target) return "";
  if (f.met === undefined) return "n/a (no baseline)";
  if (f.met) return "met";
  return `MISSED (${f.over.toFixed(2)}x ${f.target.op === "<=" ? "over" : "under"})`;
}

export function printTable(figs) {
  const rows = figs.map((f) => [f.name, fmtNum(f.value, f.unit),
    f.baseline ? `${f.baseline} ${f.baselineValue === undefined ? "(skipped)" : fmtNum(f.baselineValue, f.unit)}` : "-",
    fmtRatio(f.ratio), fmtTarget(f.target, f.unit), status(f)]);
  const head = ["figure", "value", "baseline", "ratio", "target", "status"];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => (i === 0 || i === 2 || i === 5 ? c.padEnd(w[i]) : c.padStart(w[i]))).join("  ").trimEnd();
  console.log("\n" + line(head));
  console.log(w.map((n) => "-".repeat(n)).join("  "));
  for (const r of rows) console.log(line(r));
  const t = figs.filter((f) => f.target);
  console.log(`\ntargets: ${t.filter((f) => f.met).length} met, ${t.filter((f) => f.met === false).length} missed, ` +
    `${t.filter((f) => f.met === undefined).length} without a baseline`);
}

// ---------------------------------------------------------------- SVG

const esc = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const COLORS = {
  wasm: "#2563eb", wasmSeq: "#60a5fa", wasmHit: "#93c5fd", ts: "#f59e0b", native: "#16a34a", nativeSeq: "#86efac",
  kernel: "#6b7280", webkvm: "#2563eb", target: "#dc2626", ref: "#9ca3af",
};

function logTicks(lo, hi) {
  const ticks = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= lo * 0.999 && v <= hi * 1.001) ticks.push({ v, major: m === 1 });
    }
  }
  return ticks;
}

function logScale(lo, hi, a, b) {
  const l0 = Math.log10(lo), l1 = Math.log10(hi);
  return (v) => a + ((Math.log10(v) - l0) / (l1 - l0)) * (b - a);
}

function niceBounds(values, padLo = 0.7, padHi = 1.6) {
  const v = values.filter((x) => x > 0 && Number.isFinite(x));
  let lo = Math.min(...v) * padLo, hi = Math.max(...v) * padHi;
  lo = 10 ** Math.floor(Math.log10(lo));
  hi = 10 ** Math.ceil(Math.log10(hi));
  return [lo, hi];
}

function tickLabel(v, unit) {
  if (unit === "ns") {
    if (v >= 1e6) return `${v / 1e6} ms`;
    if (v >= 1e3) return `${v / 1e3} µs`;
    return `${v} ns`;
  }
  return v >= 1000 ? `${v / 1000}k` : String(v);
}

function legend(items, x, y) {
  return items.map((it, i) => {
    const yy = y + i * 18;
    const mark = it.dash
      ? `<line x1="${x}" y1="${yy}" x2="${x + 22}" y2="${yy}" stroke="${it.color}" stroke-width="2" stroke-dasharray="5 3"/>`
      : it.line
        ? `<line x1="${x}" y1="${yy}" x2="${x + 22}" y2="${yy}" stroke="${it.color}" stroke-width="2.5"/><circle cx="${x + 11}" cy="${yy}" r="3.5" fill="${it.color}"/>`
        : `<rect x="${x + 4}" y="${yy - 6}" width="14" height="12" fill="${it.color}" rx="2"/>`;
    return `${mark}<text x="${x + 30}" y="${yy + 4}" class="lg">${esc(it.label)}</text>`;
  }).join("");
}

/** ns per lookup against slot count, both axes log. */
function lookupChart(suite) {
  const W = 860, H = 430, L = 70, R = 230, T = 20, B = 50;
  const rows = suite.rows;
  const series = [
    { key: "wasmRandomNs", label: "wasm random", color: COLORS.wasm },
    { key: "wasmSequentialNs", label: "wasm sequential", color: COLORS.wasmSeq },
    { key: "wasmHitNs", label: "wasm last-used hit (vCPU)", color: COLORS.wasmHit },
    { key: "tsBinaryNs", label: "TS binary search random", color: COLORS.ts },
    { key: "nativeRandomNs", label: "native C random", color: COLORS.native },
    { key: "nativeSequentialNs", label: "native C sequential", color: COLORS.nativeSeq, dash: true },
  ].filter((s) => rows.some((r) => r[s.key] !== undefined));
  const targetRow = rows.find((r) => r.targetWasmVsNativeRandom && r.nativeRandomNs);
  const all = rows.flatMap((r) => series.map((s) => r[s.key]));
  if (targetRow) all.push(targetRow.nativeRandomNs * targetRow.targetWasmVsNativeRandom);
  const [ylo, yhi] = niceBounds(all);
  const xlo = 1, xhi = Math.max(...rows.map((r) => r.slots)) * 1.25;
  const x = logScale(xlo, xhi, L, W - R), y = logScale(ylo, yhi, H - B, T);
  let s = "";
  for (const t of logTicks(ylo, yhi)) {
    s += `<line x1="${L}" x2="${W - R}" y1="${y(t.v)}" y2="${y(t.v)}" class="${t.major ? "grid" : "grid minor"}"/>`;
    s += `<text x="${L - 8}" y="${y(t.v) + 4}" class="ax" text-anchor="end">${tickLabel(t.v, "ns")}</text>`;
  }
  for (const r of rows) {
    s += `<line x1="${x(r.slots)}" x2="${x(r.slots)}" y1="${T}" y2="${H - B}" class="grid minor"/>`;
    s += `<text x="${x(r.slots)}" y="${H - B + 18}" class="ax" text-anchor="middle">${r.slots.toLocaleString("en-US")}</text>`;
  }
  s += `<text x="${(L + W - R) / 2}" y="${H - 8}" class="axt" text-anchor="middle">memslots (log scale)</text>`;
  s += `<text transform="translate(16 ${(T + H - B) / 2}) rotate(-90)" class="axt" text-anchor="middle">ns per lookup (log)</text>`;
  for (const se of series) {
    const pts = rows.filter((r) => r[se.key] !== undefined).map((r) => [x(r.slots), y(r[se.key])]);
    s += `<polyline points="${pts.map((p) => p.join(",")).join(" ")}" fill="none" stroke="${se.color}" stroke-width="2.5"${se.dash ? ' stroke-dasharray="6 4"' : ""}/>`;
    for (const [px, py] of pts) s += `<circle cx="${px}" cy="${py}" r="3.5" fill="${se.color}"/>`;
  }
  const items = series.map((se) => ({ label: se.label, color: se.color, line: !se.dash, dash: se.dash }));
  if (targetRow) {
    const tv = targetRow.nativeRandomNs * targetRow.targetWasmVsNativeRandom;
    const tx = x(targetRow.slots), ty = y(tv);
    s += `<line x1="${tx - 14}" x2="${tx + 14}" y1="${ty}" y2="${ty}" stroke="${COLORS.target}" stroke-width="3"/>`;
    s += `<text x="${tx - 18}" y="${ty + 4}" class="ann" text-anchor="end" fill="${COLORS.target}">target ${fmtNum(tv, "ns")}</text>`;
    items.push({ label: `target ≤ ${targetRow.targetWasmVsNativeRandom}× native random`, color: COLORS.target, dash: true });
  }
  s += legend(items, W - R + 20, T + 14);
  return svg(W, H, s);
}

/**
 * Grouped bars on a log axis: groups of { label, bars: [{ label, value, color }], note }.
 * note is drawn above the group (the ratio).
 */
function barChart(groups, { unit = "ns", title = "", legendItems = [], W = 860, H = 360, yLabel = "", B = 56, R = 200 } = {}) {
  const L = 70, T = 24;
  const vals = groups.flatMap((g) => g.bars.map((b) => b.value)).concat(groups.flatMap((g) => g.marks ?? []).map((m) => m.value));
  const [lo, hi] = niceBounds(vals, 0.5, 3);
  const y = logScale(lo, hi, H - B, T);
  const gw = (W - L - R) / groups.length;
  let s = "";
  const ticks = logTicks(lo, hi);
  for (const t of ticks) {
    s += `<line x1="${L}" x2="${W - R}" y1="${y(t.v)}" y2="${y(t.v)}" class="${t.major ? "grid" : "grid minor"}"/>`;
    if (t.major || ticks.length < 12) s += `<text x="${L - 8}" y="${y(t.v) + 4}" class="ax" text-anchor="end">${tickLabel(t.v, unit)}</text>`;
  }
  groups.forEach((g, gi) => {
    const n = g.bars.length, bw = Math.min(56, (gw * 0.7) / Math.max(n, 1));
    const x0 = L + gi * gw + (gw - bw * n) / 2;
    g.bars.forEach((b, bi) => {
      if (b.value === undefined) {
        s += `<text x="${x0 + bi * bw + bw / 2}" y="${H - B - 6}" class="ann" text-anchor="middle">n/a</text>`;
        return;
      }
      const top = y(b.value);
      s += `<rect x="${x0 + bi * bw + 1}" y="${top}" width="${bw - 2}" height="${H - B - top}" fill="${b.color}" rx="2"><title>${esc(`${g.label} ${b.label}: ${fmtNum(b.value, unit)}`)}</title></rect>`;
      // a narrow bar next to one of about the same height: lift its label clear of the neighbour's
      const prev = g.bars[bi - 1]?.value;
      const lift = bi % 2 && bw < 50 && prev !== undefined && Math.abs(y(prev) - top) < 14 ? 14 : 0;
      s += `<text x="${x0 + bi * bw + bw / 2}" y="${top - 4 - lift}" class="val" text-anchor="middle">${esc(fmtNum(b.value, unit).replace(" ", "\u2009"))}</text>`;
    });
    for (const m of g.marks ?? []) {
      const my = y(m.value);
      s += `<line x1="${x0 - 6}" x2="${x0 + bw * n + 6}" y1="${my}" y2="${my}" stroke="${COLORS.target}" stroke-width="2.5" stroke-dasharray="5 3"/>`;
    }
    const lines = [].concat(g.label);
    lines.forEach((ln, li) => {
      s += `<text x="${L + gi * gw + gw / 2}" y="${H - B + 17 + li * 15}" class="ax" text-anchor="middle">${esc(ln)}</text>`;
    });
    [].concat(g.note ?? []).forEach((ln, li) => {
      s += `<text x="${L + gi * gw + gw / 2}" y="${H - B + 19 + (lines.length + li) * 15}" class="note ${g.ok === false ? "bad" : g.ok ? "good" : ""}" text-anchor="middle">${esc(ln)}</text>`;
    });
  });
  s += `<line x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}" stroke="#374151"/>`;
  if (yLabel) s += `<text transform="translate(16 ${(T + H - B) / 2}) rotate(-90)" class="axt" text-anchor="middle">${esc(yLabel)}</text>`;
  s += legend(legendItems, W - R + 20, T + 14);
  if (title) s += `<text x="${L}" y="14" class="axt">${esc(title)}</text>`;
  return svg(W, H, s);
}

function churnChart(suite, webkvm = "webkvm (release core)", kernel = "Linux KVM (/dev/kvm)") {
  const groups = [];
  for (const r of suite.rows) {
    for (const kind of ["create", "flags", "move", "delete"]) {
      const k = r[kind];
      groups.push({
        label: [kind === "flags" ? "flags-only" : kind, `${r.slots.toLocaleString("en-US")} slots`],
        bars: [{ label: "webkvm", value: k.webkvmNs, color: COLORS.webkvm }, { label: "kernel", value: k.kernelNs, color: COLORS.kernel }],
        marks: k.kernelNs ? [{ value: k.kernelNs * k.target }] : [],
        note: k.errors?.length ? "no figure" : k.ratio === undefined ? "no kernel" : `${fmtRatio(k.ratio)}`,
        ok: k.ratio === undefined ? undefined : k.ratio <= k.target,
      });
    }
  }
  return barChart(groups, {
    W: 960, H: 400, B: 76, R: 230, yLabel: "ns per KVM_SET_USER_MEMORY_REGION (log)",
    legendItems: [{ label: webkvm, color: COLORS.webkvm }, { label: kernel, color: COLORS.kernel },
      { label: `target: ≤ ${suite.target}× kernel`, color: COLORS.target, dash: true }],
  });
}

function dirtyChart(d) {
  const g = (label, w, k, target) => ({
    label, bars: [{ label: "webkvm", value: w, color: COLORS.webkvm }, { label: "kernel", value: k, color: COLORS.kernel }],
    marks: k && target ? [{ value: k * target }] : [],
    note: k ? [`${fmtRatio(w / k)} kernel`, target ? `target ≤ ${target}×` : "no target"] : "no kernel run",
    ok: k && target ? w / k <= target : undefined,
  });
  return barChart([
    g("GET clean", d.getCleanNs, d.kernelGetCleanNs, d.targetGetCleanVsKernel ?? 0.1),
    g("GET fully dirty", d.getDirtyNs, d.kernelGetDirtyNs, d.targetGetDirtyVsKernel ?? 1),
    g("CLEAR fully dirty", d.clearFullyDirtyNs, d.kernelClearFullyDirtyNs),
  ], {
    H: 390, B: 72, yLabel: "ns per ioctl, 16 GiB slot (log)",
    legendItems: [{ label: "webkvm (release core)", color: COLORS.webkvm }, { label: "Linux KVM (/dev/kvm)", color: COLORS.kernel },
      { label: "target", color: COLORS.target, dash: true }],
  });
}

/** Live migration: downtime and pages sent over the minimum, per dirty rate, a bar per mode. */
function migrationCharts(mig) {
  const modes = [["bitmap", "pre-copy, dirty bitmap", "#2563eb"], ["ring", "pre-copy, dirty ring", "#60a5fa"], ["postcopy", "post-copy", "#f59e0b"]];
  const rates = [...new Set(mig.rows.map((r) => r.rateMiB))];
  const row = (mode, rate) => mig.rows.find((r) => r.mode === mode && r.rateMiB === rate && r.error === undefined);
  const legendItems = [...modes.map(([, label, color]) => ({ label, color })), { label: "target", color: COLORS.target, dash: true }];
  const groups = (key, target, targetAt) => rates.map((rate) => ({
    label: [`${rate} MiB/s`, ...(modes.some(([m]) => row(m, rate) && !row(m, rate).converged && m !== "postcopy") ? ["(some did not converge)"] : [])],
    bars: modes.map(([m, label, color]) => ({ label, value: row(m, rate)?.[key], color })),
    marks: targetAt(rate) ? [{ value: target }] : [],
  }));
  return barChart(groups("downtimeMs", mig.targetDowntimeMs, (r) => r === 64), { unit: "ms", H: 330, legendItems,
    yLabel: "downtime, ms (log)" }) +
    barChart(groups("sentRatio", mig.targetSentRatio, () => true), { unit: "x", H: 330, legendItems,
      yLabel: "data pages sent ÷ pages holding data (log)" });
}

/** Horizontal MIPS bar with reference lines, and the spte-hit store cost. */
function guestChart(g) {
  const W = 860, H = 365, L = 200, R = 60, T = 8;
  const refs = [
    { label: "QEMU TCG", mips: 821, color: COLORS.ref },
    { label: "QEMU TCG, no block chaining", mips: 429, color: COLORS.ref },
    { label: "TinyEMU native", mips: 291, color: COLORS.ref },
    { label: "TinyEMU → wasm: the target", mips: g.mips.targetMips, color: COLORS.target, strong: true },
    ...(g.mips.interpreterMips ? [{ label: "webkvm, interpreter only", mips: Math.round(g.mips.interpreterMips), color: COLORS.ref }] : []),
  ];
  const max = Math.max(900, Math.ceil((g.mips.mips * 1.15) / 100) * 100);
  const x = (v) => L + (v / max) * (W - L - R);
  const barY = T + 4 * 15 + 10, axisY = barY + 58;
  let s = "";
  for (let v = 0; v <= max; v += 100) {
    s += `<line x1="${x(v)}" x2="${x(v)}" y1="${barY - 6}" y2="${axisY}" class="grid minor"/>`;
    s += `<text x="${x(v)}" y="${axisY + 16}" class="ax" text-anchor="middle">${v}</text>`;
  }
  s += `<line x1="${L}" x2="${W - R}" y1="${axisY}" y2="${axisY}" stroke="#374151"/>`;
  s += `<text x="${(L + W - R) / 2}" y="${axisY + 34}" class="axt" text-anchor="middle">guest MIPS (RV64 reference loop, every access through the shadow page tables)</text>`;
  refs.forEach((r, i) => {
    const ly = T + 11 + i * 15;
    s += `<line x1="${x(r.mips)}" x2="${x(r.mips)}" y1="${ly + 3}" y2="${axisY}" stroke="${r.color}" stroke-width="${r.strong ? 2.5 : 1.5}" stroke-dasharray="${r.strong ? "6 3" : "3 3"}"/>`;
    s += `<text x="${x(r.mips) + 5}" y="${ly + 4}" class="ann" fill="${r.strong ? r.color : "#6b7280"}">${esc(`${r.label} ${r.mips}`)}</text>`;
  });
  const ok = g.mips.mips >= g.mips.targetMips;
  s += `<text x="${L - 10}" y="${barY + 17}" class="lg" text-anchor="end">webkvm</text>`;
  s += `<rect x="${L}" y="${barY}" width="${x(g.mips.mips) - L}" height="24" fill="${COLORS.webkvm}" rx="2"/>`;
  s += `<text x="${L + 2}" y="${barY + 42}" class="val big ${ok ? "good" : "bad"}">` +
    `${esc(`${g.mips.mips.toFixed(0)} MIPS = ${fmtRatio(g.mips.mips / g.mips.targetMips)} the target (≥ ${g.mips.targetMips})`)}</text>`;
  // store cost: two bars + the +2 ns budget
  const y0 = axisY + 70, top = Math.max(g.store.spteHitNs, g.store.plainNs + g.store.targetExtraNs) * 1.2;
  const sx = (v) => L + (v / top) * (W - L - R);
  const bars = [
    { label: "plain wasm store", v: g.store.plainNs, color: COLORS.ref },
    { label: "guest store, spte hit", v: g.store.spteHitNs, color: COLORS.webkvm },
  ];
  bars.forEach((b, i) => {
    const yy = y0 + i * 34;
    s += `<text x="${L - 10}" y="${yy + 17}" class="lg" text-anchor="end">${esc(b.label)}</text>`;
    s += `<rect x="${L}" y="${yy}" width="${sx(b.v) - L}" height="24" fill="${b.color}" rx="2"/>`;
    s += `<text x="${sx(b.v) + 6}" y="${yy + 17}" class="val">${fmtNum(b.v, "ns")}</text>`;
  });
  const bx = sx(g.store.plainNs + g.store.targetExtraNs), okS = g.store.extraNs <= g.store.targetExtraNs;
  s += `<line x1="${bx}" x2="${bx}" y1="${y0 - 8}" y2="${y0 + 66}" stroke="${COLORS.target}" stroke-width="2.5" stroke-dasharray="6 3"/>`;
  s += `<text x="${bx - 4}" y="${y0 - 12}" class="ann" fill="${COLORS.target}" text-anchor="end">budget: plain store + ${g.store.targetExtraNs} ns</text>`;
  s += `<text x="${L}" y="${y0 + 90}" class="note ${okS ? "good" : "bad"}">+${g.store.extraNs.toFixed(2)} ns per store through the shadow page table (target ≤ ${g.store.targetExtraNs} ns)</text>`;
  return svg(W, H, s);
}

function svg(w, h, body) {
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img">${body}</svg>`;
}

// ---------------------------------------------------------------- page

export function renderHtml(report, figs) {
  const suite = (name) => report.suites.find((s) => s.name === name);
  const t = figs.filter((f) => f.target);
  const met = t.filter((f) => f.met).length, missed = t.filter((f) => f.met === false).length;
  const sections = [];
  const churnVcpus = suite("memslot-churn-vcpus");
  const lookup = suite("gfn-to-hva"), churn = suite("memslot-churn"), dirty = suite("dirty-log"), guest = suite("guest");
  if (lookup) {
    sections.push(["gfn → hva lookup", "ns per lookup against the number of memslots: the core's search (batched, 4,096 lookups per call) " +
      "against a TypeScript and a native C (cc -O2) binary search over the same table and gfns." +
      (lookup.native?.startsWith("skipped") ? ` Native baseline ${lookup.native}.` : ""), lookupChart(lookup)]);
  }
  if (churn) {
    sections.push(["memslot churn", "KVM_SET_USER_MEMORY_REGION with 1,000 and 32,000 slots present, webkvm against the real kernel " +
      "measured in the same run; below each pair, webkvm's time as a multiple of the kernel's.", churnChart(churn)]);
  }
  if (churnVcpus) {
    sections.push([`memslot churn with ${churnVcpus.vcpus} running vCPUs`, "The same churn while two vCPUs run a guest that " +
      "touches memory in a slot of its own: webkvm's threads-release core with each vCPU on a Worker, against the kernel with two " +
      "vCPU threads, same run.", churnChart(churnVcpus, "webkvm (threads-release, vCPUs on Workers)", "Linux KVM, 2 vCPU threads")]);
  }
  if (dirty) {
    sections.push(["dirty log", "KVM_GET_DIRTY_LOG of a clean and a fully dirty (manual protect, INITIALLY_SET) 16 GiB slot, and " +
      "KVM_CLEAR_DIRTY_LOG of the whole slot." + (dirty.kernelBaseline?.startsWith("skipped") ? ` Kernel baseline ${dirty.kernelBaseline}.` : ""),
    dirtyChart(dirty)]);
  }
  const mig = suite("live-migration");
  if (mig?.rows.some((r) => r.error === undefined)) {
    const mem = mig.rows.find((r) => r.memMiB)?.memMiB;
    sections.push(["live migration", `A ${mem} MiB guest (guests/dirtier, its region filled with data) dirtying memory at a wall-clock rate, ` +
      "migrated to a Worker with its own Kvm over a MessagePort: pre-copy harvesting the dirty bitmap or ring (downtime limit 10 ms, " +
      "at most 20 rounds, then forced), and post-copy after the device state alone. The destination's guest verified all its memory " +
      "after each.", migrationCharts(mig)]);
  }
  if (guest) sections.push(["guest execution", "MIPS on the reference RV64 workload against the peers' figures, and what a guest store that hits its spte costs.", guestChart(guest)]);
  const rows = figs.map((f) => `<tr class="${f.met === false ? "miss" : f.met ? "ok" : ""}"><td>${esc(f.name)}</td>` +
    `<td class="n">${esc(fmtNum(f.value, f.unit))}</td>` +
    `<td>${esc(f.baseline ? `${f.baseline}` : "")}</td><td class="n">${esc(f.baseline ? fmtNum(f.baselineValue, f.unit) : "")}</td>` +
    `<td class="n">${esc(fmtRatio(f.ratio))}</td><td class="n">${esc(fmtTarget(f.target, f.unit))}</td><td>${esc(status(f))}</td></tr>`).join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>webkvm bench ${esc(report.date)}</title>
<style>
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#111827;margin:24px auto;max-width:980px;padding:0 16px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:30px 0 4px}p{margin:4px 0 10px;color:#374151}
.meta{color:#6b7280;font-size:13px}.sum{font-size:17px;margin:12px 0}.sum b.good{color:#15803d}.sum b.bad{color:#b91c1c}
svg{display:block;max-width:100%;height:auto;background:#fff}
.grid{stroke:#d1d5db;stroke-width:1}.grid.minor{stroke:#eef0f3}
.ax{font-size:12px;fill:#4b5563}.axt{font-size:13px;fill:#374151}.lg{font-size:13px;fill:#111827}
.val{font-size:11px;fill:#111827}.val.big{font-size:14px;font-weight:600}.ann{font-size:12px}
.val,.ann,.note{paint-order:stroke;stroke:#fff;stroke-width:4px;stroke-linejoin:round}
.note{font-size:12px;fill:#4b5563}.note.good,.val.good{fill:#15803d;font-weight:600}.note.bad,.val.bad{fill:#b91c1c;font-weight:600}
table{border-collapse:collapse;font-size:13px;width:100%;margin-top:8px}td,th{padding:3px 8px;border-bottom:1px solid #e5e7eb;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}tr.miss td:last-child{color:#b91c1c;font-weight:600}
tr.ok td:last-child{color:#15803d;font-weight:600}th{background:#f3f4f6}
</style></head><body>
<h1>webkvm benchmarks</h1>
<div class="meta">${esc(report.date)} · node ${esc(report.node)}${report.quick ? " · QUICK smoke run (small iteration counts, not for comparison)" : ""}${report.machine ? ` · ${esc(report.machine)}` : ""}</div>
<div class="sum">targets: <b class="good">${met} met</b>, <b class="bad">${missed} missed</b>${t.length - met - missed ? `, ${t.length - met - missed} without a baseline` : ""}</div>
${sections.map(([h, p, s]) => `<h2>${esc(h)}</h2><p>${esc(p)}</p>\n${s}`).join("\n")}
<h2>every figure</h2>
<table><tr><th>figure</th><th>value</th><th>baseline</th><th></th><th>ratio</th><th>target</th><th>status</th></tr>
${rows}
</table>
</body></html>
`;
}

/** Screenshot an HTML file with headless chromium, if installed; the PNG path or a reason. */
export function renderPng(htmlPath, pngPath) {
  const exe = ["chromium", "chromium-browser", "google-chrome"].find((c) => spawnSync(c, ["--version"]).status === 0);
  if (!exe) return { skipped: "chromium is not installed" };
  const r = spawnSync(exe, ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", `--screenshot=${pngPath}`,
    "--window-size=1040,3200", pathToFileURL(htmlPath).href], { encoding: "utf8", timeout: 60_000 });
  return existsSync(pngPath) && r.status === 0 ? { path: pngPath } : { skipped: `${exe} failed: ${(r.stderr || "").trim().split("\n").pop()}` };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv.slice(2).find((a) => !a.startsWith("--")) ??
    fileURLToPath(new URL("./results/latest.json", import.meta.url));
  const report = JSON.parse(readFileSync(file, "utf8"));
  const figs = figures(report);
  printTable(figs);
  report.figures = figs; // derived: kept in step with the renderer
  writeFileSync(file, JSON.stringify(report, null, 2) + "\n");
  const html = file.replace(/\.json$/, ".html");
  writeFileSync(html, renderHtml(report, figs));
  console.log(`wrote ${html}`);
  if (process.argv.includes("--png")) {
    const p = renderPng(html, html.replace(/\.html$/, ".png"));
    console.log(p.path ? `wrote ${p.path}` : `PNG skipped: ${p.skipped}`);
  }
}
