// IEEE 754 binary32 / binary64 arithmetic in integers, as the RISC-V F and D
// extensions define it: five rounding modes, the five exception flags with
// tininess detected after rounding, and every NaN result the canonical NaN
// (the F/D spec's choice; no payload propagation). WebAssembly's own float
// operations only round to nearest-even and report no flags, so none are used.
//
// Every operation takes and returns raw bits (a binary32 value in the low 32
// bits of a u64) and ORs its exceptions into `fpFlags`, which the caller
// clears before and accrues into fcsr after (fpu/fcsr.ts).
//
// A finite nonzero operand is unpacked to sign, exponent and a 64-bit
// significand with its leading one at bit 62, value = sig * 2^(exp - 62);
// results are formed the same way (bits shifted out folded into bit 0, the
// "sticky" bit) and roundPack rounds them once into the format.

import { mulhu } from "../muldiv";

// fflags bits (fcsr[4:0]).
export const FLAG_NX: u32 = 1;
export const FLAG_UF: u32 = 2;
export const FLAG_OF: u32 = 4;
export const FLAG_DZ: u32 = 8;
export const FLAG_NV: u32 = 16;

// Rounding modes (the rm field / frm).
export const RM_RNE: i32 = 0;
export const RM_RTZ: i32 = 1;
export const RM_RDN: i32 = 2;
export const RM_RUP: i32 = 3;
export const RM_RMM: i32 = 4;

export const CANON_NAN_S: u64 = 0x7fc00000;
export const CANON_NAN_D: u64 = 0x7ff8000000000000;

/** The exceptions raised since the caller last cleared it. */
export let fpFlags: u32 = 0;
export function clearFpFlags(): void { fpFlags = 0; }

// Operand classes (unpack's answer).
const ZERO: i32 = 0;
const FINITE: i32 = 1;
const INF: i32 = 2;
const QNAN: i32 = 3;
const SNAN: i32 = 4;

// ---- format parameters (dbl: binary64, else binary32) ----
// @ts-ignore: decorator
@inline function fracBits(dbl: bool): i32 { return dbl ? 52 : 23; }
// @ts-ignore: decorator
@inline function bias(dbl: bool): i32 { return dbl ? 1023 : 127; }
// @ts-ignore: decorator
@inline function signShift(dbl: bool): u64 { return dbl ? 63 : 31; }
// @ts-ignore: decorator
@inline function expMax(dbl: bool): u64 { return dbl ? 0x7ff : 0xff; }
// @ts-ignore: decorator
@inline export function canonNan(dbl: bool): u64 { return dbl ? CANON_NAN_D : CANON_NAN_S; }
// @ts-ignore: decorator
@inline function packInf(sign: u64, dbl: bool): u64 { return (sign << signShift(dbl)) | (expMax(dbl) << <u64>fracBits(dbl)); }
// @ts-ignore: decorator
@inline function packZero(sign: u64, dbl: bool): u64 { return sign << signShift(dbl); }
/** The largest finite magnitude with the given sign. */
// @ts-ignore: decorator
@inline function packMax(sign: u64, dbl: bool): u64 { return packInf(sign, dbl) - 1; }

// ---- unpacked operands ----
let uSign: u64 = 0;
let uExp: i32 = 0;
let uSig: u64 = 0;

/** Classifies x and, for a finite nonzero one, sets uSign/uExp/uSig (subnormals normalized). */
function unpack(x: u64, dbl: bool): i32 {
  const fb = fracBits(dbl);
  const e = <i32>((x >> <u64>fb) & expMax(dbl));
  const f = x & ((<u64>1 << <u64>fb) - 1);
  uSign = (x >> signShift(dbl)) & 1;
  if (<u64>e == expMax(dbl)) {
    if (f == 0) return INF;
    return ((f >> <u64>(fb - 1)) & 1) != 0 ? QNAN : SNAN;
  }
  if (e == 0) {
    if (f == 0) return ZERO;
    const lz = <i32>clz(f);
    uSig = f << <u64>(lz - 1);
    uExp = 64 - lz - bias(dbl) - fb;
    return FINITE;
  }
  uSig = (f | (<u64>1 << <u64>fb)) << <u64>(62 - fb);
  uExp = e - bias(dbl);
  return FINITE;
}

