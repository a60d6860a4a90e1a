// Instruction decoding: a 32-bit instruction word into a small record with
// one dense operation number, register indices and a sign-extended immediate
// (rvc.ts does compressed ones). The translation tier reads these records as
// they are; the interpreter repacks them into its decode cache (dcache.ts).
//
//   +0  u32  raw instruction
//   +4  u8   op (OP_* below; OP_ILLEGAL = 0)
//   +5  u8   rd  (0..31, or X_DISCARD when rd is x0)
//   +6  u8   rs1
//   +7  u8   rs2
//   +8  i64  immediate, sign-extended (the shift amount for shifts)
//
// Writes to x0 are decoded to rd = X_DISCARD, a scratch slot after x31, so
// executing code stores results without testing rd and x0 stays 0.

import { DCACHE_BYTES } from "../layout";

/** Entries of the interpreter's decode cache (dcache.ts): 64 KiB of code. */
export const DCACHE_ENTRIES: i32 = 32768;
/** The size of a record, of this file's layout and of the decode cache's. */
export const DCACHE_ENTRY_SIZE: i32 = 16;
// @ts-ignore: static assert
assert(DCACHE_ENTRIES * DCACHE_ENTRY_SIZE == DCACHE_BYTES);

/** The register slot writes to x0 go to (xRegs() + 32 * 8, reserved in the state block). */
export const X_DISCARD: i32 = 32;

// ---- operations ----
export const OP_ILLEGAL: u8 = 0;
// register-immediate
export const OP_ADDI: u8 = 1;
export const OP_SLTI: u8 = 2;
export const OP_SLTIU: u8 = 3;
export const OP_XORI: u8 = 4;
export const OP_ORI: u8 = 5;
export const OP_ANDI: u8 = 6;
export const OP_SLLI: u8 = 7;
export const OP_SRLI: u8 = 8;
export const OP_SRAI: u8 = 9;
export const OP_ADDIW: u8 = 10;
export const OP_SLLIW: u8 = 11;
export const OP_SRLIW: u8 = 12;
export const OP_SRAIW: u8 = 13;
// register-register
export const OP_ADD: u8 = 14; // OP_ADD..OP_AND follow funct3 order
export const OP_SLL: u8 = 15;
export const OP_SLT: u8 = 16;
export const OP_SLTU: u8 = 17;
export const OP_XOR: u8 = 18;
export const OP_SRL: u8 = 19;
export const OP_OR: u8 = 20;
export const OP_AND: u8 = 21;
export const OP_SUB: u8 = 22;
export const OP_SRA: u8 = 23;
export const OP_ADDW: u8 = 24;
export const OP_SUBW: u8 = 25;
export const OP_SLLW: u8 = 26;
export const OP_SRLW: u8 = 27;
export const OP_SRAW: u8 = 28;
// M (OP_MUL..OP_REMU follow funct3 order)
export const OP_MUL: u8 = 29;
export const OP_MULH: u8 = 30;
export const OP_MULHSU: u8 = 31;
export const OP_MULHU: u8 = 32;
export const OP_DIV: u8 = 33;
export const OP_DIVU: u8 = 34;
export const OP_REM: u8 = 35;
export const OP_REMU: u8 = 36;
export const OP_MULW: u8 = 37;
export const OP_DIVW: u8 = 38;
export const OP_DIVUW: u8 = 39;
export const OP_REMW: u8 = 40;
export const OP_REMUW: u8 = 41;
// upper immediates and jumps
export const OP_LUI: u8 = 42;
export const OP_AUIPC: u8 = 43;
export const OP_JAL: u8 = 44;
export const OP_JALR: u8 = 45;
// branches (imm = offset)
export const OP_BEQ: u8 = 46;
export const OP_BNE: u8 = 47;
export const OP_BLT: u8 = 48;
export const OP_BGE: u8 = 49;
export const OP_BLTU: u8 = 50;
export const OP_BGEU: u8 = 51;
// loads and stores (imm = offset; both groups follow funct3 order)
export const OP_LB: u8 = 52;
export const OP_LH: u8 = 53;
export const OP_LW: u8 = 54;
export const OP_LD: u8 = 55;
export const OP_LBU: u8 = 56;
export const OP_LHU: u8 = 57;
export const OP_LWU: u8 = 58;
export const OP_SB: u8 = 59;
export const OP_SH: u8 = 60;
export const OP_SW: u8 = 61;
export const OP_SD: u8 = 62;
// the rest
/** FENCE and FENCE.I: nothing to order or invalidate on this hart. */
export const OP_FENCE: u8 = 63;
/** An A-extension instruction: executed from its raw word by amo.ts. */
export const OP_AMO: u8 = 64;
/** The SYSTEM opcode: executed outside the fast loop by system.ts. */
export const OP_SYSTEM: u8 = 65;
/** A compressed instruction's record from rvc.ts (the expanded operation is at +12). */
export const OP_RVC: u8 = 66;
/** An F/D instruction: executed from its raw word by fpu/insn.ts. */
export const OP_FP: u8 = 67;
export const OP_COUNT: u8 = 68;

// ---- immediates (inst >> n is an arithmetic shift of the sign bit) ----
// @ts-ignore: decorator
@inline function immI(inst: i32): i32 { return inst >> 20; }
// @ts-ignore: decorator
@inline function immS(inst: i32): i32 { return ((inst >> 25) << 5) | ((inst >>> 7) & 0x1f); }
// @ts-ignore: decorator
@inline function immB(inst: i32): i32 {
  return ((inst >> 31) << 12) | ((inst << 4) & 0x800) | ((inst >>> 20) & 0x7e0) | ((inst >>> 7) & 0x1e);
}
// @ts-ignore: decorator
@inline function immU(inst: i32): i32 { return inst & 0xfffff000; }
// @ts-ignore: decorator
@inline function immJ(inst: i32): i32 {
  return ((inst >> 31) << 20) | (inst & 0xff000) | ((inst >>> 9) & 0x800) | ((inst >>> 20) & 0x7fe);
}

