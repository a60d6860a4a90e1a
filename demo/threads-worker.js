// The demo's threads mode (the page is cross-origin isolated, so it has
// SharedArrayBuffer): this Worker owns the Kvm instance on the threads-release
// core and handles the exits, while each vCPU's KVM_RUN executes on a Worker of
// its own (VcpuThread), all over one shared memory. Everything that may wait on
// a lock (Atomics.wait) runs in Workers: the page's main thread may not block.
//
// 1. The smp guest on 2 harts (Machine.runThreaded), checked against
//    guests/smp/reference.mjs: its line and each hart's partition.
// 2. The dirtylog guest on 2 vCPUs, forever: vCPU h stores to random pages of
//    its own part of a dirty-logged data slot and counts its stores in guest
//    memory (steps[h]). Every 100 ms this thread harvests KVM_GET_DIRTY_LOG
//    while both vCPUs run, bumps the iteration number the guest stores, and
//    posts the bitmap, each vCPU's instructions and stores, and the MIPS
//    measured from the instruction counts over wall time.
import { Kvm, Machine, VcpuThread, KVM_EXIT, KVM_MEM_LOG_DIRTY_PAGES } from "../dist/index.js";
import { memoryMap, hex } from "./memory-map.js";
import { smpLine, smpHartData, smpDataGpa, SMP_DATA_BYTES } from "../guests/smp/reference.mjs";
import { DIRTYLOG_ITERATION, dirtylogStepsGpa, dirtylogParams } from "../guests/dirtylog/reference.mjs";

/** vCPUs: 2, or the page's ?vcpus=1..4 (1 measures a single vCPU of the same workload). */
const VCPUS = Number(new URL(self.location.href).searchParams.get("vcpus") ?? 2);
if (![1, 2, 3, 4].includes(VCPUS)) throw new RangeError(`vcpus must be 1 to 4, not ${VCPUS}`);
const DATA_SLOT = 1;
const DATA_GPA = 0x40000000n;
const DATA_PAGES = 512;                    // 2 MiB; vCPU h writes pages [h * PART, (h + 1) * PART)
const PART = DATA_PAGES / VCPUS;
const PARAMS = 0x80300000n;                // the dirtylog guest's parameter blocks, 32 bytes per hart
const seed = (h) => 0x1234n + 0x9e3779b9n * BigInt(h);
const TURN = 500_000;                      // instructions per KVM_RUN: a few ms; each exit is a message
const POST_MS = 100;
const MIPS_WINDOW_MS = 500;

const post = (msg, transfer = []) => self.postMessage(msg, transfer);
let consoleBuf = "";
let atLineStart = true;
const say = (text) => { if (text) { consoleBuf += text; atLineStart = text.endsWith("\n"); } };
const note = (text) => say(`${atLineStart ? "" : "\n"}[host: ${text}]\n`);
function flush() {
  if (consoleBuf) { post({ type: "console", text: consoleBuf }); consoleBuf = ""; }
}

const image = async (path) => new Uint8Array(await (await fetch(new URL(path, import.meta.url))).arrayBuffer());
const sameBytes = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
const u64 = (v) => new Uint8Array(new BigUint64Array([v]).buffer);
const readU64 = (vm, gpa) => new DataView(vm.readGuest(gpa, 8).buffer).getBigUint64(0, true);

/** Phase 1: the smp guest with each hart on its own Worker; its result checked against the reference. */
async function smp(kvm) {
  say(`[booting guests/smp/smp.bin on ${VCPUS} harts, each hart's KVM_RUN on its own Worker]\n`);
  const m = await Machine.create({ kvm, memSize: 16n << 20n, vcpus: VCPUS, turn: 200_000, onConsole: say });
  m.load(await image("../guests/smp/smp.bin"));
  const r = await m.runThreaded();
  const expected = smpLine(VCPUS);
  const partitions = Array.from({ length: VCPUS }, (_, h) => sameBytes(m.vm.readGuest(smpDataGpa(h), SMP_DATA_BYTES), smpHartData(h)));
  const ok = m.output === expected && r.stop === "shutdown" && r.reason === 0 && partitions.every(Boolean);
  note(`smp: ${r.stop} (reason ${r.reason}), ${r.instructions} instructions; line ${m.output === expected ? "matches" : "DIFFERS from"} ` +
    `guests/smp/reference.mjs; partitions ${partitions.map((p, h) => `${h}:${p ? "ok" : "WRONG"}`).join(" ")}`);
  m.close();
  flush();
  post({ type: "smp", harts: VCPUS, ok, line: m.output, expected, stop: r.stop, reason: r.reason, partitions });
}

