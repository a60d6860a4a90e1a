// The translation tier's code generator: a region of guest code becomes one
// WebAssembly function that tier.ts calls in place of the interpreter.
//
// A region is a run of consecutive 32-bit instructions on one guest page,
// starting at its 4-aligned entry pc: it ends before the first instruction
// the tier leaves to the interpreter (SYSTEM, AMO, FENCE, illegal, and every
// compressed instruction, which decodes as illegal here), and after
// an unconditional jump that no earlier branch jumps past. Its basic blocks
// become the cases of a loop over a br_table, so loops inside the region run
// without leaving the function; edges leaving it return to tier.ts.
//
// The function's contract (type (i32 code, i32 budget, i32 spt, i64 key) -> i32):
//   - code is the linear address of the entry's instruction word. It first
//     compares every word of the region with the words it was translated
//     from and returns -1 on any difference (the interpreter's decode cache
//     keeps the same rule: a translation is a pure function of the words).
//     RISC-V only promises that a hart sees its own code writes after a
//     FENCE.I, and a region never contains one, so checking at entry is exact.
//   - it retires at most `budget` instructions (the caller passes at least the
//     region's length; backward edges check before looping);
//   - registers live in locals, loaded at entry and stored at every exit;
//   - every load and store probes the shadow page table like the memory
//     layer's fast path (spt and key are the current mode's table and key);
//     a miss or a page-crossing access leaves the region before that
//     instruction with JIT_STATUS = JIT_INTERPRET: the interpreter takes it
//     through the memory layer (faults, MMIO, page tracking, splitting). No
//     call on the access path keeps V8 from spilling the guest registers
//     around it on every access;
//   - it returns the number of instructions retired and leaves the next pc in
//     JIT_NPC.

import * as W from "./emit";
import { decodeInto } from "../decode";
import * as D from "../decode";
import { xRegs, cpuState, OFF_SSTATUS, SSTATUS_FS, SSTATUS_FS_DIRTY } from "../state";
import { fregAddr } from "../fpu/fcsr";
import { isFpMemory, fpWritesX, fpReadsX } from "../fpu/insn";
import { SPTE_READ_TAG, SPTE_WRITE_TAG, SPTE_ADDEND, SPTE_SHIFT, SPT_INDEX_MASK } from "../../mmu/spte";

/** Where a translated function leaves the next pc (u64) and the helpers their status (i32). */
export const JIT_CTX: usize = memory.data(16, 8);
export const JIT_NPC: usize = JIT_CTX;
export const JIT_STATUS: usize = JIT_CTX + 8;
export const JIT_GO: i32 = 0;
/** The region stopped before an access its probe could not do: the interpreter takes that instruction. */
export const JIT_INTERPRET: i32 = 1;

/** Instructions in a region at most. */
export const REGION_MAX: i32 = 256;
const RECS: usize = memory.data(REGION_MAX * D.DCACHE_ENTRY_SIZE, 16);
const BLOCK_OF: usize = memory.data(REGION_MAX * 2, 4); // i16 per instruction: its block
const LEADER_PC: usize = memory.data(REGION_MAX * 8, 8); // u64 per block: its first pc

// ---- locals ----
const P_CODE: i32 = 0;
const P_BUDGET: i32 = 1;
const P_SPT: i32 = 2;
const P_KEY: i32 = 3;
const L_REG0: i32 = 4; // x0..x31 (x0's local is never used)
const L_VA: i32 = 36;
const L_TA: i32 = 37;
const L_TB: i32 = 38;
const L_NPC: i32 = 39;
const L_E: i32 = 40;
const L_DONE: i32 = 41;
const L_RET: i32 = 42;
const L_NEXT: i32 = 43;
const I64_LOCALS: i32 = 36;
const I32_LOCALS: i32 = 4;

// ---- the region being translated ----
let entryPc: u64 = 0;
let count: i32 = 0;
let blocks: i32 = 0;
/** Relative depth of $exit and of the dispatch loop from the current emit position. */
let exitDepth: i32 = 0;
let loopDepth: i32 = 0;
/** The block being emitted: its first pc, and the instruction being emitted. */
let curStart: u64 = 0;
let curIndex: i32 = 0;

