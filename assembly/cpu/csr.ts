// The supervisor and unprivileged CSRs: their numbers, read values and write
// (WARL) rules. Privilege and read-only checks for the Zicsr instructions are
// in system.ts; the host's register access calls csrRead/csrWrite directly.

import {
  getField, setField, getInstret,
  OFF_SSTATUS, OFF_SIE, OFF_SIP, OFF_STVEC, OFF_SSCRATCH, OFF_SEPC, OFF_SCAUSE, OFF_STVAL, OFF_SATP,
  OFF_SCOUNTEREN, OFF_SENVCFG,
  SSTATUS_WMASK, SSTATUS_UXL_64, SSTATUS_SUM, SSTATUS_MXR, SSTATUS_FS, SSTATUS_FS_DIRTY, SSTATUS_SD, SIE_WMASK, SIP_WMASK, SENVCFG_WMASK, PRIV_S,
  satpModeSupported,
} from "./state";
import { sipValue } from "./trap";
import { timeNow, timerDeadline, setTimerDeadline } from "./timer";
import { memFlush, mmuModeChanged } from "../mmu/access";
import { isFpCsr, fpOff, fpCsrRead, fpCsrWrite } from "./fpu/fcsr";

export const CSR_SSTATUS: i32 = 0x100;
export const CSR_SIE: i32 = 0x104;
export const CSR_STVEC: i32 = 0x105;
export const CSR_SCOUNTEREN: i32 = 0x106;
export const CSR_SENVCFG: i32 = 0x10a;
export const CSR_SSCRATCH: i32 = 0x140;
export const CSR_SEPC: i32 = 0x141;
export const CSR_SCAUSE: i32 = 0x142;
export const CSR_STVAL: i32 = 0x143;
export const CSR_SIP: i32 = 0x144;
export const CSR_STIMECMP: i32 = 0x14d;
export const CSR_SATP: i32 = 0x180;
export const CSR_CYCLE: i32 = 0xc00;
export const CSR_TIME: i32 = 0xc01;
export const CSR_INSTRET: i32 = 0xc02;
export const CSR_HPMCOUNTER31: i32 = 0xc1f;

/** False after csrRead/csrWrite met a CSR that does not exist or may not be accessed. */
export let csrOk: bool = true;

/**
 * U-mode reaches counter n (0 cycle, 1 time, 2 instret, 3..31 hpmcounter)
 * only when scounteren bit n is set. S-mode always may: the missing M-mode's
 * mcounteren is taken as all ones.
 */
function counterAllowed(n: i32, priv: u64): bool {
  return priv == PRIV_S || ((getField(OFF_SCOUNTEREN) >> <u64>n) & 1) != 0;
}

function missing(): u64 {
  csrOk = false;
  return 0;
}

/** The value of csr as privilege level `priv` reads it; csrOk = false if it is unreachable. */
export function csrRead(csr: i32, priv: u64): u64 {
  csrOk = true;
  // fflags / frm / fcsr: unreachable while sstatus.FS is Off.
  if (isFpCsr(csr)) return fpOff() ? missing() : fpCsrRead(csr);
  switch (csr) {
    case CSR_SSTATUS: {
      const s = getField(OFF_SSTATUS);
      return s | SSTATUS_UXL_64 | ((s & SSTATUS_FS) == SSTATUS_FS_DIRTY ? SSTATUS_SD : 0);
    }
    case CSR_SIE: return getField(OFF_SIE);
    case CSR_STVEC: return getField(OFF_STVEC);
    case CSR_SCOUNTEREN: return getField(OFF_SCOUNTEREN);
    case CSR_SENVCFG: return getField(OFF_SENVCFG);
    case CSR_SSCRATCH: return getField(OFF_SSCRATCH);
    case CSR_SEPC: return getField(OFF_SEPC);
    case CSR_SCAUSE: return getField(OFF_SCAUSE);
    case CSR_STVAL: return getField(OFF_STVAL);
    case CSR_SIP: return sipValue();
    case CSR_STIMECMP: return timerDeadline();
    case CSR_SATP: return getField(OFF_SATP);
  }
  if (csr >= CSR_CYCLE && csr <= CSR_HPMCOUNTER31) {
    const n = csr - CSR_CYCLE;
    if (!counterAllowed(n, priv)) return missing();
    // One instruction per cycle; the hardware performance counters count nothing.
    if (csr == CSR_CYCLE || csr == CSR_INSTRET) return getInstret();
    if (csr == CSR_TIME) return timeNow();
    return 0;
  }
  return missing();
}

/** Writes csr with its WARL rules applied; csrOk = false if it cannot be written. */
export function csrWrite(csr: i32, v: u64): void {
  csrOk = true;
  if (isFpCsr(csr)) {
    if (fpOff()) csrOk = false;
    else fpCsrWrite(csr, v);
    return;
  }
  switch (csr) {
    case CSR_SSTATUS: {
      const old = getField(OFF_SSTATUS);
      setField(OFF_SSTATUS, v & SSTATUS_WMASK);
      if (((old ^ v) & (SSTATUS_SUM | SSTATUS_MXR)) != 0) mmuModeChanged();
      return;
    }
    case CSR_SIE: setField(OFF_SIE, v & SIE_WMASK); return;
    // MODE 2 and 3 are reserved: keep bit 0 only (direct or vectored).
    case CSR_STVEC: setField(OFF_STVEC, v & ~<u64>2); return;
    case CSR_SCOUNTEREN: setField(OFF_SCOUNTEREN, v & 0xffffffff); return;
    case CSR_SENVCFG: setField(OFF_SENVCFG, v & SENVCFG_WMASK); return;
    case CSR_SSCRATCH: setField(OFF_SSCRATCH, v); return;
    // The C extension: IALIGN is 16, so only sepc[0] is always zero.
    case CSR_SEPC: setField(OFF_SEPC, v & ~<u64>1); return;
    case CSR_SCAUSE: setField(OFF_SCAUSE, v); return;
    case CSR_STVAL: setField(OFF_STVAL, v); return;
    case CSR_SIP: setField(OFF_SIP, (getField(OFF_SIP) & ~SIP_WMASK) | (v & SIP_WMASK)); return;
    case CSR_STIMECMP: setTimerDeadline(v); return;
    case CSR_SATP: {
      // Only Bare and Sv39 exist; a write selecting another mode is ignored
      // entirely (WARL), so software probing for Sv48 reads back its old satp.
      if (!satpModeSupported(v)) return;
      setField(OFF_SATP, v);
      memFlush();
      return;
    }
  }
  csrOk = false;
}