/** Phase 2: the dirtylog guest on both vCPUs, each on its Worker, until the page goes away. */
async function dirtylog(kvm) {
  say(`[booting guests/dirtylog/dirtylog.bin on ${VCPUS} vCPUs: vCPU h stores to random pages of its part of slot 1]\n`);
  const m = await Machine.create({ kvm, memSize: 4n << 20n, vcpus: VCPUS, turn: TURN, onConsole: say });
  const size = BigInt(DATA_PAGES) << 12n;
  m.vm.setUserMemoryRegion({ slot: DATA_SLOT, guestPhysAddr: DATA_GPA, memorySize: size, userspaceAddr: kvm.memory.mmap(size),
    flags: KVM_MEM_LOG_DIRTY_PAGES });
  const entry = m.load(await image("../guests/dirtylog/dirtylog.bin"));
  let iteration = 1n;
  m.vm.writeGuest(DIRTYLOG_ITERATION, u64(iteration));
  for (let h = 0; h < VCPUS; h++) {
    const at = PARAMS + 32n * BigInt(h);
    m.vm.writeGuest(at, dirtylogParams({ base: DATA_GPA + BigInt(h * PART) * 4096n, pages: PART, seed: seed(h) }));
    if (h === 0) m.vcpu.setReg(11, at);
    else if (m.startHart(h, entry, at) !== 0n) throw new Error(`hart ${h} did not start`);
  }
  const threads = await Promise.all(m.vcpus.map((v) => VcpuThread.start(kvm, v)));
  const vcpus = threads.map((t) => ({ thread: t.threadId, runs: 0, instret: 0n, at: performance.now(), inFlight: false, mips: 0 }));
  const since = vcpus.map((v) => ({ instret: v.instret, at: v.at }));
  let running = true, concurrentRuns = 0, harvests = 0;

  const loop = async (i) => {
    const v = vcpus[i];
    while (running) {
      v.inFlight = true;
      if (vcpus.some((o) => o !== v && o.inFlight)) concurrentRuns++;   // begun while the other's run is in flight
      const exit = await threads[i].run();
      v.inFlight = false;
      v.instret = m.vcpus[i].instret;   // read between runs: it takes vcpu->mutex, which a run holds
      v.at = performance.now();
      v.runs++;
      if (exit.reason !== KVM_EXIT.INTR) throw new Error(`vCPU ${i}: unexpected exit ${exit.name}`);
    }
  };
  const stop = (e) => {
    if (!running) return;
    running = false;
    note(`the vCPUs stopped: ${e?.message ?? e}`);
    sample();
  };
  for (let i = 0; i < VCPUS; i++) loop(i).catch(stop);

  // Harvest (KVM_GET_DIRTY_LOG fetches and clears) while both vCPUs keep storing, then bump the iteration.
  function sample() {
    const bitmap = m.vm.getDirtyLog(DATA_SLOT);
    harvests++;
    m.vm.writeGuest(DIRTYLOG_ITERATION, u64(++iteration));
    const dirty = vcpus.map((_, h) => {
      let n = 0;
      for (let p = h * PART; p < (h + 1) * PART; p++) n += (bitmap[p >> 3] >> (p & 7)) & 1;
      return n;
    });
    vcpus.forEach((v, i) => {
      const w = since[i];
      if (v.at - w.at >= MIPS_WINDOW_MS) {
        v.mips = Number(v.instret - w.instret) / ((v.at - w.at) * 1000);
        since[i] = { instret: v.instret, at: v.at };
      }
    });
    flush();
    post({
      type: "state", map: memoryMap(m.vm), running,
      heat: { bitmap, npages: DATA_PAGES, base: hex(DATA_GPA), harvests },
      dataSlot: { id: DATA_SLOT, present: true, logging: true, gpa: hex(DATA_GPA) },
      heatTitle: `— slot 1 at ${hex(DATA_GPA)}, dirty in the last harvest: ` +
        dirty.map((n, h) => `vCPU ${h} ${n} of pages ${h * PART}–${(h + 1) * PART - 1}`).join(", "),
      vcpus: vcpus.map((v, h) => ({ id: h, thread: v.thread, runs: v.runs, instructions: v.instret.toString(), mips: v.mips,
        steps: readU64(m.vm, dirtylogStepsGpa(h)).toString(), dirty: dirty[h] })),
      mips: vcpus.reduce((s, v) => s + v.mips, 0), iteration: iteration.toString(), concurrentRuns,
    }, [bitmap.buffer]);
  }
  const timer = setInterval(() => {
    if (!running) { clearInterval(timer); return; }
    try { sample(); } catch (e) { stop(e); }
  }, POST_MS);
}

async function main() {
  const kvm = await Kvm.open({ core: "threads-release" });
  // The page checks for itself that this is a SharedArrayBuffer (a shared WebAssembly.Memory posts as itself).
  post({ type: "shared", memory: kvm.core.memory, core: kvm.debugCore ? "threads" : "threads-release" });
  await smp(kvm);
  await dirtylog(kvm);
}

main().catch((e) => { flush(); post({ type: "fatal", text: String(e && e.stack || e) }); });
