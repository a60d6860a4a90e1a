// Execution of the F and D instructions (RV64): loads and stores through the
// CPU's memory path, the arithmetic through softfloat.ts, fcsr and sstatus.FS
// through fcsr.ts. The interpreter hands every LOAD-FP, STORE-FP, FMADD..FNMADD
// and OP-FP word here out of line (decode.ts: OP_FP); the translation tier
// calls jitFp for the register-only ones (its own code does the loads and
// stores' fast path).

import { accessStatus } from "../../mmu/access_state";
import { undecodableInsn } from "../../mmu/access";
import { getX, setX, CAUSE_ILLEGAL } from "../state";
import { raise, memStop } from "../stop";
import { loadData, storeData } from "../load_store";
import { fpOff, getF32, getF64, setF32, setF64, accrue, roundingMode } from "./fcsr";
import * as S from "./softfloat";

const OPC_LOAD_FP: i32 = 0x07;
const OPC_STORE_FP: i32 = 0x27;
const OPC_FMADD: i32 = 0x43;
const OPC_FMSUB: i32 = 0x47;
const OPC_FNMSUB: i32 = 0x4b;
const OPC_FNMADD: i32 = 0x4f;
const OPC_OP_FP: i32 = 0x53;

// OP-FP funct5 values.
const F_ADD: i32 = 0x00;
const F_SUB: i32 = 0x01;
const F_MUL: i32 = 0x02;
const F_DIV: i32 = 0x03;
const F_SGNJ: i32 = 0x04;
const F_MINMAX: i32 = 0x05;
const F_CVT_FF: i32 = 0x08;
const F_SQRT: i32 = 0x0b;
const F_CMP: i32 = 0x14;
const F_CVT_TO_INT: i32 = 0x18;
const F_CVT_FROM_INT: i32 = 0x1a;
const F_MV_TO_X: i32 = 0x1c; // and FCLASS
const F_MV_FROM_X: i32 = 0x1e;

// What execute() reports.
/** Retired. */
const DONE: i32 = 0;
/** Illegal instruction (nothing changed). */
const ILLEGAL: i32 = 1;
/** A load or store did not complete (accessStatus set). */
const MEM: i32 = 2;

/** The integer result of the last execute(), for an instruction that writes x[rd]. */
let xResult: u64 = 0;
let writesX: bool = false;

/** Is inst (a 32-bit word with one of the FP opcodes) a load or store? */
// @ts-ignore: decorator
@inline export function isFpMemory(inst: i32): bool { return (inst & 0x5f) == OPC_LOAD_FP; }

/**
 * Executes the FP instruction inst with rs1Value as x[rs1]; DONE, ILLEGAL or
 * MEM. Register results: f registers in the state block, an x result in
 * xResult (writesX).
 */
