// The runner's guest: one store or load instruction per `write`/`read`, run on
// vCPU 0 from the runner's code slot, and the KVM exits it causes, printed in
// the suite's vocabulary (conformance/README.md, "The script language, in short").

import type { Vcpu } from "../vcpu.js";
import { errnoName } from "../errors.js";
import { KVM_EXIT, EXIT_NAMES } from "../kvm-run.js";
import { hex, hexBytes } from "./output.js";

/** The runner's code slot: id, gpa and size are part of the recorded outputs. */
export const CODE_SLOT = 32000;
export const CODE_GPA = 0xfff00000n;
export const CODE_SIZE = 1n << 20n;
/** Guest accesses must lie in [0, 64 GiB). */
export const GUEST_LIMIT = 64n << 30n;
const MAX_EXITS = 64;
const TIMEOUT_MS = 2000;
/** a7 of the runner guest's "access done" ecall. */
const RUNNER_DONE_EID = 0x52554e52n;
const EINTR = 4;

/**
 * The runner's guest code, at CODE_GPA: per access kind an instruction and the
 * ecall that reports it done. Stores (sb/sh/sw/sd a1, 0(a0)) at 8*k, loads
 * (lbu/lhu/lwu/ld a0, 0(a0)) at 0x20 + 8*k, k = log2(size).
 */
export function runnerCode(): Uint8Array {
  const words: number[] = [];
  const ecall = 0x00000073;
  for (const f3 of [0, 1, 2, 3]) words.push(((11 << 20) | (10 << 15) | (f3 << 12) | 0x23) >>> 0, ecall);
  for (const f3 of [4, 5, 6, 3]) words.push(((10 << 15) | (f3 << 12) | (10 << 7) | 0x03) >>> 0, ecall);
  const out = new Uint8Array(words.length * 4);
  const dv = new DataView(out.buffer);
  words.forEach((w, i) => dv.setUint32(i * 4, w, true));
  return out;
}

/**
 * Runs one guest store (write) or load of `size` bytes at gpa; returns the
 * exits it caused and its outcome, `; `-separated, or null after 64 exits.
 */
export function guestAccess(vcpu: Vcpu, write: boolean, gpa: bigint, value: bigint, size: 1 | 2 | 4 | 8): string | null {
  vcpu.setReg(10, gpa);
  vcpu.setReg(11, value);
  vcpu.setReg(17, RUNNER_DONE_EID);
  vcpu.pc = CODE_GPA + BigInt((write ? 0 : 0x20) + 8 * Math.log2(size));
  const parts: string[] = [];
  const done = (last: string) => { parts.push(last); return parts.join("; "); };
  const deadline = Date.now() + TIMEOUT_MS;
  for (let exits = 0; exits < MAX_EXITS; exits++) {
    const exit = vcpu.run();
    const run = vcpu.kvmRun;
    if (exit.errno !== 0 && exit.errno !== EINTR) {
      if (exit.reason !== KVM_EXIT.MEMORY_FAULT) return done(errnoName(exit.errno));
      const f = run.memoryFault;
      return done(`${errnoName(exit.errno)} memory_fault gpa=${hex(f.gpa)} size=${hex(f.size)} flags=${hex(f.flags)}`);
    }
    switch (exit.reason) {
      case KVM_EXIT.MMIO: {
        const m = run.mmio;
        if (m.isWrite) {
          parts.push(`mmio write ${hex(m.physAddr)} ${m.len} ${hexBytes(m.data.subarray(0, m.len))}`);
        } else {
          parts.push(`mmio read ${hex(m.physAddr)} ${m.len}`);
          m.data.fill(0);
        }
        continue;
      }
      case KVM_EXIT.RISCV_SBI:
        if (run.riscvSbi.extensionId !== RUNNER_DONE_EID) return done("riscv_sbi");
        return done(write ? "ok" : `ok ${hex(vcpu.getReg(10))}`);
      case KVM_EXIT.INTR:
        if (Date.now() > deadline) return done("timeout");
        continue;
      case KVM_EXIT.DIRTY_RING_FULL: return done("dirty_ring_full");
      case KVM_EXIT.SHUTDOWN: return done("shutdown");
      case KVM_EXIT.HLT: return done("hlt");
      default: return done(EXIT_NAMES[exit.reason] ?? `exit${exit.reason}`);
    }
  }
  return null;
}
