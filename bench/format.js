// Number, ratio and target formatting shared by the bench report's table
// (report.js) and its charts (charts.js), and HTML escaping.

export const esc = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

export function fmtNum(v, unit = "") {
  if (v === undefined || v === null || Number.isNaN(v)) return "-";
  if (unit === "ns") {
    if (v >= 1e6) return `${(v / 1e6).toPrecision(3)} ms`;
    if (v >= 1e3) return `${(v / 1e3).toPrecision(3)} µs`;
    return `${v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0)} ns`;
  }
  if (unit === "B" && v >= 1024) return v >= 1048576 ? `${(v / 1048576).toPrecision(3)} MiB` : `${(v / 1024).toPrecision(3)} KiB`;
  if (unit === "" && Number.isInteger(v)) return String(v); // a count
  const s = v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
  return unit ? `${s} ${unit}` : s;
}

export function fmtRatio(r) {
  if (r === undefined || Number.isNaN(r)) return "-";
  return `${r < 0.01 ? r.toPrecision(2) : r < 10 ? r.toFixed(3) : r.toFixed(1)}x`;
}

export function fmtTarget(t, unit) {
  if (!t) return "-";
  const op = t.op === "<=" ? "≤" : "≥";
  return t.on === "ratio" ? `${op} ${t.limit}x` : `${op} ${fmtNum(t.limit, unit)}`;
}