// @ts-ignore: decorator
@inline function isNan(c: i32): bool { return c >= QNAN; }

/** x >> n with every bit shifted out ORed into bit 0. */
function shiftRightJam(x: u64, n: i32): u64 {
  if (n <= 0) return x;
  if (n >= 63) return x != 0 ? 1 : 0;
  return (x >> <u64>n) | ((x & ((<u64>1 << <u64>n) - 1)) != 0 ? 1 : 0);
}

/** sig >> shift rounded by rm (sign: the value's sign, for RDN/RUP). */
function roundShift(sign: u64, sig: u64, shift: i32, rm: i32): u64 {
  const q = sig >> <u64>shift;
  const rest = sig & ((<u64>1 << <u64>shift) - 1);
  if (rest == 0) return q;
  const half = <u64>1 << <u64>(shift - 1);
  switch (rm) {
    case RM_RNE: return rest > half || (rest == half && (q & 1) != 0) ? q + 1 : q;
    case RM_RMM: return rest >= half ? q + 1 : q;
    case RM_RDN: return sign != 0 ? q + 1 : q;
    case RM_RUP: return sign == 0 ? q + 1 : q;
    default: return q; // RTZ
  }
}

/**
 * Rounds sign * sig * 2^(exp - 62) (sig's leading one at bit 62, sticky bit 0)
 * into the format: overflow, subnormals, underflow after rounding.
 */
function roundPack(sign: u64, exp: i32, sig: u64, dbl: bool, rm: i32): u64 {
  const fb = fracBits(dbl);
  const emin = 1 - bias(dbl), emax = bias(dbl);
  const shift = 62 - fb;
  let tiny = false;
  if (exp < emin) {
    // Tininess after rounding: still below 2^emin once rounded to full
    // precision with an unbounded exponent? Only a carry out of the
    // significand at exp = emin - 1 lifts it to 2^emin.
    tiny = exp < emin - 1 || roundShift(sign, sig, shift, rm) < (<u64>1 << <u64>(fb + 1));
    sig = shiftRightJam(sig, emin - exp);
    exp = emin;
  }
  let q = roundShift(sign, sig, shift, rm);
  const inexact = (sig & ((<u64>1 << <u64>shift) - 1)) != 0;
  if (q >= (<u64>1 << <u64>(fb + 1))) { q >>= 1; exp++; } // the carry made it 2^(fb+1): exact after the shift
  if (exp > emax) {
    fpFlags |= FLAG_OF | FLAG_NX;
    const toInf = rm == RM_RNE || rm == RM_RMM || (rm == RM_RUP && sign == 0) || (rm == RM_RDN && sign != 0);
    return toInf ? packInf(sign, dbl) : packMax(sign, dbl);
  }
  if (inexact) {
    fpFlags |= FLAG_NX;
    if (tiny) fpFlags |= FLAG_UF;
  }
  const biased: u64 = q >= (<u64>1 << <u64>fb) ? <u64>(exp + bias(dbl)) : 0;
  return (sign << signShift(dbl)) | (biased << <u64>fb) | (q & ((<u64>1 << <u64>fb) - 1));
}

/** roundPack for any nonzero sig (its leading one anywhere; exp still names bit 62). */
function normRoundPack(sign: u64, exp: i32, sig: u64, dbl: bool, rm: i32): u64 {
  const lz = <i32>clz(sig);
  if (lz == 0) return roundPack(sign, exp + 1, (sig >> 1) | (sig & 1), dbl, rm);
  return roundPack(sign, exp - (lz - 1), sig << <u64>(lz - 1), dbl, rm);
}

/** The NaN result of an operation with a NaN operand: NV when either is signaling. */
function nanResult(ca: i32, cb: i32, dbl: bool): u64 {
  if (ca == SNAN || cb == SNAN) fpFlags |= FLAG_NV;
  return canonNan(dbl);
}

