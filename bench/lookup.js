// gfn -> hva lookups at 1..32,764 slots: the core's search (batched inside the
// core, so call overhead is amortised over 4,096 lookups) against a plain
// TypeScript binary search, a native C binary search (bench/native/binsearch.c,
// cc -O2) over the same table and the same gfn batches, and the core's own
// search in native C (bench/native/gfnindex.c) over a copy of the core's own
// records and bucket index, in the same run.
import { Kvm } from "../dist/index.js";
import { LOOKUP } from "../dist/abi.gen.js";
import * as native from "./native/native.js";
import { gfnIndexImage, runGfnIndex } from "./native/gfnindex.js";
import { perOp } from "./best.js";

/** The release build's code plus the batched lookup loop (assembly/harness.ts benchLookup). */
const BENCH_CORE = new URL("../build/bench.wasm", import.meta.url);
const BATCH = 4096;
const SLOT_PAGES = 16n;

function lcg(seed) {
  let s = BigInt(seed);
  return () => {
    s = (s * 6364136223846793005n + 1442695040888963407n) & 0xffffffffffffffffn;
    return Number(s >> 33n);
  };
}

/** A VM with n slots of 16 pages, every other 16-page gfn window left as a hole. */
async function setup(n) {
  const kvm = await Kvm.open({ core: "release", wasm: BENCH_CORE });
  const vm = kvm.createVm();
  const hva = kvm.memory.mmap(BigInt(n) * SLOT_PAGES * 4096n);
  for (let i = 0; i < n; i++) {
    vm.setUserMemoryRegion({ slot: i, guestPhysAddr: BigInt(i) * 2n * SLOT_PAGES * 4096n,
      memorySize: SLOT_PAGES * 4096n, userspaceAddr: hva + BigInt(i) * SLOT_PAGES * 4096n });
  }
  const slots = vm.memslots();
  const table = {
    base: Float64Array.from(slots, (s) => Number(s.baseGfn)),
    npages: Float64Array.from(slots, (s) => Number(s.npages)),
    uaddr: Float64Array.from(slots, (s) => Number(s.userspaceAddr)),
  };
  const rnd = lcg(n * 7 + 1);
  const gfns = new Float64Array(BATCH);
  for (let i = 0; i < BATCH; i++) gfns[i] = Number(table.base[rnd() % n]) + (rnd() % Number(SLOT_PAGES));
  const core = kvm.core;
  const ptr = core.kmalloc(BATCH * 8);
  const view = () => new BigUint64Array(core.memory.buffer, ptr, BATCH);
  view().set(Array.from(gfns, (g) => BigInt(g)));
  const seq = core.kmalloc(BATCH * 8);
  const seqGfns = Float64Array.from({ length: BATCH }, (_, i) => table.base[Math.floor(i / 16) % n] + (i % 16));
  new BigUint64Array(core.memory.buffer, seq, BATCH).set(Array.from(seqGfns, (g) => BigInt(g)));
  const hot = core.kmalloc(BATCH * 8);
  new BigUint64Array(core.memory.buffer, hot, BATCH).fill(BigInt(gfns[0]));
  const vcpu = vm.createVcpu(0);
  return { kvm, vm, core, ptr, seq, hot, gfns, seqGfns, table, vcpuFd: vcpu.fd };
}

/** The baseline: a plain binary search over sorted typed arrays. */
function tsLookup(t, gfn) {
  let lo = 0, hi = t.base.length - 1, found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (t.base[mid] <= gfn) { found = mid; lo = mid + 1; } else hi = mid - 1;
  }
  if (found < 0 || gfn >= t.base[found] + t.npages[found]) return -1;
  return t.uaddr[found] + (gfn - t.base[found]) * 4096;
}

function tsBatch(t, gfns) {
  let sum = 0;
  for (let i = 0; i < gfns.length; i++) sum += tsLookup(t, gfns[i]);
  return sum;
}

