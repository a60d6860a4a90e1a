// The fast loop: fetch, look up the decoded record (dcache.ts) and execute
// everything except the SYSTEM opcode, with pc and the retired count in
// locals. It returns to the run loop (execute.ts) when runLimit instructions have
// retired or an instruction stops it (stop.ts); the run loop deals with traps,
// interrupts, CSRs and exits.
//
// Two functions. runInner is the hot loop and calls nothing: per instruction
// it is one compare that pc is on the code page, the word's load, one tag
// compare, one jump-table dispatch on the record's code and the operation on
// the registers in the state block, with the loads and stores that hit their
// shadow entry done in place (memProbe). Anything that needs a call (a fetch
// off the code page, a decode-cache miss, a memory-layer slow path or a page-
// crossing access, multiply-high, division, atomics, floating point, SYSTEM,
// an illegal instruction) makes it return to runFast, which does that one
// thing and enters it again. A loop without calls keeps pc, the count and the
// code page's translation in machine registers: with calls on its rare paths
// the engine stores them to the stack at every instruction.

import { memFetch, fetchAddend, memProbe } from "../mmu/access";
import { accessStatus, accessTval, ACCESS_EXCEPTION } from "../mmu/access_state";
import { getPc, setPc, addInstret } from "./state";
import { runLimit, stopReason, stopInst, stopNow, illegal, memStop, STOP_LIMIT, STOP_SYSTEM } from "./stop";
import { loadData, storeData } from "./load_store";
import { execAmo } from "./amo";
import { execFp } from "./fpu/insn";
import { mulh, mulhsu, mulhu, div, divu, rem, remu, divw, divuw, remw, remuw } from "./muldiv";
import * as D from "./decode";
import { dcacheAt, fillRecord, recTag, recCode, recOp, recLen, recImm, rs1, rs2, wr } from "./dcache";
import {
  C_ADDI, C_ANDI, C_SLLI, C_SRLI, C_SRAI, C_ADDIW, C_ADD, C_XOR, C_OR, C_AND, C_SUB, C_ADDW, C_SUBW, C_LUI, C_JAL, C_JALR, C_BEQ, C_BNE, C_LW, C_LD, C_SW, C_SD,
} from "./dcache";
import { jitThreshold, jitTry } from "./jit/tier";
import { JIT_NPC, JIT_STATUS, JIT_GO } from "./jit/translate";

/** The instructions retired by the last runFast. */
export let lastRetired: i32 = 0;

// @ts-ignore: decorator
@inline function sext32(v: u64): u64 { return <u64><i64><i32>v; }

/**
 * The instruction word at pc through the memory layer (the page's
 * translation is not cached yet). A 32-bit instruction in the page's last
 * halfword is fetched in two halves, each through its own page's
 * translation; a fault on either reports that half's address.
 */
function fetchSlow(pc: u64): u32 {
  if ((pc & 0xfff) != 0xffe) return memFetch(pc);
  // The first half from the page's last aligned word (a 4-byte read at pc would leave the page).
  const lo = memFetch(pc - 2) >>> 16;
  if (accessStatus != 0) {
    if (accessStatus == ACCESS_EXCEPTION) accessTval = pc;
    return 0;
  }
  if ((lo & 3) != 3) return lo; // compressed: no second half
  const hi = memFetch(pc + 2);
  return accessStatus != 0 ? 0 : lo | (hi << 16);
}

// ---- runInner's exits ----
/** It retired its limit. */
const X_LIMIT: i32 = 0;
/** A taken branch or jump (only while the translation tier is on): offer the target to it. */
const X_JUMP: i32 = 1;
/** pc is off the code page (and not the word runFast fetched at a page's end). */
const X_FETCH: i32 = 2;
/** The record at pc is another word's: innerWord is the word fetched. */
const X_MISS: i32 = 3;
/** The record at pc (its tag checked) needs out-of-line work: runFast's stepSlow. */
const X_SLOW: i32 = 4;