function invalid(dbl: bool): u64 {
  fpFlags |= FLAG_NV;
  return canonNan(dbl);
}

/** The sign of an exact zero sum of opposite-signed values: -0 only when rounding down. */
// @ts-ignore: decorator
@inline function zeroSumSign(rm: i32): u64 { return rm == RM_RDN ? 1 : 0; }

// ---- add / sub ----

export function fadd(a: u64, b: u64, dbl: bool, rm: i32, negB: bool): u64 {
  if (negB) b ^= <u64>1 << signShift(dbl);
  const ca = unpack(a, dbl);
  const sa = uSign, ea = uExp, ma = uSig;
  const cb = unpack(b, dbl);
  const sb = uSign, eb = uExp, mb = uSig;
  if (isNan(ca) || isNan(cb)) return nanResult(ca, cb, dbl);
  if (ca == INF) return cb == INF && sa != sb ? invalid(dbl) : packInf(sa, dbl);
  if (cb == INF) return packInf(sb, dbl);
  if (ca == ZERO && cb == ZERO) return packZero(sa == sb ? sa : zeroSumSign(rm), dbl);
  if (ca == ZERO) return b;
  if (cb == ZERO) return a;
  return addMagnitudes(sa, ea, ma, sb, eb, mb, dbl, rm);
}

function addMagnitudes(sa: u64, ea: i32, ma: u64, sb: u64, eb: i32, mb: u64, dbl: bool, rm: i32): u64 {
  let exp: i32;
  if (ea >= eb) { mb = shiftRightJam(mb, ea - eb); exp = ea; }
  else { ma = shiftRightJam(ma, eb - ea); exp = eb; }
  if (sa == sb) return normRoundPack(sa, exp, ma + mb, dbl, rm);
  if (ma == mb) return packZero(zeroSumSign(rm), dbl);
  return ma > mb ? normRoundPack(sa, exp, ma - mb, dbl, rm) : normRoundPack(sb, exp, mb - ma, dbl, rm);
}

// ---- mul / div / sqrt ----

export function fmul(a: u64, b: u64, dbl: bool, rm: i32): u64 {
  const ca = unpack(a, dbl);
  const sa = uSign, ea = uExp, ma = uSig;
  const cb = unpack(b, dbl);
  const sign = sa ^ uSign;
  if (isNan(ca) || isNan(cb)) return nanResult(ca, cb, dbl);
  if (ca == INF || cb == INF) return ca == ZERO || cb == ZERO ? invalid(dbl) : packInf(sign, dbl);
  if (ca == ZERO || cb == ZERO) return packZero(sign, dbl);
  const hi = mulhu(ma, uSig), lo = ma * uSig; // in [2^124, 2^126)
  const sig = (hi << 2) | (lo >> 62) | ((lo & ((<u64>1 << 62) - 1)) != 0 ? 1 : 0);
  return normRoundPack(sign, ea + uExp, sig, dbl, rm);
}

export function fdiv(a: u64, b: u64, dbl: bool, rm: i32): u64 {
  const ca = unpack(a, dbl);
  const sa = uSign, ea = uExp, ma = uSig;
  const cb = unpack(b, dbl);
  const sign = sa ^ uSign, eb = uExp, mb = uSig;
  if (isNan(ca) || isNan(cb)) return nanResult(ca, cb, dbl);
  if (ca == INF) return cb == INF ? invalid(dbl) : packInf(sign, dbl);
  if (cb == INF) return packZero(sign, dbl);
  if (cb == ZERO) {
    if (ca == ZERO) return invalid(dbl);
    fpFlags |= FLAG_DZ;
    return packInf(sign, dbl);
  }
  if (ca == ZERO) return packZero(sign, dbl);
  // Restoring division: q = floor(ma / mb * 2^63), the remainder's sign in bit 0.
  let r = ma, q: u64 = 0;
  for (let i = 0; i < 64; i++) {
    q <<= 1;
    if (r >= mb) { r -= mb; q |= 1; }
    r <<= 1;
  }
  return normRoundPack(sign, ea - eb - 1, q | (r != 0 ? 1 : 0), dbl, rm);
}

