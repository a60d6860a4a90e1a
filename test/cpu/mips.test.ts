// The reference compute loop (kernel_run of guests/mips, modelled in guests/mips/reference.mjs)
// hand-encoded as riscv64-unknown-elf-gcc 12.2 -O2 emits it: 19 instructions
// per iteration when bit 8 of the loaded word is clear, 20 when set. Checks
// the checksum against the native build of the same C, and with
// WEBKVM_BENCH=1 measures MIPS on the bench core (build/bench.wasm: the
// release build's code plus the test surface):
//
//   WEBKVM_BENCH=1 npx vitest run test/cpu/mips.test.ts

import { describe, it, expect } from "vitest";
import { Cpu, instantiate, RAM_BASE } from "./harness";
import { Program, REG as R } from "./asm";
import * as A from "./asm";

const ARR_WORDS = 8192;
const ARR = RAM_BASE + 0x10000n;
const LCG_MUL = 6364136223846793005n;
const LCG_ADD = 1442695040888963407n;
const GOLDEN = 0x9e3779b97f4a7c15n;
const INIT_SEED = 12345n;
const RUN_SEED = 0xc0ffeen;
const u = (v: bigint) => BigInt.asUintN(64, v);

// kernel_run(iters, seed) from the native x86-64 build of kernel.c, after kernel_init(12345).
const NATIVE_CHECKSUM: Record<number, bigint> = {
  1000: 0x7511d2439f1a974cn,
  100000: 0xa0866fb8bb434b8an,
  40000000: 0x1bcb6ae6a9f78b92n,
};

/** The loop body; ends in ecall so the run stops with EXIT_SBI. Registers as gcc allocates them. */
function kernelProgram(): Program {
  const p = new Program();
  p.label("loop")
    .emit(A.mul(R.a1, R.a1, R.t0))      // seed *= LCG_MUL
    .emit(A.add(R.a1, R.a1, R.t6))      // seed += LCG_ADD
    .emit(A.srli(R.a5, R.a1, 40))
    .emit(A.and(R.a5, R.a5, R.t3))      // idx = (seed >> 40) & 8191
    .emit(A.slli(R.a5, R.a5, 3))
    .emit(A.add(R.a5, R.t5, R.a5))      // &a[idx]
    .emit(A.ld(R.a3, R.a5, 0))          // v
    .emit(A.srli(R.a4, R.a1, 21))
    .emit(A.add(R.a0, R.a3, R.a0))      // acc + v
    .emit(A.xor(R.a4, R.a4, R.a0))      // ^ (seed >> 21)
    .emit(A.mul(R.a4, R.a4, R.t4))      // *= GOLDEN
    .emit(A.andi(R.a7, R.a3, 256))
    .emit(A.srli(R.a2, R.a4, 13))
    .emit(A.add(R.a2, R.a2, R.a3))
    .emit(A.sd(R.a2, R.a5, 0))          // a[idx] = v + (acc >> 13)
    .emit(A.xor(R.a0, R.a4, R.a3))      // acc ^= v
    .to("skip", (off) => A.beq(R.a7, 0, off))
    .emit(A.add(R.a0, R.a4, R.a6))      // acc += it
    .label("skip")
    .emit(A.addi(R.a6, R.a6, 1))
    .to("loop", (off) => A.bne(R.t1, R.a6, off))
    .emit(A.ecall());
  return p;
}

function kernelInitWords(): bigint[] {
  const out: bigint[] = [];
  let seed = INIT_SEED;
  for (let i = 0n; i < BigInt(ARR_WORDS); i++) {
    seed = u(seed * LCG_MUL + LCG_ADD);
    out.push(seed ^ (i << 32n));
  }
  return out;
}

/** The same loop in BigInt, for small iteration counts: the checksum and how often bit 8 was set. */
function kernelRunModel(arr: bigint[], iters: number, seed: bigint): { acc: bigint; bit8: bigint } {
  let acc = 0n, bit8 = 0n;
  for (let it = 0n; it < BigInt(iters); it++) {
    seed = u(seed * LCG_MUL + LCG_ADD);
    const idx = Number((seed >> 40n) & 8191n);
    const v = arr[idx];
    acc = u(u(acc + v) ^ (seed >> 21n));
    acc = u(acc * GOLDEN);
    arr[idx] = u(v + (acc >> 13n));
    if ((v & 0x100n) !== 0n) { bit8++; acc = u(acc + it); } else acc ^= v;
  }
  return { acc, bit8 };
}