// runInner's results besides its exit.
let innerPc: u64 = 0;
let innerLeft: i32 = 0;
let innerWord: u32 = 0;
let innerEntry: usize = 0;

// ---- what runInner does in place; `op` is a constant at every use, so each folds to its one case ----

/** The register-immediate, register-register and upper-immediate operations. */
// @ts-ignore: decorator
@inline function alu(e: usize, op: u8, pc: u64): void {
  switch (op) {
    case D.OP_ADDI: wr(e, rs1(e) + recImm(e)); return;
    case D.OP_SLTI: wr(e, <u64>(<i64>rs1(e) < <i64>recImm(e))); return;
    case D.OP_SLTIU: wr(e, <u64>(rs1(e) < recImm(e))); return;
    case D.OP_XORI: wr(e, rs1(e) ^ recImm(e)); return;
    case D.OP_ORI: wr(e, rs1(e) | recImm(e)); return;
    case D.OP_ANDI: wr(e, rs1(e) & recImm(e)); return;
    case D.OP_SLLI: wr(e, rs1(e) << recImm(e)); return;
    case D.OP_SRLI: wr(e, rs1(e) >> recImm(e)); return;
    case D.OP_SRAI: wr(e, <u64>(<i64>rs1(e) >> <i64>recImm(e))); return;
    case D.OP_ADDIW: wr(e, sext32(rs1(e) + recImm(e))); return;
    case D.OP_SLLIW: wr(e, <u64><i64>(<i32>rs1(e) << <i32>recImm(e))); return;
    case D.OP_SRLIW: wr(e, <u64><i64><i32>(<u32>rs1(e) >>> <u32>recImm(e))); return;
    case D.OP_SRAIW: wr(e, <u64><i64>(<i32>rs1(e) >> <i32>recImm(e))); return;
    case D.OP_ADD: wr(e, rs1(e) + rs2(e)); return;
    case D.OP_SUB: wr(e, rs1(e) - rs2(e)); return;
    case D.OP_SLL: wr(e, rs1(e) << (rs2(e) & 63)); return;
    case D.OP_SLT: wr(e, <u64>(<i64>rs1(e) < <i64>rs2(e))); return;
    case D.OP_SLTU: wr(e, <u64>(rs1(e) < rs2(e))); return;
    case D.OP_XOR: wr(e, rs1(e) ^ rs2(e)); return;
    case D.OP_SRL: wr(e, rs1(e) >> (rs2(e) & 63)); return;
    case D.OP_SRA: wr(e, <u64>(<i64>rs1(e) >> <i64>(rs2(e) & 63))); return;
    case D.OP_OR: wr(e, rs1(e) | rs2(e)); return;
    case D.OP_AND: wr(e, rs1(e) & rs2(e)); return;
    case D.OP_ADDW: wr(e, sext32(rs1(e) + rs2(e))); return;
    case D.OP_SUBW: wr(e, sext32(rs1(e) - rs2(e))); return;
    case D.OP_SLLW: wr(e, <u64><i64>(<i32>rs1(e) << (<i32>rs2(e) & 31))); return;
    case D.OP_SRLW: wr(e, <u64><i64><i32>(<u32>rs1(e) >>> (<u32>rs2(e) & 31))); return;
    case D.OP_SRAW: wr(e, <u64><i64>(<i32>rs1(e) >> (<i32>rs2(e) & 31))); return;
    case D.OP_MUL: wr(e, rs1(e) * rs2(e)); return;
    case D.OP_MULW: wr(e, sext32(rs1(e) * rs2(e))); return;
    case D.OP_LUI: wr(e, recImm(e)); return;
    default: wr(e, pc + recImm(e)); // OP_AUIPC
  }
}

/** Is the branch taken? */
// @ts-ignore: decorator
@inline function taken(e: usize, op: u8): bool {
  switch (op) {
    case D.OP_BEQ: return rs1(e) == rs2(e);
    case D.OP_BNE: return rs1(e) != rs2(e);
    case D.OP_BLT: return <i64>rs1(e) < <i64>rs2(e);
    case D.OP_BGE: return <i64>rs1(e) >= <i64>rs2(e);
    case D.OP_BLTU: return rs1(e) < rs2(e);
    default: return rs1(e) >= rs2(e); // OP_BGEU
  }
}

