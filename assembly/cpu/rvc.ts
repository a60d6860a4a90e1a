// The C extension (compressed instructions). A 16-bit instruction is decoded
// into a record like a 32-bit one's (decode.ts), as the operation of the
// 32-bit instruction it expands to, tagged with the 16-bit word and marked
// OP_RVC:
//
//   +0  u32  the 16-bit instruction, zero-extended
//   +4  u8   OP_RVC
//   +5  u8   rd  (X_DISCARD when rd is x0)
//   +6  u8   rs1
//   +7  u8   rs2
//   +8  i32  immediate, sign-extended
//   +12 u8   the expanded operation (OP_* of decode.ts; OP_ILLEGAL for a
//            reserved encoding or an unimplemented extension). For OP_FP
//            (C.FLD, C.FSD, C.FLDSP, C.FSDSP) the immediate field holds the
//            expanded 32-bit instruction instead, which fpu/insn.ts executes.
//
// The interpreter's decode cache (dcache.ts) and the translation tier repack
// these into their own records; both execute the expanded operation.

import * as D from "./decode";

// Scratch results of decodeRvc.
let cOp: u8 = 0;
let cRd: i32 = 0;
let cRs1: i32 = 0;
let cRs2: i32 = 0;
let cImm: i32 = 0;

// @ts-ignore: decorator
@inline function bit(c: i32, from: i32, to: i32): i32 { return ((c >>> from) & 1) << to; }
// @ts-ignore: decorator
@inline function sext(v: i32, bits: i32): i32 { return (v << (32 - bits)) >> (32 - bits); }
/** The 3-bit register fields of the CA/CB/CL/CS/CIW formats name x8..x15. */
// @ts-ignore: decorator
@inline function rp(c: i32, at: i32): i32 { return ((c >>> at) & 7) + 8; }
/** CI-format 6-bit immediate: imm[5] = c[12], imm[4:0] = c[6:2]. */
// @ts-ignore: decorator
@inline function ci6(c: i32): i32 { return bit(c, 12, 5) | ((c >>> 2) & 31); }

function set(op: u8, rd: i32, rs1: i32, rs2: i32, imm: i32): void {
  cOp = op; cRd = rd; cRs1 = rs1; cRs2 = rs2; cImm = imm;
}

/** C.FLD / C.FLDSP as the FLD it expands to (f[rd] = mem[x[rs1] + off]). */
function setFld(rd: i32, rs1: i32, off: i32): void {
  set(D.OP_FP, 0, 0, 0, (off << 20) | (rs1 << 15) | (3 << 12) | (rd << 7) | 0x07);
}
/** C.FSD / C.FSDSP as the FSD it expands to (mem[x[rs1] + off] = f[rs2]). */
function setFsd(rs1: i32, rs2: i32, off: i32): void {
  set(D.OP_FP, 0, 0, 0, ((off >> 5) << 25) | (rs2 << 20) | (rs1 << 15) | (3 << 12) | ((off & 31) << 7) | 0x27);
}

// Offsets of C.LW/C.SW (uimm[5:3|2|6] = c[12:10|6|5]) and C.LD/C.SD (uimm[5:3|7:6] = c[12:10|6:5]).
// @ts-ignore: decorator
@inline function offW(c: i32): i32 { return (((c >>> 10) & 7) << 3) | bit(c, 6, 2) | bit(c, 5, 6); }
// @ts-ignore: decorator
@inline function offD(c: i32): i32 { return (((c >>> 10) & 7) << 3) | (((c >>> 5) & 3) << 6); }

function quadrant0(c: i32): void {
  switch ((c >>> 13) & 7) {
    case 0: { // C.ADDI4SPN: nzuimm[5:4|9:6|2|3] = c[12:11|10:7|6|5]; 0 is reserved (so is the all-zero word)
      const imm = (((c >>> 11) & 3) << 4) | (((c >>> 7) & 15) << 6) | bit(c, 6, 2) | bit(c, 5, 3);
      if (imm != 0) set(D.OP_ADDI, rp(c, 2), 2, 0, imm);
      return;
    }
    case 1: setFld(rp(c, 2), rp(c, 7), offD(c)); return; // C.FLD
    case 2: set(D.OP_LW, rp(c, 2), rp(c, 7), 0, offW(c)); return;
    case 3: set(D.OP_LD, rp(c, 2), rp(c, 7), 0, offD(c)); return;
    case 5: setFsd(rp(c, 7), rp(c, 2), offD(c)); return; // C.FSD
    case 6: set(D.OP_SW, 0, rp(c, 7), rp(c, 2), offW(c)); return;
    case 7: set(D.OP_SD, 0, rp(c, 7), rp(c, 2), offD(c)); return;
    // 4: reserved.
  }
}

