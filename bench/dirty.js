// Dirty logging: KVM_GET_DIRTY_LOG of a clean and of a fully dirty 16 GiB slot,
// KVM_CLEAR_DIRTY_LOG of a whole slot, and dirty-ring harvest + reset of 10,000
// entries — per call and per page. The kernel baseline (same ioctls on the real
// kernel, bench/native/kvm-churn.c dirty) needs a C compiler and /dev/kvm.
import * as native from "./native/native.js";
import { perOp } from "./best.js";
import { Kvm, KVM_GET_DIRTY_LOG, KVM_CLEAR_DIRTY_LOG, KVM_MEM_LOG_DIRTY_PAGES, kvm_dirty_log, kvm_clear_dirty_log } from "../dist/index.js";
import { ScriptRunner } from "../dist/conformance/index.js";

const PAGES = 4n << 20n; // 16 GiB
const BITMAP_BYTES = PAGES / 8n;

async function slotVm(initiallySet) {
  const kvm = await Kvm.open({ core: "release" });
  const vm = kvm.createVm();
  if (initiallySet) vm.enableCap("manual_dirty_log_protect2", [3n]);
  vm.setUserMemoryRegion({ slot: 0, flags: KVM_MEM_LOG_DIRTY_PAGES, guestPhysAddr: 0, memorySize: PAGES * 4096n,
    userspaceAddr: kvm.memory.mmap(PAGES * 4096n) });
  const buf = kvm.memory.mmap(BITMAP_BYTES);
  return { kvm, vm, get: kvm_dirty_log.encode({ slot: 0, dirty_bitmap: buf }),
    clear: kvm_clear_dirty_log.encode({ slot: 0, first_page: 0, num_pages: Number(PAGES), dirty_bitmap: buf }), buf };
}

/**
 * The physical floor of a fully dirty GET with manual protect (one 512 KiB
 * copy_to_user): a bare wasm memory.copy of the same size, from JS, in a
 * module of its own (hand-assembled: (func (export "copy") (param i32 i32 i32)
 * memory.copy) over 32 pages, exported as "mem"), source and destination
 * 1 MiB apart. The source is written first, all ones like the bitmap: never
 * written, its pages would all be the host's one zero page, and a copy that
 * reads one physical page over and over runs ~15% faster than any real one.
 */
async function bareCopy(bytes) {
  const wasm = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
    1, 7, 1, 0x60, 3, 0x7f, 0x7f, 0x7f, 0,                       // type (i32 i32 i32) -> ()
    3, 2, 1, 0,                                                   // one function of that type
    5, 3, 1, 0, 32,                                               // memory: 32 pages (2 MiB)
    7, 14, 2, 4, 0x63, 0x6f, 0x70, 0x79, 0, 0, 3, 0x6d, 0x65, 0x6d, 2, 0, // exports "copy", "mem"
    10, 14, 1, 12, 0, 0x20, 0, 0x20, 1, 0x20, 2, 0xfc, 0x0a, 0, 0, 0x0b]); // dst src len memory.copy
  if (bytes > 1 << 20) throw new RangeError("bare copy: at most 1 MiB");
  const { instance } = await WebAssembly.instantiate(wasm);
  const { copy, mem } = instance.exports;
  new Uint8Array(mem.buffer, 0, bytes).fill(0xff);
  return () => copy(1 << 20, 0, bytes);
}

/**
 * The kernel helper's statistic, taken the same way (kvm-churn.c dirty): one
 * warm-up block of `reps` calls, then the fastest of `rounds` blocks, per call.
 * benny's fastest sample is a block too, but of a length it picks (many ms
 * here): on a loaded machine nearly every such block is preempted, while the
 * kernel's blocks of 50 calls (~0.5 ms) slip between other tenants (load 11-14
 * on 2 cores: benny's 18-30 us beside the kernel's 10.8 for the same GET).
 */
function bestBlock(fn, reps, rounds) {
  let best = Infinity;
  for (let round = 0; round <= rounds; round++) {
    const t0 = process.hrtime.bigint();
    for (let r = 0; r < reps; r++) fn();
    const dt = Number(process.hrtime.bigint() - t0) / reps;
    if (round && dt < best) best = dt;
  }
  return best;
}

function once(fn) {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0);
}