/** Is hi:lo (128 bits) >= c * c? */
function squareAtMost(c: u64, hi: u64, lo: u64): bool {
  const sh = mulhu(c, c), sl = c * c;
  return sh < hi || (sh == hi && sl <= lo);
}

export function fsqrt(a: u64, dbl: bool, rm: i32): u64 {
  const ca = unpack(a, dbl);
  if (isNan(ca)) return nanResult(ca, ZERO, dbl);
  if (ca == ZERO) return a;
  if (uSign != 0) return invalid(dbl);
  if (ca == INF) return a;
  // value = N * 2^(exp - 62 - k) with N = sig << k, k making the power even.
  const k = (uExp & 1) == 0 ? 64 : 63;
  const hi = k == 64 ? uSig : uSig >> 1;
  const lo = k == 64 ? 0 : uSig << 63;
  let r: u64 = 0;
  for (let bit = 63; bit >= 0; bit--) {
    const c = r | (<u64>1 << <u64>bit);
    if (squareAtMost(c, hi, lo)) r = c;
  }
  const exact = mulhu(r, r) == hi && r * r == lo;
  return normRoundPack(0, ((uExp - 62 - k) >> 1) + 62, r | (exact ? 0 : 1), dbl, rm);
}

// ---- fused multiply-add ----

// 128-bit scratch results.
let wHi: u64 = 0;
let wLo: u64 = 0;

/** hi:lo >> n with the bits shifted out ORed into bit 0 (into wHi:wLo). */
function shr128Jam(hi: u64, lo: u64, n: i32): void {
  if (n <= 0) { wHi = hi; wLo = lo; return; }
  if (n >= 128) { wHi = 0; wLo = (hi | lo) != 0 ? 1 : 0; return; }
  if (n >= 64) {
    const m = n - 64;
    const lost = lo != 0 || (m != 0 && (hi << <u64>(64 - m)) != 0);
    wHi = 0;
    wLo = (m == 0 ? hi : hi >> <u64>m) | (lost ? 1 : 0);
    return;
  }
  const lost = (lo << <u64>(64 - n)) != 0;
  wLo = (lo >> <u64>n) | (hi << <u64>(64 - n)) | (lost ? 1 : 0);
  wHi = hi >> <u64>n;
}

/**
 * (a * b) + c with one rounding; negProd negates the product, negC the addend
 * (FMSUB, FNMSUB, FNMADD). inf * 0 is invalid even when c is a quiet NaN.
 */
