// Guest programs for the SBI tests (test/sbi-v2.test.ts on one thread,
// test/threads-sbi.test.ts with every hart on a Worker): SBI calls made by
// hart 0, a remote-fence scenario and an IPI wake-up.
import { riscv, type Machine } from "../src/index.js";
import * as A from "./cpu/asm.js";
import { REG } from "./cpu/asm.js";

export const RAM = 0x80000000n;
/** Where the calls' [a0, a1] are stored. */
export const OUT = 0x80100000n;
export const SECONDARY = 0x80200000n, RECORD = 0x80210000n;

export type Call = [eid: bigint, fid: bigint, ...args: bigint[]];

export function bytes(words: Uint32Array): Uint8Array {
  return new Uint8Array(words.buffer, words.byteOffset, words.byteLength);
}

/** Each call with its args in a0..a5, [a0, a1] stored at OUT + 16 i. */
export function emitCalls(p: A.Program, calls: Call[]): A.Program {
  calls.forEach(([eid, fid, ...args], i) => {
    p.li(REG.a7, eid).li(REG.a6, fid);
    args.forEach((a, j) => p.li(REG.a0 + j, a));
    p.emit(A.ecall());
    p.li(REG.t0, OUT + BigInt(16 * i)).emit(A.sd(REG.a0, REG.t0, 0), A.sd(REG.a1, REG.t0, 8));
  });
  return p;
}

export const shutdown = (p: A.Program) => p.li(REG.a7, riscv.SBI_EXT_SRST).li(REG.a6, 0).li(REG.a0, 0).li(REG.a1, 0).emit(A.ecall());
export const hartStop = (p: A.Program) => p.li(REG.a7, riscv.SBI_EXT_HSM).li(REG.a6, riscv.SBI_HSM_HART_STOP).emit(A.ecall(), A.jal(0, 0));
const hartStart = (): Call => [riscv.SBI_EXT_HSM, riscv.SBI_HSM_HART_START, 1n, SECONDARY, 0n];

// The remote fence scenario: hart 1 runs under Sv39 and reads VA through a 2 MiB mapping; hart 0
// points that mapping at other memory, makes the call `fence` (if any), then tells hart 1, which reads again.
const ROOT = 0x80400000n, L1 = 0x80401000n, OLD = 0x80600000n, NEW = 0x80800000n;
export const VA = 0x40000000n;
const leaf = (pa: bigint) => ((pa >> 12n) << 10n) | 0xcfn; // V R W X A D

export function loadRemap(m: Machine, fence: Call | null): void {
  const put = (gpa: bigint, v: bigint) => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, v, true);
    m.vm.writeGuest(gpa, b);
  };
  put(ROOT + 8n, ((L1 >> 12n) << 10n) | 1n);
  put(ROOT + 16n, leaf(RAM)); // identity gigapage for the code
  put(L1, leaf(OLD));
  put(OLD, 111n);
  put(NEW, 222n);
  const sec = new A.Program(SECONDARY);
  sec.li(REG.t0, (8n << 60n) | (ROOT >> 12n)).emit(A.csrrw(0, A.CSR.satp, REG.t0), A.sfence_vma());
  sec.li(REG.t2, VA).li(REG.t0, RECORD).emit(A.ld(REG.t1, REG.t2, 0), A.sd(REG.t1, REG.t0, 0), A.addi(REG.t1, 0, 1), A.sd(REG.t1, REG.t0, 8));
  sec.label("wait").emit(A.ld(REG.t1, REG.t0, 16)).to("wait", (off) => A.beq(REG.t1, 0, off));
  sec.emit(A.ld(REG.t1, REG.t2, 0), A.sd(REG.t1, REG.t0, 24));
  m.vm.writeGuest(SECONDARY, bytes(hartStop(sec).finish()));
  const main = new A.Program(RAM);
  emitCalls(main, [hartStart()]);
  main.li(REG.t0, RECORD).label("ready").emit(A.ld(REG.t1, REG.t0, 8)).to("ready", (off) => A.beq(REG.t1, 0, off));
  main.li(REG.t0, L1).li(REG.t1, leaf(NEW)).emit(A.sd(REG.t1, REG.t0, 0));
  if (fence) emitCalls(main, [fence]);
  main.li(REG.t0, RECORD).emit(A.addi(REG.t1, 0, 1), A.sd(REG.t1, REG.t0, 16));
  m.load(bytes(hartStop(main).finish()));
}

/** What hart 1 read before and after, and the fence call's error. */
export function remapResult(m: Machine): { before: bigint; after: bigint; err: bigint } {
  const dv = new DataView(m.vm.readGuest(RECORD, 32).buffer);
  const out = new DataView(m.vm.readGuest(OUT, 16).buffer);
  return { before: dv.getBigUint64(0, true), after: dv.getBigUint64(24, true), err: BigInt.asIntN(64, out.getBigUint64(0, true)) };
}

/** Hart 1 enables SSIE and waits in wfi (no timer: it halts); hart 0 spins a while, then sends it an IPI. */
export function loadIpiWake(m: Machine): void {
  const sec = new A.Program(SECONDARY);
  sec.emit(A.csrrsi(0, A.CSR.sie, 2), A.wfi()).li(REG.t0, RECORD).emit(A.csrrs(REG.t1, A.CSR.sip, 0), A.sd(REG.t1, REG.t0, 0));
  m.vm.writeGuest(SECONDARY, bytes(hartStop(sec).finish()));
  const main = new A.Program(RAM);
  emitCalls(main, [hartStart()]);
  main.li(REG.t1, 20_000).label("spin").emit(A.addi(REG.t1, REG.t1, -1)).to("spin", (off) => A.bne(REG.t1, 0, off));
  emitCalls(main, [[riscv.SBI_EXT_IPI, 0n, 0b10n, 0n]]);
  m.load(bytes(hartStop(main).finish()));
}

/** sip.SSIP as hart 1 read it after its wfi (0 if it never got there). */
export function ipiWakeResult(m: Machine): bigint {
  return BigInt(m.vm.readGuest(RECORD, 8)[0] & 2);
}
