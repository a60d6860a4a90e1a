// The demo's Linux mode, Worker side: boots the bundled Linux (guests/linux:
// Image + initramfs.cpio) on a Machine whose RAM slot logs dirty pages, and runs
// it in slices of a few milliseconds, so the page's messages — keystrokes for the
// console, pause, reboot — are handled between them. What is typed goes to the
// UART's receive queue (the kernel's ttyS0, interrupt-driven through the PLIC),
// as `webkvm linux` forwards stdin. Posts the console's text at the end of every
// slice, and every 100 ms the memory map, the RAM slot's KVM_GET_DIRTY_LOG bitmap
// and the status: boot time, MIPS, exits, shadow-MMU faults, the input queue.
// Save snapshot takes a full snapshot of the machine between two slices (the
// page keeps it as a Blob); Restore runs a snapshot's machine in a fresh Kvm in
// place of this one, which goes on untouched when the snapshot is refused.
import { Kvm, Machine, MMU_STAT, riscv, takeSnapshot, restoreSnapshot } from "../dist/index.js";
import { memoryMap, hex } from "./memory-map.js";

const params = new URL(self.location.href).searchParams;
/** earlycon prints from the first line on (SBI putchar); the console proper, and its input, is the 16550. */
const APPEND = params.get("append") ?? "earlycon=sbi console=ttyS0";
/** Holds the guest once the console shows this text (?pauseAt=…): a point to look at, or to type at. */
const PAUSE_AT = params.get("pauseAt") || null;
const MEM = 64n << 20n;
const RAM_SLOT = 0;
const SLICE_MS = 16;
const POST_MS = 100;
/** Instructions per Machine.run; while PAUSE_AT waits for its text, fewer, so the guest stops close after it. */
const CHUNK = 1_000_000n;
const ARMED_CHUNK = 20_000n;
/**
 * The budget of one KVM_RUN. An idle guest makes no exits (its timer ticks are
 * taken inside KVM_RUN), so this bounds how much idle time one run covers
 * before the worker sees it and sleeps: ~50 of Linux's HZ=250 ticks.
 */
const RUN_BUDGET = 100_000;
/**
 * The core's clock: one tick of `time` per 10 instructions (assembly/cpu/timer.ts),
 * and a wfi with a timer armed jumps `time` to it. Ticks beyond instructions / 10
 * are time the guest spent idle; the worker sleeps them off on the wall clock, so
 * an idle Linux (HZ=250 ticks) costs the host little.
 */
const INSTR_PER_TICK = 10n;
/** The kernel's line as it starts the first user process: the boot time's end. */
const USERSPACE_LINE = "Run /init";

let images = null;
let kvm, m, ticksPerMs;
let running = false, paused = false, halted = false, armed = PAUSE_AT !== null;
let timer = null, idleMs = 0, lastPost = 0;
let bootStart = 0, bootMs = null, instructions = 0n, exits = 0, faultsAtBoot = 0;
let runMs = 0, mips = 0, sample = { instr: 0n, ms: 0 };
let harvests = 0, touched = null, inputFed = 0;
let consoleBuf = "", tail = "";

const post = (msg, transfer = []) => self.postMessage(msg, transfer);

/** Console text: buffered for the page, and watched for the userspace line and PAUSE_AT. */
function say(text) {
  consoleBuf += text;
  const seen = tail + text;
  tail = seen.slice(-64);
  if (bootMs === null && seen.includes(USERSPACE_LINE)) bootMs = performance.now() - bootStart;
  if (armed && seen.includes(PAUSE_AT)) { armed = false; paused = true; }
}

function flush() {
  if (consoleBuf) { post({ type: "console", text: consoleBuf }); consoleBuf = ""; }
}

async function fetchImages() {
  const get = async (name) => {
    const r = await fetch(new URL(`../guests/linux/${name}`, import.meta.url));
    if (!r.ok) throw new Error(`guests/linux/${name}: HTTP ${r.status}`);
    return new Uint8Array(await r.arrayBuffer());
  };
  const [kernel, initrd] = await Promise.all([get("Image"), get("initramfs.cpio")]);
  return { kernel, initrd };
}

let booting = null;
/** Boots once at a time: a Reboot clicked while a boot is being set up waits for it and is then ignored. */
function boot() {
  booting ??= bootOnce().finally(() => { booting = null; });
  return booting;
}

async function bootOnce() {
  images ??= await fetchImages();
  bootStart = performance.now();
  // A fresh core per boot: the last boot's RAM goes with its instance, and the MMU counters start at zero.
  kvm = await Kvm.open({ core: "release" });
  m = await Machine.create({ kvm, memSize: MEM, dirtyLog: true, onConsole: say, turn: RUN_BUDGET });
  m.loadLinux({ ...images, cmdline: APPEND });
  // The VMM's own writes (kernel, initramfs, device tree) are logged too: drop them, so the
  // heatmap shows the pages the guest writes.
  m.vm.getDirtyLog(RAM_SLOT);
  bootMs = null;
  started();
  post({ type: "booting", cmdline: APPEND, memMiB: Number(MEM >> 20n) });
  state();
  schedule(0);
}

/** The counters of a machine that starts running now (booted or restored). */
function started() {
  touched = new Uint8Array(Number(MEM >> 15n));
  ticksPerMs = Number(m.vcpu.getOneReg(riscv.REG_TIMER_FREQUENCY)) / 1000;
  faultsAtBoot = kvm.core.mmuStat(MMU_STAT.FAULTS);
  instructions = 0n; exits = 0; runMs = 0; mips = 0; sample = { instr: 0n, ms: 0 }; idleMs = 0;
  halted = false; paused = false; running = true;
}

