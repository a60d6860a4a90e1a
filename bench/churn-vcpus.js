// Memslot churn with 2 running vCPUs (issue 16): the churn of bench/churn.js
// (same layout, same sequence, churnVm) while two vCPUs run a guest the whole
// time, on webkvm (threads-release core, each vCPU's KVM_RUN on a Worker of
// its own, VcpuThread) and on the real kernel (bench/native/kvm-churn.c
// churn-vcpus: two vCPU threads), same run.
//
// The guest sits in its own slot (slot n at GUEST_GPA, above every churned
// gfn) and loops over 16 data pages of its own: load a word, add 1, store it,
// then store its iteration count at its counter. So each vCPU holds sptes,
// which every delete and move zaps (x86's default KVM_X86_QUIRK_SLOT_ZAP_ALL,
// on both sides) with a remote TLB flush that must wait for (webkvm) or kick
// (kernel) the running vCPUs. The counters are read off the clock around every
// timed block, and between two blocks each vCPU runs SETTLE more iterations
// before the next starts. A block during which a vCPU did not advance is left
// out of the best, on both sides (the host has 2 cores for 3 busy threads: a
// short block may see a vCPU descheduled, and such blocks are the fast ones);
// a kind with no block left is an error, not a figure. The rows print the
// blocks kept and each vCPU's iterations during the kind's blocks.
//
// What bounds webkvm's figures: a vCPU leaves guest mode at least every 4,096
// instructions (a chunk of the interpreter's fast loop), so a flush waits at
// most one chunk per vCPU (~4,096 / the vCPU's MIPS, ~12 us) while the vCPU's
// thread is on a core, plus the futex wake; a vCPU descheduled in guest mode
// makes it wait for the host scheduler (the kernel's is out of guest mode then).
import { Kvm, VcpuThread, KVM_EXIT } from "../dist/index.js";
import * as native from "./native/native.js";
import { churnVm, SLOT_BYTES, KINDS } from "./churn.js";
import { ld, sd, add, addi, bne, jal } from "./rv64.js";

const VCPUS = 2;
const SETTLE = 1000; // guest iterations every vCPU runs between two timed blocks
const nap = new Int32Array(new SharedArrayBuffer(4));
const TARGET = 0.1;
// As in kvm-churn.c: above the churned range (2 * 32,000 slots * 64 KiB) and below 4 GiB.
const GUEST_GPA = 0xff000000n;
const GUEST_BYTES = 1n << 20n;
const COUNTER_OFF = 0x800n; // vCPU i's counter at COUNTER_OFF + 64 * i
const DATA_OFF = 0x10000n; // vCPU i's 16 data pages at DATA_OFF + 0x10000 * i
const X = { t0: 5, t1: 6, t2: 7, s0: 8, a0: 10, a1: 11, t3: 28 };

// a0 = the vCPU's data pages, a1 = its counter, t2 = 4096.
const GUEST = [
  add(X.t0, X.a0, 0), //              outer: t0 = first data page
  addi(X.t3, 0, 16), //                      16 pages
  ld(X.t1, X.t0, 0), //               inner: load, add 1, store
  addi(X.t1, X.t1, 1),
  sd(X.t1, X.t0, 0),
  addi(X.s0, X.s0, 1), //                    count the iteration
  sd(X.s0, X.a1, 0),
  add(X.t0, X.t0, X.t2), //                  next page
  addi(X.t3, X.t3, -1),
  bne(X.t3, 0, -28), //                      -> inner
  jal(0, -40), //                            -> outer
];

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * VCPUS vCPUs of vm, each on a Worker of its own, running GUEST from slot
 * `slot` at GUEST_GPA; resolves once every one has counted. counter(i): vCPU
 * i's iterations so far; stop(): kicks them out of KVM_RUN and ends the Workers.
 */
export async function runningVcpus(kvm, vm, slot) {
  const guest = kvm.memory.mmap(GUEST_BYTES);
  vm.setUserMemoryRegion({ slot, guestPhysAddr: GUEST_GPA, memorySize: GUEST_BYTES, userspaceAddr: guest });
  const code = new Uint8Array(GUEST.length * 4);
  GUEST.forEach((w, i) => new DataView(code.buffer).setUint32(i * 4, w, true));
  vm.writeGuest(GUEST_GPA, code);
  const vcpus = Array.from({ length: VCPUS }, (_, i) => {
    const v = vm.createVcpu(i);
    v.setReg(X.a0, GUEST_GPA + DATA_OFF + 0x10000n * BigInt(i));
    v.setReg(X.a1, GUEST_GPA + COUNTER_OFF + 64n * BigInt(i));
    v.setReg(X.t2, 4096n);
    v.pc = GUEST_GPA;
    v.setBudget(Number.MAX_SAFE_INTEGER); // the guest never exits: its run ends by a kick
    return v;
  });
  const counter = (i) => kvm.memory.peek(guest + COUNTER_OFF + 64n * BigInt(i), 8);
  const threads = await Promise.all(vcpus.map((v) => VcpuThread.start(kvm, v)));
  const runs = threads.map((t) => t.run());
  let failed = null;
  runs.forEach((r) => r.catch((e) => { failed = e; }));
  const t0 = Date.now();
  for (let i = 0; i < VCPUS; i++) {
    while (counter(i) === 0n) {
      if (failed) throw failed;
      if (Date.now() - t0 > 10_000) throw new Error(`churn with vCPUs: vCPU ${i} did not start its guest in 10 s`);
      await sleep(1);
    }
  }
  const stop = async () => {
    threads.forEach((t) => t.kick());
    const exits = await Promise.all(runs);
    await Promise.all(threads.map((t) => t.terminate()));
    for (const e of exits) if (e.reason !== KVM_EXIT.INTR) throw new Error(`churn vCPU exit ${e.name}, not INTR`);
  };
  return { counter, stop };
}

