// The translation tier's runtime: which guest pcs have a translated region,
// when to translate one, and the helper translated code calls.
//
// The interpreter (interp.ts) offers every pc it reaches by a taken branch or
// jump (and each chunk's first pc) to jitTry. A direct-mapped cache keyed by
// pc counts how often a pc is offered; at jitThreshold the region starting
// there is translated (translate.ts) and handed to the host, which compiles
// it into its own WebAssembly instance sharing this memory and puts its
// function into this module's table (env.webkvm_jit_compile returns the
// table index). Later offers call it through call_indirect, and a region
// leaving for a pc whose entry holds a translation goes on there itself
// (a tail call, translate.ts: chaining), with the budget left.
//
// Nothing ever needs invalidating: a translated function checks its words on
// entry and answers -1 when they changed (then the entry is dropped and the
// pc counts up again; entered by a chain, it returns to here instead, and the
// next offer finds it stale), and all guest memory accesses go through the shadow
// page tables as the interpreter's do (a miss hands the access to it). A
// dropped entry is never chained to: a chain reads the entry each time.

import { translateRegion, lastRegionLength } from "./translate";
import { MODULE } from "./emit";
import { sptTable, accessKey } from "../../mmu/access";
import { JIT_STATUS, JIT_INTERPRET, JIT_SPT, JIT_KEY, JIT_CHAINS } from "./translate";
import { jitFp, jitFpRefused } from "../fpu/insn";
import { entryFor, E_FN, E_LEN, E_HITS } from "./cache";

/** Compiles MODULE[0, len) and installs its function "b" in the table; the index, or 0 on failure. */
@external("env", "webkvm_jit_compile")
declare function compileHook(module: usize, len: i32): i32;
/** The table slot of an evicted translation may be reused. */
@external("env", "webkvm_jit_free")
declare function freeHook(index: i32): void;

/**
 * Offers of a pc before its region is translated; 0 turns the tier off.
 * Compiling a region costs the engine about as much as interpreting a few
 * hundred thousand instructions (module, instance, and its own optimizing
 * tier in the background): at 64, a Linux boot (bench/linux.js) compiled
 * ~1,500 regions and took 5x the CPU time of interpreting everything; at
 * 1 K..16 K it takes the least, with ~60..100 regions running two thirds of
 * its instructions.
 */
export let jitThreshold: i32 = 4096;
/** After a region could not be translated or compiled, this many times the threshold before trying again. */
const BACKOFF: i32 = 64;

export let jitCompiled: u32 = 0;
export let jitStale: u32 = 0;
export let jitFailed: u32 = 0;
export let jitRetired: u32 = 0;

export function jitChained(): u32 { return load<u32>(JIT_CHAINS); }

export function setJitThreshold(n: i32): void {
  jitThreshold = n < 0 ? 0 : n;
}

function drop(e: usize, pc: u64): void {
  const fn = load<i32>(e, E_FN);
  if (fn != 0) freeHook(fn);
  store<u64>(e, pc);
  store<i32>(e, 0, E_FN);
  store<i32>(e, 0, E_HITS);
}

function translate(e: usize, pc: u64, code: usize): i32 {
  // Nothing to translate (the entry is an instruction the interpreter keeps),
  // or the engine refused the module: count up again, much later.
  const len = translateRegion(pc, code);
  const fn = len == 0 ? 0 : compileHook(MODULE, len);
  if (fn <= 0) {
    if (len != 0) jitFailed++;
    store<i32>(e, -jitThreshold * BACKOFF, E_HITS);
    return 0;
  }
  jitCompiled++;
  store<i32>(e, fn, E_FN);
  store<i32>(e, lastRegionLength(), E_LEN);
  return fn;
}

/**
 * Runs the translated region at pc (its first word at linear address code)
 * within budget instructions; the number retired (next pc in JIT_NPC, and
 * JIT_STATUS = JIT_INTERPRET when an access left it), or -1 when the
 * interpreter must go on.
 */
export function jitTry(pc: u64, code: usize, budget: i32): i32 {
  const e = entryFor(pc);
  if (load<u64>(e) != pc) drop(e, pc);
  let fn = load<i32>(e, E_FN);
  if (fn == 0) {
    const hits = load<i32>(e, E_HITS) + 1;
    store<i32>(e, hits, E_HITS);
    if (hits < jitThreshold) return -1;
    fn = translate(e, pc, code);
    if (fn == 0) return -1;
  }
  if (budget < load<i32>(e, E_LEN)) return -1;
  store<u32>(JIT_SPT, <u32>sptTable);
  store<u64>(JIT_KEY, accessKey);
  const r = call_indirect<i32>(<u32>fn, <i32>code, budget, 0);
  if (r < 0) { // the words changed under it
    jitStale++;
    drop(e, pc);
  } else jitRetired += <u32>r;
  return r;
}

// ---- what translated code calls ----

/**
 * A register-only F/D instruction (env.fp): x1 is x[rs1]; the x[rd] result
 * for those that write one. One that would trap is left undone with
 * JIT_STATUS = JIT_INTERPRET: the region leaves before it.
 */
export function jitFpOp(inst: i32, x1: u64): u64 {
  const v = jitFp(inst, x1);
  if (jitFpRefused) store<i32>(JIT_STATUS, JIT_INTERPRET);
  return v;
}