/** Does [va, va + size) cross a page boundary? (load_store.ts splits those.) */
// @ts-ignore: decorator
@inline function crosses(va: u64, size: i32): bool {
  return size > 1 && (<u32>va & 0xfff) > <u32>(4096 - size);
}

/** The byte size of a load or store op. */
// @ts-ignore: decorator
@inline function sizeOf(op: u8): i32 {
  return op == D.OP_LB || op == D.OP_LBU || op == D.OP_SB ? 1 : op == D.OP_LH || op == D.OP_LHU || op == D.OP_SH ? 2
    : op == D.OP_LD || op == D.OP_SD ? 8 : 4;
}

/**
 * The linear address of a load's or store's data when its shadow entry allows
 * it in place (memProbe) and it stays within the page, else -1.
 */
// @ts-ignore: decorator
@inline function dataAt(e: usize, op: u8): i64 {
  const va = rs1(e) + recImm(e);
  return crosses(va, sizeOf(op)) ? -1 : memProbe(va, sizeOf(op), op >= D.OP_SB);
}

/** The load's value into x[rd] from p. */
// @ts-ignore: decorator
@inline function loadAt(e: usize, op: u8, p: usize): void {
  switch (op) {
    case D.OP_LB: wr(e, <u64><i64>load<i8>(p)); break;
    case D.OP_LH: wr(e, <u64><i64>load<i16>(p)); break;
    case D.OP_LW: wr(e, <u64><i64>load<i32>(p)); break;
    case D.OP_LD: wr(e, load<u64>(p)); break;
    case D.OP_LBU: wr(e, <u64>load<u8>(p)); break;
    case D.OP_LHU: wr(e, <u64>load<u16>(p)); break;
    default: wr(e, <u64>load<u32>(p)); // OP_LWU
  }
}

/** The store's x[rs2] to p. */
// @ts-ignore: decorator
@inline function storeAt(e: usize, op: u8, p: usize): void {
  switch (op) {
    case D.OP_SB: store<u8>(p, <u8>rs2(e)); break;
    case D.OP_SH: store<u16>(p, <u16>rs2(e)); break;
    case D.OP_SW: store<u32>(p, <u32>rs2(e)); break;
    default: store<u64>(p, rs2(e)); // OP_SD
  }
}

/** hp for a jump from pc (at hp) to target: target's linear address on pc's page, else out of range. */
// @ts-ignore: decorator
@inline function jumpHp(target: u64, pc: u64, hp: u32): u32 {
  return ((target ^ pc) & ~<u64>0xfff) == 0 ? hp - (<u32>pc & 0xfff) + (<u32>target & 0xfff) : hp - (<u32>pc & 0xfff) - 2;
}

/**
 * Executes from pc until `left` instructions have retired or an exit (X_*);
 * innerPc, innerLeft and innerEntry say where it stopped. The word at edgePc
 * (a page's last halfword: its word is fetched in halves, fetchSlow) is
 * edgeWord, for a run of one instruction.
 *
 * Besides pc the loop keeps hp, pc's linear address while pc is on the code
 * page. The record is indexed by hp's bits (any index serves: records are
 * checked by their tag), so it is one add from hp: bias + hp * 8; whether pc
 * is still on the page is one compare of that record's address with first, the
 * page's first halfword's (runFast computes both: as parameters they stay in
 * registers, where the engine recomputed values derived in here every round).
 */
