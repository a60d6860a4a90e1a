// The demo page's Linux mode: the bundled Linux boots in a Worker
// (linux-worker.js) and its console is an xterm.js terminal — what the guest
// writes to its UART is written to the terminal, and what is typed into the
// terminal goes to the UART's receive queue. The memory map and the heatmap
// show the guest's RAM slot, dirty-logged and harvested every 100 ms. This
// thread only draws and forwards keys; it never blocks.
import { Terminal } from "@xterm/xterm";
import { drawMap, drawHeat, showWorkerError } from "./panels.js";
import { snapshotToBlob, snapshotFromBlob } from "../dist/migration/snapshot-file.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const workerUrl = new URL("./linux-worker.js", import.meta.url);
for (const k of ["append", "pauseAt"]) if (params.has(k)) workerUrl.searchParams.set(k, params.get(k));
const worker = new Worker(workerUrl, { type: "module" });

$("terminal-panel").hidden = false;
$("console-panel").hidden = true;
$("controls").hidden = true;
$("heat-legend").textContent = "one cell per 4 KiB page of the guest's RAM (slot 0, 64 MiB: 256 × 64 cells), " +
  "fed by KVM_GET_DIRTY_LOG every 100 ms; bright = written recently";
$("status").textContent = "fetching guests/linux…";

const term = new Terminal({
  cols: 100, rows: 30, scrollback: 5000, cursorBlink: true, fontSize: 13,
  fontFamily: "ui-monospace, 'DejaVu Sans Mono', monospace",
  theme: { background: "#0b0e13", foreground: "#d6dde6", cursor: "#c9f29b" },
});
term.open($("terminal"));
term.focus();
globalThis.webkvmTerminal = term;   // the tests read its buffer

let poweredOff = false;
const note = (text) => term.write(`\r\n\x1b[33m[webkvm: ${text}]\x1b[0m\r\n`);

function reboot() {
  poweredOff = false;
  delete document.body.dataset.poweredOff;
  note("rebooting");
  worker.postMessage({ type: "reboot" });
  term.focus();
}

term.onData((data) => {
  if (poweredOff) { if (data === "\r") reboot(); return; }
  worker.postMessage({ type: "input", data });
});
$("btn-reboot").addEventListener("click", reboot);
$("btn-pause").addEventListener("click", () => {
  worker.postMessage({ type: $("btn-pause").dataset.paused === "1" ? "resume" : "pause" });
  term.focus();
});

/** The last snapshot saved or loaded, as a Blob (what a download or IndexedDB takes). */
let snapshot = null;
const snapState = (text) => { $("snapshot-state").textContent = text; };

$("btn-snapshot").addEventListener("click", () => { worker.postMessage({ type: "snapshot" }); term.focus(); });
$("btn-restore").addEventListener("click", async () => {
  if (!snapshot) return;
  worker.postMessage({ type: "restore", chain: await snapshotFromBlob(snapshot) });
  term.focus();
});
$("snapshot-file").addEventListener("change", async (ev) => {
  const file = ev.target.files[0];
  if (!file) return;
  try {
    const chain = await snapshotFromBlob(file);   // a File is a Blob: one snapshot, or a chain one after another
    snapshot = file;
    $("btn-restore").disabled = false;
    worker.postMessage({ type: "restore", chain });
  } catch (e) {
    snapState(`not restored: ${e.message}`);
    document.body.dataset.snapshotError = e.message;
  }
  ev.target.value = "";
});

function snapshotTaken(m) {
  snapshot = snapshotToBlob(m.bytes);
  const link = $("snapshot-link");
  if (link.href) URL.revokeObjectURL(link.href);
  link.href = URL.createObjectURL(snapshot);
  link.hidden = false;
  $("btn-restore").disabled = false;
  snapState(`snapshot: ${(snapshot.size / 1048576).toFixed(1)} MiB (the non-zero pages of 64 MiB and the machine's state), ` +
    `taken in ${m.ms.toFixed(0)} ms`);
  document.body.dataset.snapshots = String(Number(document.body.dataset.snapshots ?? 0) + 1);
  document.body.dataset.snapshotBytes = String(snapshot.size);
}

