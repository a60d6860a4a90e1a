// The demo page's memory-slots mode: no framework. The Kvm instance lives in a Worker; this thread
// only draws what the worker posts and sends slot operations, and never blocks.
// Two vCPUs on Workers over one shared memory (threads-worker.js) need
// SharedArrayBuffer, which a browser gives only to a cross-origin isolated page
// (served with COOP/COEP, as scripts/serve.mjs does); without it the page runs
// the single-thread demo (worker.js) and says why.
import { drawMap, drawHeat, showWorkerError } from "./panels.js";

const $ = (id) => document.getElementById(id);
const threaded = globalThis.crossOriginIsolated === true && typeof SharedArrayBuffer === "function";
document.body.dataset.mode = threaded ? "threads" : "single";
const vcpuCount = Number(new URLSearchParams(location.search).get("vcpus") ?? 2);   // ?vcpus=1..4, default 2
const workerUrl = new URL(threaded ? "./threads-worker.js" : "./worker.js", import.meta.url);
if (threaded) workerUrl.searchParams.set("vcpus", String(vcpuCount));
const worker = new Worker(workerUrl, { type: "module" });
$("mode").textContent = threaded
  ? `Threads mode: ${vcpuCount} vCPU${vcpuCount > 1 ? "s" : ""}, each running KVM_RUN on its own Web Worker, over one shared ` +
    "WebAssembly.Memory (threads-release core); the page is cross-origin isolated (COOP/COEP)."
  : "Single-thread mode: this page is not cross-origin isolated (it was served without the COOP/COEP headers), " +
    "so the browser gives it no SharedArrayBuffer and the threads core cannot run: one vCPU runs on one Worker. " +
    "`npm run demo` serves the headers.";
$("mode").className = threaded ? "" : "fallback";
if (threaded) {
  $("vcpu-panel").hidden = false;
  $("controls").hidden = true;
  $("last-op").textContent = "(the slot buttons belong to the single-thread mode)";
}

let nextId = 1;
const buttons = { move: $("btn-move"), delete: $("btn-delete"), create: $("btn-create"), "toggle-log": $("btn-log") };

for (const [name, btn] of Object.entries(buttons)) {
  btn.addEventListener("click", () => worker.postMessage({ type: "op", id: nextId++, name }));
}

function drawSlotHeat(h, data) {
  const dirty = drawHeat($("heatmap"), h);
  const d = data.dataSlot;
  $("heat-title").textContent = data.heatTitle ?? (!d.present ? "— slot 1 deleted" : !d.logging ? `— slot 1 at ${d.gpa}, logging off`
    : `— slot 1 at ${d.gpa}, ${dirty} pages dirty in the last harvest`);
}

function appendConsole(text) {
  const el = $("console");
  const atEnd = el.scrollTop + el.clientHeight >= el.scrollHeight - 4;
  el.textContent += text;
  if (el.textContent.length > 20000) el.textContent = el.textContent.slice(-16000);
  if (atEnd) el.scrollTop = el.scrollHeight;
}

/** Threads mode: one row per vCPU, and the MIPS of each and their total in the status bar. */
function drawVcpus({ vcpus, mips: total, concurrentRuns }) {
  const rows = ["<tr><th>vCPU</th><th>Worker thread</th><th>KVM_RUNs</th><th>instructions</th><th>guest stores (steps[h])</th>" +
    "<th>dirty pages of its part, last harvest</th><th>MIPS</th></tr>"];
  for (const v of vcpus) {
    rows.push(`<tr data-vcpu="${v.id}" data-steps="${v.steps}" data-instructions="${v.instructions}" data-thread="${v.thread}">` +
      `<td>${v.id}</td><td>${v.thread}</td><td>${v.runs}</td><td>${v.instructions}</td><td>${v.steps}</td><td>${v.dirty}</td>` +
      `<td>${v.mips.toFixed(0)}</td></tr>`);
  }
  rows.push(`<tr><td colspan="7">KVM_RUNs begun while another vCPU's was in flight: ${concurrentRuns}</td></tr>`);
  $("vcpus").innerHTML = rows.join("");
  $("vcpus").dataset.concurrentRuns = String(concurrentRuns);
  const mips = $("mips");
  mips.textContent = vcpus.every((v) => v.mips > 0)
    ? vcpus.map((v) => `vCPU ${v.id} ${v.mips.toFixed(0)} MIPS`).join(" · ") + ` · total ${total.toFixed(0)} MIPS`
    : "measuring MIPS…";
  mips.dataset.total = String(total);
  mips.dataset.vcpus = vcpus.map((v) => v.mips).join(",");
}

worker.onmessage = (ev) => {
  const m = ev.data;
  if (m.type === "console") appendConsole(m.text);
  else if (m.type === "shared") {
    // The core's memory, posted by the VMM's Worker: on this page it is the same SharedArrayBuffer.
    const shared = m.memory.buffer instanceof SharedArrayBuffer;
    document.body.dataset.sharedMemory = shared ? "1" : "0";
    $("mode").textContent += ` Memory: ${shared ? "a SharedArrayBuffer" : "NOT shared"} (${m.core} core).`;
  } else if (m.type === "smp") {
    const el = $("smp-result");
    el.textContent = `smp guest, ${m.harts} harts on ${m.harts} Workers: ${JSON.stringify(m.line.trim())} — ` +
      (m.ok ? "matches guests/smp/reference.mjs, and each hart's partition holds its stream"
        : `expected ${JSON.stringify(m.expected.trim())}, stop ${m.stop} (reason ${m.reason}), partitions ${m.partitions}`);
    el.className = m.ok ? "" : "bad";
    document.body.dataset.smp = m.ok ? "ok" : "bad";
  } else if (m.type === "state") {
    drawMap($("map"), m.map);
    drawSlotHeat(m.heat, m);
    if (m.vcpus) {
      $("status").textContent = m.running ? `${m.vcpus.length} vCPU${m.vcpus.length > 1 ? "s" : ""} running, each on its own Worker` : "guest stopped";
      drawVcpus(m);
      document.body.dataset.ready = "1";
      return;
    }
    $("status").textContent = m.running ? "guest running in a Worker" : "guest stopped";
    $("mips").textContent = `${m.mips.toFixed(0)} MIPS · ${m.instructions} instructions`;
    $("mips").dataset.total = String(m.mips);
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
    showWorkerError($("status"), "error: ", m.text);
  }
};
worker.onerror = (e) => showWorkerError($("status"), "worker error: ", e.message || e);
