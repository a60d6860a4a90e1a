// The fast loop: fetch, look up the decoded record (decode.ts) and execute
// everything except the SYSTEM opcode, with pc and the retired count in
// locals. It returns to the run loop (execute.ts) when runLimit instructions have
// retired or an instruction stops it (stop.ts); the run loop deals with traps,
// interrupts, CSRs and exits.
//
// Per instruction that is: the memory layer's fetch, one tag compare, one
// jump-table dispatch on the decoded op, and the operation itself on
// registers in the state block. Rare work (multiply-high, division, atomics,
// floating point, page-crossing accesses, memory-layer slow paths) is in
// out-of-line calls.

import { memFetch, fetchAddend } from "../mmu/access";
import { accessStatus, accessTval, ACCESS_EXCEPTION } from "../mmu/access_state";
import { getPc, setPc, addInstret } from "./state";
import { runLimit, stopReason, stopInst, stopNow, illegal, memStop, STOP_LIMIT, STOP_SYSTEM } from "./stop";
import { loadData, storeData } from "./load_store";
import { execAmo } from "./amo";
import { execFp } from "./fpu/insn";
import { mulh, mulhsu, mulhu, div, divu, rem, remu, divw, divuw, remw, remuw } from "./muldiv";
import * as D from "./decode";
import { dcacheEntry, decodeInto, rs1, rs2, wr } from "./decode";
import { stepRvc, rvcRetired, rvcJumped } from "./rvc";
import { jitThreshold, jitTry } from "./jit/tier";
import { JIT_NPC, JIT_STATUS, JIT_GO } from "./jit/translate";

/** The instructions retired by the last runFast. */
export let lastRetired: i32 = 0;