/** The native baseline on the same table and batches; checks its sums against the core's (random: wasmSum). */
function nativeLookups(s, n, quick, wasmSum) {
  const file = native.writeU64(`lookup-${n}.bin`,
    [n, BATCH, ...s.table.base, ...s.table.npages, ...s.table.uaddr, ...s.gfns, ...s.seqGfns]);
  const r = native.run("binsearch", [file, quick ? 2 : 100, quick ? 2 : 5]);
  if (r.skipped) return r;
  const want = {
    random: BigInt.asUintN(64, wasmSum),
    sequential: BigInt.asUintN(64, s.core.benchLookup(s.vm.fd, 0, s.seq, BATCH, LOOKUP.VM, 1)),
  };
  for (const k of ["random", "sequential"]) {
    if (BigInt(r.raw[`checksum_${k}`]) !== want[k]) throw new Error(`native ${k} lookup mismatch at ${n} slots`);
  }
  return r;
}

/**
 * The gfn keys both searches answer one by one: the timed random batch, keys
 * anywhere in and around the set (holes between slots, before the first and
 * past the last) and the edges of every 97th slot.
 */
function checkKeys(s, n) {
  const rnd = lcg(n * 13 + 5);
  const span = Number(s.table.base[n - 1] + s.table.npages[n - 1]) + 64;
  const keys = [...s.gfns];
  for (let i = 0; i < 1024; i++) keys.push(rnd() % span);
  for (let i = 0; i < n; i += 97) {
    const b = s.table.base[i], e = b + s.table.npages[i];
    keys.push(b, e - 1, e, b + 2 * Number(SLOT_PAGES) - 1);
  }
  keys.push(2 ** 52);
  return keys;
}

/**
 * The core's search in native C over the core's own bytes: times the random
 * batch and checks, key by key, that C, the core and the TypeScript model
 * find the same hva (so the same slot) for every checkKeys gfn.
 */
function nativeIndexLookups(s, n, quick, wasmSum) {
  const core = s.core;
  const keys = checkKeys(s, n);
  const r = runGfnIndex(`gfnindex-${n}`, gfnIndexImage(core, s.vm.fd), s.gfns, keys, quick ? 2 : 100, quick ? 2 : 5);
  if (r.skipped) return r;
  if (BigInt(r.raw.checksum_random) !== BigInt.asUintN(64, wasmSum)) throw new Error(`native gfn index: random checksum differs at ${n} slots`);
  const at = core.kmalloc(8);
  keys.forEach((k, i) => {
    new BigUint64Array(core.memory.buffer, at, 1)[0] = BigInt(k);
    const mine = core.benchLookup(s.vm.fd, 0, at, 1, LOOKUP.SEARCH, 1);
    const model = Math.max(tsLookup(s.table, k), 0);
    if (BigInt.asUintN(64, mine) !== r.hvas[i] || r.hvas[i] !== BigInt(model)) {
      throw new Error(`gfn ${k} at ${n} slots: core hva ${mine}, native C ${r.hvas[i]}, model ${model}`);
    }
  });
  core.kmfree(at);
  return { ...r, checked: keys.length };
}

