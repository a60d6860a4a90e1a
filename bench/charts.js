// The bench report's charts: inline SVG drawn here (no CDN, no network, no
// script in the page), one or more per suite (report.js renderHtml).
import { esc, fmtNum, fmtRatio } from "./format.js";

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
export function lookupChart(suite) {
  const W = 860, H = 430, L = 70, R = 230, T = 20, B = 50;
  const rows = suite.rows;
  const series = [
    { key: "wasmRandomNs", label: "wasm random", color: COLORS.wasm },
    { key: "wasmSequentialNs", label: "wasm sequential", color: COLORS.wasmSeq },
    { key: "wasmHitNs", label: "wasm last-used hit (vCPU)", color: COLORS.wasmHit },
    { key: "tsBinaryNs", label: "TS binary search random", color: COLORS.ts },
    { key: "nativeRandomNs", label: "native C random", color: COLORS.native },
    { key: "nativeSequentialNs", label: "native C sequential", color: COLORS.nativeSeq, dash: true },
    { key: "nativeIndexRandomNs", label: "webkvm's index in C, random", color: "#7c3aed" },
  ].filter((s) => rows.some((r) => r[s.key] !== undefined));
  const targetRow = rows.find((r) => r.targetWasmVsNativeRandom && r.nativeRandomNs);
  const all = rows.flatMap((r) => series.map((s) => r[s.key]));
  if (targetRow) all.push(targetRow.nativeRandomNs * targetRow.targetWasmVsNativeRandom);
  for (const r of rows) if (r.targetWasmVsNativeIndex && r.nativeIndexRandomNs) all.push(r.nativeIndexRandomNs * r.targetWasmVsNativeIndex);
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
  const indexRow = rows.find((r) => r.targetWasmVsNativeIndex && r.nativeIndexRandomNs);
  if (indexRow) {
    const tv = indexRow.nativeIndexRandomNs * indexRow.targetWasmVsNativeIndex;
    const tx = x(indexRow.slots), ty = y(tv);
    s += `<line x1="${tx - 14}" x2="${tx + 14}" y1="${ty}" y2="${ty}" stroke="#7c3aed" stroke-width="3" stroke-dasharray="4 2"/>`;
    s += `<text x="${tx - 18}" y="${ty + 16}" class="ann" text-anchor="end" fill="#7c3aed">target ${fmtNum(tv, "ns")}</text>`;
    items.push({ label: `target ≤ ${indexRow.targetWasmVsNativeIndex}× the index in C`, color: "#7c3aed", dash: true });
  }
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

export function churnChart(suite, webkvm = "webkvm (release core)", kernel = "Linux KVM (/dev/kvm)") {
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

export function dirtyChart(d) {
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
export function migrationCharts(mig) {
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

/**
 * MIPS bars (translated, interpreter only, QEMU TCG in the same run) with the
 * two targets (3x QEMU TCG for translated code, 2x TinyEMU-wasm's recorded
 * figure for the interpreter) and the recorded figures as reference lines;
 * then the spte-hit store cost.
 */
export function guestChart(g) {
  const m = g.mips, qemu = m.qemu;
  const bars = [
    { label: "webkvm, translated", mips: m.mips, color: COLORS.webkvm },
    ...(m.interpreterMips ? [{ label: "webkvm, interpreter only", mips: m.interpreterMips, color: COLORS.wasmSeq }] : []),
    ...(qemu ? [{ label: `QEMU TCG ${qemu.version}, same run`, mips: qemu.mips, color: COLORS.kernel }] : []),
  ];
  const refs = [
    ...(qemu ? [{ label: `target: ${m.targetVsQemu}× QEMU TCG (translated)`, mips: qemu.mips * m.targetVsQemu, color: COLORS.target, strong: true }] : []),
    ...(m.targetInterpreterVsTinyemu ? [{ label: `target: ${m.targetInterpreterVsTinyemu}× TinyEMU-wasm (interpreter)`,
      mips: m.targetMips * m.targetInterpreterVsTinyemu, color: COLORS.target, strong: true }] : []),
    { label: "TinyEMU-wasm, recorded", mips: m.targetMips, color: COLORS.ref },
    ...(qemu ? [{ label: "QEMU 7.2 TCG, recorded", mips: qemu.recordedMips, color: COLORS.ref }] : []),
  ];
  const W = 860, L = 220, R = 60, T = 8, barH = 22, barGap = 8;
  const top = Math.max(...bars.map((b) => b.mips), ...refs.map((r) => r.mips)) * 1.1;
  const step = [100, 250, 500, 1000, 2500].find((v) => top / v <= 10) ?? 5000;
  const max = Math.ceil(top / step) * step;
  const x = (v) => L + (v / max) * (W - L - R);
  const barY = T + refs.length * 15 + 12, axisY = barY + bars.length * (barH + barGap) + 4;
  const H = axisY + 70 + 100;
  let s = "";
  for (let v = 0; v <= max; v += step) {
    s += `<line x1="${x(v)}" x2="${x(v)}" y1="${barY - 6}" y2="${axisY}" class="grid minor"/>`;
    s += `<text x="${x(v)}" y="${axisY + 16}" class="ax" text-anchor="middle">${v}</text>`;
  }
  s += `<line x1="${L}" x2="${W - R}" y1="${axisY}" y2="${axisY}" stroke="#374151"/>`;
  s += `<text x="${(L + W - R) / 2}" y="${axisY + 34}" class="axt" text-anchor="middle">guest MIPS (RV64 reference loop; webkvm with every access through the shadow page tables)</text>`;
  refs.forEach((r, i) => {
    const ly = T + 11 + i * 15;
    s += `<line x1="${x(r.mips)}" x2="${x(r.mips)}" y1="${ly + 3}" y2="${axisY}" stroke="${r.color}" stroke-width="${r.strong ? 2.5 : 1.5}" stroke-dasharray="${r.strong ? "6 3" : "3 3"}"/>`;
    const right = x(r.mips) > W - R - 220; // a label near the right edge goes to the line's left
    s += `<text x="${x(r.mips) + (right ? -5 : 5)}" y="${ly + 4}" class="ann"${right ? ' text-anchor="end"' : ""} fill="${r.strong ? r.color : "#6b7280"}">${esc(`${r.label} ${r.mips.toFixed(0)}`)}</text>`;
  });
  bars.forEach((b, i) => {
    const yy = barY + i * (barH + barGap);
    s += `<text x="${L - 10}" y="${yy + 16}" class="lg" text-anchor="end">${esc(b.label)}</text>`;
    s += `<rect x="${L}" y="${yy}" width="${x(b.mips) - L}" height="${barH}" fill="${b.color}" rx="2"/>`;
    s += `<text x="${x(b.mips) + 6}" y="${yy + 16}" class="val">${esc(`${b.mips.toFixed(0)} MIPS`)}</text>`;
  });
  const y0 = axisY + 70;
  // store cost: two bars + the +2 ns budget
  const sTop = Math.max(g.store.spteHitNs, g.store.plainNs + g.store.targetExtraNs) * 1.2;
  const sx = (v) => L + (v / sTop) * (W - L - R);
  const storeBars = [
    { label: "plain wasm store", v: g.store.plainNs, color: COLORS.ref },
    { label: "guest store, spte hit", v: g.store.spteHitNs, color: COLORS.webkvm },
  ];
  storeBars.forEach((b, i) => {
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

/**
 * Any suite's figures as one chart: a row per figure, its ratio to its
 * baseline on a log axis around 1x (the target's limit marked), or, for a
 * figure without a baseline, its change since the previous run; a hollow
 * mark where the previous run's ratio was.
 */
export function figuresChart(figs) {
  const rows = figs.filter((f) => f.error === undefined).map((f) => {
    if (f.ratio !== undefined) {
      return { f, v: f.ratio, prev: f.previousRatio, what: `÷ ${f.baseline}`,
        limit: f.target?.on === "ratio" ? f.target.limit : undefined };
    }
    if (f.change !== undefined) return { f, v: f.change, what: "÷ previous run" };
    return { f, v: undefined, what: "no baseline, no previous run" };
  });
  if (rows.length === 0) return "";
  const vals = rows.flatMap((r) => [r.v, r.prev, r.limit]).filter((v) => v > 0 && Number.isFinite(v)).concat([1]);
  const [lo, hi] = niceBounds(vals, 0.8, 1.25);
  const W = 960, L = 420, R = 120, T = 24, rowH = 22;
  const H = T + rows.length * rowH + 40;
  const x = logScale(lo, hi, L, W - R);
  let s = "";
  const ticks = logTicks(lo, hi);
  for (const t of ticks) {
    s += `<line x1="${x(t.v)}" x2="${x(t.v)}" y1="${T - 6}" y2="${H - 34}" class="${t.major ? "grid" : "grid minor"}"/>`;
    if (t.major || ticks.length < 12) s += `<text x="${x(t.v)}" y="${H - 18}" class="ax" text-anchor="middle">${t.v}×</text>`;
  }
  s += `<line x1="${x(1)}" x2="${x(1)}" y1="${T - 10}" y2="${H - 34}" stroke="#374151" stroke-width="1.5"/>`;
  rows.forEach((r, i) => {
    const y = T + i * rowH;
    const name = r.f.name.length > 54 ? `${r.f.name.slice(0, 52)}…` : r.f.name;
    s += `<text x="${L - 8}" y="${y + 14}" class="lg" text-anchor="end"><title>${esc(`${r.f.name} (${r.what})`)}</title>${esc(name)}</text>`;
    if (!(r.v > 0)) { // no ratio, or one a log axis cannot place (a value of 0)
      s += `<text x="${x(1) + 6}" y="${y + 14}" class="ann">${esc(`${fmtNum(r.f.value, r.f.unit)} (${r.v === undefined ? r.what : `${fmtRatio(r.v)} ${r.what}`})`)}</text>`;
      return;
    }
    const x0 = Math.min(x(1), x(r.v)), x1 = Math.max(x(1), x(r.v));
    const color = r.f.met === false ? COLORS.target : r.f.met ? "#15803d" : r.f.ratio === undefined ? COLORS.ref : COLORS.webkvm;
    s += `<rect x="${x0}" y="${y + 3}" width="${Math.max(x1 - x0, 1.5)}" height="${rowH - 8}" fill="${color}" rx="2"><title>${esc(`${r.f.name}: ${fmtRatio(r.v)} ${r.what}`)}</title></rect>`;
    if (r.limit !== undefined) s += `<line x1="${x(r.limit)}" x2="${x(r.limit)}" y1="${y}" y2="${y + rowH - 2}" stroke="${COLORS.target}" stroke-width="2.5"/>`;
    if (r.prev > 0) s += `<circle cx="${x(r.prev)}" cy="${y + rowH / 2 - 1}" r="4" fill="none" stroke="#111827" stroke-width="1.5"/>`;
    s += `<text x="${Math.max(x1, x(r.limit ?? 0)) + 6}" y="${y + 14}" class="val">${esc(`${fmtRatio(r.v)} ${r.f.ratio === undefined ? "vs previous" : ""}`)}</text>`;
  });
  s += `<text x="${(L + W - R) / 2}" y="${H - 3}" class="axt" text-anchor="middle">value ÷ baseline (or ÷ previous run), log; red bar: the target's limit; ○ previous run</text>`;
  return svg(W, H, s);
}
