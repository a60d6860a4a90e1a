// The demo page: no framework. The Kvm instance lives in a Worker (worker.js);
// this thread only draws what the worker posts and sends slot operations.
const $ = (id) => document.getElementById(id);
const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });

const COLS = 32;
let heat = new Float32Array(0);
let nextId = 1;
const buttons = { move: $("btn-move"), delete: $("btn-delete"), create: $("btn-create"), "toggle-log": $("btn-log") };

for (const [name, btn] of Object.entries(buttons)) {
  btn.addEventListener("click", () => worker.postMessage({ type: "op", id: nextId++, name }));
}

function flagsHtml(s) {
  const out = [];
  if (s.logDirty) out.push('<span class="flag log">LOG_DIRTY_PAGES</span>');
  if (s.readonly) out.push('<span class="flag ro">READONLY</span>');
  if (s.invalid) out.push('<span class="flag invalid">INVALID</span>');
  return out.join("") || "—";
}

function drawMap(map) {
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
  $("map").innerHTML = parts.join("");
}

function drawHeat(h, data) {
  const canvas = $("heatmap");
  const ctx = canvas.getContext("2d");
  const n = h ? h.npages : heat.length;
  if (heat.length !== n) heat = new Float32Array(n);
  const pages = [];
  for (let i = 0; i < heat.length; i++) {
    heat[i] *= 0.8;
    if (h && (h.bitmap[i >> 3] >> (i & 7)) & 1) { heat[i] = 1; pages.push(i); }
  }
  const dirty = pages.length;
  const rows = Math.ceil(heat.length / COLS) || 1;
  const cw = canvas.width / COLS, ch = canvas.height / rows;
  ctx.fillStyle = "#0b0e13";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  for (let i = 0; i < heat.length; i++) {
    const v = heat[i];
    const r = Math.round(40 + 215 * v), g = Math.round(50 + 150 * v * v), b = Math.round(70 * (1 - v) + 20);
    ctx.fillStyle = `rgb(${r},${g},${b})`;
    ctx.fillRect((i % COLS) * cw + 1, Math.floor(i / COLS) * ch + 1, cw - 2, ch - 2);
  }
  if (h) {
    canvas.dataset.harvests = String(h.harvests);
    canvas.dataset.dirty = String(dirty);
    canvas.dataset.pages = pages.join(",");   // the last harvest's dirty pages, for tests
    canvas.dataset.base = h.base;
  }
  const d = data.dataSlot;
  $("heat-title").textContent = !d.present ? "— slot 1 deleted" : !d.logging ? `— slot 1 at ${d.gpa}, logging off`
    : `— slot 1 at ${d.gpa}, ${dirty} pages dirty in the last harvest`;
}

function appendConsole(text) {
  const el = $("console");
  const atEnd = el.scrollTop + el.clientHeight >= el.scrollHeight - 4;
  el.textContent += text;
  if (el.textContent.length > 20000) el.textContent = el.textContent.slice(-16000);
  if (atEnd) el.scrollTop = el.scrollHeight;
}

worker.onmessage = (ev) => {
  const m = ev.data;
  if (m.type === "console") appendConsole(m.text);
  else if (m.type === "state") {
    drawMap(m.map);
    drawHeat(m.heat, m);
    $("status").textContent = m.running ? "guest running in a Worker" : "guest stopped";
    $("mips").textContent = `${m.mips.toFixed(0)} MIPS · ${m.instructions} instructions`;
    const d = m.dataSlot;
    buttons.move.disabled = !d.present;
    buttons.delete.disabled = !d.present;
    buttons.create.disabled = d.present;
    buttons["toggle-log"].disabled = false;
    buttons["toggle-log"].textContent = d.logging ? "Dirty logging: on" : "Dirty logging: off";
    document.body.dataset.ready = "1";
    if (m.reply) {
      const el = $("last-op");
      el.textContent = m.reply.text;
      el.className = m.reply.ok ? "" : "error";
    }
  } else if (m.type === "fatal") {
    $("status").textContent = "error: " + m.text;
    document.body.dataset.error = m.text;
  }
};
worker.onerror = (e) => {
  $("status").textContent = "worker error: " + (e.message || e);
  document.body.dataset.error = String(e.message || e);
};
