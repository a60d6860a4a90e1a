// The guest program of the KVM_INTERRUPT tests (test/kvm-interrupt.test.ts on
// one thread, test/threads-interrupt.test.ts with KVM_RUN on a Worker).
import * as A from "./cpu/asm.js";
import { REG } from "./cpu/asm.js";

export const RAM = 0x80000000n;
export const HANDLER = RAM + 0x100n;
export const SEIP = 1n << 9n, SSTATUS_SIE = 2n;
export const SCAUSE_SEI = (1n << 63n) | 9n;

/** At RAM: `body`, then spins; at HANDLER: a0 = scause, a1 = sepc, ecall (an SBI exit). */
export function interruptProgram(body: number[]): Uint8Array {
  const main = new A.Program(RAM);
  main.emit(...body).label("spin").to("spin", (off) => A.jal(0, off));
  const handler = new A.Program(HANDLER);
  handler.emit(A.csrrs(REG.a0, A.CSR.scause, 0), A.csrrs(REG.a1, A.CSR.sepc, 0), A.ecall());
  const out = new Uint8Array(0x200);
  const m = main.finish(), h = handler.finish();
  out.set(new Uint8Array(m.buffer, m.byteOffset, m.byteLength), 0);
  out.set(new Uint8Array(h.buffer, h.byteOffset, h.byteLength), 0x100);
  return out;
}