function runInner(pc: u64, hp: u32, left: i32, first: u32, bias: u32, edgePc: u64, edgeWord: u32): i32 {
  let x = X_LIMIT;
  while (left > 0) {
    const e = <usize>(bias + (hp << 3));
    let word: u32 = 0;
    // 4094 halfwords: a word starting in the page's last halfword leaves the page.
    if (<u32>e - first < 4094 << 3) {
      word = load<u32>(<usize>hp);
    } else if (pc == edgePc) {
      word = edgeWord;
    } else {
      x = X_FETCH;
      break;
    }
    if (WEBKVM_DEBUG) assert(e == dcacheAt(hp));
    if (recTag(e) != word) {
      innerWord = word;
      innerEntry = e;
      x = X_MISS;
      break;
    }
    // Dispatch on the record's code, which tells a compressed instruction's
    // (C_*) from a 32-bit one's (its op): each case steps pc by its own constant length, so
    // the next pc never waits for a load (the engine would chain every
    // instruction to the one before through a length read from memory). Every
    // case ends in its own `pc += len; left--; continue` rather than sharing
    // one tail after the switch: that saves a jump per instruction.
    switch (recCode(e)) {
      case 0: innerEntry = e; x = X_SLOW; break; // its own case: the jump table starts at 0
      case D.OP_ADDI: alu(e, D.OP_ADDI, pc); pc += 4; hp += 4; left--; continue;
      case D.OP_SLTI: alu(e, D.OP_SLTI, pc); pc += 4; hp += 4; left--; continue;
      case D.OP_SLTIU: alu(e, D.OP_SLTIU, pc); pc += 4; hp += 4; left--; continue;
      case D.OP_XORI: alu(e, D.OP_XORI, pc); pc += 4; hp += 4; left--; continue;
      case D.OP_ORI: alu(e, D.OP_ORI, pc); pc += 4; hp += 4; left--; continue;
      case D.OP_ANDI: alu(e, D.OP_ANDI, pc); pc += 4; hp += 4; left--; continue;
      case D.OP_SLLI: alu(e, D.OP_SLLI, pc); pc += 4; hp += 4; left--; continue;
      case D.OP_SRLI: alu(e, D.OP_SRLI, pc); pc += 4; hp += 4; left--; continue;
      case D.OP_SRAI: alu(e, D.OP_SRAI, pc); pc += 4; hp += 4; left--; continue;
      case D.OP_ADDIW: alu(e, D.OP_ADDIW, pc); pc += 4; hp += 4; left--; continue;
      case D.OP_SLLIW: alu(e, D.OP_SLLIW, pc); pc += 4; hp += 4; left--; continue;
      case D.OP_SRLIW: alu(e, D.OP_SRLIW, pc); pc += 4; hp += 4; left--; continue;
      case D.OP_SRAIW: alu(e, D.OP_SRAIW, pc); pc += 4; hp += 4; left--; continue;
      case D.OP_ADD: alu(e, D.OP_ADD, pc); pc += 4; hp += 4; left--; continue;
      case D.OP_SLL: alu(e, D.OP_SLL, pc); pc += 4; hp += 4; left--; continue;
      case D.OP_SLT: alu(e, D.OP_SLT, pc); pc += 4; hp += 4; left--; continue;
      case D.OP_SLTU: alu(e, D.OP_SLTU, pc); pc += 4; hp += 4; left--; continue;
      case D.OP_XOR: alu(e, D.OP_XOR, pc); pc += 4; hp += 4; left--; continue;
      case D.OP_SRL: alu(e, D.OP_SRL, pc); pc += 4; hp += 4; left--; continue;
      case D.OP_OR: alu(e, D.OP_OR, pc); pc += 4; hp += 4; left--; continue;
      case D.OP_AND: alu(e, D.OP_AND, pc); pc += 4; hp += 4; left--; continue;
      case D.OP_SUB: alu(e, D.OP_SUB, pc); pc += 4; hp += 4; left--; continue;
      case D.OP_SRA: alu(e, D.OP_SRA, pc); pc += 4; hp += 4; left--; continue;
      case D.OP_ADDW: alu(e, D.OP_ADDW, pc); pc += 4; hp += 4; left--; continue;
      case D.OP_SUBW: alu(e, D.OP_SUBW, pc); pc += 4; hp += 4; left--; continue;
      case D.OP_SLLW: alu(e, D.OP_SLLW, pc); pc += 4; hp += 4; left--; continue;
      case D.OP_SRLW: alu(e, D.OP_SRLW, pc); pc += 4; hp += 4; left--; continue;
      case D.OP_SRAW: alu(e, D.OP_SRAW, pc); pc += 4; hp += 4; left--; continue;
      case D.OP_MUL: alu(e, D.OP_MUL, pc); pc += 4; hp += 4; left--; continue;
      case D.OP_MULW: alu(e, D.OP_MULW, pc); pc += 4; hp += 4; left--; continue;
      case D.OP_LUI: alu(e, D.OP_LUI, pc); pc += 4; hp += 4; left--; continue;
      case D.OP_AUIPC: alu(e, D.OP_AUIPC, pc); pc += 4; hp += 4; left--; continue;
      case D.OP_JAL: wr(e, pc + 4); pc += recImm(e); hp += <u32>recImm(e); left--; break;
      case D.OP_JALR: { const t = (rs1(e) + recImm(e)) & ~<u64>1; wr(e, pc + 4); hp = jumpHp(t, pc, hp); pc = t; left--; break; } // rd may be rs1
      case D.OP_BEQ: if (taken(e, D.OP_BEQ)) { pc += recImm(e); hp += <u32>recImm(e); left--; break; } pc += 4; hp += 4; left--; continue;
      case D.OP_BNE: if (taken(e, D.OP_BNE)) { pc += recImm(e); hp += <u32>recImm(e); left--; break; } pc += 4; hp += 4; left--; continue;
      case D.OP_BLT: if (taken(e, D.OP_BLT)) { pc += recImm(e); hp += <u32>recImm(e); left--; break; } pc += 4; hp += 4; left--; continue;
      case D.OP_BGE: if (taken(e, D.OP_BGE)) { pc += recImm(e); hp += <u32>recImm(e); left--; break; } pc += 4; hp += 4; left--; continue;
      case D.OP_BLTU: if (taken(e, D.OP_BLTU)) { pc += recImm(e); hp += <u32>recImm(e); left--; break; } pc += 4; hp += 4; left--; continue;
      case D.OP_BGEU: if (taken(e, D.OP_BGEU)) { pc += recImm(e); hp += <u32>recImm(e); left--; break; } pc += 4; hp += 4; left--; continue;
      case D.OP_LB: { const h = dataAt(e, D.OP_LB); if (h < 0) { innerEntry = e; x = X_SLOW; break; } loadAt(e, D.OP_LB, <usize>h); pc += 4; hp += 4; left--; continue; }
      case D.OP_LH: { const h = dataAt(e, D.OP_LH); if (h < 0) { innerEntry = e; x = X_SLOW; break; } loadAt(e, D.OP_LH, <usize>h); pc += 4; hp += 4; left--; continue; }
      case D.OP_LW: { const h = dataAt(e, D.OP_LW); if (h < 0) { innerEntry = e; x = X_SLOW; break; } loadAt(e, D.OP_LW, <usize>h); pc += 4; hp += 4; left--; continue; }
      case D.OP_LD: { const h = dataAt(e, D.OP_LD); if (h < 0) { innerEntry = e; x = X_SLOW; break; } loadAt(e, D.OP_LD, <usize>h); pc += 4; hp += 4; left--; continue; }
      case D.OP_LBU: { const h = dataAt(e, D.OP_LBU); if (h < 0) { innerEntry = e; x = X_SLOW; break; } loadAt(e, D.OP_LBU, <usize>h); pc += 4; hp += 4; left--; continue; }
      case D.OP_LHU: { const h = dataAt(e, D.OP_LHU); if (h < 0) { innerEntry = e; x = X_SLOW; break; } loadAt(e, D.OP_LHU, <usize>h); pc += 4; hp += 4; left--; continue; }
      case D.OP_LWU: { const h = dataAt(e, D.OP_LWU); if (h < 0) { innerEntry = e; x = X_SLOW; break; } loadAt(e, D.OP_LWU, <usize>h); pc += 4; hp += 4; left--; continue; }
      case D.OP_SB: { const h = dataAt(e, D.OP_SB); if (h < 0) { innerEntry = e; x = X_SLOW; break; } storeAt(e, D.OP_SB, <usize>h); pc += 4; hp += 4; left--; continue; }
      case D.OP_SH: { const h = dataAt(e, D.OP_SH); if (h < 0) { innerEntry = e; x = X_SLOW; break; } storeAt(e, D.OP_SH, <usize>h); pc += 4; hp += 4; left--; continue; }
      case D.OP_SW: { const h = dataAt(e, D.OP_SW); if (h < 0) { innerEntry = e; x = X_SLOW; break; } storeAt(e, D.OP_SW, <usize>h); pc += 4; hp += 4; left--; continue; }
      case D.OP_SD: { const h = dataAt(e, D.OP_SD); if (h < 0) { innerEntry = e; x = X_SLOW; break; } storeAt(e, D.OP_SD, <usize>h); pc += 4; hp += 4; left--; continue; }
      case D.OP_FENCE: pc += 4; hp += 4; left--; continue;
      case C_ADDI: alu(e, D.OP_ADDI, pc); pc += 2; hp += 2; left--; continue;
      case C_ANDI: alu(e, D.OP_ANDI, pc); pc += 2; hp += 2; left--; continue;
      case C_SLLI: alu(e, D.OP_SLLI, pc); pc += 2; hp += 2; left--; continue;
      case C_SRLI: alu(e, D.OP_SRLI, pc); pc += 2; hp += 2; left--; continue;
      case C_SRAI: alu(e, D.OP_SRAI, pc); pc += 2; hp += 2; left--; continue;
      case C_ADDIW: alu(e, D.OP_ADDIW, pc); pc += 2; hp += 2; left--; continue;
      case C_ADD: alu(e, D.OP_ADD, pc); pc += 2; hp += 2; left--; continue;
      case C_XOR: alu(e, D.OP_XOR, pc); pc += 2; hp += 2; left--; continue;
      case C_OR: alu(e, D.OP_OR, pc); pc += 2; hp += 2; left--; continue;
      case C_AND: alu(e, D.OP_AND, pc); pc += 2; hp += 2; left--; continue;
      case C_SUB: alu(e, D.OP_SUB, pc); pc += 2; hp += 2; left--; continue;
      case C_ADDW: alu(e, D.OP_ADDW, pc); pc += 2; hp += 2; left--; continue;
      case C_SUBW: alu(e, D.OP_SUBW, pc); pc += 2; hp += 2; left--; continue;
      case C_LUI: alu(e, D.OP_LUI, pc); pc += 2; hp += 2; left--; continue;
      case C_JAL: wr(e, pc + 2); pc += recImm(e); hp += <u32>recImm(e); left--; break;
      case C_JALR: { const t = (rs1(e) + recImm(e)) & ~<u64>1; wr(e, pc + 2); hp = jumpHp(t, pc, hp); pc = t; left--; break; } // rd may be rs1
      case C_BEQ: if (taken(e, D.OP_BEQ)) { pc += recImm(e); hp += <u32>recImm(e); left--; break; } pc += 2; hp += 2; left--; continue;
      case C_BNE: if (taken(e, D.OP_BNE)) { pc += recImm(e); hp += <u32>recImm(e); left--; break; } pc += 2; hp += 2; left--; continue;
      case C_LW: { const h = dataAt(e, D.OP_LW); if (h < 0) { innerEntry = e; x = X_SLOW; break; } loadAt(e, D.OP_LW, <usize>h); pc += 2; hp += 2; left--; continue; }
      case C_LD: { const h = dataAt(e, D.OP_LD); if (h < 0) { innerEntry = e; x = X_SLOW; break; } loadAt(e, D.OP_LD, <usize>h); pc += 2; hp += 2; left--; continue; }
      case C_SW: { const h = dataAt(e, D.OP_SW); if (h < 0) { innerEntry = e; x = X_SLOW; break; } storeAt(e, D.OP_SW, <usize>h); pc += 2; hp += 2; left--; continue; }
      case C_SD: { const h = dataAt(e, D.OP_SD); if (h < 0) { innerEntry = e; x = X_SLOW; break; } storeAt(e, D.OP_SD, <usize>h); pc += 2; hp += 2; left--; continue; }
      // The rest: runFast's stepSlow. (Listing these keeps the ops one
      // range without gaps, which the optimizer turns into one jump table.)
      case D.OP_AMO: case D.OP_SYSTEM: case D.OP_RVC: case D.OP_FP:
      default: {
        innerEntry = e;
        x = X_SLOW;
        break;
      }
    }
    // A taken branch or jump (the loop goes on), or an exit.
    if (x != X_LIMIT) break;
    if (jitThreshold != 0) { x = X_JUMP; break; }
  }
  innerPc = pc;
  innerLeft = left;
  return x;
}


