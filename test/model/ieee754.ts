// A plain reference model of RISC-V F/D arithmetic for the randomized tests:
// every operation computes its exact real result as a BigInt rational (or, for
// sqrt, an integer square root far below the format's precision plus a sticky
// marker), then rounds that value to binary32/binary64 in the requested mode
// and derives the flags from the definitions: inexact when the rounded value
// differs, overflow when the rounded magnitude with unbounded exponent exceeds
// the largest finite, underflow when inexact and the value rounded with
// unbounded exponent is below the smallest normal (tininess after rounding).
// It shares no algorithm with assembly/cpu/fpu/softfloat.ts.

export const NX = 1, UF = 2, OF = 4, DZ = 8, NV = 16;
export const RNE = 0, RTZ = 1, RDN = 2, RUP = 3, RMM = 4;

export interface Fmt { p: number; ebits: number; bias: number; width: number }
export const F32: Fmt = { p: 24, ebits: 8, bias: 127, width: 32 };
export const F64: Fmt = { p: 53, ebits: 11, bias: 1023, width: 64 };
export const canon = (f: Fmt) => (f.width === 32 ? 0x7fc00000n : 0x7ff8000000000000n);

type Val =
  | { k: "nan"; signaling: boolean }
  | { k: "inf"; neg: boolean }
  | { k: "zero"; neg: boolean }
  | { k: "num"; n: bigint; d: bigint }; // nonzero rational n / d, d > 0

export function decode(bits: bigint, f: Fmt): Val {
  const fb = BigInt(f.p - 1);
  const frac = bits & ((1n << fb) - 1n);
  const e = Number((bits >> fb) & ((1n << BigInt(f.ebits)) - 1n));
  const neg = ((bits >> BigInt(f.width - 1)) & 1n) === 1n;
  const emaxField = (1 << f.ebits) - 1;
  if (e === emaxField) return frac === 0n ? { k: "inf", neg } : { k: "nan", signaling: (frac >> (fb - 1n)) === 0n };
  if (e === 0 && frac === 0n) return { k: "zero", neg };
  const m = e === 0 ? frac : frac | (1n << fb);
  const exp = (e === 0 ? 1 : e) - f.bias - (f.p - 1);
  let n = neg ? -m : m, d = 1n;
  if (exp >= 0) n <<= BigInt(exp); else d <<= BigInt(-exp);
  return { k: "num", n, d };
}

const abs = (x: bigint) => (x < 0n ? -x : x);
const bitlen = (x: bigint) => x.toString(2).length;

function enc(neg: boolean, biasedExp: bigint, frac: bigint, f: Fmt): bigint {
  return ((neg ? 1n : 0n) << BigInt(f.width - 1)) | (biasedExp << BigInt(f.p - 1)) | frac;
}
const infBits = (neg: boolean, f: Fmt) => enc(neg, (1n << BigInt(f.ebits)) - 1n, 0n, f);
const maxBits = (neg: boolean, f: Fmt) => infBits(neg, f) - 1n;
const zeroBits = (neg: boolean, f: Fmt) => enc(neg, 0n, 0n, f);

/** floor(log2(n / d)) for n, d > 0. */
function ilog2(n: bigint, d: bigint): number {
  let e = bitlen(n) - bitlen(d);
  // 2^e <= n/d < 2^(e+1)
  if (e >= 0 ? n < d << BigInt(e) : n << BigInt(-e) < d) e--;
  return e;
}

/** The integer q = n/d rounded in mode rm (neg: the value's sign for directed modes); [q, exact]. */
function roundInt(n: bigint, d: bigint, neg: boolean, rm: number): [bigint, boolean] {
  const q = n / d, r = n % d;
  if (r === 0n) return [q, true];
  const twice = 2n * r;
  let up: boolean;
  switch (rm) {
    case RNE: up = twice > d || (twice === d && (q & 1n) === 1n); break;
    case RMM: up = twice >= d; break;
    case RTZ: up = false; break;
    case RDN: up = neg; break;
    default: up = !neg;
  }
  return [up ? q + 1n : q, false];
}

