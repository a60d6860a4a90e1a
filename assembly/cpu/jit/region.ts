// A region's analysis for the translation tier (translate.ts): the run of
// instructions it covers from its entry pc, each decoded into a record in the
// 32-bit layout (decode.ts), where each starts, and its basic blocks. The
// region ends as translate.ts's header describes; the emitter only reads
// what is here.

import { decodeInto } from "../decode";
import * as D from "../decode";
import { decodeRvcInto } from "../rvc";
import { fpWritesX } from "../fpu/insn";

/** Instructions in a region at most. */
export const REGION_MAX: i32 = 256;
const RECS: usize = memory.data(REGION_MAX * D.DCACHE_ENTRY_SIZE, 16);
const BLOCK_OF: usize = memory.data(REGION_MAX * 2, 4); // i16 per instruction: its block
const LEADER_PC: usize = memory.data(REGION_MAX * 8, 8); // u64 per block: its first pc
const PC_OFF: usize = memory.data((REGION_MAX + 1) * 2, 4); // u16 per instruction (and one past the last): its offset from the entry
const INDEX_AT: usize = memory.data(2048 * 2, 4); // i16 per halfword offset from the entry: the instruction starting there, or -1

// ---- the region being translated (set by analyzeRegion) ----
export let entryPc: u64 = 0;
export let count: i32 = 0;
export let blocks: i32 = 0;

// @ts-ignore: decorator
@inline function rec(i: i32): usize { return RECS + (<usize>i << 4); }
// @ts-ignore: decorator
@inline export function recOp(i: i32): u8 { return load<u8>(rec(i), 4); }
// @ts-ignore: decorator
@inline export function recInst(i: i32): u32 { return load<u32>(rec(i)); }
// @ts-ignore: decorator
@inline export function recImm(i: i32): i64 { return load<i64>(rec(i), 8); }
// @ts-ignore: decorator
@inline export function rdOf(i: i32): i32 { return <i32>((recInst(i) >> 7) & 31); }
// @ts-ignore: decorator
@inline export function rs1Of(i: i32): i32 { return <i32>((recInst(i) >> 15) & 31); }
// @ts-ignore: decorator
@inline export function rs2Of(i: i32): i32 { return <i32>((recInst(i) >> 20) & 31); }
// @ts-ignore: decorator
@inline export function offOf(i: i32): u32 { return <u32>load<u16>(PC_OFF + (<usize>i << 1)); }
// @ts-ignore: decorator
@inline export function pcOf(i: i32): u64 { return entryPc + <u64>offOf(i); }
/** The instruction's length in bytes (2 or 4). */
// @ts-ignore: decorator
@inline export function lenOf(i: i32): u64 { return <u64>(offOf(i + 1) - offOf(i)); }
/** The index of the region's instruction at pc t, or -1 (outside the region, or not an instruction's start). */
export function indexAt(t: u64): i32 {
  if (t < entryPc || t >= pcOf(count) || (t & 1) != 0) return -1;
  return <i32>load<i16>(INDEX_AT + (<usize>((t - entryPc) >> 1) << 1));
}
// @ts-ignore: decorator
@inline export function blockOf(i: i32): i32 { return <i32>load<i16>(BLOCK_OF + (<usize>i << 1)); }

// @ts-ignore: decorator
@inline export function isBranch(o: u8): bool { return o >= D.OP_BEQ && o <= D.OP_BGEU; }
// @ts-ignore: decorator
@inline export function isLoad(o: u8): bool { return o >= D.OP_LB && o <= D.OP_LWU; }
// @ts-ignore: decorator
@inline export function isStore(o: u8): bool { return o >= D.OP_SB && o <= D.OP_SD; }
/** Instructions the interpreter keeps: a region ends before them. */
// @ts-ignore: decorator
@inline function translatable(o: u8): bool {
  return o != D.OP_ILLEGAL && o != D.OP_FENCE && o != D.OP_AMO && o != D.OP_SYSTEM;
}
/** Does the instruction write x[rd] (when rd is not x0)? */
export function writesRd(i: i32): bool {
  const o = recOp(i);
  if (o == D.OP_FP) return fpWritesX(<i32>recInst(i));
  return !isBranch(o) && !isStore(o);
}

