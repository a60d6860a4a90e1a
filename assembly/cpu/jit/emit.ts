// A WebAssembly binary writer for the translation tier: opcodes, LEB128
// immediates and the module wrapper. A function body is written into BODY;
// finishModule() then lays out the module around it in MODULE. Only what
// translate.ts needs is here.

export const BODY_CAP: i32 = 1 << 17;
export const BODY: usize = memory.data(BODY_CAP, 16);
export const MODULE_CAP: i32 = BODY_CAP + 256;
export const MODULE: usize = memory.data(MODULE_CAP, 16);

/** Bytes written to BODY; past BODY_CAP only counted (the translation is then dropped). */
export let bodyLen: i32 = 0;

export function bodyReset(): void { bodyLen = 0; }
export function bodyOverflowed(): bool { return bodyLen > BODY_CAP; }

/** Unsigned LEB128 of v into buf at `at` (bytes past cap are only counted); the position after it. */
function lebInto(buf: usize, at: i32, cap: i32, v: u64): i32 {
  do {
    let b = <i32>(v & 0x7f);
    v >>= 7;
    if (v != 0) b |= 0x80;
    if (at < cap) store<u8>(buf + <usize>at, <u8>b);
    at++;
  } while (v != 0);
  return at;
}

// @ts-ignore: decorator
@inline export function op(b: i32): void {
  if (bodyLen < BODY_CAP) store<u8>(BODY + <usize>bodyLen, <u8>b);
  bodyLen++;
}

export function uleb(v: u64): void { bodyLen = lebInto(BODY, bodyLen, BODY_CAP, v); }

export function sleb(v: i64): void {
  while (true) {
    const b = <i32>(v & 0x7f);
    v >>= 7;
    if ((v == 0 && (b & 0x40) == 0) || (v == -1 && (b & 0x40) != 0)) { op(b); return; }
    op(b | 0x80);
  }
}

// ---- opcodes ----
export const BLOCK: i32 = 0x02;
export const LOOP: i32 = 0x03;
export const IF: i32 = 0x04;
export const END: i32 = 0x0b;
export const BR: i32 = 0x0c;
export const BR_IF: i32 = 0x0d;
export const BR_TABLE: i32 = 0x0e;
export const RETURN: i32 = 0x0f;
export const CALL: i32 = 0x10;
export const RETURN_CALL: i32 = 0x12;
export const DROP: i32 = 0x1a;
export const SELECT: i32 = 0x1b;
export const LOCAL_GET: i32 = 0x20;
export const LOCAL_SET: i32 = 0x21;
export const LOCAL_TEE: i32 = 0x22;
export const I32_LOAD: i32 = 0x28;
export const I32_LOAD16_U: i32 = 0x2f;
export const I64_LOAD: i32 = 0x29;
export const I64_LOAD8_S: i32 = 0x30;
export const I64_LOAD8_U: i32 = 0x31;
export const I64_LOAD16_S: i32 = 0x32;
export const I64_LOAD16_U: i32 = 0x33;
export const I64_LOAD32_S: i32 = 0x34;
export const I64_LOAD32_U: i32 = 0x35;
export const I32_STORE: i32 = 0x36;
export const I64_STORE: i32 = 0x37;
export const I64_STORE8: i32 = 0x3c;
export const I64_STORE16: i32 = 0x3d;
export const I64_STORE32: i32 = 0x3e;
export const I32_CONST: i32 = 0x41;
export const I64_CONST: i32 = 0x42;
export const I32_EQZ: i32 = 0x45;
export const I32_EQ: i32 = 0x46;
export const I32_NE: i32 = 0x47;
export const I32_GT_U: i32 = 0x4b;
export const I32_LE_U: i32 = 0x4d;
export const I64_EQZ: i32 = 0x50;
export const I64_EQ: i32 = 0x51;
export const I64_NE: i32 = 0x52;
export const I64_LT_S: i32 = 0x53;
export const I64_LT_U: i32 = 0x54;
export const I64_GE_S: i32 = 0x59;
export const I64_GE_U: i32 = 0x5a;
export const I32_ADD: i32 = 0x6a;
export const I32_SUB: i32 = 0x6b;
export const I32_MUL: i32 = 0x6c;
export const I32_DIV_S: i32 = 0x6d;
export const I32_DIV_U: i32 = 0x6e;
export const I32_REM_S: i32 = 0x6f;
export const I32_REM_U: i32 = 0x70;
export const I32_AND: i32 = 0x71;
export const I32_OR: i32 = 0x72;
export const I32_SHL: i32 = 0x74;
export const I32_SHR_S: i32 = 0x75;
export const I32_SHR_U: i32 = 0x76;
export const I64_ADD: i32 = 0x7c;
export const I64_SUB: i32 = 0x7d;
export const I64_MUL: i32 = 0x7e;
export const I64_DIV_S: i32 = 0x7f;
export const I64_DIV_U: i32 = 0x80;
export const I64_REM_S: i32 = 0x81;
export const I64_REM_U: i32 = 0x82;
export const I64_AND: i32 = 0x83;
export const I64_OR: i32 = 0x84;
export const I64_XOR: i32 = 0x85;
export const I64_SHL: i32 = 0x86;
export const I64_SHR_S: i32 = 0x87;
export const I64_SHR_U: i32 = 0x88;
export const I32_WRAP_I64: i32 = 0xa7;
export const I64_EXTEND_I32_S: i32 = 0xac;
export const I64_EXTEND_I32_U: i32 = 0xad;
/** Value types. */
export const T_I32: i32 = 0x7f;
export const T_I64: i32 = 0x7e;
export const T_VOID: i32 = 0x40;