interface Setup { ex: any; host: number; }

/** Writes guest-physical memory through the core's kvm_write_guest. */
function writePhys(ex: any, gpa: bigint, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.length; done += 65536) {
    const part = bytes.subarray(done, done + 65536);
    new Uint8Array(ex.memory.buffer, ex.ioBuffer(), part.length).set(part);
    if (ex.memPhys(gpa + BigInt(done), part.length, true) !== 0) throw new Error("not RAM");
  }
}

function prepare(ex: any, iters: number): void {
  const words = kernelProgram().finish();
  writePhys(ex, RAM_BASE, new Uint8Array(words.buffer, words.byteOffset, words.byteLength));
  writePhys(ex, ARR, new Uint8Array(BigUint64Array.from(kernelInitWords()).buffer));
  ex.cpuReset(RAM_BASE);
  const set = (r: number, v: bigint) => ex.cpuSetX(r, BigInt.asIntN(64, v));
  set(R.t1, BigInt(iters));
  set(R.a1, RUN_SEED);
  set(R.t0, LCG_MUL);
  set(R.t6, LCG_ADD);
  set(R.t5, ARR);
  set(R.t4, GOLDEN);
  set(R.t3, 8191n);
  set(R.a6, 0n);
  set(R.a0, 0n);
}

/** Runs to the final ecall; returns [checksum, retired instructions, seconds]. */
function runKernel(ex: any, iters: number): [bigint, bigint, number] {
  prepare(ex, iters);
  const t0 = process.hrtime.bigint();
  let exit: number;
  while ((exit = ex.cpuRun(100_000_000)) === ex.EXIT_BUDGET.value) { /* keep going */ }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  expect(exit).toBe(ex.EXIT_SBI.value);
  return [BigInt.asUintN(64, ex.cpuGetX(R.a0)), BigInt.asUintN(64, ex.cpuInstret()), secs];
}

describe("guest-mips kernel loop", () => {
  it("is encoded as gcc emits it: 19 or 20 instructions per iteration", () => {
    // Cross-checked against objdump of guests/mips/mips.elf (kernel_run at 0x80000384..0x800003d0).
    const words = Array.from(kernelProgram().finish());
    expect(words.slice(0, 20).map((w) => w.toString(16).padStart(8, "0"))).toEqual([
      "025585b3", "01f585b3", "0285d793", "01c7f7b3", "00379793", "00ff07b3", "0007b683", "0155d713",
      "00a68533", "00a74733", "03d70733", "1006f893", "00d75613", "00d60633", "00c7b023", "00d74533",
      "00088463", "01070533", "00180813", "fb031ae3",
    ]);
  });

  it("computes the native checksum (1000 and 100000 iterations) and retires the right count", async () => {
    const cpu = await Cpu.create(1 << 20);
    for (const iters of [1000, 100000]) {
      const [sum, retired] = runKernel(cpu.ex, iters);
      expect(sum).toBe(NATIVE_CHECKSUM[iters]);
      if (iters === 1000) {
        const model = kernelRunModel(kernelInitWords(), iters, RUN_SEED);
        expect(model.acc).toBe(sum);
        // Each "bit 8 set" iteration takes the one extra instruction.
        expect(retired).toBe(19n * 1000n + model.bit8);
      }
    }
  });

  it.skipIf(!process.env.WEBKVM_BENCH)("MIPS on the -O3 build (40M iterations, best of 3)", async () => {
    const ex = await instantiate("bench");
    expect(ex.isDebugBuild()).toBe(0);
    expect(ex.memInit(1n << 20n)).toBe(0);
    let best = Infinity, retired = 0n;
    for (let i = 0; i < 3; i++) {
      const [sum, n, secs] = runKernel(ex, 40_000_000);
      expect(sum).toBe(NATIVE_CHECKSUM[40000000]);
      retired = n;
      best = Math.min(best, secs);
    }
    const mips = Number(retired) / best / 1e6;
    console.log(`guest-mips: ${retired} instructions in ${best.toFixed(3)} s = ${mips.toFixed(0)} MIPS ` +
      `(${(best * 1e9 / 40e6).toFixed(1)} ns/iteration)`);
    expect(mips).toBeGreaterThan(0);
  }, 120_000);
});
