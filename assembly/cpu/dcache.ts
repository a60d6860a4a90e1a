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
//   +4  u8   op (decode.ts OP_*; OP_ILLEGAL = 0), plus OP_C for a compressed
//            instruction (the loop's cases then step pc by 2, not 4)
//   +5  u8   length in bytes (2 or 4)
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
import { decodeRvcInto } from "./rvc";

const INST_EBREAK: u32 = 0x00100073;

/** Added to a compressed instruction's op (the op of its expansion). */
export const OP_C: u8 = OP_COUNT;

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
@inline export function recOp(e: usize): u8 { return load<u8>(e, 4); }
// @ts-ignore: decorator
@inline export function recLen(e: usize): u64 { return <u64>load<u8>(e, 5); }
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
  let op: u8, rd: u8, r1: u8, r2: u8, imm: i32, len: u8;
  if ((word & 3) == 3) {
    decodeInto(e, word);
    op = load<u8>(e, 4);
    imm = <i32>load<i64>(e, 8); // every 32-bit immediate is a sign-extended 32-bit value
    if (op == OP_FP || op == OP_SYSTEM || op == OP_ILLEGAL) imm = <i32>word;
    len = 4;
  } else {
    const c = word & 0xffff;
    decodeRvcInto(e, c);
    op = load<u8>(e, 12);
    imm = load<i32>(e, 8); // OP_FP: the expanded word already
    if (op == OP_SYSTEM) imm = <i32>INST_EBREAK;
    else if (op == OP_ILLEGAL) imm = <i32>c;
    op += OP_C;
    len = 2;
  }
  rd = load<u8>(e, 5); // X_DISCARD for x0 in both layouts
  r1 = load<u8>(e, 6);
  r2 = load<u8>(e, 7);
  store<u32>(e, word);
  store<u8>(e, op, 4);
  store<u8>(e, len, 5);
  store<u16>(e, <u16>rd << 3, 6);
  store<u16>(e, <u16>r1 << 3, 8);
  store<u16>(e, <u16>r2 << 3, 10);
  store<i32>(e, imm, 12);
}