function quadrant1(c: i32): void {
  const rd = (c >>> 7) & 31;
  switch ((c >>> 13) & 7) {
    // C.ADDI (rd = 0 is C.NOP or a HINT; imm = 0 a HINT: both execute as addi)
    case 0: set(D.OP_ADDI, rd, rd, 0, sext(ci6(c), 6)); return;
    case 1: if (rd != 0) set(D.OP_ADDIW, rd, rd, 0, sext(ci6(c), 6)); return; // C.ADDIW; rd = 0 reserved
    case 2: set(D.OP_ADDI, rd, 0, 0, sext(ci6(c), 6)); return; // C.LI (rd = 0: a HINT)
    case 3: {
      if (rd == 2) { // C.ADDI16SP: nzimm[9|4|6|8:7|5] = c[12|6|5|4:3|2]
        const imm = bit(c, 12, 9) | bit(c, 6, 4) | bit(c, 5, 6) | (((c >>> 3) & 3) << 7) | bit(c, 2, 5);
        if (imm != 0) set(D.OP_ADDI, 2, 2, 0, sext(imm, 10));
      } else { // C.LUI: nzimm[17:12] = c[12|6:2] (rd = 0: a HINT)
        const imm = ci6(c);
        if (imm != 0) set(D.OP_LUI, rd, 0, 0, sext(imm, 6) << 12);
      }
      return;
    }
    case 4: {
      const r = rp(c, 7);
      switch ((c >>> 10) & 3) {
        // RV64: shamt[5] = c[12]; shamt = 0 is a HINT
        case 0: set(D.OP_SRLI, r, r, 0, ci6(c)); return;
        case 1: set(D.OP_SRAI, r, r, 0, ci6(c)); return;
        case 2: set(D.OP_ANDI, r, r, 0, sext(ci6(c), 6)); return;
      }
      const f = (c >>> 5) & 3, r2 = rp(c, 2);
      if ((c & 0x1000) == 0) {
        set(f == 0 ? D.OP_SUB : f == 1 ? D.OP_XOR : f == 2 ? D.OP_OR : D.OP_AND, r, r, r2, 0);
      } else if (f < 2) {
        set(f == 0 ? D.OP_SUBW : D.OP_ADDW, r, r, r2, 0);
      } // else reserved
      return;
    }
    case 5: { // C.J: offset[11|4|9:8|10|6|7|3:1|5] = c[12|11|10:9|8|7|6|5:3|2]
      const off = bit(c, 12, 11) | bit(c, 11, 4) | (((c >>> 9) & 3) << 8) | bit(c, 8, 10) | bit(c, 7, 6) |
        bit(c, 6, 7) | (((c >>> 3) & 7) << 1) | bit(c, 2, 5);
      set(D.OP_JAL, 0, 0, 0, sext(off, 12));
      return;
    }
    default: { // C.BEQZ, C.BNEZ: offset[8|4:3|7:6|2:1|5] = c[12|11:10|6:5|4:3|2]
      const off = bit(c, 12, 8) | (((c >>> 10) & 3) << 3) | (((c >>> 5) & 3) << 6) | (((c >>> 3) & 3) << 1) |
        bit(c, 2, 5);
      set(((c >>> 13) & 7) == 6 ? D.OP_BEQ : D.OP_BNE, 0, rp(c, 7), 0, sext(off, 9));
    }
  }
}

function quadrant2(c: i32): void {
  const rd = (c >>> 7) & 31, rs2 = (c >>> 2) & 31;
  switch ((c >>> 13) & 7) {
    case 0: set(D.OP_SLLI, rd, rd, 0, ci6(c)); return; // C.SLLI (rd = 0 or shamt = 0: a HINT)
    // C.FLDSP: uimm[5|4:3|8:6] = c[12|6:5|4:2] (any rd: f0 is a register)
    case 1: setFld(rd, 2, bit(c, 12, 5) | (((c >>> 5) & 3) << 3) | (((c >>> 2) & 7) << 6)); return;
    case 2: { // C.LWSP: uimm[5|4:2|7:6] = c[12|6:4|3:2]; rd = 0 reserved
      if (rd != 0) set(D.OP_LW, rd, 2, 0, bit(c, 12, 5) | (((c >>> 4) & 7) << 2) | (((c >>> 2) & 3) << 6));
      return;
    }
    case 3: { // C.LDSP: uimm[5|4:3|8:6] = c[12|6:5|4:2]; rd = 0 reserved
      if (rd != 0) set(D.OP_LD, rd, 2, 0, bit(c, 12, 5) | (((c >>> 5) & 3) << 3) | (((c >>> 2) & 7) << 6));
      return;
    }
    case 4: {
      if ((c & 0x1000) == 0) {
        if (rs2 == 0) { if (rd != 0) set(D.OP_JALR, 0, rd, 0, 0); } // C.JR; rs1 = 0 reserved
        else set(D.OP_ADD, rd, 0, rs2, 0); // C.MV (rd = 0: a HINT)
      } else if (rs2 == 0) {
        if (rd == 0) set(D.OP_SYSTEM, 0, 0, 0, 0); // C.EBREAK
        else set(D.OP_JALR, 1, rd, 0, 0); // C.JALR
      } else {
        set(D.OP_ADD, rd, rd, rs2, 0); // C.ADD (rd = 0: a HINT)
      }
      return;
    }
    case 6: set(D.OP_SW, 0, 2, rs2, (((c >>> 9) & 15) << 2) | (((c >>> 7) & 3) << 6)); return; // C.SWSP
    case 5: setFsd(2, rs2, (((c >>> 10) & 7) << 3) | (((c >>> 7) & 7) << 6)); return; // C.FSDSP
    case 7: set(D.OP_SD, 0, 2, rs2, (((c >>> 10) & 7) << 3) | (((c >>> 7) & 7) << 6)); return; // C.SDSP
  }
}

/** Fills the record at e for the 16-bit instruction c. */
export function decodeRvcInto(e: usize, c: u32): void {
  set(D.OP_ILLEGAL, 0, 0, 0, 0);
  const q = c & 3;
  if (q == 0) quadrant0(<i32>c);
  else if (q == 1) quadrant1(<i32>c);
  else quadrant2(<i32>c);
  store<u32>(e, c);
  store<u8>(e, D.OP_RVC, 4);
  store<u8>(e, cRd == 0 ? <u8>D.X_DISCARD : <u8>cRd, 5);
  store<u8>(e, <u8>cRs1, 6);
  store<u8>(e, <u8>cRs2, 7);
  store<i32>(e, cImm, 8);
  store<u8>(e, cOp, 12);
}
