// The interpreter's decode cache. Every instruction the fast loop (interp.ts)
// executes is first decoded (decode.ts for 32-bit words, rvc.ts for 16-bit
// ones) and packed into a 16-byte record laid out for the loop: one dense
// operation number (one jump-table dispatch for both sizes; a compressed
// instruction is recorded as the operation it expands to), register offsets
// already scaled to bytes, the length to step pc by, and an immediate that fits
// 32 bits. Records live in a direct-mapped table indexed by pc / 2 and tagged
// with the 32-bit word fetched at pc (the index is the code's linear address,
// dcacheAt):
//
//   +0  u32  tag: the word at pc (for a compressed instruction its 16 bits
//            plus the next halfword; at a page's last halfword, where only the
//            16 bits are fetched, those alone)
//   +4  u8   dispatch code: the op for a 32-bit instruction, C_* below for a
//            compressed one (its own cases step pc by 2, not 4), 0 for any
//            instruction the loop leaves to runFast
//   +5  u8   op (decode.ts OP_*; a compressed instruction's expansion's;
//            OP_ILLEGAL = 0)
//   +6  u16  rd * 8 (X_DISCARD * 8 when rd is x0): the byte offset of x[rd]
//   +8  u16  rs1 * 8
//   +10 u16  rs2 * 8
//   +12 i32  immediate, sign-extended; for OP_FP the 32-bit F/D instruction
//            (a compressed one's expansion), for OP_SYSTEM the SYSTEM word
//            (C.EBREAK's is EBREAK), for OP_ILLEGAL the value stval gets
//
// A record depends on nothing but its tag, so it is valid wherever and whenever
// the same word is fetched: the loop reads the word from guest memory through
// the shadow page table as always and compares it with the tag. The cache never
// needs invalidating (not on fence.i, satp writes, privilege changes, remapped
// memslots or host writes to guest memory) and self-modifying code is seen at
// the next fetch. Tagging a compressed record with its neighbour halfword too
// only makes it more specific. The zero-filled table starts out consistent: an
// all-zero record is the all-zero word's (an illegal instruction, stval 0).

import { dcacheBase, cpuBlock } from "../layout";
import { DCACHE_ENTRIES, OP_FP, OP_SYSTEM, OP_ILLEGAL, OP_COUNT, decodeInto } from "./decode";
import * as D from "./decode";
import { decodeRvcInto } from "./rvc";

const INST_EBREAK: u32 = 0x00100073;

// Dispatch codes of the compressed instructions the fast loop does in place,
// after every 32-bit op (decode.ts OP_*) so that the loop's cases stay one
// range without gaps. Any other compressed instruction's code is 0, like an
// illegal one's: runFast executes it by its op.
export const C_ADDI: u8 = OP_COUNT + 0;
export const C_ANDI: u8 = OP_COUNT + 1;
export const C_SLLI: u8 = OP_COUNT + 2;
export const C_SRLI: u8 = OP_COUNT + 3;
export const C_SRAI: u8 = OP_COUNT + 4;
export const C_ADDIW: u8 = OP_COUNT + 5;
export const C_ADD: u8 = OP_COUNT + 6;
export const C_XOR: u8 = OP_COUNT + 7;
export const C_OR: u8 = OP_COUNT + 8;
export const C_AND: u8 = OP_COUNT + 9;
export const C_SUB: u8 = OP_COUNT + 10;
export const C_ADDW: u8 = OP_COUNT + 11;
export const C_SUBW: u8 = OP_COUNT + 12;
export const C_LUI: u8 = OP_COUNT + 13;
export const C_JAL: u8 = OP_COUNT + 14;
export const C_JALR: u8 = OP_COUNT + 15;
export const C_BEQ: u8 = OP_COUNT + 16;
export const C_BNE: u8 = OP_COUNT + 17;
export const C_LW: u8 = OP_COUNT + 18;
export const C_LD: u8 = OP_COUNT + 19;
export const C_SW: u8 = OP_COUNT + 20;
export const C_SD: u8 = OP_COUNT + 21;

