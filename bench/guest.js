// Guest execution: MIPS on the reference workload (shared/anchors/guest-mips,
// wrapped as guests/mips) with every access through the shadow page tables,
// and the cost of a guest store that hits its spte against a plain store.
import { readFileSync } from "node:fs";
import { Kvm, Machine } from "../dist/index.js";

const MIPS_IMAGE = new URL("../guests/mips/mips.bin", import.meta.url);
const STORES = 1 << 20;

async function mipsRun(iters, jit) {
  const m = await Machine.create({ kvm: await Kvm.open({ core: "release", jit }), memSize: 16n << 20n });
  m.load(new Uint8Array(readFileSync(MIPS_IMAGE)), iters);
  const t0 = process.hrtime.bigint();
  const r = m.run();
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.stop !== "shutdown" || r.reason !== 0) throw new Error(`mips guest stopped: ${r.stop}`);
  return { instructions: Number(r.instructions), secs, output: m.output.trim() };
}

export async function guestSuite(b, options, quick) {
  const iters = quick ? 200_000 : 40_000_000;
  const runs = quick ? 1 : 3;
  // The product as shipped (hot regions translated to WebAssembly), and the
  // interpreter alone for comparison; both with every access through the sptes.
  const bestOf = async (jit) => {
    let best = null;
    for (let i = 0; i < runs; i++) {
      const r = await mipsRun(iters, jit);
      if (!best || r.secs < best.secs) best = r;
    }
    return { ...best, mips: best.instructions / best.secs / 1e6 };
  };
  const best = await bestOf(true);
  const interp = await bestOf(false);
  const mips = best.mips;
  console.log(`\nguest MIPS (${iters} iterations, best of ${runs}): ${best.instructions} instructions in ` +
    `${best.secs.toFixed(3)} s = ${mips.toFixed(0)} MIPS (${(mips / 281).toFixed(2)}x TinyEMU-wasm's 281); ` +
    `interpreter only ${interp.mips.toFixed(0)} MIPS; ${best.output}`);
  if (interp.output !== best.output) throw new Error(`interpreter and translated runs disagree: ${interp.output} / ${best.output}`);

  const kvm = await Kvm.open({ core: "release" });
  const core = kvm.core;
  if (core.memInit(1n << 20n) !== 0) throw new Error("memInit");
  core.cpuReset(0x80000000n);
  let sink = 0n;
  const summary = await b.suite(`guest store: spte hit vs plain store (${STORES} stores per op)`,
    b.add("spte-hit store", () => { sink ^= core.benchSpteStores(0x80001000n, STORES); }, options),
    b.add("plain store", () => { sink ^= core.benchRawStores(STORES); }, options),
    b.cycle());
  const ns = Object.fromEntries(summary.results.map((r) => [r.name, 1e9 / (r.ops * STORES)]));
  const extra = ns["spte-hit store"] - ns["plain store"];
  console.log(`spte-hit store ${ns["spte-hit store"].toFixed(2)} ns, plain store ${ns["plain store"].toFixed(2)} ns: ` +
    `+${extra.toFixed(2)} ns per store through the shadow page table`);
  void sink;
  return {
    name: "guest",
    mips: { iterations: iters, instructions: best.instructions, seconds: best.secs, mips, targetMips: 281,
      interpreterMips: interp.mips, interpreterSeconds: interp.secs },
    store: { spteHitNs: ns["spte-hit store"], plainNs: ns["plain store"], extraNs: extra, targetExtraNs: 2 },
  };
}
