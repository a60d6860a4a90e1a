// The translation tier's code generator: a region of guest code becomes one
// WebAssembly function that tier.ts calls in place of the interpreter.
//
// A region is a run of consecutive instructions on one guest page, 32-bit
// and compressed (rvc.ts) mixed, starting at its 2-aligned entry pc: it ends
// before the first instruction the tier leaves to the interpreter (SYSTEM and
// C.EBREAK, AMO, FENCE, illegal), before a 32-bit instruction that straddles
// the page's end, and after an unconditional jump that no earlier branch
// jumps past. A compressed instruction is translated as the operation it
// expands to. Its basic blocks are laid out in address order inside a loop:
// a forward edge is a direct branch to its block (or falls through), a
// backward edge goes round the loop and through a br_table to its block
// (a br_if for the entry's), so loops inside the region run without leaving
// the function; edges leaving it return to tier.ts. A branch over a single
// register-only instruction becomes a select. MULH and its kin are computed
// inline.
//
// The function's contract (type (i32 code, i32 budget, i32 acc) -> i32):
//   - code is the linear address of the entry's instruction. It first
//     compares the region's bytes (exactly those, up to its last
//     instruction's end) with the bytes it was translated from and returns
//     -1 on any difference (the interpreter's decode cache
//     keeps the same rule: a translation is a pure function of the words).
//     RISC-V only promises that a hart sees its own code writes after a
//     FENCE.I, and a region never contains one, so checking at entry is exact.
//   - it retires at most `budget` instructions (the caller passes at least the
//     region's length; backward edges check before looping);
//   - the registers it writes live in locals, loaded at entry and stored at
//     every exit; the ones it only reads are read from the state block at
//     each use (fewer values for the engine to keep in host registers);
//   - every load and store probes the shadow page table like the memory
//     layer's fast path (JIT_SPT and JIT_KEY: the current mode's table and key);
//     a miss or a page-crossing access leaves the region before that
//     instruction with JIT_STATUS = JIT_INTERPRET: the interpreter takes it
//     through the memory layer (faults, MMIO, page tracking, splitting). No
//     call on the access path keeps V8 from spilling the guest registers
//     around it on every access;
//   - it returns acc (the instructions a chain of regions retired before
//     entering it; 0 from tier.ts) plus the number it retired, and leaves the
//     next pc in JIT_NPC; where it leaves for a pc that has a translation, it
//     tail-calls that one instead of returning (emitChain).

import * as W from "./emit";
import { analyzeRegion, count, blocks, leaderPc, recOp, recInst, recImm, rdOf, rs1Of, rs2Of, offOf, pcOf, lenOf,
  indexAt, blockOf, isBranch, isLoad, isStore, writesRd } from "./region";
export { lastRegionLength } from "./region";
import * as D from "../decode";
import { xRegs, cpuState, OFF_SSTATUS, SSTATUS_FS, SSTATUS_FS_DIRTY } from "../state";
import { fregAddr } from "../fpu/fcsr";
import { isFpMemory, fpWritesX, fpReadsX } from "../fpu/insn";
import { SPTE_READ_TAG, SPTE_WRITE_TAG, SPTE_FETCH_TAG, SPTE_ADDEND, SPTE_SHIFT, SPT_INDEX_MASK } from "../../mmu/spte";
import { CACHE, CACHE_BITS, CACHE_ENTRY_SHIFT, E_FN, E_LEN } from "./cache";

/** Where a translated function leaves the next pc (u64) and the helpers their status (i32). */
export const JIT_CTX: usize = memory.data(32, 8);
export const JIT_NPC: usize = JIT_CTX;
export const JIT_STATUS: usize = JIT_CTX + 8;
/** Chains taken (u32, counted by translated code). */
export const JIT_CHAINS: usize = JIT_CTX + 12;
/**
 * The current mode's shadow page table (u32) and key (u64), which tier.ts
 * leaves here before a call: translated code reads them at each probe
 * rather than keeping them in registers the guest's need.
 */
export const JIT_SPT: usize = JIT_CTX + 16;
export const JIT_KEY: usize = JIT_CTX + 24;
export const JIT_GO: i32 = 0;
/** The region stopped before an access its probe could not do: the interpreter takes that instruction. */
export const JIT_INTERPRET: i32 = 1;