/**
 * Executes the instruction whose record is e (its tag checked) at pc, the
 * ones runInner leaves out; false when it stopped the loop instead of retiring.
 */
function stepSlow(e: usize): bool {
  switch (recOp(e)) {
    case D.OP_LB: { const v = loadData(rs1(e) + recImm(e), 1); if (accessStatus != 0) return failed(); wr(e, <u64><i64><i8>v); return true; }
    case D.OP_LH: { const v = loadData(rs1(e) + recImm(e), 2); if (accessStatus != 0) return failed(); wr(e, <u64><i64><i16>v); return true; }
    case D.OP_LW: { const v = loadData(rs1(e) + recImm(e), 4); if (accessStatus != 0) return failed(); wr(e, <u64><i64><i32>v); return true; }
    case D.OP_LD: { const v = loadData(rs1(e) + recImm(e), 8); if (accessStatus != 0) return failed(); wr(e, v); return true; }
    case D.OP_LBU: { const v = loadData(rs1(e) + recImm(e), 1); if (accessStatus != 0) return failed(); wr(e, v); return true; }
    case D.OP_LHU: { const v = loadData(rs1(e) + recImm(e), 2); if (accessStatus != 0) return failed(); wr(e, v); return true; }
    case D.OP_LWU: { const v = loadData(rs1(e) + recImm(e), 4); if (accessStatus != 0) return failed(); wr(e, v); return true; }
    case D.OP_SB: { storeData(rs1(e) + recImm(e), rs2(e), 1); if (accessStatus != 0) return failed(); return true; }
    case D.OP_SH: { storeData(rs1(e) + recImm(e), rs2(e), 2); if (accessStatus != 0) return failed(); return true; }
    case D.OP_SW: { storeData(rs1(e) + recImm(e), rs2(e), 4); if (accessStatus != 0) return failed(); return true; }
    case D.OP_SD: { storeData(rs1(e) + recImm(e), rs2(e), 8); if (accessStatus != 0) return failed(); return true; }
    case D.OP_MULH: wr(e, mulh(rs1(e), rs2(e))); return true;
    case D.OP_MULHSU: wr(e, mulhsu(rs1(e), rs2(e))); return true;
    case D.OP_MULHU: wr(e, mulhu(rs1(e), rs2(e))); return true;
    case D.OP_DIV: wr(e, div(rs1(e), rs2(e))); return true;
    case D.OP_DIVU: wr(e, divu(rs1(e), rs2(e))); return true;
    case D.OP_REM: wr(e, rem(rs1(e), rs2(e))); return true;
    case D.OP_REMU: wr(e, remu(rs1(e), rs2(e))); return true;
    case D.OP_DIVW: wr(e, divw(rs1(e), rs2(e))); return true;
    case D.OP_DIVUW: wr(e, divuw(rs1(e), rs2(e))); return true;
    case D.OP_REMW: wr(e, remw(rs1(e), rs2(e))); return true;
    case D.OP_REMUW: wr(e, remuw(rs1(e), rs2(e))); return true;
    case D.OP_AMO: return execAmo(<i32>recTag(e));
    // C.FLD & co. carry their expansion; stval is the 16-bit word when illegal (FS Off)
    case D.OP_FP: return execFp(<i32>recImm(e), recLen(e) == 2 ? recTag(e) & 0xffff : recTag(e));
    case D.OP_SYSTEM: {
      stopInst = <u32>recImm(e);
      stopNow(STOP_SYSTEM);
      return false;
    }
    default: { // OP_ILLEGAL
      illegal(<i32>recImm(e));
      return false;
    }
  }
}