// ---- record fields (see decode.ts) ----
// @ts-ignore: decorator
@inline function op(e: usize): u8 { return load<u8>(e, 4); }
// @ts-ignore: decorator
@inline function imm(e: usize): u64 { return load<u64>(e, 8); }
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
  while (n < runLimit) {
    // A taken branch or jump (or the chunk's start) brought us here: offer
    // the pc to the translation tier.
    if (jitThreshold != 0) {
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
        else if (r > 0) continue;
        // The interpreter takes the instruction at pc: a load or store the
        // region's probe missed (it goes through the memory layer), or one
        // the region leaves to it (such as a jalr that traps).
      }
    }
    while (n < runLimit) {
      let inst: u32;
      // pc + 2: a word starting in the page's last halfword leaves the page (fetchSlow splits it).
      if (((pc + 2) & ~<u64>0xfff) == codePage) {
        inst = load<u32>(<usize>(pc + codeAddend));
      } else {
        inst = fetchSlow(pc);
        if (accessStatus != 0) { memStop(); continue; }
        codePage = pc & ~<u64>0xfff;
        codeAddend = fetchAddend(pc);
      }
      const e = dcacheEntry(pc);
      // On a miss, decode and go round again: keeping the decoder off the
      // path into the dispatch lets the hit path fall straight through.
      if (load<u32>(e) != inst) {
        if ((inst & 3) == 3) { decodeInto(e, inst); continue; }
        // A compressed instruction (its upper halfword is the next one's).
        pc = stepRvc(e, pc, inst & 0xffff);
        if (!rvcRetired) continue;
        n++;
        if (rvcJumped) break;
        continue;
      }
      // Every case ends in its own `pc += 4; n++; continue` (or a jump's
      // version of it) rather than sharing one tail after the switch: that
      // saves a jump per instruction, about a sixth of the loop's time.
      switch (op(e)) {
        // ---- register-immediate ----
        case D.OP_ADDI: wr(e, rs1(e) + imm(e)); pc += 4; n++; continue;
        case D.OP_SLTI: wr(e, <u64>(<i64>rs1(e) < <i64>imm(e))); pc += 4; n++; continue;
        case D.OP_SLTIU: wr(e, <u64>(rs1(e) < imm(e))); pc += 4; n++; continue;
        case D.OP_XORI: wr(e, rs1(e) ^ imm(e)); pc += 4; n++; continue;
        case D.OP_ORI: wr(e, rs1(e) | imm(e)); pc += 4; n++; continue;
        case D.OP_ANDI: wr(e, rs1(e) & imm(e)); pc += 4; n++; continue;
        case D.OP_SLLI: wr(e, rs1(e) << imm(e)); pc += 4; n++; continue;
        case D.OP_SRLI: wr(e, rs1(e) >> imm(e)); pc += 4; n++; continue;
        case D.OP_SRAI: wr(e, <u64>(<i64>rs1(e) >> <i64>imm(e))); pc += 4; n++; continue;
        case D.OP_ADDIW: wr(e, sext32(rs1(e) + imm(e))); pc += 4; n++; continue;
        case D.OP_SLLIW: wr(e, <u64><i64>(<i32>rs1(e) << <i32>imm(e))); pc += 4; n++; continue;
        case D.OP_SRLIW: wr(e, <u64><i64><i32>(<u32>rs1(e) >>> <u32>imm(e))); pc += 4; n++; continue;
        case D.OP_SRAIW: wr(e, <u64><i64>(<i32>rs1(e) >> <i32>imm(e))); pc += 4; n++; continue;
        // ---- register-register ----
        case D.OP_ADD: wr(e, rs1(e) + rs2(e)); pc += 4; n++; continue;
        case D.OP_SUB: wr(e, rs1(e) - rs2(e)); pc += 4; n++; continue;
        case D.OP_SLL: wr(e, rs1(e) << (rs2(e) & 63)); pc += 4; n++; continue;
        case D.OP_SLT: wr(e, <u64>(<i64>rs1(e) < <i64>rs2(e))); pc += 4; n++; continue;
        case D.OP_SLTU: wr(e, <u64>(rs1(e) < rs2(e))); pc += 4; n++; continue;
        case D.OP_XOR: wr(e, rs1(e) ^ rs2(e)); pc += 4; n++; continue;
        case D.OP_SRL: wr(e, rs1(e) >> (rs2(e) & 63)); pc += 4; n++; continue;
        case D.OP_SRA: wr(e, <u64>(<i64>rs1(e) >> <i64>(rs2(e) & 63))); pc += 4; n++; continue;
        case D.OP_OR: wr(e, rs1(e) | rs2(e)); pc += 4; n++; continue;
        case D.OP_AND: wr(e, rs1(e) & rs2(e)); pc += 4; n++; continue;
        case D.OP_ADDW: wr(e, sext32(rs1(e) + rs2(e))); pc += 4; n++; continue;
        case D.OP_SUBW: wr(e, sext32(rs1(e) - rs2(e))); pc += 4; n++; continue;
        case D.OP_SLLW: wr(e, <u64><i64>(<i32>rs1(e) << (<i32>rs2(e) & 31))); pc += 4; n++; continue;
        case D.OP_SRLW: wr(e, <u64><i64><i32>(<u32>rs1(e) >>> (<u32>rs2(e) & 31))); pc += 4; n++; continue;
        case D.OP_SRAW: wr(e, <u64><i64>(<i32>rs1(e) >> (<i32>rs2(e) & 31))); pc += 4; n++; continue;
        // ---- M ----
        case D.OP_MUL: wr(e, rs1(e) * rs2(e)); pc += 4; n++; continue;
        case D.OP_MULH: wr(e, mulh(rs1(e), rs2(e))); pc += 4; n++; continue;
        case D.OP_MULHSU: wr(e, mulhsu(rs1(e), rs2(e))); pc += 4; n++; continue;
        case D.OP_MULHU: wr(e, mulhu(rs1(e), rs2(e))); pc += 4; n++; continue;
        case D.OP_DIV: wr(e, div(rs1(e), rs2(e))); pc += 4; n++; continue;
        case D.OP_DIVU: wr(e, divu(rs1(e), rs2(e))); pc += 4; n++; continue;
        case D.OP_REM: wr(e, rem(rs1(e), rs2(e))); pc += 4; n++; continue;
        case D.OP_REMU: wr(e, remu(rs1(e), rs2(e))); pc += 4; n++; continue;
        case D.OP_MULW: wr(e, sext32(rs1(e) * rs2(e))); pc += 4; n++; continue;
        case D.OP_DIVW: wr(e, divw(rs1(e), rs2(e))); pc += 4; n++; continue;
        case D.OP_DIVUW: wr(e, divuw(rs1(e), rs2(e))); pc += 4; n++; continue;
        case D.OP_REMW: wr(e, remw(rs1(e), rs2(e))); pc += 4; n++; continue;
        case D.OP_REMUW: wr(e, remuw(rs1(e), rs2(e))); pc += 4; n++; continue;
        // ---- upper immediates and jumps ----
        case D.OP_LUI: wr(e, imm(e)); pc += 4; n++; continue;
        case D.OP_AUIPC: wr(e, pc + imm(e)); pc += 4; n++; continue;
        case D.OP_JAL: {
          wr(e, pc + 4);
          pc += imm(e);
          n++;
          break;
        }
        case D.OP_JALR: {
          // IALIGN is 16 (the C extension): any target with bit 0 cleared is fine.
          const target = (rs1(e) + imm(e)) & ~<u64>1; // before rd is written: rd may be rs1
          wr(e, pc + 4);
          pc = target;
          n++;
          break;
        }
        // ---- branches (offsets are even: every target is 2-aligned) ----
        case D.OP_BEQ: if (rs1(e) == rs2(e)) { pc += imm(e); n++; break; } pc += 4; n++; continue;
        case D.OP_BNE: if (rs1(e) != rs2(e)) { pc += imm(e); n++; break; } pc += 4; n++; continue;
        case D.OP_BLT: if (<i64>rs1(e) < <i64>rs2(e)) { pc += imm(e); n++; break; } pc += 4; n++; continue;
        case D.OP_BGE: if (<i64>rs1(e) >= <i64>rs2(e)) { pc += imm(e); n++; break; } pc += 4; n++; continue;
        case D.OP_BLTU: if (rs1(e) < rs2(e)) { pc += imm(e); n++; break; } pc += 4; n++; continue;
        case D.OP_BGEU: if (rs1(e) >= rs2(e)) { pc += imm(e); n++; break; } pc += 4; n++; continue;
        // ---- loads and stores ----
        case D.OP_LB: {
          const v = loadData(rs1(e) + imm(e), 1);
          if (accessStatus != 0) { memStop(); continue; }
          wr(e, <u64><i64><i8>v);
          pc += 4; n++; continue;
        }
        case D.OP_LH: {
          const v = loadData(rs1(e) + imm(e), 2);
          if (accessStatus != 0) { memStop(); continue; }
          wr(e, <u64><i64><i16>v);
          pc += 4; n++; continue;
        }
        case D.OP_LW: {
          const v = loadData(rs1(e) + imm(e), 4);
          if (accessStatus != 0) { memStop(); continue; }
          wr(e, <u64><i64><i32>v);
          pc += 4; n++; continue;
        }
        case D.OP_LD: {
          const v = loadData(rs1(e) + imm(e), 8);
          if (accessStatus != 0) { memStop(); continue; }
          wr(e, v);
          pc += 4; n++; continue;
        }
        case D.OP_LBU: {
          const v = loadData(rs1(e) + imm(e), 1);
          if (accessStatus != 0) { memStop(); continue; }
          wr(e, v);
          pc += 4; n++; continue;
        }
        case D.OP_LHU: {
          const v = loadData(rs1(e) + imm(e), 2);
          if (accessStatus != 0) { memStop(); continue; }
          wr(e, v);
          pc += 4; n++; continue;
        }
        case D.OP_LWU: {
          const v = loadData(rs1(e) + imm(e), 4);
          if (accessStatus != 0) { memStop(); continue; }
          wr(e, v);
          pc += 4; n++; continue;
        }
        case D.OP_SB: {
          storeData(rs1(e) + imm(e), rs2(e), 1);
          if (accessStatus != 0) { memStop(); continue; }
          pc += 4; n++; continue;
        }
        case D.OP_SH: {
          storeData(rs1(e) + imm(e), rs2(e), 2);
          if (accessStatus != 0) { memStop(); continue; }
          pc += 4; n++; continue;
        }
        case D.OP_SW: {
          storeData(rs1(e) + imm(e), rs2(e), 4);
          if (accessStatus != 0) { memStop(); continue; }
          pc += 4; n++; continue;
        }
        case D.OP_SD: {
          storeData(rs1(e) + imm(e), rs2(e), 8);
          if (accessStatus != 0) { memStop(); continue; }
          pc += 4; n++; continue;
        }
        // ---- the rest ----
        case D.OP_FENCE: pc += 4; n++; continue;
        case D.OP_AMO: {
          if (!execAmo(<i32>inst)) continue;
          pc += 4; n++; continue;
        }
        case D.OP_FP: {
          if (!execFp(<i32>inst, inst)) continue;
          pc += 4; n++; continue;
        }
        case D.OP_RVC: { // compressed, and the next halfword happened to be 0 (so the tags matched)
          pc = stepRvc(e, pc, inst & 0xffff);
          if (!rvcRetired) continue;
          n++;
          if (rvcJumped) break;
          continue;
        }
        case D.OP_SYSTEM: {
          stopInst = inst;
          stopNow(STOP_SYSTEM);
          continue;
        }
        default: { // OP_ILLEGAL
          illegal(<i32>inst);
          continue;
        }
      }
      break; // a taken branch or jump: back to the tier
    }
  }
  setPc(pc);
  addInstret(<u64>n);
  lastRetired = n;
  return stopReason;
}
