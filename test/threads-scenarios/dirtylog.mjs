// dirty_log_test (tools/testing/selftests/kvm/dirty_log_test.c) with the
// dirtylog guest on 2 vCPUs, each on its own Worker (VcpuThread), while the VMM
// thread collects: the guest keeps writing during every collection, as in the
// selftest. Run by test/threads-dirtylog.test.ts (Node) and
// test/browser/threads-chromium.test.ts (Chromium: the VMM on a Web Worker).
// Collected with GET_DIRTY_LOG + CLEAR_DIRTY_LOG (manual protect) while both
// vCPUs run and, in another run, with the dirty ring: its soft-full exits are
// harvested while the other vCPU runs, and the per-iteration collection stops
// both vCPUs first, as the selftest's ring mode does (its vCPU thread waits
// while the main thread collects).
// The checks are dirty-log-verify.mjs's rules; a check made while vCPUs run
// carries a change the collection lacks to the next collection, and the last
// check, after the vCPUs stopped, is quiescent. Bounded by run counts.
// A vCPU stopped at a ring-full exit has not done the store whose fault filled
// its ring (as in the kernel: the request is acted on before the store
// re-executes), and with two vCPUs the collection can come before it resumes:
// that page is reported holding its old number. The driver knows exactly which
// page that is from the guest's model (the step after steps[hart]) and checks
// that the vCPU's pc is at a store to it (from its registers) and that it is
// the last entry the vCPU pushed; the checker excuses only that page, only
// while unchanged since the previous check.
import { Kvm, Machine, VcpuThread, KVM_CAP, KVM_EXIT, KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE } from "../../dist/index.js";
import {
  DirtyLogVerifier, addDirtyLogRegion, readRegionPage, setIteration, startDirtylog, dirtylogSteps, collectBitmap, collectRing,
} from "./dirty-log-verify.mjs";
import { dirtylogPageOfStep } from "../../guests/dirtylog/reference.mjs";

const REGION = { slot: 1, gpa: 0xc0000000n, pages: 1024 };
const PARAMS = 0x80300000n;
const SEEDS = [0x1234n, 0xfeedfacecafen];
/** KVM_RUNs of each vCPU per iteration before its collection (each at most TURN instructions). */
const RUNS_PER_ITERATION = 4;
const TURN = 5_000;

/** Lets the event loop run (the vCPU Workers' answers arrive as messages). */
const tick = typeof setImmediate === "function"
  ? () => new Promise((r) => setImmediate(r))
  : () => new Promise((r) => { const c = new MessageChannel(); c.port1.onmessage = () => { c.port1.close(); r(); }; c.port2.postMessage(0); });

/**
 * The region page the instruction at a stopped vCPU's pc stores to (the guest
 * runs with satp = 0: pc and addresses are guest-physical), or -1 if that
 * instruction is not a store into the region.
 */
function pageStoredAtPc(m, v) {
  const insn = new DataView(m.vm.readGuest(v.pc, 4).buffer).getUint32(0, true);
  if ((insn & 0x7f) !== 0x23) return -1; // STORE (S-type)
  const imm = ((insn >> 25) << 5) | ((insn >>> 7) & 0x1f); // imm[11:5] sign-extended, imm[4:0]
  const offset = v.getReg((insn >>> 15) & 0x1f) + BigInt(imm) - REGION.gpa;
  return offset >= 0n && offset < BigInt(REGION.pages) * 4096n ? Number(offset >> 12n) : -1;
}

/**
 * One dirty_log_test run: mode "bitmap" or "ring", `iterations` collections,
 * image the dirtylog guest's bytes (guests/dirtylog/dirtylog.bin); faults
 * (dropOne) makes the collector lossy. Returns plain data (strings for errors
 * and values) so a browser Worker can post it.
 */