export function ffma(a: u64, b: u64, c: u64, dbl: bool, rm: i32, negProd: bool, negC: bool): u64 {
  const ca = unpack(a, dbl);
  const sa = uSign, ea = uExp, ma = uSig;
  const cb = unpack(b, dbl);
  const sp = sa ^ uSign ^ (negProd ? 1 : 0), eb = uExp, mb = uSig;
  const cc = unpack(c, dbl);
  const sc = uSign ^ (negC ? 1 : 0), ec = uExp, mc = uSig;
  if (isNan(ca) || isNan(cb)) {
    if (ca == SNAN || cb == SNAN || cc == SNAN) fpFlags |= FLAG_NV;
    return canonNan(dbl);
  }
  const prodInf = ca == INF || cb == INF, prodZero = ca == ZERO || cb == ZERO;
  if (prodInf && prodZero) return invalid(dbl);
  if (isNan(cc)) return nanResult(cc, ZERO, dbl);
  if (prodInf) return cc == INF && sc != sp ? invalid(dbl) : packInf(sp, dbl);
  if (cc == INF) return packInf(sc, dbl);
  if (prodZero) {
    if (cc == ZERO) return packZero(sp == sc ? sp : zeroSumSign(rm), dbl);
    return negC ? c ^ (<u64>1 << signShift(dbl)) : c;
  }
  // The exact product: ma * mb in [2^124, 2^126), value = P * 2^(ea + eb - 124).
  let pHi = mulhu(ma, mb), pLo = ma * mb;
  const ep = ea + eb;
  if (cc == ZERO) {
    const sig = (pHi << 2) | (pLo >> 62) | ((pLo & ((<u64>1 << 62) - 1)) != 0 ? 1 : 0);
    return normRoundPack(sp, ep, sig, dbl, rm);
  }
  // The addend on the same scale: mc << 62, value = C * 2^(ec - 124).
  let cHi = mc >> 2, cLo = mc << 62;
  let exp: i32;
  if (ep >= ec) { shr128Jam(cHi, cLo, ep - ec); cHi = wHi; cLo = wLo; exp = ep; }
  else { shr128Jam(pHi, pLo, ec - ep); pHi = wHi; pLo = wLo; exp = ec; }
  let rHi: u64, rLo: u64, sign: u64;
  if (sp == sc) {
    rLo = pLo + cLo;
    rHi = pHi + cHi + (rLo < pLo ? 1 : 0);
    sign = sp;
  } else {
    const pBigger = pHi > cHi || (pHi == cHi && pLo >= cLo);
    if (pHi == cHi && pLo == cLo) return packZero(zeroSumSign(rm), dbl);
    if (pBigger) { rLo = pLo - cLo; rHi = pHi - cHi - (pLo < cLo ? 1 : 0); sign = sp; }
    else { rLo = cLo - pLo; rHi = cHi - pHi - (cLo < pLo ? 1 : 0); sign = sc; }
  }
  // Down to 64 bits with the leading one at bit 62.
  const lead = rHi != 0 ? 127 - <i32>clz(rHi) : 63 - <i32>clz(rLo);
  let sig: u64;
  if (lead >= 62) { shr128Jam(rHi, rLo, lead - 62); sig = wLo; }
  else sig = rLo << <u64>(62 - lead);
  return roundPack(sign, lead + exp - 124, sig, dbl, rm);
}

// ---- conversions ----

/** Between binary32 and binary64 (toDbl: binary32 -> binary64, exact). */
export function fcvtFF(a: u64, toDbl: bool, rm: i32): u64 {
  const from = !toDbl;
  const ca = unpack(a, from);
  if (isNan(ca)) return nanResult(ca, ZERO, toDbl);
  if (ca == INF) return packInf(uSign, toDbl);
  if (ca == ZERO) return packZero(uSign, toDbl);
  return roundPack(uSign, uExp, uSig, toDbl, rm);
}

// Integer kinds of FCVT (the rs2 field).
export const INT_W: i32 = 0;
export const INT_WU: i32 = 1;
export const INT_L: i32 = 2;
export const INT_LU: i32 = 3;

/** The saturated result for a too-large magnitude (negative: the kind's minimum). */
function saturate(kind: i32, negative: bool): u64 {
  switch (kind) {
    case INT_W: return negative ? <u64><i64>-0x80000000 : 0x7fffffff;
    case INT_WU: return negative ? 0 : <u64>-1; // 0xffffffff sign-extended
    case INT_L: return negative ? 0x8000000000000000 : 0x7fffffffffffffff;
    default: return negative ? 0 : <u64>-1;
  }
}

/** FCVT.{W,WU,L,LU}.{S,D}: rounds by rm, saturates with NV; 32-bit results sign-extended. */
export function fcvtToInt(a: u64, dbl: bool, rm: i32, kind: i32): u64 {
  const ca = unpack(a, dbl);
  if (isNan(ca)) { fpFlags |= FLAG_NV; return saturate(kind, false); }
  const neg = uSign != 0;
  if (ca == INF) { fpFlags |= FLAG_NV; return saturate(kind, neg); }
  if (ca == ZERO) return 0;
  if (uExp > 63) { fpFlags |= FLAG_NV; return saturate(kind, neg); }
  let q: u64;
  let inexact = false;
  if (uExp >= 62) q = uSig << <u64>(uExp - 62);
  else {
    const shift = 62 - uExp;
    if (shift >= 64) { // below one half
      inexact = true;
      q = (rm == RM_RDN && neg) || (rm == RM_RUP && !neg) ? 1 : 0;
    } else {
      q = roundShift(uSign, uSig, shift, rm);
      inexact = (uSig & ((<u64>1 << <u64>shift) - 1)) != 0;
    }
  }
  let fits: bool;
  switch (kind) {
    case INT_W: fits = neg ? q <= 0x80000000 : q <= 0x7fffffff; break;
    case INT_WU: fits = neg ? q == 0 : q <= 0xffffffff; break;
    case INT_L: fits = neg ? q <= 0x8000000000000000 : q <= 0x7fffffffffffffff; break;
    default: fits = !neg || q == 0; break;
  }
  if (!fits) { fpFlags |= FLAG_NV; return saturate(kind, neg); }
  if (inexact) fpFlags |= FLAG_NX;
  const v = neg ? 0 - q : q;
  return kind <= INT_WU ? <u64><i64><i32>v : v;
}

