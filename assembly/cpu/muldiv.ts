// The M extension's operations that WebAssembly lacks or traps on. Wasm has
// no 64x64->128 multiply, and its div/rem trap on a zero divisor and on
// MIN / -1; RISC-V defines results for both instead of trapping:
//   x / 0 = all ones (unsigned max, signed -1)   x % 0 = x
//   MIN / -1 = MIN                               MIN % -1 = 0

const LO32: u64 = 0xffffffff;

/** High 64 bits of the unsigned 128-bit product, from four 32x32 partial products. */
export function mulhu(a: u64, b: u64): u64 {
  const a0 = a & LO32, a1 = a >> 32;
  const b0 = b & LO32, b1 = b >> 32;
  const p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
  const mid = (p00 >> 32) + (p01 & LO32) + (p10 & LO32);
  return p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
}

/**
 * Signed high part: treating a negative operand as unsigned adds 2^64 times
 * the other operand to the product, so take that back out of the high word.
 */
export function mulh(a: u64, b: u64): u64 {
  let hi = mulhu(a, b);
  if (<i64>a < 0) hi -= b;
  if (<i64>b < 0) hi -= a;
  return hi;
}

/** a signed, b unsigned. */
export function mulhsu(a: u64, b: u64): u64 {
  let hi = mulhu(a, b);
  if (<i64>a < 0) hi -= b;
  return hi;
}

export function div(a: u64, b: u64): u64 {
  if (b == 0) return <u64>-1;
  if (b == <u64>-1) return <u64>(-<i64>a); // MIN / -1 wraps to MIN, as RISC-V wants
  return <u64>(<i64>a / <i64>b);
}

export function divu(a: u64, b: u64): u64 {
  return b == 0 ? <u64>-1 : a / b;
}

export function rem(a: u64, b: u64): u64 {
  if (b == 0) return a;
  if (b == <u64>-1) return 0;
  return <u64>(<i64>a % <i64>b);
}

export function remu(a: u64, b: u64): u64 {
  return b == 0 ? a : a % b;
}

// 32-bit forms: operate on the low words, sign-extend the 32-bit result.

// @ts-ignore: decorator
@inline function sext32(v: i32): u64 { return <u64><i64>v; }

export function divw(a: u64, b: u64): u64 {
  const x = <i32>a, y = <i32>b;
  if (y == 0) return <u64>-1;
  if (y == -1) return sext32(-x);
  return sext32(x / y);
}

export function divuw(a: u64, b: u64): u64 {
  const x = <u32>a, y = <u32>b;
  if (y == 0) return <u64>-1;
  return sext32(<i32>(x / y));
}

export function remw(a: u64, b: u64): u64 {
  const x = <i32>a, y = <i32>b;
  if (y == 0) return sext32(x);
  if (y == -1) return 0;
  return sext32(x % y);
}

export function remuw(a: u64, b: u64): u64 {
  const x = <u32>a, y = <u32>b;
  if (y == 0) return sext32(<i32>x);
  return sext32(<i32>(x % y));
}