export async function dirtyLogTest({ mode, image, iterations = 16, faults = {} }) {
  const kvm = await Kvm.open({ core: "threads" });
  const m = await Machine.create({ kvm, memSize: 16n << 20n, vcpus: 2, turn: TURN,
    dirtyRing: mode === "ring" ? 4096 : undefined });
  if (mode === "bitmap") m.vm.enableCap(KVM_CAP.MANUAL_DIRTY_LOG_PROTECT2, [KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE]);
  const region = addDirtyLogRegion(m, REGION);
  const entry = m.load(image);
  startDirtylog(m, entry, region, SEEDS, PARAMS);
  const threads = await Promise.all(m.vcpus.map((v) => VcpuThread.start(kvm, v)));
  const runs = [0, 0];
  let stop = false, ringFull = 0;
  // Ring mode: the collection pauses the vCPUs between runs.
  let paused = null, resume = () => {};
  const idle = [false, false];
  const errors = [];
  // Ring: the page of each vCPU's store that is logged but not done (it stopped
  // at a ring-full exit and has not run since), and the last entry of each ring.
  const inflight = [null, null];
  const pageOfStep = SEEDS.map((seed) => dirtylogPageOfStep(seed, REGION.pages));
  const lastEntry = [];
  const collect = { ...faults, lastEntry };
  const harvest = () => mode === "ring" ? collectRing(m.vm, m.vcpus, region, collect) : collectBitmap(m.vm, region, collect);
  const inflightPages = () => new Set(inflight.filter((p) => p !== null));
  const dirty = new Set();
  // The vCPUs' loops: every run ends at its budget (EINTR) or, with the ring, when it is soft-full.
  const loops = threads.map(async (t, i) => {
    try {
      while (!stop) {
        if (paused) { idle[i] = true; await paused; idle[i] = false; }
        const e = await t.run();
        inflight[i] = null;
        if (e.reason === KVM_EXIT.DIRTY_RING_FULL) {
          ringFull++;
          // vCPU i is hart i: its next step's store is the one stopped, and its pc is still at it.
          const page = pageOfStep[i](Number(dirtylogSteps(m, i)) + 1);
          inflight[i] = page;
          const atPc = pageStoredAtPc(m, m.vcpus[i]);
          if (atPc !== page) throw new Error(`vCPU ${i}: ring-full exit before the store to page ${page}, but pc stores to ${atPc}`);
          for (const p of collectRing(m.vm, m.vcpus, region, collect)) dirty.add(p);
          if (lastEntry[i] !== page) throw new Error(`vCPU ${i}: ring-full exit at the store to page ${page}, but its last entry is ${lastEntry[i]}`);
        } else if (e.reason !== KVM_EXIT.INTR) throw new Error(`vCPU ${i}: exit ${e.name}`);
        runs[i]++;
      }
    } catch (e) { errors.push(String(e?.stack ?? e)); stop = true; }
  });
  const progress = async (more) => {
    const target = runs.map((r) => r + more);
    while (!stop && runs.some((r, i) => r < target[i])) await tick();
  };
  const verifier = new DirtyLogVerifier(region.pages);
  const violations = [];
  let it = 1n;
  for (; it <= BigInt(iterations) && !stop; it++) {
    if (mode === "bitmap" || it === 1n) setIteration(m, it);
    await progress(RUNS_PER_ITERATION);
    if (mode === "ring") {
      paused = new Promise((r) => { resume = r; });
      while (!stop && !idle.every((x) => x)) await tick();
    }
    for (const p of harvest()) dirty.add(p); // with the bitmap, the guest keeps writing meanwhile
    violations.push(...verifier.check({ iteration: it, dirty: new Set(dirty), read: readRegionPage(m, region),
      quiescent: mode === "ring", inflight: inflightPages() }));
    dirty.clear();
    if (mode === "ring") {
      if (it < BigInt(iterations)) setIteration(m, it + 1n);
      paused = null;
      resume();
    }
  }
  stop = true;
  paused = null;
  resume();
  await Promise.all(loops);
  for (const p of harvest()) dirty.add(p);
  violations.push(...verifier.check({ iteration: it - 1n, dirty, read: readRegionPage(m, region), quiescent: true, inflight: inflightPages() }));
  await Promise.all(threads.map((t) => t.terminate()));
  return {
    mode, iterations, errors, ringFull, stats: { ...verifier.stats }, runs,
    violations: violations.map((v) => ({ rule: v.rule, page: v.page, value: String(v.value), iteration: String(v.iteration) })),
    steps: [0, 1].map((h) => Number(dirtylogSteps(m, h))),
  };
}