/** FCVT.{S,D}.{W,WU,L,LU} of the integer register value x. */
export function fcvtFromInt(x: u64, dbl: bool, rm: i32, kind: i32): u64 {
  let neg = false;
  let mag: u64;
  switch (kind) {
    case INT_W: { const v = <i64><i32>x; neg = v < 0; mag = neg ? <u64>(0 - v) : <u64>v; break; }
    case INT_WU: mag = x & 0xffffffff; break;
    case INT_L: neg = <i64>x < 0; mag = neg ? 0 - x : x; break;
    default: mag = x;
  }
  if (mag == 0) return 0;
  return normRoundPack(neg ? 1 : 0, 62, mag, dbl, rm);
}

// ---- comparisons, min/max, classify ----

/** A total order key for non-NaN values: -0 and +0 compare equal. */
// @ts-ignore: decorator
@inline function orderKey(x: u64, dbl: bool): i64 {
  const mag = <i64>(x & ((<u64>1 << signShift(dbl)) - 1));
  return ((x >> signShift(dbl)) & 1) != 0 ? -mag : mag;
}

/** FEQ (which 0, quiet), FLT (1), FLE (2): 1 or 0. */
export function fcompare(a: u64, b: u64, dbl: bool, which: i32): u64 {
  const ca = unpack(a, dbl), cb = unpack(b, dbl);
  if (isNan(ca) || isNan(cb)) {
    if (which != 0 || ca == SNAN || cb == SNAN) fpFlags |= FLAG_NV;
    return 0;
  }
  const ka = orderKey(a, dbl), kb = orderKey(b, dbl);
  if (which == 0) return ka == kb ? 1 : 0;
  if (which == 1) return ka < kb ? 1 : 0;
  return ka <= kb ? 1 : 0;
}

/** FMIN (max false) / FMAX: -0 < +0; one NaN operand yields the other; NV for a signaling one. */
export function fminmax(a: u64, b: u64, dbl: bool, max: bool): u64 {
  const ca = unpack(a, dbl), cb = unpack(b, dbl);
  if (ca == SNAN || cb == SNAN) fpFlags |= FLAG_NV;
  if (isNan(ca)) return isNan(cb) ? canonNan(dbl) : b;
  if (isNan(cb)) return a;
  const ka = orderKey(a, dbl), kb = orderKey(b, dbl);
  if (ka == kb) { // equal, or zeros of either sign: the sign bit decides
    const aNeg = ((a >> signShift(dbl)) & 1) != 0;
    return aNeg != max ? a : b;
  }
  return (ka < kb) != max ? a : b;
}

/** FCLASS: one bit of ten. */
export function fclass(a: u64, dbl: bool): u64 {
  const c = unpack(a, dbl);
  const neg = uSign != 0;
  switch (c) {
    case SNAN: return 1 << 8;
    case QNAN: return 1 << 9;
    case INF: return neg ? 1 : 1 << 7;
    case ZERO: return neg ? 1 << 3 : 1 << 4;
  }
  const sub = uExp < 1 - bias(dbl);
  return neg ? (sub ? 1 << 2 : 1 << 1) : (sub ? 1 << 5 : 1 << 6);
}