/**
 * The record at e for the compressed instruction c, in the 32-bit records'
 * layout (decode.ts) so the emitters need not tell them apart: the expanded
 * operation, its immediate as i64, and a word holding only the register
 * fields (rd, rs1, rs2 at their 32-bit positions; rd 0 for x0). C.FLD and
 * its kin (OP_FP) keep the whole 32-bit word they expand to, which rvc.ts
 * leaves in the immediate: the FP emitters decode that word.
 */
function decodeCompressedInto(e: usize, c: u32): void {
  decodeRvcInto(e, c);
  const rd = <u32>load<u8>(e, 5);
  const o = load<u8>(e, 12);
  const imm = <i64>load<i32>(e, 8);
  const word = o == D.OP_FP ? <u32>imm
    : ((rd == <u32>D.X_DISCARD ? 0 : rd) << 7) | (<u32>load<u8>(e, 6) << 15) | (<u32>load<u8>(e, 7) << 20) | 3;
  store<u32>(e, word);
  store<u8>(e, o, 4);
  store<i64>(e, imm, 8);
}

/**
 * Decodes the region at entry (its bytes at linear address code, which stay
 * on entry's page); returns its length in instructions (0: nothing to translate).
 */
function scan(entry: u64, code: usize): i32 {
  entryPc = entry;
  const pageLeft = <u32>(4096 - (entry & 0xfff)); // bytes
  let furthest = entry; // the furthest forward branch target seen
  let n = 0;
  let off: u32 = 0;
  store<u16>(PC_OFF, 0);
  while (n < REGION_MAX && off < pageLeft) {
    const e = rec(n);
    const half = <u32>load<u16>(code + <usize>off);
    let len: u32 = 2;
    if ((half & 3) == 3) {
      if (off + 4 > pageLeft) break; // straddles the page's end: the interpreter fetches it in halves
      decodeInto(e, load<u32>(code + <usize>off));
      len = 4;
    } else {
      decodeCompressedInto(e, half);
    }
    const o = recOp(n);
    if (!translatable(o)) break;
    const pc = entry + <u64>off;
    off += len;
    n++;
    store<u16>(PC_OFF + (<usize>n << 1), <u16>off);
    if (isBranch(o) || o == D.OP_JAL) {
      const t = pc + <u64>recImm(n - 1);
      if (t > furthest) furthest = t;
    }
    if ((o == D.OP_JAL || o == D.OP_JALR) && furthest <= pc) break;
  }
  // Which halfword starts which instruction (for branch targets).
  for (let h: u32 = 0; h < (off >> 1); h++) store<i16>(INDEX_AT + (<usize>h << 1), -1);
  for (let i = 0; i < n; i++) store<i16>(INDEX_AT + (<usize>(offOf(i) >> 1) << 1), <i16>i);
  return n;
}

/** Splits [0, count) into basic blocks: BLOCK_OF and LEADER_PC; returns how many. */
function splitBlocks(): i32 {
  for (let i = 0; i < count; i++) store<i16>(BLOCK_OF + (<usize>i << 1), 0);
  store<i16>(BLOCK_OF, 1);
  for (let i = 0; i < count; i++) {
    const o = recOp(i);
    if (!(isBranch(o) || o == D.OP_JAL || o == D.OP_JALR)) continue;
    if (i + 1 < count) store<i16>(BLOCK_OF + (<usize>(i + 1) << 1), 1);
    if (o == D.OP_JALR) continue;
    const j = indexAt(pcOf(i) + <u64>recImm(i));
    if (j >= 0) store<i16>(BLOCK_OF + (<usize>j << 1), 1);
  }
  // Leader marks become block numbers.
  let b = -1;
  for (let i = 0; i < count; i++) {
    if (load<i16>(BLOCK_OF + (<usize>i << 1)) != 0) {
      b++;
      store<u64>(LEADER_PC + (<usize>b << 3), pcOf(i));
    }
    store<i16>(BLOCK_OF + (<usize>i << 1), <i16>b);
  }
  return b + 1;
}

/** Decodes and splits the region at entry (its bytes at linear address code); its length in instructions (0: none). */
export function analyzeRegion(entry: u64, code: usize): i32 {
  count = scan(entry, code);
  blocks = count == 0 ? 0 : splitBlocks();
  return count;
}

/** The first pc of block b. */
// @ts-ignore: decorator
@inline export function leaderPc(b: i32): u64 { return load<u64>(LEADER_PC + (<usize>b << 3)); }

/** The length of the region last translated (the budget a call needs). */
export function lastRegionLength(): i32 { return count; }
