// The two panels every mode of the demo page draws from what its Worker posts:
// the memory map (every address space's slots, memory-map.js) and the dirty
// heatmap of one dirty-logged slot — one cell per 4 KiB page, lit by each
// KVM_GET_DIRTY_LOG harvest and fading over the next ones. And the Worker's
// failures, in the status bar.

let heat = new Float32Array(0);

function flagsHtml(s) {
  const out = [];
  if (s.logDirty) out.push('<span class="flag log">LOG_DIRTY_PAGES</span>');
  if (s.readonly) out.push('<span class="flag ro">READONLY</span>');
  if (s.invalid) out.push('<span class="flag invalid">INVALID</span>');
  return out.join("") || "—";
}

export function drawMap(el, map) {
  const parts = [];
  for (const as of map) {
    parts.push(`<div class="as-title">address space ${as.asId} · generation ${as.generation}</div>`);
    parts.push("<table><tr><th>slot</th><th>gpa</th><th>end</th><th>pages</th><th>hva</th><th>flags</th></tr>");
    if (as.slots.length === 0) parts.push('<tr><td colspan="6">(no slots)</td></tr>');
    for (const s of as.slots) {
      parts.push(`<tr data-slot="${as.asId}:${s.id}"><td>${s.id}</td><td>${s.gpa}</td><td>${s.end}</td>` +
        `<td>${s.npages}</td><td>${s.hva}</td><td>${flagsHtml(s)}</td></tr>`);
    }
    parts.push("</table>");
  }
  el.innerHTML = parts.join("");
}

/** Columns of the page grid: a power of two that keeps the cells about as the canvas's 2:1 shape. */
const columnsFor = (n) => 2 ** Math.ceil(Math.log2(Math.sqrt(2 * Math.max(n, 1))));

/**
 * Fades every cell, lights the pages of this harvest `h` ({ bitmap, npages,
 * base, harvests } or null: nothing harvested) and returns how many it had.
 * The canvas's data attributes carry the last harvest for tests.
 */
export function drawHeat(canvas, h) {
  const n = h ? h.npages : heat.length;
  if (heat.length !== n) heat = new Float32Array(n);
  const pages = [];
  for (let i = 0; i < n; i++) {
    heat[i] *= 0.8;
    if (h && (h.bitmap[i >> 3] >> (i & 7)) & 1) { heat[i] = 1; pages.push(i); }
  }
  const cols = columnsFor(n), rows = Math.ceil(n / cols) || 1;
  // One pixel per page, scaled up: a 64 MiB RAM slot is 16,384 cells, too many for a fillRect each.
  const img = new ImageData(cols, rows);
  for (let i = 0; i < cols * rows; i++) {
    const v = i < n ? heat[i] : -1;
    const px = img.data.subarray(i * 4, i * 4 + 4);
    if (v < 0) px.set([11, 14, 19, 255]);
    else px.set([40 + 215 * v, 50 + 150 * v * v, 70 * (1 - v) + 20, 255]);
  }
  const grid = new OffscreenCanvas(cols, rows);
  grid.getContext("2d").putImageData(img, 0, 0);
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(grid, 0, 0, canvas.width, canvas.height);
  const cw = canvas.width / cols, ch = canvas.height / rows;
  if (cw >= 6 && ch >= 6) {
    // Cells big enough to tell apart: a gap between them.
    ctx.fillStyle = "#0b0e13";
    for (let c = 0; c <= cols; c++) ctx.fillRect(c * cw - 1, 0, 2, canvas.height);
    for (let r = 0; r <= rows; r++) ctx.fillRect(0, r * ch - 1, canvas.width, 2);
  }
  if (h) {
    canvas.dataset.harvests = String(h.harvests);
    canvas.dataset.dirty = String(pages.length);
    canvas.dataset.pages = pages.join(",");   // the last harvest's dirty pages, for tests
    canvas.dataset.base = h.base;
  }
  return pages.length;
}

/**
 * A Worker's failure (its "fatal" message, or its error event) in the status
 * bar and as body[data-error], which the browser tests read.
 */
export function showWorkerError(status, prefix, what) {
  status.textContent = prefix + what;
  document.body.dataset.error = String(what);
}
