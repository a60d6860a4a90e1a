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
import { esc, fmtNum, fmtRatio, fmtTarget } from "./format.js";
import { lookupChart, churnChart, dirtyChart, migrationCharts, guestChart, figuresChart } from "./charts.js";

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
    if (d.bareCopyNs !== undefined) {
      add({ group: "dirty", name: "GET_DIRTY_LOG fully dirty 16 GiB vs a bare wasm memory.copy of 512 KiB", value: d.getDirtyNs,
        unit: "ns", baseline: "bare memory.copy, same run", baselineValue: d.bareCopyNs });
    }
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

  const fp = suite("footprint");
  if (fp) {
    const k = fp.kernel;
    for (const r of fp.rows) {
      add({ group: "footprint", name: `memslot metadata per slot, ${r.slots} slots (both sets, indexes, hints, slot, arch)`, value: r.perSlotBytes,
        unit: "B", baseline: "kernel struct kvm_memory_slot (x86-64)", baselineValue: k.memslotBytes });
    }
    const r0 = fp.rows[0];
    add({ group: "footprint", name: "a new VM's memslot metadata (both sets, no slots)", value: r0.vmBytes, unit: "B",
      baseline: "kernel: 2 struct kvm_memslots", baselineValue: 2 * k.memslotsSetBytes });
    add({ group: "footprint", name: "dirty log bits per slot page", value: fp.dirtyBitsPerPage, unit: "bits",
      baseline: "kernel: bitmap + second bitmap", baselineValue: k.dirtyBitsPerPage });
    add({ group: "footprint", name: `heap bytes per touched guest page (memtest, ${fp.touched.pages.join(" vs ")} pages)`, value: fp.touched.heapPerPage,
      unit: "B", baseline: "kernel: spte 8 B + rmap 8 B", baselineValue: k.spteBytesPerPage + k.rmapBytesPerPage });
    add({ group: "footprint", name: "host frames per touched guest page", value: fp.touched.framesPerPage, unit: "frames" });
    add({ group: "footprint", name: "a vCPU's first run, whatever it touches (shadow page tables)", value: fp.touched.firstRunBytes, unit: "B" });
    for (const w of fp.wasm) add({ group: "footprint", name: `module size ${w.file}`, value: w.bytes, unit: "B" });
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

/**
 * Marks each figure with its value and ratio in a previous run (matched by
 * name; figures derived afresh from that run's suites): f.previous,
 * f.previousRatio and f.change = value / previous, so a reader sees what moved.
 */
export function withPrevious(figs, previousReport) {
  if (!previousReport?.suites) return figs;
  const before = new Map(figures(previousReport).map((f) => [f.name, f]));
  for (const f of figs) {
    const p = before.get(f.name);
    if (p?.value === undefined || f.value === undefined) continue;
    f.previous = p.value;
    f.previousRatio = p.ratio;
    if (p.value !== 0) f.change = f.value / p.value;
  }
  return figs;
}

// ---------------------------------------------------------------- text table

export function status(f) {
  if (f.error !== undefined) return `ERROR: ${f.error}`;
  if (!f.target) return "";
  if (f.met === undefined) return "n/a (no baseline)";
  if (f.met) return "met";
  return `MISSED (${f.over.toFixed(2)}x ${f.target.op === "<=" ? "over" : "under"})`;
}

/** A figure's baseline cell: what it is and its value, or why there is none. */
function baselineText(f) {
  if (!f.baseline) return "none";
  return `${f.baseline} ${f.baselineValue === undefined ? "(skipped)" : fmtNum(f.baselineValue, f.unit)}`;
}

export function printTable(figs) {
  const rows = figs.map((f) => [f.name, fmtNum(f.value, f.unit), baselineText(f),
    fmtRatio(f.ratio), fmtTarget(f.target, f.unit), status(f), fmtNum(f.previous, f.unit), fmtRatio(f.change)]);
  const head = ["figure", "value", "baseline", "ratio", "target", "status", "previous", "change"];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => (i === 0 || i === 2 || i === 5 ? c.padEnd(w[i]) : c.padStart(w[i]))).join("  ").trimEnd();
  console.log("\n" + line(head));
  console.log(w.map((n) => "-".repeat(n)).join("  "));
  for (const r of rows) console.log(line(r));
  const t = figs.filter((f) => f.target);
  console.log(`\ntargets: ${t.filter((f) => f.met).length} met, ${t.filter((f) => f.met === false).length} missed, ` +
    `${t.filter((f) => f.met === undefined).length} without a baseline`);
}

// ---------------------------------------------------------------- page

