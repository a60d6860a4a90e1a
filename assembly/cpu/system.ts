// The SYSTEM opcode: Zicsr instructions and the privileged ones (ecall,
// ebreak, sret, wfi, sfence.vma). They run outside the fast loop, with the
// retired count and pc already written back, because almost all of them can
// change what the run loop must check next (interrupt enables, pending bits,
// privilege, translation) and the counters they read must be exact.

import {
  getX, setX, getPc, setPc, getPriv, addInstret, PRIV_U,
  CAUSE_ILLEGAL, CAUSE_BREAKPOINT, CAUSE_ECALL_U,
} from "./state";
import { takeTrap, sret, interruptsWaiting } from "./trap";
import { csrRead, csrWrite, csrOk } from "./csr";
import { memFlush, memFlushPage } from "../mmu/access";

const INST_ECALL: u32 = 0x00000073;
const INST_EBREAK: u32 = 0x00100073;
const INST_SRET: u32 = 0x10200073;
const INST_WFI: u32 = 0x10500073;
const FUNCT7_SFENCE_VMA: u32 = 0x09;

// What a SYSTEM instruction asks of the run loop.
export const SYS_CONTINUE: i32 = 0;
/** ecall from S-mode: an SBI call for the host; pc still at the ecall. */
export const SYS_SBI: i32 = 1;
/** wfi found nothing to wake it; pc is past the wfi. */
export const SYS_WFI: i32 = 2;

// @ts-ignore: decorator
@inline function retire(): void {
  setPc(getPc() + 4);
  addInstret(1);
}

function illegalInst(inst: u32): i32 {
  takeTrap(CAUSE_ILLEGAL, <u64>inst);
  return SYS_CONTINUE;
}

/** Executes the SYSTEM instruction at pc (trapping if it must). */
export function execSystem(inst: u32): i32 {
  const f3 = (inst >> 12) & 7;
  const priv = getPriv();
  if (f3 == 0) {
    if (inst == INST_ECALL) {
      // A U-mode ecall is the guest kernel's system call; an S-mode one is
      // the SBI, which a KVM guest reaches through the hypervisor: the host.
      if (priv == PRIV_U) takeTrap(CAUSE_ECALL_U, 0);
      else return SYS_SBI;
    } else if (inst == INST_EBREAK) {
      takeTrap(CAUSE_BREAKPOINT, getPc());
    } else if (inst == INST_SRET) {
      if (priv == PRIV_U) return illegalInst(inst);
      sret();
      addInstret(1);
    } else if (inst == INST_WFI) {
      // In U-mode wfi would stall the guest kernel's scheduling: illegal.
      if (priv == PRIV_U) return illegalInst(inst);
      retire();
      // Any pending interrupt that sie enables wakes the hart, whether or not
      // sstatus.SIE lets it be taken; then wfi is just a nop.
      if (interruptsWaiting() == 0) return SYS_WFI;
    } else if ((inst >> 25) == FUNCT7_SFENCE_VMA && ((inst >> 7) & 31) == 0) {
      if (priv == PRIV_U) return illegalInst(inst);
      // With an address, only what translates through its leaf PTE; the ASID
      // operand only narrows a flush (translations are not tagged by ASID).
      const rs1 = <i32>((inst >> 15) & 31);
      if (rs1 != 0) memFlushPage(getX(rs1));
      else memFlush();
      retire();
    } else {
      return illegalInst(inst);
    }
    return SYS_CONTINUE;
  }
  if (f3 == 4) return illegalInst(inst);

  // csrrw / csrrs / csrrc and their immediate forms (f3 & 4).
  const csr = <i32>(inst >> 20);
  const rd = <i32>((inst >> 7) & 31);
  const field = <i32>((inst >> 15) & 31);
  const op = f3 & 3;
  const src = (f3 & 4) != 0 ? <u64>field : getX(field);
  // csrrs/csrrc with x0 (or uimm 0) read only: allowed on read-only CSRs.
  const writes = op == 1 || field != 0;
  // csr[9:8] is the lowest privilege that may access it (M- and H-level ones
  // do not exist here); csr[11:10] == 3 marks it read-only.
  if (<u64>((csr >> 8) & 3) > priv) return illegalInst(inst);
  if (writes && (csr >> 10) == 3) return illegalInst(inst);
  const old = csrRead(csr, priv);
  if (!csrOk) return illegalInst(inst);
  if (writes) {
    const v = op == 1 ? src : op == 2 ? old | src : old & ~src;
    csrWrite(csr, v);
    if (!csrOk) return illegalInst(inst);
  }
  setX(rd, old);
  retire();
  return SYS_CONTINUE;
}

/** The host finished an SBI call (a0/a1 already written): the ecall retires. */
export function completeEcall(): void {
  retire();
}