export async function lookupSuite(b, sizes, options, quick = false) {
  const rows = [];
  let nativeSkipped = null;
  for (const n of sizes) {
    const s = await setup(n);
    // Same table, same answers: check before timing.
    const wasmSum = s.core.benchLookup(s.vm.fd, 0, s.ptr, BATCH, LOOKUP.SEARCH, 1);
    let expect = 0n;
    for (const g of s.gfns) expect += BigInt(tsLookup(s.table, g));
    if (BigInt.asUintN(64, wasmSum) !== expect) throw new Error(`lookup mismatch at ${n} slots`);
    let sink = 0;
    const summary = await b.suite(`gfn -> hva, ${n} slots (${BATCH} lookups per op)`,
      b.add("wasm random", () => { sink ^= Number(s.core.benchLookup(s.vm.fd, 0, s.ptr, BATCH, LOOKUP.SEARCH, 1) & 1n); }, options),
      b.add("wasm sequential", () => { sink ^= Number(s.core.benchLookup(s.vm.fd, 0, s.seq, BATCH, LOOKUP.VM, 1) & 1n); }, options),
      b.add("wasm last-used hit (vCPU)", () => { sink ^= Number(s.core.benchLookup(s.vcpuFd, 0, s.hot, BATCH, LOOKUP.VCPU, 1) & 1n); }, options),
      b.add("ts binary search random", () => { sink ^= tsBatch(s.table, s.gfns) & 1; }, options),
      b.cycle(),
    );
    const t = perOp(summary, BATCH);
    const row = {
      slots: n,
      wasmRandomNs: t["wasm random"].ns, wasmSequentialNs: t["wasm sequential"].ns, wasmHitNs: t["wasm last-used hit (vCPU)"].ns,
      tsBinaryNs: t["ts binary search random"].ns,
      meanNs: Object.fromEntries(Object.entries(t).map(([k, v]) => [k, v.meanNs])),
    };
    row.speedupVsTs = row.tsBinaryNs / row.wasmRandomNs;
    const nat = nativeLookups(s, n, quick, wasmSum);
    if (nat.skipped) {
      nativeSkipped = nat.skipped;
      row.native = `skipped: ${nat.skipped}`;
    } else {
      row.nativeRandomNs = nat.random_ns;
      row.nativeSequentialNs = nat.sequential_ns;
      row.wasmVsNativeRandom = row.wasmRandomNs / row.nativeRandomNs;
      row.wasmVsNativeSequential = row.wasmSequentialNs / row.nativeSequentialNs;
      row.tsVsNativeRandom = row.tsBinaryNs / row.nativeRandomNs;
    }
    const idx = nativeIndexLookups(s, n, quick, wasmSum);
    if (!idx.skipped) {
      row.nativeIndexRandomNs = idx.random_ns;
      row.wasmVsNativeIndexRandom = row.wasmRandomNs / row.nativeIndexRandomNs;
      row.nativeIndexChecked = idx.checked;
    }
    if (n === 32764) {
      row.targetWasmVsNativeRandom = 0.25;
      row.targetWasmVsNativeIndex = 1.2;
      row.targetHitNs = 2;
    }
    rows.push(row);
    void sink;
  }
  const f = (v, w) => (v === undefined ? "-" : `${v.toFixed(2)}`).padStart(w);
  console.log("\nslots   wasm random   sequential   last-used hit   TS binary search   TS / wasm" +
    "   native random   native seq   wasm/native rnd   wasm/native seq   native index rnd   wasm/native index");
  for (const r of rows) {
    console.log(`${String(r.slots).padStart(5)}   ${f(r.wasmRandomNs, 8)} ns   ${f(r.wasmSequentialNs, 7)} ns   ` +
      `${f(r.wasmHitNs, 10)} ns   ${f(r.tsBinaryNs, 12)} ns   ${f(r.speedupVsTs, 7)}x   ${f(r.nativeRandomNs, 10)} ns   ` +
      `${f(r.nativeSequentialNs, 7)} ns   ${f(r.wasmVsNativeRandom, 14)}x   ${f(r.wasmVsNativeSequential, 14)}x   ` +
      `${f(r.nativeIndexRandomNs, 13)} ns   ${f(r.wasmVsNativeIndexRandom, 16)}x`);
  }
  const checked = rows.reduce((a, r) => a + (r.nativeIndexChecked ?? 0), 0);
  if (checked) console.log(`native gfn index: the same hva as the core and the TS model for all ${checked} check gfns`);
  if (nativeSkipped) console.log(`native binary search skipped: ${nativeSkipped}`);
  return { name: "gfn-to-hva", unit: "ns per lookup", rows,
    native: nativeSkipped ? `skipped: ${nativeSkipped}` : "cc -O2 bench/native/binsearch.c, bench/native/gfnindex.c" };
}