// @ts-ignore: decorator
@inline function rec(i: i32): usize { return RECS + (<usize>i << 4); }
// @ts-ignore: decorator
@inline function recOp(i: i32): u8 { return load<u8>(rec(i), 4); }
// @ts-ignore: decorator
@inline function recInst(i: i32): u32 { return load<u32>(rec(i)); }
// @ts-ignore: decorator
@inline function recImm(i: i32): i64 { return load<i64>(rec(i), 8); }
// @ts-ignore: decorator
@inline function rdOf(i: i32): i32 { return <i32>((recInst(i) >> 7) & 31); }
// @ts-ignore: decorator
@inline function rs1Of(i: i32): i32 { return <i32>((recInst(i) >> 15) & 31); }
// @ts-ignore: decorator
@inline function rs2Of(i: i32): i32 { return <i32>((recInst(i) >> 20) & 31); }
// @ts-ignore: decorator
@inline function pcOf(i: i32): u64 { return entryPc + (<u64>i << 2); }
// @ts-ignore: decorator
@inline function blockOf(i: i32): i32 { return <i32>load<i16>(BLOCK_OF + (<usize>i << 1)); }

// @ts-ignore: decorator
@inline function isBranch(o: u8): bool { return o >= D.OP_BEQ && o <= D.OP_BGEU; }
// @ts-ignore: decorator
@inline function isLoad(o: u8): bool { return o >= D.OP_LB && o <= D.OP_LWU; }
// @ts-ignore: decorator
@inline function isStore(o: u8): bool { return o >= D.OP_SB && o <= D.OP_SD; }
/** Instructions the interpreter keeps: a region ends before them. */
// @ts-ignore: decorator
@inline function translatable(o: u8): bool {
  return o != D.OP_ILLEGAL && o != D.OP_FENCE && o != D.OP_AMO && o != D.OP_SYSTEM;
}
/** Does the instruction write x[rd] (when rd is not x0)? */
function writesRd(i: i32): bool {
  const o = recOp(i);
  if (o == D.OP_FP) return fpWritesX(<i32>recInst(i));
  return !isBranch(o) && !isStore(o);
}

/**
 * Decodes the region at entry (its words at linear address code, which stay
 * on entry's page); returns its length in instructions (0: nothing to translate).
 */