/** Rounds a magnitude n/d (> 0) to p bits at exponent >= eFloor: [significand, exponent of its lsb, exact]. */
function roundAt(n: bigint, d: bigint, neg: boolean, f: Fmt, rm: number, bounded: boolean): [bigint, number, boolean] {
  const emin = 1 - f.bias;
  let e = ilog2(n, d);
  if (bounded && e < emin) e = emin;
  let lsb = e - (f.p - 1);
  const [m0, exact] = lsb >= 0 ? roundInt(n, d << BigInt(lsb), neg, rm) : roundInt(n << BigInt(-lsb), d, neg, rm);
  let m = m0;
  if (m === 1n << BigInt(f.p)) { m >>= 1n; lsb++; }
  return [m, lsb, exact];
}

export interface Res { bits: bigint; flags: number }

/** Rounds the exact value v (a nonzero rational) into format f. */
export function roundRational(n: bigint, d: bigint, f: Fmt, rm: number): Res {
  const neg = n < 0n;
  const an = abs(n);
  const emin = 1 - f.bias, emax = f.bias;
  // Unbounded exponent first: overflow and tininess are defined on it.
  const [um, ulsb] = roundAt(an, d, neg, f, rm, false);
  const uexp = ulsb + bitlen(um) - 1; // exponent of the leading bit
  if (uexp > emax) {
    const toInf = rm === RNE || rm === RMM || (rm === RUP && !neg) || (rm === RDN && neg);
    return { bits: toInf ? infBits(neg, f) : maxBits(neg, f), flags: OF | NX };
  }
  const tiny = uexp < emin;
  const [m, lsb, exact] = roundAt(an, d, neg, f, rm, true);
  let flags = 0;
  if (!exact) flags |= NX | (tiny ? UF : 0);
  if (m === 0n) return { bits: zeroBits(neg, f), flags };
  const lead = lsb + bitlen(m) - 1;
  if (lead < emin) return { bits: enc(neg, 0n, m, f), flags }; // subnormal (lsb = emin - p + 1)
  return { bits: enc(neg, BigInt(lead + f.bias), m - (1n << BigInt(f.p - 1)), f), flags };
}

const res = (bits: bigint, flags = 0): Res => ({ bits, flags });
const isNan = (v: Val) => v.k === "nan";
const sNan = (v: Val) => v.k === "nan" && v.signaling;
const negOf = (v: Val) => (v.k === "inf" || v.k === "zero" ? v.neg : v.k === "num" ? v.n < 0n : false);
const nanRes = (f: Fmt, ...vs: Val[]) => res(canon(f), vs.some(sNan) ? NV : 0);

/** Exact sum of two finite values as a rational (zeros included). */
function ratOf(v: Val): [bigint, bigint] {
  return v.k === "num" ? [v.n, v.d] : [0n, 1n];
}

function finishSum(n: bigint, d: bigint, zeroNeg: boolean, f: Fmt, rm: number): Res {
  if (n === 0n) return res(zeroBits(zeroNeg, f));
  return roundRational(n, d, f, rm);
}

export function add(a: bigint, b: bigint, f: Fmt, rm: number, sub = false): Res {
  const x = decode(a, f);
  let y = decode(b, f);
  if (isNan(x) || isNan(y)) return nanRes(f, x, y);
  if (sub) y = y.k === "num" ? { k: "num", n: -y.n, d: y.d } : y.k === "nan" ? y : { k: y.k, neg: !y.neg } as Val;
  if (x.k === "inf" && y.k === "inf") return x.neg !== y.neg ? res(canon(f), NV) : res(infBits(x.neg, f));
  if (x.k === "inf") return res(infBits(x.neg, f));
  if (y.k === "inf") return res(infBits(y.neg, f));
  const [xn, xd] = ratOf(x), [yn, yd] = ratOf(y);
  const zeroNeg = x.k === "zero" && y.k === "zero" && x.neg === y.neg ? x.neg : rm === RDN;
  return finishSum(xn * yd + yn * xd, xd * yd, zeroNeg, f, rm);
}