// ---- locals ----
const P_CODE: i32 = 0;
const P_BUDGET: i32 = 1;
const P_ACC: i32 = 2;
const L_REG0: i32 = 3; // x0..x31 (x0's local is never used)
const L_VA: i32 = 35;
const L_TA: i32 = 36;
const L_TB: i32 = 37;
const L_NPC: i32 = 38;
const L_MID: i32 = 39;
const L_E: i32 = 40;
const L_DONE: i32 = 41;
const L_RET: i32 = 42;
const L_NEXT: i32 = 43;
const L_COND: i32 = 44;
const L_CHAIN: i32 = 45;
const L_CE: i32 = 46;
const I64_LOCALS: i32 = 37;
const I32_LOCALS: i32 = 7;

// ---- the emitter's position (the region itself is region.ts's) ----
/** Relative depth of $exit and of the dispatch loop from the current emit position. */
let exitDepth: i32 = 0;
let loopDepth: i32 = 0;
/** The block being emitted: its number and first pc, and the instruction being emitted. */
let curBlock: i32 = 0;
let curStart: u64 = 0;
let curIndex: i32 = 0;


// ---- emit helpers ----

/** The registers the region writes (bit r): only those live in locals. */
let written: u32 = 0;

function reg(r: i32): void {
  if (r == 0) W.i64Const(0);
  // One the region only reads is read from the state block at each use: a
  // load off the critical path, where a local would hold a host register
  // through every loop (V8 then spills the ones the loop carries).
  else if ((written & (1 << <u32>r)) == 0) { W.i32Const(0); W.mem(W.I64_LOAD, 3, <u32>(xRegs() + (<usize>r << 3))); }
  else W.localGet(L_REG0 + r);
}

function setRd(r: i32): void {
  if (r == 0) W.op(W.DROP);
  else W.localSet(L_REG0 + r);
}

function openIf(): void { W.op(W.IF); W.op(W.T_VOID); exitDepth++; loopDepth++; }
function closeIf(): void { W.op(W.END); exitDepth--; loopDepth--; }

/**
 * Leaves the function: next pc npc, `extra` instructions of this block
 * retired beyond DONE; `chain`: control flow left the region there (the
 * epilogue may go on to npc's translation).
 */
function exitAt(npc: u64, extra: i32, chain: bool = false): void {
  W.i64Const(<i64>npc);
  W.localSet(L_NPC);
  W.localGet(L_DONE);
  if (extra != 0) { W.i32Const(extra); W.op(W.I32_ADD); }
  W.localSet(L_RET);
  if (chain) { W.i32Const(1); W.localSet(L_CHAIN); }
  W.br(exitDepth);
}

/** Exit before the current instruction (it does not retire). */
function exitBefore(): void { exitAt(pcOf(curIndex), curIndex - blockStartIndex()); }
function blockStartIndex(): i32 { return indexAt(curStart); }