// Scratch results of decodeFields, copied into a record by decodeInto.
let dOp: u8 = 0;
let dImm: i32 = 0;

function opImm(inst: i32): u8 {
  const f6 = inst >>> 26;
  dImm = immI(inst);
  switch ((inst >>> 12) & 7) {
    case 0: return OP_ADDI;
    case 1: dImm &= 63; return f6 == 0 ? OP_SLLI : OP_ILLEGAL;
    case 2: return OP_SLTI;
    case 3: return OP_SLTIU;
    case 4: return OP_XORI;
    case 5: dImm &= 63; return f6 == 0 ? OP_SRLI : f6 == 0x10 ? OP_SRAI : OP_ILLEGAL;
    case 6: return OP_ORI;
    default: return OP_ANDI;
  }
}

function opImm32(inst: i32): u8 {
  const f7 = inst >>> 25;
  dImm = immI(inst);
  switch ((inst >>> 12) & 7) {
    case 0: return OP_ADDIW;
    case 1: dImm &= 31; return f7 == 0 ? OP_SLLIW : OP_ILLEGAL;
    case 5: dImm &= 31; return f7 == 0 ? OP_SRLIW : f7 == 0x20 ? OP_SRAIW : OP_ILLEGAL;
    default: return OP_ILLEGAL;
  }
}

function opReg(inst: i32): u8 {
  const f7 = inst >>> 25, f3 = (inst >>> 12) & 7;
  if (f7 == 0) return OP_ADD + <u8>f3;
  if (f7 == 1) return OP_MUL + <u8>f3;
  if (f7 == 0x20) return f3 == 0 ? OP_SUB : f3 == 5 ? OP_SRA : OP_ILLEGAL;
  return OP_ILLEGAL;
}

function opReg32(inst: i32): u8 {
  const f7 = inst >>> 25, f3 = (inst >>> 12) & 7;
  if (f7 == 0) return f3 == 0 ? OP_ADDW : f3 == 1 ? OP_SLLW : f3 == 5 ? OP_SRLW : OP_ILLEGAL;
  if (f7 == 0x20) return f3 == 0 ? OP_SUBW : f3 == 5 ? OP_SRAW : OP_ILLEGAL;
  if (f7 == 1) {
    switch (f3) {
      case 0: return OP_MULW;
      case 4: return OP_DIVW;
      case 5: return OP_DIVUW;
      case 6: return OP_REMW;
      case 7: return OP_REMUW;
    }
  }
  return OP_ILLEGAL;
}

/** Sets dOp and dImm for inst. */
function decodeFields(inst: i32): void {
  dImm = 0;
  // inst[1:0] != 0b11 is a compressed instruction: rvc.ts decodes those.
  if ((inst & 3) != 3) { dOp = OP_ILLEGAL; return; }
  const f3 = (inst >>> 12) & 7;
  switch ((inst >>> 2) & 31) {
    case 0x00: // LOAD
      dImm = immI(inst);
      dOp = f3 == 7 ? OP_ILLEGAL : OP_LB + <u8>f3;
      return;
    case 0x01: case 0x09: case 0x10: case 0x11: case 0x12: case 0x13: case 0x14:
      dOp = OP_FP; // LOAD-FP, STORE-FP, FMADD..FNMADD, OP-FP
      return;
    case 0x03: // MISC-MEM
      dOp = f3 <= 1 ? OP_FENCE : OP_ILLEGAL;
      return;
    case 0x04: dOp = opImm(inst); return;
    case 0x05: dImm = immU(inst); dOp = OP_AUIPC; return;
    case 0x06: dOp = opImm32(inst); return;
    case 0x08: // STORE
      dImm = immS(inst);
      dOp = f3 <= 3 ? OP_SB + <u8>f3 : OP_ILLEGAL;
      return;
    case 0x0b: dOp = OP_AMO; return;
    case 0x0c: dOp = opReg(inst); return;
    case 0x0d: dImm = immU(inst); dOp = OP_LUI; return;
    case 0x0e: dOp = opReg32(inst); return;
    case 0x18: { // BRANCH
      dImm = immB(inst);
      if (f3 == 2 || f3 == 3) dOp = OP_ILLEGAL;
      else dOp = f3 < 2 ? OP_BEQ + <u8>f3 : OP_BLT + <u8>(f3 - 4);
      return;
    }
    case 0x19: // JALR (IALIGN is 16: every even target, and so every offset, is fine)
      dImm = immI(inst);
      dOp = f3 == 0 ? OP_JALR : OP_ILLEGAL;
      return;
    case 0x1b: // JAL
      dImm = immJ(inst);
      dOp = OP_JAL;
      return;
    case 0x1c: dOp = OP_SYSTEM; return;
  }
  dOp = OP_ILLEGAL;
}

/** Fills the record at e for inst. */
export function decodeInto(e: usize, inst: u32): void {
  decodeFields(<i32>inst);
  const rd = <u8>((inst >> 7) & 31);
  store<u32>(e, inst);
  store<u8>(e, dOp, 4);
  store<u8>(e, rd == 0 ? <u8>X_DISCARD : rd, 5);
  store<u8>(e, <u8>((inst >> 15) & 31), 6);
  store<u8>(e, <u8>((inst >> 20) & 31), 7);
  store<i64>(e, <i64>dImm, 8);
}