export async function dirtySuite(b, options, quick) {
  const clean = await slotVm(false);
  const dirty = await slotVm(true); // manual protect + INITIALLY_SET: every bit set, GET copies it all
  if (clean.vm.ioctl(KVM_GET_DIRTY_LOG, clean.get) !== 0 || dirty.vm.ioctl(KVM_GET_DIRTY_LOG, dirty.get) !== 0) throw new Error("GET");
  if (dirty.kvm.memory.peek(dirty.buf + BITMAP_BYTES - 8n, 8) !== (1n << 64n) - 1n) throw new Error("not fully dirty");
  // CLEAR of a whole, fully dirty slot, measured once per fresh slot (it leaves the slot clean).
  const clearDirtyNs = [];
  for (let i = 0; i < (quick ? 1 : 3); i++) {
    const d = await slotVm(true);
    d.kvm.memory.write(d.buf, new Uint8Array(Number(BITMAP_BYTES)).fill(0xff));
    clearDirtyNs.push(once(() => { if (d.vm.ioctl(KVM_CLEAR_DIRTY_LOG, d.clear) !== 0) throw new Error("CLEAR"); }));
  }
  const copy = await bareCopy(Number(BITMAP_BYTES));
  const getClean = () => { clean.vm.ioctl(KVM_GET_DIRTY_LOG, clean.get); };
  const getDirty = () => { dirty.vm.ioctl(KVM_GET_DIRTY_LOG, dirty.get); };
  const summary = await b.suite("dirty log, 16 GiB slot (4,194,304 pages)",
    b.add("GET_DIRTY_LOG clean", getClean, options),
    b.add("GET_DIRTY_LOG fully dirty (manual protect)", getDirty, options),
    b.add("bare wasm memory.copy of the bitmap (512 KiB)", copy, options),
    b.cycle());
  const t = perOp(summary);
  // The figures compared with the kernel's: its reps and rounds (below), its statistic.
  const [reps, blocks] = quick ? [3, 1] : [50, 5];
  const best = { getClean: bestBlock(getClean, reps, blocks), getDirty: bestBlock(getDirty, reps, blocks), bareCopy: bestBlock(copy, reps, blocks) };

  // Dirty ring: 10,000 distinct pages written by the guest, then harvest + reset (timed).
  const kvm = await Kvm.open({ core: "release" });
  const r = new ScriptRunner(kvm);
  for (const l of ["vm", "cap dirty_ring 262144", "hostmap A 0x4000000", "set 0 1 0x0 0x4000000 A+0", "vcpu"]) {
    if (r.op(l.split(" ")) !== "ok") throw new Error(l);
  }
  const vcpu = r.currentVcpu, vm = r.currentVm;
  const ENTRIES = 10000, rounds = quick ? 1 : 5;
  let harvestNs = Infinity, resetNs = Infinity;
  for (let round = 0; round < rounds; round++) {
    for (let p = 0; p < ENTRIES; p++) if (r.op(["write", `0x${(p * 4096).toString(16)}`, "1"]) !== "ok") throw new Error("write");
    let got = 0, count = 0;
    harvestNs = Math.min(harvestNs, once(() => { got = vcpu.dirtyRing.harvest().length; }));
    resetNs = Math.min(resetNs, once(() => { count = vm.resetDirtyRings(); }));
    if (got !== ENTRIES || count !== ENTRIES) throw new Error(`ring: ${got} harvested, ${count} reset`);
  }

  const result = {
    name: "dirty-log",
    getCleanNs: best.getClean,
    getDirtyNs: best.getDirty,
    meanNs: { getClean: t["GET_DIRTY_LOG clean"].meanNs, getDirty: t["GET_DIRTY_LOG fully dirty (manual protect)"].meanNs },
    fastestSampleNs: { getClean: t["GET_DIRTY_LOG clean"].ns, getDirty: t["GET_DIRTY_LOG fully dirty (manual protect)"].ns,
      bareCopy: t["bare wasm memory.copy of the bitmap (512 KiB)"].ns },
    bareCopyNs: best.bareCopy,
    clearFullyDirtyNs: Math.min(...clearDirtyNs),
    ringHarvestNs: harvestNs, ringResetNs: resetNs, ringEntries: ENTRIES,
    targetGetCleanNs: 10_000,
  };
  const kern = native.run("kvm-churn", ["dirty", reps, blocks]);
  if (kern.skipped) {
    result.kernelBaseline = `skipped: ${kern.skipped}`;
  } else {
    result.kernelBaseline = "kvm-churn dirty (/dev/kvm)";
    result.kernelGetCleanNs = kern.get_clean_ns;
    result.getCleanVsKernel = result.getCleanNs / kern.get_clean_ns;
    result.targetGetCleanVsKernel = 0.1;
    if (kern.get_dirty_ns !== undefined) {
      result.kernelGetDirtyNs = kern.get_dirty_ns;
      result.getDirtyVsKernel = result.getDirtyNs / kern.get_dirty_ns;
      result.targetGetDirtyVsKernel = 1;
      result.kernelClearFullyDirtyNs = kern.clear_dirty_ns;
      result.clearFullyDirtyVsKernel = result.clearFullyDirtyNs / kern.clear_dirty_ns;
    } else {
      result.kernelDirtyBaseline = `skipped: ${kern.skip_dirty}`;
    }
  }
  const per = (v, n) => `${(v / 1000).toFixed(1)} µs (${(v / n).toFixed(3)} ns/page)`;
  const vs = (v, k, target) => (k === undefined ? "" : `   kernel ${per(k, Number(PAGES))}: ${(v / k).toFixed(3)}x` +
    (target === undefined ? "" : ` [target ≤ ${target}x]`));
  console.log(`\nGET clean 16 GiB: ${per(result.getCleanNs, Number(PAGES))}   [target ≤ 10 µs]` +
    vs(result.getCleanNs, result.kernelGetCleanNs, 0.1));
  console.log(`GET fully dirty 16 GiB: ${per(result.getDirtyNs, Number(PAGES))}` + vs(result.getDirtyNs, result.kernelGetDirtyNs, 1));
  console.log(`bare wasm memory.copy of its 512 KiB: ${(result.bareCopyNs / 1000).toFixed(1)} µs   GET fully dirty / bare copy: ` +
    `${(result.getDirtyNs / result.bareCopyNs).toFixed(3)}x (no target: what the ioctl adds above the copy)`);
  console.log(`CLEAR fully dirty 16 GiB: ${per(result.clearFullyDirtyNs, Number(PAGES))}` +
    vs(result.clearFullyDirtyNs, result.kernelClearFullyDirtyNs));
  console.log(`ring: harvest ${per(harvestNs, ENTRIES).replace("page", "entry")}, reset ${per(resetNs, ENTRIES).replace("page", "entry")}`);
  console.log(`kernel baseline: ${result.kernelBaseline}`);
  return result;
}