/** Control goes to `to` (the current block's instructions have been added to DONE). */
function transfer(to: u64): void {
  // A target inside the region but not at an instruction's start (a 32-bit one's second half) leaves it.
  const at = indexAt(to);
  if (at < 0) { exitAt(to, 0, true); return; }
  const j = blockOf(at);
  if (j > curBlock) {
    // Forward: the code of block j follows the end of the (j - curBlock - 1)th
    // block still open around this one (past the ifs open here), so a direct
    // br gets there, and the next block is reached by falling through.
    const ifs = loopDepth - (blocks - 1 - curBlock);
    if (ifs == 0 && j == curBlock + 1) return;
    W.br(ifs + j - curBlock - 1);
    return;
  }
  // A backward edge: only loop while a whole region's worth of budget is left.
  W.localGet(L_DONE); W.i32Const(count); W.op(W.I32_ADD); W.localGet(P_BUDGET); W.op(W.I32_GT_U);
  openIf(); exitAt(to, 0); closeIf();
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
  W.i32Const(0); W.mem(W.I32_LOAD, 2, <u32>JIT_SPT); W.op(W.I32_ADD); W.localTee(L_E);
  W.mem(W.I64_LOAD, 3, <u32>tagOff);
  W.localGet(L_VA);
  if (size > 1) { W.i64Const(size - 1); W.op(W.I64_ADD); }
  W.i64Const(~0xfff); W.op(W.I64_AND); W.i32Const(0); W.mem(W.I64_LOAD, 3, <u32>JIT_KEY); W.op(W.I64_OR);
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

function lo(l: i32): void { W.localGet(l); W.i64Const(0xffffffff); W.op(W.I64_AND); }
function hi(l: i32): void { W.localGet(l); W.i64Const(32); W.op(W.I64_SHR_U); }

/**
 * The high 64 bits of x[rs1] * x[rs2] (MULHU), from 32-bit halves as
 * muldiv.ts computes it, inline (WebAssembly has no high multiply). The
 * signed forms correct the unsigned product: for a signed operand, the other
 * operand is subtracted when its sign bit is set (mod 2^64, that is
 * hi(s(a) * u(b)) = hi(u(a) * u(b)) - (a < 0 ? b : 0)).
 */
function emitMulHigh(o: u8, rs1: i32, rs2: i32): void {
  reg(rs1); W.localSet(L_TA);
  reg(rs2); W.localSet(L_TB);
  // mid = hi(a) * lo(b) + ((lo(a) * lo(b)) >> 32)          (no overflow)
  hi(L_TA); lo(L_TB); W.op(W.I64_MUL);
  lo(L_TA); lo(L_TB); W.op(W.I64_MUL); W.i64Const(32); W.op(W.I64_SHR_U);
  W.op(W.I64_ADD); W.localSet(L_MID);
  // hi(a) * hi(b) + (mid >> 32) + ((lo(mid) + lo(a) * hi(b)) >> 32)
  hi(L_TA); hi(L_TB); W.op(W.I64_MUL);
  W.localGet(L_MID); W.i64Const(32); W.op(W.I64_SHR_U); W.op(W.I64_ADD);
  W.localGet(L_MID); W.i64Const(0xffffffff); W.op(W.I64_AND);
  lo(L_TA); hi(L_TB); W.op(W.I64_MUL); W.op(W.I64_ADD);
  W.i64Const(32); W.op(W.I64_SHR_U); W.op(W.I64_ADD);
  if (o == D.OP_MULH || o == D.OP_MULHSU) { // a signed: minus b when a < 0
    W.localGet(L_TA); W.i64Const(63); W.op(W.I64_SHR_S); W.localGet(L_TB); W.op(W.I64_AND); W.op(W.I64_SUB);
  }
  if (o == D.OP_MULH) { // b signed: minus a when b < 0
    W.localGet(L_TB); W.i64Const(63); W.op(W.I64_SHR_S); W.localGet(L_TA); W.op(W.I64_AND); W.op(W.I64_SUB);
  }
}

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
  const rd = rdOf(i);
  if (rd == 0) return; // no side effects beyond rd
  if (!pushResult(i)) abort("jit: a control transfer inside a block"); // they end blocks; scan() stops before the rest
  setRd(rd);
}

/** Does instruction i only compute x[rd] from registers (pushResult emits it)? */
function isAlu(i: i32): bool {
  const o = recOp(i);
  return o != D.OP_FP && !isLoad(o) && !isStore(o) && !isBranch(o) && o != D.OP_JAL && o != D.OP_JALR;
}

/** A register-only instruction cheap enough to compute whether or not it runs (no division). */
function isCheapAlu(i: i32): bool {
  const o = recOp(i);
  return isAlu(i) && !(o >= D.OP_DIV && o <= D.OP_REMU) && !(o >= D.OP_DIVW && o <= D.OP_REMUW);
}