/** A load or store the memory layer failed: a trap or an exit. */
function failed(): bool {
  memStop();
  return false;
}

/** Executes until runLimit instructions retired or one stopped the loop; returns stopReason. */
export function runFast(): i32 {
  stopReason = STOP_LIMIT;
  let pc = getPc();
  let n: i32 = 0;
  // The code page's translation, reused while pc stays on it. Within one fast
  // chunk it cannot go stale: sfence.vma, satp and privilege changes, traps and
  // exits all end the chunk, and the memory layer ends it too when host code
  // ran in between (a page-track notification). Self-modifying code is fine:
  // the word is always read from memory; only the translation is reused.
  let codePage: u64 = 1;
  let codeAddend: u64 = 0;
  // The word at a page's last halfword, fetched in halves for runInner's next run.
  let edgePc: u64 = 1;
  let edgeWord: u32 = 0;
  let offer = true; // the chunk's start or a taken jump: offer pc to the translation tier
  while (n < runLimit) {
    if (offer && jitThreshold != 0) {
      offer = false;
      if ((pc & ~<u64>0xfff) != codePage) {
        fetchSlow(pc);
        if (accessStatus != 0) { memStop(); continue; }
        codePage = pc & ~<u64>0xfff;
        codeAddend = fetchAddend(pc);
      }
      const r = jitTry(pc, <usize>(pc + codeAddend), runLimit - n);
      if (r >= 0) {
        n += r;
        pc = load<u64>(JIT_NPC);
        if (load<i32>(JIT_STATUS) != JIT_GO) store<i32>(JIT_STATUS, JIT_GO);
        else if (r > 0) { offer = true; continue; }
        // The interpreter takes the instruction at pc: a load or store the
        // region's probe missed (it goes through the memory layer), or one
        // the region leaves to it (such as a jalr that traps).
      }
      if (n >= runLimit) break;
    }
    // The word runFast fetched at a page's end serves one instruction.
    const limit = edgePc != 1 ? 1 : runLimit - n;
    const base = <u32>(codePage + codeAddend);
    const first = <u32>dcacheAt(base);
    const bias = first - (base << 3); // the record at hp is bias + hp * 8 (for hp within 2^29 of base)
    // Off the page (or a pc a 32-bit wrap would alias onto it): hp starts out
    // of range. Compared by page, not by distance: before the first fetch
    // codePage is 1, which a pc in [2, 4096) is less than 4096 above.
    const hp = (pc & ~<u64>0xfff) == codePage ? <u32>(pc + codeAddend) : base - 2;
    const x = runInner(pc, hp, limit, first, bias, edgePc, edgeWord);
    n += limit - innerLeft;
    pc = innerPc;
    if (x == X_MISS) {
      fillRecord(innerEntry, innerWord);
      // The edge word stays for the next run only if this was its first use.
      if (pc != edgePc) edgePc = 1;
      continue;
    }
    edgePc = 1;
    if (x == X_JUMP) {
      offer = true;
    } else if (x == X_FETCH) {
      const word = fetchSlow(pc);
      if (accessStatus != 0) { memStop(); continue; }
      codePage = pc & ~<u64>0xfff;
      codeAddend = fetchAddend(pc);
      if ((pc & 0xfff) == 0xffe) {
        edgePc = pc;
        edgeWord = word;
      }
    } else if (x == X_SLOW) {
      const e = innerEntry;
      if (stepSlow(e)) {
        pc += recLen(e);
        n++;
      }
    }
  }
  setPc(pc);
  addInstret(<u64>n);
  lastRetired = n;
  return stopReason;
}