export function mul(a: bigint, b: bigint, f: Fmt, rm: number): Res {
  const x = decode(a, f), y = decode(b, f);
  if (isNan(x) || isNan(y)) return nanRes(f, x, y);
  const neg = negOf(x) !== negOf(y);
  if (x.k === "inf" || y.k === "inf") return x.k === "zero" || y.k === "zero" ? res(canon(f), NV) : res(infBits(neg, f));
  if (x.k === "zero" || y.k === "zero") return res(zeroBits(neg, f));
  const [xn, xd] = ratOf(x), [yn, yd] = ratOf(y);
  return roundRational(xn * yn, xd * yd, f, rm);
}

export function div(a: bigint, b: bigint, f: Fmt, rm: number): Res {
  const x = decode(a, f), y = decode(b, f);
  if (isNan(x) || isNan(y)) return nanRes(f, x, y);
  const neg = negOf(x) !== negOf(y);
  if (x.k === "inf") return y.k === "inf" ? res(canon(f), NV) : res(infBits(neg, f));
  if (y.k === "inf") return res(zeroBits(neg, f));
  if (y.k === "zero") return x.k === "zero" ? res(canon(f), NV) : res(infBits(neg, f), DZ);
  if (x.k === "zero") return res(zeroBits(neg, f));
  const [xn, xd] = ratOf(x), [yn, yd] = ratOf(y);
  let n = xn * yd, d = xd * yn;
  if (d < 0n) { n = -n; d = -d; }
  return roundRational(n, d, f, rm);
}

function isqrt(v: bigint): bigint {
  if (v < 2n) return v;
  let x = 1n << BigInt(Math.ceil(bitlen(v) / 2));
  for (;;) {
    const y = (x + v / x) >> 1n;
    if (y >= x) return x;
    x = y;
  }
}

export function sqrt(a: bigint, f: Fmt, rm: number): Res {
  const x = decode(a, f);
  if (isNan(x)) return nanRes(f, x);
  if (x.k === "zero") return res(a);
  if (negOf(x)) return res(canon(f), NV);
  if (x.k === "inf") return res(a);
  const [n, d] = ratOf(x);
  // sqrt(n/d) = sqrt(n * d) / d; scaled by 2^K far below any rounding position.
  const K = 1400n;
  const s = n * d << (2n * K);
  const r = isqrt(s);
  if (r * r === s) return roundRational(r, d << K, f, rm);
  // Strictly between r and r + 1: any point inside stands for it.
  return roundRational(2n * r + 1n, d << (K + 1n), f, rm);
}

/** (a * b) * (negProd ? -1 : 1) + c * (negC ? -1 : 1), rounded once; inf * 0 is NV even with a quiet NaN addend. */
export function fma(a: bigint, b: bigint, c: bigint, f: Fmt, rm: number, negProd: boolean, negC: boolean): Res {
  const x = decode(a, f), y = decode(b, f), z = decode(c, f);
  if (isNan(x) || isNan(y)) return nanRes(f, x, y, z);
  const infTimesZero = (x.k === "inf" && y.k === "zero") || (x.k === "zero" && y.k === "inf");
  if (infTimesZero) return res(canon(f), NV);
  if (isNan(z)) return nanRes(f, z);
  const pNeg = (negOf(x) !== negOf(y)) !== negProd;
  const cNeg = negOf(z) !== negC;
  const pInf = x.k === "inf" || y.k === "inf";
  if (pInf && z.k === "inf") return pNeg !== cNeg ? res(canon(f), NV) : res(infBits(pNeg, f));
  if (pInf) return res(infBits(pNeg, f));
  if (z.k === "inf") return res(infBits(cNeg, f));
  const [xn, xd] = ratOf(x), [yn, yd] = ratOf(y), [zn0, zd] = ratOf(z);
  let pn = xn * yn;
  if (negProd) pn = -pn;
  const pd = xd * yd;
  const zn = negC ? -zn0 : zn0;
  const pZero = x.k === "zero" || y.k === "zero";
  const zeroNeg = pZero && z.k === "zero" && pNeg === cNeg ? pNeg : rm === RDN;
  return finishSum(pn * zd + zn * pd, pd * zd, zeroNeg, f, rm);
}

export function cvtFF(a: bigint, from: Fmt, to: Fmt, rm: number): Res {
  const x = decode(a, from);
  if (isNan(x)) return nanRes(to, x);
  if (x.k === "inf") return res(infBits(x.neg, to));
  if (x.k === "zero") return res(zeroBits(x.neg, to));
  return roundRational(x.n, x.d, to, rm);
}