function execute(inst: i32, rs1Value: u64): i32 {
  writesX = false;
  if (fpOff()) return ILLEGAL;
  const opc = inst & 0x7f;
  const rd = (inst >>> 7) & 31, rs1 = (inst >>> 15) & 31, rs2 = (inst >>> 20) & 31;
  const f3 = (inst >>> 12) & 7;
  if (opc == OPC_LOAD_FP || opc == OPC_STORE_FP) {
    if (f3 != 2 && f3 != 3) return ILLEGAL;
    const size = f3 == 2 ? 4 : 8;
    const imm = opc == OPC_LOAD_FP ? inst >> 20 : ((inst >> 25) << 5) | rd;
    const va = rs1Value + <u64><i64>imm;
    // RISC-V KVM's MMIO emulation decodes integer loads and stores only.
    undecodableInsn = true;
    if (opc == OPC_LOAD_FP) {
      const v = loadData(va, size);
      undecodableInsn = false;
      if (accessStatus != 0) return MEM;
      if (size == 4) setF32(rd, v); else setF64(rd, v);
    } else {
      storeData(va, getF64(rs2), size);
      undecodableInsn = false;
      if (accessStatus != 0) return MEM;
    }
    return DONE;
  }
  const fmt = (inst >>> 25) & 3;
  if (fmt > 1) return ILLEGAL; // H and Q are not implemented
  const dbl = fmt == 1;
  if (opc != OPC_OP_FP) { // FMADD, FMSUB, FNMSUB, FNMADD
    const rm = roundingMode(f3);
    if (rm < 0) return ILLEGAL;
    const rs3 = inst >>> 27;
    const a = dbl ? getF64(rs1) : getF32(rs1), b = dbl ? getF64(rs2) : getF32(rs2), c = dbl ? getF64(rs3) : getF32(rs3);
    S.clearFpFlags();
    const r = S.ffma(a, b, c, dbl, rm, opc == OPC_FNMSUB || opc == OPC_FNMADD, opc == OPC_FMSUB || opc == OPC_FNMADD);
    return writeF(rd, r, dbl);
  }
  const f5 = inst >>> 27;
  const a = dbl ? getF64(rs1) : getF32(rs1), b = dbl ? getF64(rs2) : getF32(rs2);
  switch (f5) {
    case F_ADD: case F_SUB: case F_MUL: case F_DIV: case F_SQRT: {
      if (f5 == F_SQRT && rs2 != 0) return ILLEGAL;
      const rm = roundingMode(f3);
      if (rm < 0) return ILLEGAL;
      S.clearFpFlags();
      let r: u64;
      if (f5 == F_ADD || f5 == F_SUB) r = S.fadd(a, b, dbl, rm, f5 == F_SUB);
      else if (f5 == F_MUL) r = S.fmul(a, b, dbl, rm);
      else if (f5 == F_DIV) r = S.fdiv(a, b, dbl, rm);
      else r = S.fsqrt(a, dbl, rm);
      return writeF(rd, r, dbl);
    }
    case F_SGNJ: { // moves bits: no NaN canonicalization, no flags
      if (f3 > 2) return ILLEGAL;
      const sb = dbl ? <u64>1 << 63 : <u64>1 << 31;
      const sign = f3 == 0 ? b & sb : f3 == 1 ? ~b & sb : (a ^ b) & sb;
      const r = (a & ~sb) | sign;
      if (dbl) setF64(rd, r); else setF32(rd, r & 0xffffffff);
      return DONE;
    }
    case F_MINMAX: {
      if (f3 > 1) return ILLEGAL;
      S.clearFpFlags();
      return writeF(rd, S.fminmax(a, b, dbl, f3 == 1), dbl);
    }
    case F_CVT_FF: { // FCVT.S.D (fmt S, rs2 = 1) / FCVT.D.S (fmt D, rs2 = 0)
      if (rs2 != (dbl ? 0 : 1)) return ILLEGAL;
      const rm = roundingMode(f3);
      if (rm < 0) return ILLEGAL;
      S.clearFpFlags();
      return writeF(rd, S.fcvtFF(dbl ? getF32(rs1) : getF64(rs1), dbl, rm), dbl);
    }
    case F_CMP: {
      if (f3 > 2) return ILLEGAL;
      S.clearFpFlags();
      return writeX(S.fcompare(a, b, dbl, f3 == 2 ? 0 : f3 == 1 ? 1 : 2));
    }
    case F_CVT_TO_INT: case F_CVT_FROM_INT: {
      if (rs2 > 3) return ILLEGAL;
      const rm = roundingMode(f3);
      if (rm < 0) return ILLEGAL;
      S.clearFpFlags();
      if (f5 == F_CVT_TO_INT) return writeX(S.fcvtToInt(a, dbl, rm, rs2));
      return writeF(rd, S.fcvtFromInt(rs1Value, dbl, rm, rs2), dbl);
    }
    case F_MV_TO_X: {
      if (rs2 != 0) return ILLEGAL;
      if (f3 == 1) { S.clearFpFlags(); return writeX(S.fclass(a, dbl)); }
      if (f3 != 0) return ILLEGAL;
      // FMV.X.W sign-extends the low 32 bits, boxed or not.
      const raw = getF64(rs1);
      xResult = dbl ? raw : <u64><i64><i32>raw;
      writesX = true;
      return DONE;
    }
    case F_MV_FROM_X: {
      if (rs2 != 0 || f3 != 0) return ILLEGAL;
      if (dbl) setF64(rd, rs1Value); else setF32(rd, rs1Value & 0xffffffff);
      return DONE;
    }
  }
  return ILLEGAL;
}

function writeF(rd: i32, r: u64, dbl: bool): i32 {
  if (dbl) setF64(rd, r); else setF32(rd, r);
  accrue(S.fpFlags);
  return DONE;
}

function writeX(v: u64): i32 {
  accrue(S.fpFlags);
  xResult = v;
  writesX = true;
  return DONE;
}

/**
 * The interpreter's entry: executes inst (raw: the word stval reports when it
 * is illegal, the 16-bit one for a compressed form); false when it trapped or
 * the memory layer stopped it instead of retiring.
 */
export function execFp(inst: i32, raw: u32): bool {
  const r = execute(inst, getX((inst >>> 15) & 31));
  if (r == DONE) {
    if (writesX) setX((inst >>> 7) & 31, xResult);
    return true;
  }
  if (r == ILLEGAL) raise(CAUSE_ILLEGAL, <u64>raw);
  else memStop();
  return false;
}

/** jitFp's answer when the instruction must go to the interpreter (it changed nothing). */
export let jitFpRefused: bool = false;

/**
 * The translation tier's entry for a register-only FP instruction: x1 is
 * x[rs1]; returns the x[rd] result for the instructions that write one. An
 * instruction that would trap (FS Off, a reserved rounding mode) is not
 * executed: jitFpRefused, and the interpreter takes it.
 */
export function jitFp(inst: i32, x1: u64): u64 {
  const r = execute(inst, x1);
  jitFpRefused = r != DONE;
  return xResult;
}

/** Does an FP instruction word write an x register (FCVT to integer, compares, FCLASS, FMV.X)? */
export function fpWritesX(inst: i32): bool {
  if ((inst & 0x7f) != OPC_OP_FP) return false;
  const f5 = inst >>> 27;
  return f5 == F_CMP || f5 == F_CVT_TO_INT || f5 == F_MV_TO_X;
}

/** Does an FP instruction word read x[rs1] (FCVT from integer, FMV.W.X / FMV.D.X; loads and stores)? */
export function fpReadsX(inst: i32): bool {
  if ((inst & 0x7f) != OPC_OP_FP) return isFpMemory(inst);
  const f5 = inst >>> 27;
  return f5 == F_CVT_FROM_INT || f5 == F_MV_FROM_X;
}