const fmt = (n) => Number(n).toLocaleString("en-US");

function drawState(m) {
  drawMap($("map"), m.map);
  const dirty = drawHeat($("heatmap"), m.heat);
  const canvas = $("heatmap");
  canvas.dataset.touched = String(m.heat.touched);
  $("heat-title").textContent = `— RAM at ${m.heat.base}: ${fmt(dirty)} pages dirty in the last harvest, ` +
    `${fmt(m.heat.touched)} of ${fmt(m.heat.npages)} written since boot`;
  const status = $("status");
  status.textContent = !m.running ? "Linux stopped" : m.paused ? "Linux paused"
    : m.idle ? "Linux idle" : m.bootMs === null ? "booting Linux…" : "Linux running";
  if (m.bootMs !== null) document.body.dataset.bootMs = String(m.bootMs);
  const parts = [];
  if (m.bootMs !== null) parts.push(`booted to /init in ${(m.bootMs / 1000).toFixed(2)} s`);
  if (m.mips > 0) parts.push(`${m.mips.toFixed(0)} MIPS`);
  parts.push(`${(Number(m.instructions) / 1e6).toFixed(1)} M instructions`, `${fmt(m.exits)} exits`, `${fmt(m.faults)} MMU faults`);
  const mips = $("mips");
  mips.textContent = parts.join(" · ");
  mips.dataset.total = String(m.mips);
  const pause = $("btn-pause");
  pause.disabled = !m.running;
  pause.textContent = m.paused ? "Resume" : "Pause";
  pause.dataset.paused = m.paused ? "1" : "0";
  $("btn-reboot").disabled = false;
  $("btn-snapshot").disabled = !m.running;
  const input = $("input-state");
  input.textContent = `typed: ${fmt(m.input.fed)} bytes to the UART, ${fmt(m.input.pending)} not yet read by the guest`;
  input.dataset.fed = String(m.input.fed);
  input.dataset.pending = String(m.input.pending);
  document.body.dataset.paused = m.paused ? "1" : "0";
  document.body.dataset.idle = m.idle ? "1" : "0";
  document.body.dataset.ready = "1";
}

worker.onmessage = (ev) => {
  const m = ev.data;
  if (m.type === "console") term.write(m.text);
  else if (m.type === "snapshot") snapshotTaken(m);
  else if (m.type === "restored") {
    poweredOff = false;
    delete document.body.dataset.poweredOff;
    note(`restored a snapshot in ${m.ms.toFixed(0)} ms: the guest continues from it`);
    document.body.dataset.restores = String(Number(document.body.dataset.restores ?? 0) + 1);
  } else if (m.type === "restore-failed") {
    snapState(`not restored: ${m.text}`);
    document.body.dataset.snapshotError = m.text;
  }
  else if (m.type === "state") drawState(m);
  else if (m.type === "booting") {
    $("mode").textContent = `Linux mode: guests/linux (kernel Image + initramfs) boots on one vCPU in a Worker (release core), ` +
      `${m.memMiB} MiB of RAM in one dirty-logged slot; kernel command line "${m.cmdline}" (?append= changes it). ` +
      "Type into the terminal: keys go to the 16550 UART's receive queue.";
    document.body.dataset.boots = String(Number(document.body.dataset.boots ?? 0) + 1);
  } else if (m.type === "stopped") {
    if (m.stop === "reboot") { note("the guest asked for a reboot"); return; }
    poweredOff = true;
    document.body.dataset.poweredOff = m.stop;
    note(m.stop === "shutdown" ? `Linux powered off (SBI system reset, reason ${m.reason}). Press Enter or click Reboot to boot it again`
      : `the guest stopped: ${m.stop}${m.error ? ` (${m.error})` : ""}. Press Enter or click Reboot to boot it again`);
  } else if (m.type === "fatal") {
    showWorkerError($("status"), "error: ", m.text);
  }
};
worker.onerror = (e) => showWorkerError($("status"), "worker error: ", e.message || e);