/** The dispatch code of a compressed instruction expanding to op. */
function compressedCode(op: u8): u8 {
  switch (op) {
    case D.OP_ADDI: return C_ADDI;
    case D.OP_ANDI: return C_ANDI;
    case D.OP_SLLI: return C_SLLI;
    case D.OP_SRLI: return C_SRLI;
    case D.OP_SRAI: return C_SRAI;
    case D.OP_ADDIW: return C_ADDIW;
    case D.OP_ADD: return C_ADD;
    case D.OP_XOR: return C_XOR;
    case D.OP_OR: return C_OR;
    case D.OP_AND: return C_AND;
    case D.OP_SUB: return C_SUB;
    case D.OP_ADDW: return C_ADDW;
    case D.OP_SUBW: return C_SUBW;
    case D.OP_LUI: return C_LUI;
    case D.OP_JAL: return C_JAL;
    case D.OP_JALR: return C_JALR;
    case D.OP_BEQ: return C_BEQ;
    case D.OP_BNE: return C_BNE;
    case D.OP_LW: return C_LW;
    case D.OP_LD: return C_LD;
    case D.OP_SW: return C_SW;
    case D.OP_SD: return C_SD;
  }
  return 0;
}

/**
 * The record for the instruction at linear address host (this thread's table:
 * layout.ts). Indexed by where the code is in linear memory rather than by
 * pc: the fast loop has that address at hand, and a record is checked against
 * the word by its tag whatever its index.
 */
// @ts-ignore: decorator
@inline export function dcacheAt(host: u32): usize {
  return dcacheBase() + ((<usize>host & <usize>((DCACHE_ENTRIES - 1) << 1)) << 3);
}

// ---- fields ----
// @ts-ignore: decorator
@inline export function recTag(e: usize): u32 { return load<u32>(e); }
// @ts-ignore: decorator
@inline export function recCode(e: usize): u8 { return load<u8>(e, 4); }
// @ts-ignore: decorator
@inline export function recOp(e: usize): u8 { return load<u8>(e, 5); }
/** The length in bytes (the all-zero record's, never used, is 2). */
// @ts-ignore: decorator
@inline export function recLen(e: usize): u64 { return (load<u32>(e) & 3) == 3 ? 4 : 2; }
// @ts-ignore: decorator
@inline export function recImm(e: usize): u64 { return <u64><i64>load<i32>(e, 12); }

// A record's registers: x[rs1], x[rs2], and the write of x[rd]. In the default
// builds the state block's address is a constant, which the load's offset
// carries, so a register access is one load or store.
// @ts-ignore: decorator
@inline function xAt(off: usize): u64 {
  return WEBKVM_THREADS ? load<u64>(cpuBlock() + off) : load<u64>(off, cpuBlock());
}
// @ts-ignore: decorator
@inline export function rs1(e: usize): u64 { return xAt(<usize>load<u16>(e, 8)); }
// @ts-ignore: decorator
@inline export function rs2(e: usize): u64 { return xAt(<usize>load<u16>(e, 10)); }
// @ts-ignore: decorator
@inline export function wr(e: usize, v: u64): void {
  const off = <usize>load<u16>(e, 6);
  if (WEBKVM_THREADS) store<u64>(cpuBlock() + off, v);
  else store<u64>(off, v, cpuBlock());
}

/** Fills the record at e for the word fetched at pc. */
export function fillRecord(e: usize, word: u32): void {
  // Both decoders leave their own layout at e (decode.ts, rvc.ts): read it, then repack.
  let op: u8, code: u8, rd: u8, r1: u8, r2: u8, imm: i32;
  if ((word & 3) == 3) {
    decodeInto(e, word);
    op = load<u8>(e, 4);
    imm = <i32>load<i64>(e, 8); // every 32-bit immediate is a sign-extended 32-bit value
    if (op == OP_FP || op == OP_SYSTEM || op == OP_ILLEGAL) imm = <i32>word;
    code = op;
  } else {
    const c = word & 0xffff;
    decodeRvcInto(e, c);
    op = load<u8>(e, 12);
    imm = load<i32>(e, 8); // OP_FP: the expanded word already
    if (op == OP_SYSTEM) imm = <i32>INST_EBREAK;
    else if (op == OP_ILLEGAL) imm = <i32>c;
    code = compressedCode(op);
  }
  rd = load<u8>(e, 5); // X_DISCARD for x0 in both layouts
  r1 = load<u8>(e, 6);
  r2 = load<u8>(e, 7);
  store<u32>(e, word);
  store<u8>(e, code, 4);
  store<u8>(e, op, 5);
  store<u16>(e, <u16>rd << 3, 6);
  store<u16>(e, <u16>r1 << 3, 8);
  store<u16>(e, <u16>r2 << 3, 10);
  store<i32>(e, imm, 12);
}