/** A change of more than 10% either way is marked in the table (which way is better depends on the figure). */
function movedClass(f) {
  return f.change === undefined ? "" : f.change > 1.1 || f.change < 1 / 1.1 ? "moved" : "";
}

/** The page: a chart per suite, then every figure with its baseline, ratio, target and, given a previous run, what moved. */
export function renderHtml(report, figs, previous = null) {
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
  if (guest) {
    sections.push(["guest execution", "MIPS on the reference RV64 workload: webkvm translated and interpreted against QEMU TCG " +
      "measured in the same run (guests/mips-qemu, start-up subtracted) and TinyEMU-wasm's recorded figure, and what a guest store " +
      "that hits its spte costs.", guestChart(guest)]);
  }
  // Every suite gets a chart: the ones drawn above, and for each group of figures without one, its figures' ratios.
  const drawn = new Set([lookup && "lookup", churn && "churn", dirty && "dirty", mig && "migration"].filter(Boolean));
  for (const group of [...new Set(figs.map((f) => f.group))]) {
    const mine = figs.filter((f) => f.group === group);
    if (group === "guest" || !drawn.has(group)) {
      sections.push([`${group}: every figure`, "Each figure as a multiple of its baseline (or, without one, of its value in the previous " +
        "run), on a log axis around 1×; the target's limit in red; a ring where the previous run had it.", figuresChart(mine)]);
    }
  }
  const hasPrevious = figs.some((f) => f.previous !== undefined);
  const rows = figs.map((f) => `<tr class="${f.met === false ? "miss" : f.met ? "ok" : ""}"><td>${esc(f.name)}</td>` +
    `<td class="n">${esc(fmtNum(f.value, f.unit))}</td>` +
    `<td>${esc(f.baseline ? `${f.baseline}` : "none")}</td><td class="n">${esc(f.baseline ? fmtNum(f.baselineValue, f.unit) : "")}</td>` +
    `<td class="n">${esc(fmtRatio(f.ratio))}</td><td class="n">${esc(fmtTarget(f.target, f.unit))}</td><td>${esc(status(f))}</td>` +
    (hasPrevious ? `<td class="n">${esc(fmtNum(f.previous, f.unit))}</td><td class="n ${movedClass(f)}">${esc(fmtRatio(f.change))}</td>` : "") +
    "</tr>").join("\n");
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
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.ok td:nth-child(7){color:#15803d;font-weight:600}tr.miss td:nth-child(7){color:#b91c1c;font-weight:600}th{background:#f3f4f6}
td.moved{background:#fef9c3;font-weight:600}
</style></head><body>
<h1>webkvm benchmarks</h1>
<div class="meta">${esc(report.date)} · node ${esc(report.node)}${report.quick ? " · QUICK smoke run (small iteration counts, not for comparison)" : ""}${report.machine ? ` · ${esc(report.machine)}` : ""}</div>
<div class="sum">targets: <b class="good">${met} met</b>, <b class="bad">${missed} missed</b>${t.length - met - missed ? `, ${t.length - met - missed} without a baseline` : ""}</div>
${sections.map(([h, p, s]) => `<h2>${esc(h)}</h2><p>${esc(p)}</p>\n${s}`).join("\n")}
<h2>every figure</h2>
${previous ? `<p>Previous run: ${esc(previous.date)}${previous.quick ? " (quick)" : ""}; "change" is this run's value ÷ that run's.</p>` : ""}
<table><tr><th>figure</th><th>value</th><th>baseline</th><th></th><th>ratio</th><th>target</th><th>status</th>${hasPrevious ? "<th>previous</th><th>change</th>" : ""}</tr>
${rows}
</table>
</body></html>
`;
}

/** Where a results file's predecessor is kept: latest.json -> previous.json, quick.json -> quick-previous.json. */
export function previousOf(file) {
  return file.endsWith("latest.json") ? file.replace(/latest\.json$/, "previous.json") : file.replace(/\.json$/, "-previous.json");
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
  const previousFile = previousOf(file);
  const previous = existsSync(previousFile) ? JSON.parse(readFileSync(previousFile, "utf8")) : null;
  const figs = withPrevious(figures(report), previous);
  printTable(figs);
  report.figures = figs; // derived: kept in step with the renderer
  writeFileSync(file, JSON.stringify(report, null, 2) + "\n");
  const html = file.replace(/\.json$/, ".html");
  writeFileSync(html, renderHtml(report, figs, previous));
  console.log(`wrote ${html}`);
  if (process.argv.includes("--png")) {
    const p = renderPng(html, html.replace(/\.html$/, ".png"));
    console.log(p.path ? `wrote ${p.path}` : `PNG skipped: ${p.skipped}`);
  }
}