/** kind: 0 W, 1 WU, 2 L, 3 LU; the 64-bit register value (32-bit results sign-extended). */
export function cvtToInt(a: bigint, f: Fmt, rm: number, kind: number): Res {
  const [lo, hi] = kind === 0 ? [-(1n << 31n), (1n << 31n) - 1n] : kind === 1 ? [0n, (1n << 32n) - 1n]
    : kind === 2 ? [-(1n << 63n), (1n << 63n) - 1n] : [0n, (1n << 64n) - 1n];
  const out = (v: bigint) => BigInt.asUintN(64, kind <= 1 ? BigInt.asIntN(32, v) : v);
  const x = decode(a, f);
  if (x.k === "nan") return res(out(hi), NV);
  if (x.k === "inf") return res(out(x.neg ? lo : hi), NV);
  if (x.k === "zero") return res(0n);
  const neg = x.n < 0n;
  const [q, exact] = roundInt(abs(x.n), x.d, neg, rm);
  const v = neg ? -q : q;
  if (v < lo || v > hi) return res(out(neg ? lo : hi), NV);
  return res(out(v), exact ? 0 : NX);
}

export function cvtFromInt(v: bigint, f: Fmt, rm: number, kind: number): Res {
  const x = kind === 0 ? BigInt.asIntN(32, v) : kind === 1 ? BigInt.asUintN(32, v) : kind === 2 ? BigInt.asIntN(64, v) : BigInt.asUintN(64, v);
  if (x === 0n) return res(0n);
  return roundRational(x, 1n, f, rm);
}

/** which: 0 FEQ (quiet), 1 FLT, 2 FLE (signaling). */
export function compare(a: bigint, b: bigint, f: Fmt, which: number): Res {
  const x = decode(a, f), y = decode(b, f);
  if (isNan(x) || isNan(y)) return res(0n, which !== 0 || sNan(x) || sNan(y) ? NV : 0);
  const c = cmp(x, y);
  return res(BigInt(Number(which === 0 ? c === 0 : which === 1 ? c < 0 : c <= 0)));
}

/** -1, 0, 1 for non-NaN values (the zeros equal). */
function cmp(x: Val, y: Val): number {
  const key = (v: Val): [number, bigint, bigint] =>
    v.k === "inf" ? [v.neg ? -1 : 1, 0n, 0n] : v.k === "zero" ? [0, 0n, 1n] : [0, (v as { n: bigint }).n, (v as { d: bigint }).d];
  const [xi, xn, xd] = key(x), [yi, yn, yd] = key(y);
  if (xi !== yi) return xi < yi ? -1 : 1;
  if (xi !== 0) return 0;
  const l = xn * yd, r = yn * xd;
  return l < r ? -1 : l > r ? 1 : 0;
}

export function minmax(a: bigint, b: bigint, f: Fmt, max: boolean): Res {
  const x = decode(a, f), y = decode(b, f);
  const flags = sNan(x) || sNan(y) ? NV : 0;
  if (isNan(x) && isNan(y)) return res(canon(f), flags);
  if (isNan(x)) return res(b, flags);
  if (isNan(y)) return res(a, flags);
  let c = cmp(x, y);
  if (c === 0 && x.k === "zero" && y.k === "zero" && x.neg !== y.neg) c = x.neg ? -1 : 1;
  return res((c <= 0) !== max || c === 0 ? a : b, flags);
}

export function fclass(a: bigint, f: Fmt): bigint {
  const x = decode(a, f);
  const minNormal = (n: bigint, d: bigint) => abs(n) * (1n << BigInt(f.bias - 1)) >= d;
  let bit: number;
  if (x.k === "nan") bit = x.signaling ? 8 : 9;
  else if (x.k === "inf") bit = x.neg ? 0 : 7;
  else if (x.k === "zero") bit = x.neg ? 3 : 4;
  else {
    const normal = minNormal(x.n, x.d);
    bit = x.n < 0n ? (normal ? 1 : 2) : normal ? 6 : 5;
  }
  return 1n << BigInt(bit);
}
