// The F/D extensions' architectural state around the arithmetic: the f
// registers (NaN-boxed binary32 values), fcsr with its fflags/frm views, and
// sstatus.FS, the context-status field a kernel uses to save and restore that
// state lazily: Off makes every F/D instruction and fcsr access illegal, and
// anything that writes an f register or fcsr makes it Dirty (SD mirrors Dirty
// on read: csr.ts).

import { cpuState, OFF_FREGS, OFF_FCSR, OFF_SSTATUS, SSTATUS_FS, SSTATUS_FS_DIRTY } from "../state";

export const CSR_FFLAGS: i32 = 0x001;
export const CSR_FRM: i32 = 0x002;
export const CSR_FCSR: i32 = 0x003;

export const FFLAGS_MASK: u32 = 0x1f;
export const FRM_SHIFT: u32 = 5;
export const FCSR_MASK: u32 = 0xff;
/** rm = 7 in an instruction: the rounding mode is frm's. */
export const RM_DYN: i32 = 7;

const BOX: u64 = 0xffffffff00000000;
const CANON_NAN_S: u32 = 0x7fc00000;

/** sstatus.FS is Off: F/D instructions and fcsr are illegal. */
// @ts-ignore: decorator
@inline export function fpOff(): bool { return (load<u64>(cpuState() + OFF_SSTATUS) & SSTATUS_FS) == 0; }

/** The F/D state changed: FS becomes Dirty. */
// @ts-ignore: decorator
@inline export function fpDirty(): void {
  const p = cpuState() + OFF_SSTATUS;
  store<u64>(p, load<u64>(p) | SSTATUS_FS_DIRTY);
}

// @ts-ignore: decorator
@inline export function fregAddr(r: i32): usize { return cpuState() + OFF_FREGS + (<usize>r << 3); }
/** f[r] as 64 bits (a binary64 operand, or the raw bits FSD / FMV.X.D move). */
// @ts-ignore: decorator
@inline export function getF64(r: i32): u64 { return load<u64>(fregAddr(r)); }
/** f[r] as a binary32 operand: a value not NaN-boxed reads as the canonical NaN. */
// @ts-ignore: decorator
@inline export function getF32(r: i32): u64 {
  const v = load<u64>(fregAddr(r));
  return (v & BOX) == BOX ? v & 0xffffffff : <u64>CANON_NAN_S;
}
// @ts-ignore: decorator
@inline export function setF64(r: i32, v: u64): void { store<u64>(fregAddr(r), v); fpDirty(); }
/** Writes a binary32 result NaN-boxed. */
// @ts-ignore: decorator
@inline export function setF32(r: i32, v: u64): void { store<u64>(fregAddr(r), v | BOX); fpDirty(); }

/** fcsr; only its low 8 bits exist (the host may store any u32 through ONE_REG, as into a real kvm_cpu_context). */
// @ts-ignore: decorator
@inline export function getFcsr(): u32 { return load<u32>(cpuState() + OFF_FCSR) & FCSR_MASK; }
export function setFcsr(v: u32): void {
  store<u32>(cpuState() + OFF_FCSR, v & FCSR_MASK);
  fpDirty();
}

/** ORs an instruction's exceptions into fflags (a write of fcsr only when there are any). */
export function accrue(flags: u32): void {
  if (flags == 0) return;
  store<u32>(cpuState() + OFF_FCSR, getFcsr() | flags);
  fpDirty();
}

/** The rounding mode an instruction's rm field selects, or -1 when it is reserved (illegal). */
export function roundingMode(rm: i32): i32 {
  if (rm == RM_DYN) rm = <i32>(getFcsr() >> FRM_SHIFT);
  return rm <= 4 ? rm : -1;
}

/** Is csr one of fflags / frm / fcsr? */
// @ts-ignore: decorator
@inline export function isFpCsr(csr: i32): bool { return csr >= CSR_FFLAGS && csr <= CSR_FCSR; }

/** fflags / frm / fcsr as read (the caller checked FS). */
export function fpCsrRead(csr: i32): u64 {
  const v = getFcsr();
  if (csr == CSR_FFLAGS) return <u64>(v & FFLAGS_MASK);
  if (csr == CSR_FRM) return <u64>(v >> FRM_SHIFT);
  return <u64>v;
}

/** fflags / frm / fcsr written (bits outside the field are ignored); FS becomes Dirty. */
export function fpCsrWrite(csr: i32, x: u64): void {
  const v = getFcsr();
  const w = <u32>x;
  if (csr == CSR_FFLAGS) setFcsr((v & ~FFLAGS_MASK) | (w & FFLAGS_MASK));
  else if (csr == CSR_FRM) setFcsr((v & FFLAGS_MASK) | ((w & 7) << FRM_SHIFT));
  else setFcsr(w & FCSR_MASK);
}
