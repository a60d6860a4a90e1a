// Trap entry and return. There is no M-mode (this is a KVM guest: the host is
// the "machine" level), so every exception and interrupt goes to S-mode and
// there is nothing to delegate.

import {
  getField, setField, getPc, setPc, getPriv, setPriv, clearReservation,
  OFF_SSTATUS, OFF_SEPC, OFF_SCAUSE, OFF_STVAL, OFF_STVEC, OFF_SIP, OFF_SIE, OFF_EXT_IRQ, cpuState,
  SSTATUS_SIE, SSTATUS_SPIE, SSTATUS_SPP, PRIV_S, PRIV_U, CAUSE_INTERRUPT,
  SIP_SSIP, SIP_STIP, SIP_SEIP, IRQ_S_SOFT, IRQ_S_TIMER, IRQ_S_EXT,
} from "./state";
import { timerPending } from "./timer";
import { mmuModeChanged } from "../mmu/access";

/**
 * Enters the S-mode handler for `cause` (with CAUSE_INTERRUPT for interrupts)
 * from the instruction at pc, which did not retire.
 */
export function takeTrap(cause: u64, tval: u64): void {
  const priv = getPriv();
  const s = getField(OFF_SSTATUS);
  let next = s & ~(SSTATUS_SIE | SSTATUS_SPIE | SSTATUS_SPP);
  if ((s & SSTATUS_SIE) != 0) next |= SSTATUS_SPIE;
  if (priv == PRIV_S) next |= SSTATUS_SPP;
  setField(OFF_SSTATUS, next);
  setField(OFF_SEPC, getPc());
  setField(OFF_SCAUSE, cause);
  setField(OFF_STVAL, tval);
  setPriv(PRIV_S);
  mmuModeChanged();
  const stvec = getField(OFF_STVEC);
  let target = stvec & ~<u64>3;
  // Vectored mode (stvec.MODE = 1) spreads interrupts only; exceptions use the base.
  if ((stvec & 1) != 0 && (cause & CAUSE_INTERRUPT) != 0) target += (cause & ~CAUSE_INTERRUPT) << 2;
  setPc(target);
  // A trap is a context switch point: a handler's SC must not pair with the
  // interrupted code's LR.
  clearReservation();
}

/** sret (the caller has checked the privilege): back to SPP at sepc. */
export function sret(): void {
  const s = getField(OFF_SSTATUS);
  setPriv((s & SSTATUS_SPP) != 0 ? PRIV_S : PRIV_U);
  let next = (s & ~(SSTATUS_SIE | SSTATUS_SPP)) | SSTATUS_SPIE;
  if ((s & SSTATUS_SPIE) != 0) next |= SSTATUS_SIE;
  setField(OFF_SSTATUS, next);
  mmuModeChanged();
  setPc(getField(OFF_SEPC));
  clearReservation();
}

/** sip as software sees it: stored SSIP, STIP from the timer, SEIP from the host line. */
export function sipValue(): u64 {
  let v = getField(OFF_SIP) & SIP_SSIP;
  if (timerPending()) v |= SIP_STIP;
  if (load<u32>(cpuState() + OFF_EXT_IRQ) != 0) v |= SIP_SEIP;
  return v;
}

/** Pending and locally enabled (sip & sie), regardless of sstatus.SIE: what wakes wfi. */
export function interruptsWaiting(): u64 {
  return sipValue() & getField(OFF_SIE);
}

/**
 * The interrupt to take now, or -1. Interrupts are globally enabled in U-mode
 * always and in S-mode when sstatus.SIE is set. Priority: external, software, timer.
 */
export function interruptToTake(): i64 {
  if (getPriv() == PRIV_S && (getField(OFF_SSTATUS) & SSTATUS_SIE) == 0) return -1;
  const ready = interruptsWaiting();
  if (ready == 0) return -1;
  if ((ready & SIP_SEIP) != 0) return <i64>IRQ_S_EXT;
  if ((ready & SIP_SSIP) != 0) return <i64>IRQ_S_SOFT;
  return <i64>IRQ_S_TIMER;
}