function scan(entry: u64, code: usize): i32 {
  entryPc = entry;
  // Only 4-aligned runs of 32-bit words: the interpreter takes 2-aligned pcs.
  if ((entry & 3) != 0) return 0;
  const pageLeft = <i32>((4096 - (entry & 0xfff)) >> 2);
  const limit = pageLeft < REGION_MAX ? pageLeft : REGION_MAX;
  let furthest = entry; // the furthest forward branch target seen
  let n = 0;
  while (n < limit) {
    const e = rec(n);
    decodeInto(e, load<u32>(code + (<usize>n << 2)));
    const o = recOp(n);
    if (!translatable(o)) break;
    const pc = pcOf(n);
    n++;
    if (isBranch(o) || o == D.OP_JAL) {
      const t = pc + <u64>recImm(n - 1);
      if (t > furthest) furthest = t;
    }
    if ((o == D.OP_JAL || o == D.OP_JALR) && furthest <= pc) break;
  }
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
    const t = pcOf(i) + <u64>recImm(i);
    if (t >= entryPc && t < pcOf(count) && (t & 3) == 0) store<i16>(BLOCK_OF + (<usize>((t - entryPc) >> 2) << 1), 1);
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

// ---- emit helpers ----

function reg(r: i32): void {
  if (r == 0) W.i64Const(0);
  else W.localGet(L_REG0 + r);
}

function setRd(r: i32): void {
  if (r == 0) W.op(W.DROP);
  else W.localSet(L_REG0 + r);
}

function openIf(): void { W.op(W.IF); W.op(W.T_VOID); exitDepth++; loopDepth++; }
function closeIf(): void { W.op(W.END); exitDepth--; loopDepth--; }

/** Leaves the function: next pc npc, `extra` instructions of this block retired beyond DONE. */
function exitAt(npc: u64, extra: i32): void {
  W.i64Const(<i64>npc);
  W.localSet(L_NPC);
  W.localGet(L_DONE);
  if (extra != 0) { W.i32Const(extra); W.op(W.I32_ADD); }
  W.localSet(L_RET);
  W.br(exitDepth);
}

/** Exit before the current instruction (it does not retire). */
function exitBefore(): void { exitAt(pcOf(curIndex), curIndex - blockStartIndex()); }
function blockStartIndex(): i32 { return <i32>((curStart - entryPc) >> 2); }

/** Control goes to `to` (the current block's instructions have been added to DONE). */
function transfer(to: u64): void {
  // A target off 4-byte alignment (the C extension's offsets) is outside every region.
  if (to < entryPc || to >= pcOf(count) || (to & 3) != 0) { exitAt(to, 0); return; }
  const j = blockOf(<i32>((to - entryPc) >> 2));
  if (to <= curStart) {
    // A backward edge: only loop while a whole region's worth of budget is left.
    W.localGet(L_DONE); W.i32Const(count); W.op(W.I32_ADD); W.localGet(P_BUDGET); W.op(W.I32_GT_U);
    openIf(); exitAt(to, 0); closeIf();
  }
  W.i32Const(j);
  W.localSet(L_NEXT);
  W.br(loopDepth);
}

function retireBlock(len: i32): void {
  W.localGet(L_DONE); W.i32Const(len); W.op(W.I32_ADD); W.localSet(L_DONE);
}

/**
 * The shadow page table probe: leaves `hit` (i32) on the stack and E set.
 * The tag is compared with the page of the access's last byte: an entry
 * only holds a page of its own index, so a match also means the access does
 * not cross into the next page (which has the next index).
 */
function probe(tagOff: usize, size: i32): void {
  W.localGet(L_VA); W.i64Const(12); W.op(W.I64_SHR_U); W.op(W.I32_WRAP_I64);
  W.i32Const(<i32>SPT_INDEX_MASK); W.op(W.I32_AND); W.i32Const(SPTE_SHIFT); W.op(W.I32_SHL);
  W.localGet(P_SPT); W.op(W.I32_ADD); W.localTee(L_E);
  W.mem(W.I64_LOAD, 3, <u32>tagOff);
  W.localGet(L_VA);
  if (size > 1) { W.i64Const(size - 1); W.op(W.I64_ADD); }
  W.i64Const(~0xfff); W.op(W.I64_AND); W.localGet(P_KEY); W.op(W.I64_OR);
  W.op(W.I64_EQ);
}

/** The host address of VA through E (after a hit). */
function hostAddress(): void {
  W.localGet(L_VA); W.localGet(L_E); W.mem(W.I64_LOAD, 3, <u32>SPTE_ADDEND); W.op(W.I64_ADD); W.op(W.I32_WRAP_I64);
}

function effectiveAddress(i: i32): void {
  reg(rs1Of(i)); W.i64Const(recImm(i)); W.op(W.I64_ADD); W.localSet(L_VA);
}

/** A probe missed: leave before this instruction for the interpreter. */
function missExit(): void {
  W.i32Const(0); W.i32Const(JIT_INTERPRET); W.mem(W.I32_STORE, 2, <u32>JIT_STATUS);
  exitBefore();
}

function emitLoad(i: i32, o: u8): void {
  const f3 = <i32>(o - D.OP_LB); // funct3 order: lb lh lw ld lbu lhu lwu
  const size = 1 << (f3 & 3);
  const rd = rdOf(i);
  let wop = W.I64_LOAD;
  if (f3 == 0) wop = W.I64_LOAD8_S; else if (f3 == 1) wop = W.I64_LOAD16_S; else if (f3 == 2) wop = W.I64_LOAD32_S;
  else if (f3 == 4) wop = W.I64_LOAD8_U; else if (f3 == 5) wop = W.I64_LOAD16_U; else if (f3 == 6) wop = W.I64_LOAD32_U;
  effectiveAddress(i);
  probe(SPTE_READ_TAG, size);
  W.op(W.I32_EQZ);
  openIf(); missExit(); closeIf();
  hostAddress(); W.mem(wop, f3 & 3, 0); setRd(rd);
}

function emitStore(i: i32, o: u8): void {
  const f3 = <i32>(o - D.OP_SB);
  const size = 1 << f3;
  const wop = f3 == 0 ? W.I64_STORE8 : f3 == 1 ? W.I64_STORE16 : f3 == 2 ? W.I64_STORE32 : W.I64_STORE;
  effectiveAddress(i);
  probe(SPTE_WRITE_TAG, size);
  W.op(W.I32_EQZ);
  openIf(); missExit(); closeIf();
  hostAddress(); reg(rs2Of(i)); W.mem(wop, f3, 0);
}

/** rd = a op b on the 32-bit halves, sign-extended. */
function word(r1: i32, r2orImm: i32, useImm: bool, imm: i64, opc: i32): void {
  reg(r1); W.op(W.I32_WRAP_I64);
  if (useImm) W.i32Const(<i32>imm); else { reg(r2orImm); W.op(W.I32_WRAP_I64); }
  W.op(opc);
  W.op(W.I64_EXTEND_I32_S);
}

function a32(): void { W.localGet(L_TA); W.op(W.I32_WRAP_I64); }
function b32(): void { W.localGet(L_TB); W.op(W.I32_WRAP_I64); }

/** Division and remainder without traps: RISC-V's results for x / 0 and MIN / -1 (see muldiv.ts). */
function emitDivRem(o: u8, rs1: i32, rs2: i32): void {
  reg(rs1); W.localSet(L_TA);
  reg(rs2); W.localSet(L_TB);
  const wide = o <= D.OP_REMU;
  const signedDiv = o == D.OP_DIV || o == D.OP_DIVW;
  const isDiv = o == D.OP_DIV || o == D.OP_DIVU || o == D.OP_DIVW || o == D.OP_DIVUW;
  // the result when the divisor is 0: all ones for div, the dividend for rem
  if (wide) { if (isDiv) W.i64Const(-1); else W.localGet(L_TA); }
  else { if (isDiv) W.i32Const(-1); else a32(); }
  // the quotient or remainder with a divisor that cannot trap
  if (wide) W.localGet(L_TA); else a32();
  if (wide) { W.i64Const(1); W.localGet(L_TB); W.localGet(L_TB); W.op(W.I64_EQZ); }
  else { W.i32Const(1); b32(); b32(); W.op(W.I32_EQZ); }
  if (signedDiv) { // MIN / -1 divides by 1 instead: the quotient is MIN either way
    if (wide) { W.localGet(L_TA); W.i64Const(<i64>0x8000000000000000); W.op(W.I64_EQ); W.localGet(L_TB); W.i64Const(-1); W.op(W.I64_EQ); }
    else { a32(); W.i32Const(<i32>0x80000000); W.op(W.I32_EQ); b32(); W.i32Const(-1); W.op(W.I32_EQ); }
    W.op(W.I32_AND); W.op(W.I32_OR);
  }
  W.op(W.SELECT);
  let opc: i32;
  if (o == D.OP_DIV) opc = W.I64_DIV_S; else if (o == D.OP_DIVU) opc = W.I64_DIV_U;
  else if (o == D.OP_REM) opc = W.I64_REM_S; else if (o == D.OP_REMU) opc = W.I64_REM_U;
  else if (o == D.OP_DIVW) opc = W.I32_DIV_S; else if (o == D.OP_DIVUW) opc = W.I32_DIV_U;
  else if (o == D.OP_REMW) opc = W.I32_REM_S; else opc = W.I32_REM_U;
  W.op(opc);
  if (wide) { W.localGet(L_TB); W.op(W.I64_EQZ); } else { b32(); W.op(W.I32_EQZ); }
  W.op(W.SELECT);
  if (!wide) W.op(W.I64_EXTEND_I32_S);
}

// ---- F and D (fpu/insn.ts executes them; f registers stay in the state block) ----

/** Leaves before instruction i for the interpreter unless sstatus.FS is on (Off: it traps there). */
function fpEnabledOrExit(): void {
  W.i32Const(0); W.mem(W.I64_LOAD, 3, <u32>(cpuState() + OFF_SSTATUS));
  W.i64Const(<i64>SSTATUS_FS); W.op(W.I64_AND); W.op(W.I64_EQZ);
  openIf(); missExit(); closeIf();
}

/** FLW / FLD / FSW / FSD through the probe, as integer loads and stores; a miss goes to the interpreter. */
function emitFpMemory(i: i32, inst: i32): void {
  const f3 = (inst >>> 12) & 7;
  const load = (inst & 0x7f) == 0x07;
  if (f3 != 2 && f3 != 3) { missExit(); return; } // illegal: the interpreter traps
  fpEnabledOrExit();
  const size = f3 == 2 ? 4 : 8;
  const imm = load ? inst >> 20 : ((inst >> 25) << 5) | ((inst >>> 7) & 31);
  reg(rs1Of(i)); W.i64Const(<i64>imm); W.op(W.I64_ADD); W.localSet(L_VA);
  probe(load ? SPTE_READ_TAG : SPTE_WRITE_TAG, size);
  W.op(W.I32_EQZ);
  openIf(); missExit(); closeIf();
  if (load) {
    W.i32Const(<i32>fregAddr((inst >>> 7) & 31));
    hostAddress();
    if (size == 4) { W.mem(W.I64_LOAD32_U, 2, 0); W.i64Const(<i64>0xffffffff00000000); W.op(W.I64_OR); } // NaN-boxed
    else W.mem(W.I64_LOAD, 3, 0);
    W.mem(W.I64_STORE, 3, 0);
    // FS becomes Dirty.
    W.i32Const(0); W.i32Const(0); W.mem(W.I64_LOAD, 3, <u32>(cpuState() + OFF_SSTATUS));
    W.i64Const(<i64>SSTATUS_FS_DIRTY); W.op(W.I64_OR); W.mem(W.I64_STORE, 3, <u32>(cpuState() + OFF_SSTATUS));
  } else {
    hostAddress();
    W.i32Const(<i32>fregAddr((inst >>> 20) & 31));
    W.mem(W.I64_LOAD, 3, 0);
    W.mem(size == 4 ? W.I64_STORE32 : W.I64_STORE, size == 4 ? 2 : 3, 0);
  }
}

/** Any other F/D instruction: a call of env.fp with x[rs1]; it may refuse (then the interpreter traps). */
function emitFp(i: i32): void {
  const inst = <i32>recInst(i);
  if (isFpMemory(inst)) { emitFpMemory(i, inst); return; }
  W.i32Const(inst);
  if (fpReadsX(inst)) reg(rs1Of(i)); else W.i64Const(0);
  W.call(W.FN_FP);
  W.localSet(L_TA);
  W.i32Const(0); W.mem(W.I32_LOAD, 2, <u32>JIT_STATUS);
  openIf(); exitBefore(); closeIf();
  if (fpWritesX(inst)) { W.localGet(L_TA); setRd(rdOf(i)); }
}

/** An instruction that is not the last of its block (no control transfer). */
function emitPlain(i: i32): void {
  const o = recOp(i);
  if (o == D.OP_FP) { emitFp(i); return; }
  if (isLoad(o)) { emitLoad(i, o); return; }
  if (isStore(o)) { emitStore(i, o); return; }
  const rd = rdOf(i), rs1 = rs1Of(i), rs2 = rs2Of(i);
  const imm = recImm(i);
  if (rd == 0) return; // no side effects beyond rd
  switch (o) {
    case D.OP_ADDI: reg(rs1); W.i64Const(imm); W.op(W.I64_ADD); break;
    case D.OP_SLTI: reg(rs1); W.i64Const(imm); W.op(W.I64_LT_S); W.op(W.I64_EXTEND_I32_U); break;
    case D.OP_SLTIU: reg(rs1); W.i64Const(imm); W.op(W.I64_LT_U); W.op(W.I64_EXTEND_I32_U); break;
    case D.OP_XORI: reg(rs1); W.i64Const(imm); W.op(W.I64_XOR); break;
    case D.OP_ORI: reg(rs1); W.i64Const(imm); W.op(W.I64_OR); break;
    case D.OP_ANDI: reg(rs1); W.i64Const(imm); W.op(W.I64_AND); break;
    case D.OP_SLLI: reg(rs1); W.i64Const(imm); W.op(W.I64_SHL); break;
    case D.OP_SRLI: reg(rs1); W.i64Const(imm); W.op(W.I64_SHR_U); break;
    case D.OP_SRAI: reg(rs1); W.i64Const(imm); W.op(W.I64_SHR_S); break;
    case D.OP_ADDIW: word(rs1, 0, true, imm, W.I32_ADD); break;
    case D.OP_SLLIW: word(rs1, 0, true, imm, W.I32_SHL); break;
    case D.OP_SRLIW: word(rs1, 0, true, imm, W.I32_SHR_U); break;
    case D.OP_SRAIW: word(rs1, 0, true, imm, W.I32_SHR_S); break;
    // wasm shifts take the count modulo the width, as RISC-V does
    case D.OP_ADD: reg(rs1); reg(rs2); W.op(W.I64_ADD); break;
    case D.OP_SUB: reg(rs1); reg(rs2); W.op(W.I64_SUB); break;
    case D.OP_SLL: reg(rs1); reg(rs2); W.op(W.I64_SHL); break;
    case D.OP_SLT: reg(rs1); reg(rs2); W.op(W.I64_LT_S); W.op(W.I64_EXTEND_I32_U); break;
    case D.OP_SLTU: reg(rs1); reg(rs2); W.op(W.I64_LT_U); W.op(W.I64_EXTEND_I32_U); break;
    case D.OP_XOR: reg(rs1); reg(rs2); W.op(W.I64_XOR); break;
    case D.OP_SRL: reg(rs1); reg(rs2); W.op(W.I64_SHR_U); break;
    case D.OP_SRA: reg(rs1); reg(rs2); W.op(W.I64_SHR_S); break;
    case D.OP_OR: reg(rs1); reg(rs2); W.op(W.I64_OR); break;
    case D.OP_AND: reg(rs1); reg(rs2); W.op(W.I64_AND); break;
    case D.OP_ADDW: word(rs1, rs2, false, 0, W.I32_ADD); break;
    case D.OP_SUBW: word(rs1, rs2, false, 0, W.I32_SUB); break;
    case D.OP_SLLW: word(rs1, rs2, false, 0, W.I32_SHL); break;
    case D.OP_SRLW: word(rs1, rs2, false, 0, W.I32_SHR_U); break;
    case D.OP_SRAW: word(rs1, rs2, false, 0, W.I32_SHR_S); break;
    case D.OP_MUL: reg(rs1); reg(rs2); W.op(W.I64_MUL); break;
    case D.OP_MULW: word(rs1, rs2, false, 0, W.I32_MUL); break;
    case D.OP_MULH: case D.OP_MULHSU: case D.OP_MULHU:
      reg(rs1); reg(rs2); W.i32Const(<i32>(o - D.OP_MULH)); W.call(W.FN_MULH); break;
    case D.OP_DIV: case D.OP_DIVU: case D.OP_REM: case D.OP_REMU:
    case D.OP_DIVW: case D.OP_DIVUW: case D.OP_REMW: case D.OP_REMUW:
      emitDivRem(o, rs1, rs2); break;
    case D.OP_LUI: W.i64Const(imm); break;
    case D.OP_AUIPC: W.i64Const(<i64>(pcOf(i) + <u64>imm)); break;
    default: abort("jit: a control transfer inside a block"); // they end blocks; scan() stops before the rest
  }
  setRd(rd);
}

/** The last instruction of block b (index i): its effects, then where control goes. */
function emitBlockEnd(i: i32, len: i32): void {
  const o = recOp(i);
  const pc = pcOf(i);
  const rd = rdOf(i);
  if (isBranch(o)) {
    retireBlock(len);
    reg(rs1Of(i)); reg(rs2Of(i));
    if (o == D.OP_BEQ) W.op(W.I64_EQ); else if (o == D.OP_BNE) W.op(W.I64_NE);
    else if (o == D.OP_BLT) W.op(W.I64_LT_S); else if (o == D.OP_BGE) W.op(W.I64_GE_S);
    else if (o == D.OP_BLTU) W.op(W.I64_LT_U); else W.op(W.I64_GE_U);
    openIf(); transfer(pc + <u64>recImm(i)); closeIf();
    transfer(pc + 4);
  } else if (o == D.OP_JAL) {
    if (rd != 0) { W.i64Const(<i64>(pc + 4)); setRd(rd); }
    retireBlock(len);
    transfer(pc + <u64>recImm(i));
  } else if (o == D.OP_JALR) {
    // target before rd is written (rd may be rs1); IALIGN is 16, so any even target is fine
    reg(rs1Of(i)); W.i64Const(recImm(i)); W.op(W.I64_ADD); W.i64Const(-2); W.op(W.I64_AND); W.localSet(L_NPC);
    if (rd != 0) { W.i64Const(<i64>(pc + 4)); setRd(rd); }
    retireBlock(len);
    W.localGet(L_DONE); W.localSet(L_RET);
    W.br(exitDepth);
  } else {
    emitPlain(i);
    retireBlock(len);
    transfer(pc + 4);
  }
}

/** Translates the region at entry (words at linear address code) into MODULE; its length, or 0. */
export function translateRegion(entry: u64, code: usize): i32 {
  count = scan(entry, code);
  if (count == 0) return 0;
  blocks = splitBlocks();

  let used: u32 = 0, written: u32 = 0;
  for (let i = 0; i < count; i++) {
    used |= (1 << <u32>rdOf(i)) | (1 << <u32>rs1Of(i)) | (1 << <u32>rs2Of(i));
    if (writesRd(i)) written |= 1 << <u32>rdOf(i);
  }
  used &= ~1; written &= ~1;

  W.bodyReset();
  W.uleb(2); W.uleb(<u64>I64_LOCALS); W.op(W.T_I64); W.uleb(<u64>I32_LOCALS); W.op(W.T_I32);
  // The words must still be the ones translated.
  for (let i = 0; i < count; i++) {
    W.localGet(P_CODE); W.mem(W.I32_LOAD, 2, <u32>(i << 2));
    W.i32Const(<i32>recInst(i)); W.op(W.I32_NE);
    W.op(W.IF); W.op(W.T_VOID); W.i32Const(-1); W.op(W.RETURN); W.op(W.END);
  }
  for (let r = 1; r < 32; r++) {
    if ((used & (1 << <u32>r)) == 0) continue;
    W.i32Const(0); W.mem(W.I64_LOAD, 3, <u32>(xRegs() + (<usize>r << 3))); W.localSet(L_REG0 + r);
  }

  W.op(W.BLOCK); W.op(W.T_VOID); // $exit
  W.op(W.LOOP); W.op(W.T_VOID);  // the dispatch loop
  for (let b = 0; b < blocks; b++) { W.op(W.BLOCK); W.op(W.T_VOID); }
  W.localGet(L_NEXT);
  W.op(W.BR_TABLE); W.uleb(<u64>blocks);
  for (let b = 0; b < blocks; b++) W.uleb(<u64>b);
  W.uleb(<u64>(blocks - 1));
  let i = 0;
  for (let b = 0; b < blocks; b++) {
    W.op(W.END);
    loopDepth = blocks - 1 - b;
    exitDepth = loopDepth + 1;
    curStart = load<u64>(LEADER_PC + (<usize>b << 3));
    let end = i;
    while (end < count && blockOf(end) == b) end++;
    for (; i < end - 1; i++) { curIndex = i; emitPlain(i); }
    curIndex = i;
    emitBlockEnd(i, end - blockStartIndex());
    i = end;
  }
  W.op(W.END); // loop
  W.op(W.END); // $exit
  for (let r = 1; r < 32; r++) {
    if ((written & (1 << <u32>r)) == 0) continue;
    W.i32Const(0); W.localGet(L_REG0 + r); W.mem(W.I64_STORE, 3, <u32>(xRegs() + (<usize>r << 3)));
  }
  W.i32Const(0); W.localGet(L_NPC); W.mem(W.I64_STORE, 3, <u32>JIT_NPC);
  W.localGet(L_RET);
  W.op(W.END);
  return W.finishModule();
}

/** The length of the region last translated (the budget a call needs). */
export function lastRegionLength(): i32 { return count; }