export async function webkvmChurnVcpus(n, reps, rounds, wasm = undefined) {
  const kvm = await Kvm.open({ core: "threads-release", wasm });
  const vm = kvm.createVm();
  const { counter, stop } = await runningVcpus(kvm, vm, n);

  // Per kind, over the counted rounds' blocks: each vCPU's guest iterations. A block counts only if
  // every vCPU advanced during it. Between blocks (off the clock) every vCPU runs SETTLE more
  // iterations, so each block starts with them running.
  const ids = [...Array(VCPUS).keys()];
  const iters = Object.fromEntries(KINDS.map((k) => [k, ids.map(() => 0)]));
  let last = ids.map(counter);
  const mark = (kind, round) => {
    const now = ids.map(counter);
    const adv = ids.map((i) => Number(now[i] - last[i]));
    if (kind !== null && round > 0) ids.forEach((i) => { iters[kind][i] += adv[i]; });
    const t0 = Date.now();
    for (const i of ids) {
      while (counter(i) - now[i] < SETTLE) {
        if (Date.now() - t0 > 10_000) throw new Error(`churn with vCPUs: vCPU ${i} ran no ${SETTLE} iterations in 10 s`);
        Atomics.wait(nap, 0, 0, 0.05);
      }
    }
    last = ids.map(counter);
    return Math.min(...adv) > 0;
  };
  const r = churnVm(vm, kvm.memory.mmap(BigInt(n) * SLOT_BYTES), n, reps, rounds, mark);
  await stop();
  if (vm.memslots().length !== n + 1) throw new Error(`churn left ${vm.memslots().length} slots, not ${n + 1}`);
  return { ...r, iters };
}

export async function churnVcpusSuite(quick) {
  // Quick (CI's smoke run): 1k slots only, few reps.
  const plans = quick
    ? [{ n: 1000, reps: 500, rounds: 2 }]
    : [{ n: 1000, reps: 1000, rounds: 8 }, { n: 32000, reps: 8000, rounds: 3 }];
  const rows = [];
  console.log(`\nmemslot churn with ${VCPUS} running vCPUs (ns per ioctl; webkvm threads-release, vCPUs on Workers; ` +
    `kernel with ${VCPUS} vCPU threads; target ≤ ${TARGET}x)`);
  for (const p of plans) {
    const w = await webkvmChurnVcpus(p.n, p.reps, p.rounds);
    const kern = native.run("kvm-churn", ["churn-vcpus", p.n, p.reps, p.rounds]);
    const row = { slots: p.n, vcpus: VCPUS, reps: w.reps, rounds: p.rounds, populateNs: w.populateNs };
    if (kern.skipped) row.kernel = `skipped: ${kern.skipped}`;
    else row.kernelPopulateNs = kern.populate_ns;
    for (const kind of KINDS) {
      // A figure whose vCPUs did not run during its timed blocks is an error, not a figure.
      const r = { target: TARGET, vcpuIters: w.iters[kind], blocksCounted: w.counted[kind], errors: [] };
      if (r.blocksCounted > 0) r.webkvmNs = w[`${kind}Ns`];
      else r.errors.push("webkvm: in no timed block did every vCPU run");
      if (!kern.skipped) {
        r.kernelVcpuIters = [...Array(VCPUS).keys()].map((i) => kern[`vcpu${i}_iters_${kind}`]);
        r.kernelBlocksCounted = kern[`blocks_counted_${kind}`];
        if (r.kernelBlocksCounted > 0) r.kernelNs = kern[`${kind}_ns`];
        else r.errors.push("kernel: in no timed block did every vCPU thread run");
        if (r.webkvmNs !== undefined && r.kernelNs !== undefined) r.ratio = r.webkvmNs / r.kernelNs;
      }
      row[kind] = r;
    }
    rows.push(row);
    const f = (v) => (v === undefined ? "-" : v.toFixed(0)).padStart(9);
    console.log(`${String(p.n).padStart(6)} slots   ${"webkvm".padStart(9)} ${"kernel".padStart(9)}   webkvm/kernel` +
      "   blocks counted (every vCPU ran), guest iterations per vCPU during all blocks: webkvm | kernel");
    for (const kind of KINDS) {
      const r = row[kind];
      console.log(`  ${kind.padEnd(12)} ${f(r.webkvmNs)} ${f(r.kernelNs)}   ${(r.ratio === undefined ? "-" : r.ratio.toFixed(3) + "x").padEnd(13)}` +
        `   ${r.blocksCounted}/${p.rounds}, ${r.vcpuIters.join(" + ")} | ${r.kernelBlocksCounted ?? "-"}/${p.rounds}, ${r.kernelVcpuIters?.join(" + ") ?? "-"}`);
      for (const e of r.errors) console.log(`    error: ${e}`);
    }
    console.log(`  ${"populate".padEnd(12)} ${f(row.populateNs)} ${f(row.kernelPopulateNs)}   (creating slots 0..${p.n - 1}, no target)`);
    if (kern.skipped) console.log(`  kernel baseline skipped: ${kern.skipped}`);
  }
  return { name: "memslot-churn-vcpus", unit: "ns per ioctl", target: TARGET, vcpus: VCPUS, rows };
}