// ---- short forms ----
export function localGet(i: i32): void { op(LOCAL_GET); uleb(<u64>i); }
export function localSet(i: i32): void { op(LOCAL_SET); uleb(<u64>i); }
export function localTee(i: i32): void { op(LOCAL_TEE); uleb(<u64>i); }
export function i32Const(v: i32): void { op(I32_CONST); sleb(<i64>v); }
export function i64Const(v: i64): void { op(I64_CONST); sleb(v); }
export function br(depth: i32): void { op(BR); uleb(<u64>depth); }
export function brIf(depth: i32): void { op(BR_IF); uleb(<u64>depth); }
export function call(fn: i32): void { op(CALL); uleb(<u64>fn); }
/** A tail call of env.chain (code, budget, acc, table index): on to another region. */
export function returnCallChain(): void { op(RETURN_CALL); uleb(<u64>FN_CHAIN); }
/** A load or store with its memory immediate (log2 alignment, offset). */
export function mem(opcode: i32, alignLog2: i32, offset: u32): void { op(opcode); uleb(<u64>alignLog2); uleb(<u64>offset); }

// ---- the module ----
// One function of type (i32 code, i32 budget, i32 acc) -> i32 (type 0),
// exported as "b", importing env.memory and the two functions below.

/** env.fp(inst: i32, x1: i64) -> i64: a register-only F/D instruction (tier.ts jitFpOp). */
export const FN_FP: i32 = 0;
/** env.chain(code: i32, budget: i32, acc: i32, fn: i32) -> i32: tail-calls the region in table slot fn (src/jit.ts). */
export const FN_CHAIN: i32 = 1;
const IMPORTS: i32 = 2;

let mlen: i32 = 0;
function m(b: i32): void { if (mlen < MODULE_CAP) store<u8>(MODULE + <usize>mlen, <u8>b); mlen++; }
function mleb(v: u64): void { mlen = lebInto(MODULE, mlen, MODULE_CAP, v); }
function lebSize(v: u64): i32 { let n = 1; while ((v >>= 7) != 0) n++; return n; }
function mname(s: string): void {
  mleb(<u64>s.length);
  for (let i = 0; i < s.length; i++) m(s.charCodeAt(i));
}

/** Section bytes of the constant part (types, imports, function, export), written in one pass. */
function header(): void {
  m(0x00); m(0x61); m(0x73); m(0x6d); m(0x01); m(0x00); m(0x00); m(0x00);
  // types: 0 block, 1 fp, 2 chain
  const typeStart = mlen + 2; // the section size is one byte; patched below
  m(1); m(0); mleb(3);
  m(0x60); m(3); m(T_I32); m(T_I32); m(T_I32); m(1); m(T_I32);
  m(0x60); m(2); m(T_I32); m(T_I64); m(1); m(T_I64);
  m(0x60); m(4); m(T_I32); m(T_I32); m(T_I32); m(T_I32); m(1); m(T_I32);
  store<u8>(MODULE + <usize>typeStart - 1, <u8>(mlen - typeStart));
  // imports: memory, fp, chain
  const impStart = mlen + 2;
  m(2); m(0); mleb(3);
  mname("env"); mname("memory"); m(0x02); m(0x00); m(0x00);
  mname("env"); mname("fp"); m(0x00); m(1);
  mname("env"); mname("chain"); m(0x00); m(2);
  store<u8>(MODULE + <usize>impStart - 1, <u8>(mlen - impStart));
  // function 1 (after the imports) has type 0; exported as "b"
  m(3); m(2); m(1); m(0);
  m(7); m(5); m(1); mname("b"); m(0x00); m(<i32>IMPORTS);
}

/**
 * Wraps BODY (locals already written at its start, ending with END) in a
 * module; returns its length in MODULE, or 0 when it does not fit.
 */
export function finishModule(): i32 {
  if (bodyOverflowed()) return 0;
  mlen = 0;
  header();
  const funcSize = <u64>bodyLen;
  const codeSize = 1 + <u64>lebSize(funcSize) + funcSize;
  m(10); mleb(codeSize); m(1); mleb(funcSize);
  if (mlen + bodyLen > MODULE_CAP) return 0;
  memory.copy(MODULE + <usize>mlen, BODY, <usize>bodyLen);
  return mlen + bodyLen;
}
