// The missing mode across threads (assembly/hostmm/userfaultfd.ts): a vCPU on
// a Worker reads pages of a registered range while the VMM thread places them
// in the background, as a post-copy destination does. A placement stores the
// pte under the mmap_lock after the page's data, and a vCPU's fault takes that
// lock too: the guest sees each page whole or gets a memory-fault exit for it,
// never a torn or zero page. Bounded by the guest's own exit, not by time.

import { describe, it, expect } from "vitest";
import { Kvm, VcpuThread, KVM_EXIT, KvmError } from "../src/index.js";
import { coreReg } from "../src/riscv.js";
import { Program, REG } from "./cpu/asm.js";
import * as A from "./cpu/asm.js";
import { WORKER } from "./threads-helpers.js";
import { Rng } from "./rng.js";

const RAM = 0x80000000n;
const PAGE = 4096n;
const N = 64;
const DATA = RAM + 0x10000n;
const { t0, t1, t2, t3, t4, a0 } = REG;

/** Page k of the range: every dword k + 1. */
function pageOf(k: number): Uint8Array {
  const b = new Uint8Array(4096);
  const dv = new DataView(b.buffer);
  for (let o = 0; o < 4096; o += 8) dv.setBigUint64(o, BigInt(k + 1), true);
  return b;
}

describe("missing pages placed while a vCPU on another thread faults on them", () => {
  // Ascending, the stream runs just ahead of the guest: the likeliest way for the vCPU to meet a page mid-placement.
  for (const seed of [0, 1, 2]) {
    it(`${seed ? `seed ${seed}: in random order` : "in ascending order"}, the guest reads ${N} pages placed meanwhile, each whole: its first and last dword as placed`, async () => {
      const kvm = await Kvm.open({ core: "threads" });
      const vm = kvm.createVm();
      const hva = kvm.memory.mmap(1n << 20n);
      vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: RAM, memorySize: 1n << 20n, userspaceAddr: hva });
      // For page k: ld its first and last dword; both must be k + 1, else a0 = 1.
      const p = new Program(RAM);
      p.li(t0, DATA).li(t1, 1).li(t3, N + 1);
      p.label("loop").emit(A.ld(t2, t0, 0));
      p.to("bad", (off) => A.bne(t2, t1, off));
      p.emit(A.addi(t4, t0, 2047), A.ld(t2, t4, 4088 - 2047));
      p.to("bad", (off) => A.bne(t2, t1, off));
      p.emit(A.addi(t1, t1, 1), A.lui(t4, 1), A.add(t0, t0, t4));
      p.to("loop", (off) => A.bne(t1, t3, off));
      p.emit(A.addi(a0, 0, 0), A.ecall());
      p.label("bad").emit(A.addi(a0, 0, 1), A.ecall());
      const words = p.finish();
      vm.writeGuest(RAM, new Uint8Array(words.buffer, words.byteOffset, words.byteLength));
      const vcpu = vm.createVcpu(0);
      vcpu.pc = RAM;
      kvm.memory.registerMissing(hva + (DATA - RAM), BigInt(N) * PAGE);

      const place = (k: number) => {
        try { kvm.memory.placePages(hva + (DATA - RAM) + BigInt(k) * PAGE, pageOf(k)); } catch (e) {
          if (!(e instanceof KvmError) || e.code !== "EEXIST") throw e; // the other side placed it first
        }
      };
      // The background stream: every page in order (or shuffled), yielding between pages.
      const rng = new Rng(seed);
      const order = Array.from({ length: N }, (_, k) => k);
      for (let i = N - 1; seed && i > 0; i--) { const j = rng.int(i + 1); [order[i], order[j]] = [order[j], order[i]]; }
      const t = await VcpuThread.start(kvm, vcpu, WORKER);
      let run = t.run(); // the vCPU starts first: the stream races with it
      let streaming = true;
      const stream = (async () => {
        for (const k of order) {
          if (!streaming) break;
          place(k);
          await new Promise((r) => setImmediate(r));
        }
      })();

      let faults = 0;
      for (;; run = t.run()) {
        const exit = await run;
        if (exit.reason === KVM_EXIT.MEMORY_FAULT) {
          // The urgent request: the page the vCPU needs, unless the stream got there first.
          faults++;
          const gpa = vcpu.kvmRun.memoryFault.gpa;
          expect(gpa >= DATA && gpa < DATA + BigInt(N) * PAGE && (gpa & (PAGE - 1n)) === 0n).toBe(true);
          place(Number((gpa - DATA) / PAGE));
          continue;
        }
        expect(exit.reason).toBe(KVM_EXIT.RISCV_SBI);
        break;
      }
      streaming = false;
      await stream;
      await t.terminate();
      expect(vcpu.getOneReg(coreReg(a0))).toBe(0n);
      expect(faults).toBeLessThanOrEqual(N);
      for (let k = 0; k < N; k++) expect(kvm.memory.isMissing(hva + (DATA - RAM) + BigInt(k) * PAGE)).toBe(false);
    });
  }
});