/** Pushes the x[rd] result of a register-only instruction; false for any other. */
function pushResult(i: i32): bool {
  const o = recOp(i);
  const rs1 = rs1Of(i), rs2 = rs2Of(i);
  const imm = recImm(i);
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
    case D.OP_MULH: case D.OP_MULHSU: case D.OP_MULHU: emitMulHigh(o, rs1, rs2); break;
    case D.OP_DIV: case D.OP_DIVU: case D.OP_REM: case D.OP_REMU:
    case D.OP_DIVW: case D.OP_DIVUW: case D.OP_REMW: case D.OP_REMUW:
      emitDivRem(o, rs1, rs2); break;
    case D.OP_LUI: W.i64Const(imm); break;
    case D.OP_AUIPC: W.i64Const(<i64>(pcOf(i) + <u64>imm)); break;
    default: return false;
  }
  return true;
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
    const target = pc + <u64>recImm(i);
    if (i + 1 < count && target == pcOf(i + 1) + lenOf(i + 1) && isCheapAlu(i + 1)) {
      // A branch over one register-only instruction becomes a select (the
      // host's conditional move): no host branch to mispredict when the
      // guest's is data-dependent. Not taken, that instruction retires too.
      W.localSet(L_COND);
      const rd1 = rdOf(i + 1);
      if (rd1 != 0) { reg(rd1); pushResult(i + 1); W.localGet(L_COND); W.op(W.SELECT); setRd(rd1); }
      W.localGet(L_DONE); W.localGet(L_COND); W.op(W.I32_EQZ); W.op(W.I32_ADD); W.localSet(L_DONE);
      transfer(target);
      return;
    }
    openIf(); transfer(target); closeIf();
    transfer(pc + lenOf(i));
  } else if (o == D.OP_JAL) {
    if (rd != 0) { W.i64Const(<i64>(pc + lenOf(i))); setRd(rd); }
    retireBlock(len);
    transfer(pc + <u64>recImm(i));
  } else if (o == D.OP_JALR) {
    // target before rd is written (rd may be rs1); IALIGN is 16, so any even target is fine
    reg(rs1Of(i)); W.i64Const(recImm(i)); W.op(W.I64_ADD); W.i64Const(-2); W.op(W.I64_AND); W.localSet(L_NPC);
    if (rd != 0) { W.i64Const(<i64>(pc + lenOf(i))); setRd(rd); }
    retireBlock(len);
    W.localGet(L_DONE); W.localSet(L_RET);
    W.i32Const(1); W.localSet(L_CHAIN);
    W.br(exitDepth);
  } else {
    emitPlain(i);
    retireBlock(len);
    transfer(pc + lenOf(i));
  }
}

/**
 * A byte check failed: return -1, or entered by a chain (P_ACC instructions
 * retired before it), P_ACC: tier.ts then finds the entry stale at its next offer.
 */
function stale(): void {
  W.op(W.IF); W.op(W.T_VOID);
  W.i32Const(-1); W.localGet(P_ACC); W.localGet(P_ACC); W.op(W.I32_EQZ); W.op(W.SELECT); W.op(W.RETURN);
  W.op(W.END);
}

/**
 * The entry check: the region's bytes [0, size) at P_CODE must still be the
 * ones at code now, or the region does not run (stale()). The differences of
 * its 8-byte pieces (then a 4- and a 2-byte tail) are or-ed together and
 * tested once: one branch instead of one per piece, and 7% fewer bytes in a
 * Linux boot's region modules (116 KB -> 108 KB at the default threshold).
 */
function checkBytes(code: usize, size: u32): void {
  let off: u32 = 0;
  let first = true;
  for (let piece: u32 = 8; piece >= 2; piece >>= 1) {
    for (; off + piece <= size; off += piece) {
      W.localGet(P_CODE);
      W.mem(piece == 8 ? W.I64_LOAD : piece == 4 ? W.I64_LOAD32_U : W.I64_LOAD16_U, 0, off);
      W.i64Const(piece == 8 ? load<i64>(code + <usize>off) : piece == 4 ? <i64>load<u32>(code + <usize>off) : <i64>load<u16>(code + <usize>off));
      W.op(W.I64_XOR);
      if (!first) W.op(W.I64_OR);
      first = false;
      if (piece < 8) { off += piece; break; } // at most one 4- and one 2-byte tail
    }
  }
  W.op(W.I64_EQZ); W.op(W.I32_EQZ);
  stale();
}

function budgetLeft(): void { W.localGet(P_BUDGET); W.localGet(L_RET); W.op(W.I32_SUB); }

/**
 * Chaining: where control left the region (a branch, jump or fall-through
 * out of it; a jalr: any target), go on to the next pc's translation without
 * returning to tier.ts, when (checked here, at run time, each time) the
 * region cache's entry for that pc holds one, the budget left covers its
 * length as tier.ts requires, and the fetch probe of its page hits (its code
 * address, through the shadow page table as the interpreter fetches). The
 * registers are stored already; it is a tail call (of env.chain, which
 * tail-calls the region through the table), so a loop across regions runs
 * in constant stack. Interrupts only become pending between the run
 * loop's chunks (execute.ts) and the budget ends the chunk, so the budget
 * is the one check a chain point needs.
 */