/** A full snapshot of the machine as it is between slices. */
function saveSnapshot() {
  const t0 = performance.now();
  const bytes = takeSnapshot(m);
  post({ type: "snapshot", bytes, ms: performance.now() - t0 }, [bytes.buffer]);
}

/** The machine of a snapshot chain, in a fresh Kvm, in place of this one (which stays if the chain is refused). */
async function restore(chain) {
  clearTimeout(timer);
  const t0 = performance.now();
  let next;
  try {
    next = await restoreSnapshot(chain, { kvm: await Kvm.open({ core: "release" }), onConsole: say });
  } catch (e) {
    post({ type: "restore-failed", text: String(e.message ?? e) });
    schedule(0);
    return;
  }
  m?.close();
  m = next;
  kvm = m.kvm;
  bootMs = null;
  started();
  post({ type: "restored", ms: performance.now() - t0, snapshots: chain.length });
  state();
  schedule(0);
}

function schedule(ms) {
  clearTimeout(timer);
  timer = running && !paused && !halted ? setTimeout(slice, ms) : null;
}

function slice() {
  timer = null;
  const end = performance.now() + SLICE_MS;
  let stop = null;
  try {
    // Idle time still owed to the wall clock is slept off first (below); input clears it.
    while (idleMs < 1 && !paused && performance.now() < end) {
      const t = m.vcpu.time;
      const w = performance.now();
      const r = m.run({ maxInstructions: armed ? ARMED_CHUNK : CHUNK });
      runMs += performance.now() - w;
      sample.ms += performance.now() - w;
      instructions += r.instructions; sample.instr += r.instructions;
      exits += r.exits;
      const idleTicks = m.vcpu.time - t - r.instructions / INSTR_PER_TICK;
      if (idleTicks > 0n) idleMs += Number(idleTicks) / ticksPerMs;
      if (r.stop === "halt") { halted = true; break; }   // wfi with no timer: only an interrupt (input) wakes it
      if (r.stop !== "limit") { stop = r; break; }
    }
  } catch (e) {
    stop = { stop: "error", reason: 0, error: e };
  }
  // MIPS: instructions over the wall time spent in KVM_RUN (not the idle sleeps), in samples of >= 500 ms.
  if (sample.ms >= 500) { mips = Number(sample.instr) / (sample.ms * 1000); sample = { instr: 0n, ms: 0 }; }
  flush();
  if (stop) return stopped(stop);
  if (paused || performance.now() - lastPost >= POST_MS) state();
  const sleep = Math.min(idleMs, POST_MS);
  idleMs -= sleep;
  schedule(sleep);
}

/** The guest stopped: a reboot request boots again; anything else is the end of this boot. */
function stopped(r) {
  running = false;
  if (runMs > 0) mips = Number(instructions) / (runMs * 1000);   // the whole boot's figure, the last sample included
  state();
  if (r.stop === "reboot") { post({ type: "stopped", stop: "reboot", reason: r.reason }); boot().catch(fatal); return; }
  post({ type: "stopped", stop: r.stop, reason: r.reason, error: r.error ? String(r.error.message ?? r.error) : undefined });
}

function popcount(bytes) {
  let n = 0;
  for (let b of bytes) for (; b; b &= b - 1) n++;
  return n;
}

function state() {
  lastPost = performance.now();
  // KVM_GET_DIRTY_LOG: the pages written since the last harvest, and the log cleared for the next.
  const bitmap = m.vm.getDirtyLog(RAM_SLOT);
  harvests++;
  for (let i = 0; i < bitmap.length; i++) touched[i] |= bitmap[i];
  const npages = Number(MEM >> 12n);
  // Until a whole sample is in (a fast boot may take less), the average so far.
  const shownMips = mips || (runMs > 0 ? Number(instructions) / (runMs * 1000) : 0);
  post({
    type: "state", map: memoryMap(m.vm),
    heat: { bitmap, npages, base: hex(riscv.RAM_BASE), harvests, touched: popcount(touched) },
    running, paused, idle: halted || idleMs >= 1, bootMs, mips: shownMips, runMs, instructions: instructions.toString(), exits,
    faults: kvm.core.mmuStat(MMU_STAT.FAULTS) - faultsAtBoot,
    input: { fed: inputFed, pending: m.uart.rxPending },
  }, [bitmap.buffer]);
}

function fatal(e) {
  flush();
  post({ type: "fatal", text: String((e && e.stack) || e) });
}

self.onmessage = (ev) => {
  const msg = ev.data;
  if (msg.type === "input") {
    if (!running) return;
    const bytes = new TextEncoder().encode(msg.data);
    m.uart.feed(bytes);        // the receive interrupt, through the PLIC, wakes a guest idle in wfi
    m.feedConsole(bytes);      // and the SBI console's getchar, for console=hvc0 (as the CLI feeds its stdin)
    inputFed += bytes.length;
    halted = false;
    idleMs = 0;                // the guest has work now: run it at once
    if (!paused) schedule(0);
    state();
  } else if (msg.type === "pause" || msg.type === "resume") {
    if (!running) return;
    paused = msg.type === "pause";
    armed = false;
    state();
    schedule(0);
  } else if (msg.type === "snapshot") {
    if (m && !booting) saveSnapshot();
  } else if (msg.type === "restore") {
    if (!booting) restore(msg.chain).catch(fatal);
  } else if (msg.type === "reboot") {
    if (booting) return;
    clearTimeout(timer);
    running = false;
    paused = false;
    m?.close();
    boot().catch(fatal);
  }
};

boot().catch(fatal);