function emitChain(): void {
  W.localGet(L_CHAIN);
  W.op(W.IF); W.op(W.T_VOID);
  // the cache entry: CACHE + ((npc >> 1) & mask) << shift, and its pc
  W.localGet(L_NPC); W.i64Const(1); W.op(W.I64_SHR_U); W.op(W.I32_WRAP_I64);
  W.i32Const((1 << CACHE_BITS) - 1); W.op(W.I32_AND); W.i32Const(CACHE_ENTRY_SHIFT); W.op(W.I32_SHL);
  W.i32Const(<i32>CACHE); W.op(W.I32_ADD); W.localTee(L_CE);
  W.mem(W.I64_LOAD, 3, 0); W.localGet(L_NPC); W.op(W.I64_EQ);
  W.localGet(L_CE); W.mem(W.I32_LOAD, 2, <u32>E_FN); W.i32Const(0); W.op(W.I32_NE); W.op(W.I32_AND);
  W.localGet(L_CE); W.mem(W.I32_LOAD, 2, <u32>E_LEN); budgetLeft(); W.op(W.I32_LE_U); W.op(W.I32_AND);
  W.op(W.IF); W.op(W.T_VOID);
  W.localGet(L_NPC); W.localSet(L_VA);
  probe(SPTE_FETCH_TAG, 1);
  W.op(W.IF); W.op(W.T_VOID);
  hostAddress();             // code
  budgetLeft();              // budget
  W.localGet(P_ACC); W.localGet(L_RET); W.op(W.I32_ADD); // acc
  W.i32Const(0); W.i32Const(0); W.mem(W.I32_LOAD, 2, <u32>JIT_CHAINS); W.i32Const(1); W.op(W.I32_ADD);
  W.mem(W.I32_STORE, 2, <u32>JIT_CHAINS);
  W.localGet(L_CE); W.mem(W.I32_LOAD, 2, <u32>E_FN);
  W.returnCallChain();
  W.op(W.END);
  W.op(W.END);
  W.op(W.END);
}

/** Translates the region at entry (its bytes at linear address code) into MODULE; its length, or 0. */
export function translateRegion(entry: u64, code: usize): i32 {
  if (analyzeRegion(entry, code) == 0) return 0;

  written = 0;
  for (let i = 0; i < count; i++) {
    if (writesRd(i)) written |= 1 << <u32>rdOf(i);
  }
  written &= ~1;

  W.bodyReset();
  W.uleb(2); W.uleb(<u64>I64_LOCALS); W.op(W.T_I64); W.uleb(<u64>I32_LOCALS); W.op(W.T_I32);
  checkBytes(code, offOf(count));
  for (let r = 1; r < 32; r++) {
    if ((written & (1 << <u32>r)) == 0) continue;
    W.i32Const(0); W.mem(W.I64_LOAD, 3, <u32>(xRegs() + (<usize>r << 3))); W.localSet(L_REG0 + r);
  }

  W.op(W.BLOCK); W.op(W.T_VOID); // $exit
  W.op(W.LOOP); W.op(W.T_VOID);  // the dispatch loop
  for (let b = 0; b < blocks; b++) { W.op(W.BLOCK); W.op(W.T_VOID); }
  // Only backward edges come through here (forward ones branch straight to
  // their block), and most go to the entry: that one is a plain br_if.
  W.localGet(L_NEXT); W.op(W.I32_EQZ); W.brIf(0);
  W.localGet(L_NEXT);
  W.op(W.BR_TABLE); W.uleb(<u64>blocks);
  for (let b = 0; b < blocks; b++) W.uleb(<u64>b);
  W.uleb(<u64>(blocks - 1));
  let i = 0;
  for (let b = 0; b < blocks; b++) {
    W.op(W.END);
    loopDepth = blocks - 1 - b;
    exitDepth = loopDepth + 1;
    curBlock = b;
    curStart = leaderPc(b);
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
  emitChain();
  W.localGet(P_ACC); W.localGet(L_RET); W.op(W.I32_ADD);
  W.op(W.END);
  return W.finishModule();
}

