// The soft-float core (assembly/cpu/fpu/softfloat.ts) against the BigInt
// rational reference model (test/model/ieee754.ts): every operation of F and
// D in both formats and all five rounding modes, on operands biased towards
// the special values and the rounding, overflow, underflow and integer-limit
// edges. Results must match bit for bit, flags exactly. Fixed seeds.

import { describe, it, expect, beforeAll } from "vitest";
import { instantiate, type Exports } from "./harness";
import { Rng } from "../rng";
import * as M from "../model/ieee754";
import { F32, F64, type Fmt } from "../model/ieee754";

let ex: Exports;
beforeAll(async () => { ex = await instantiate(); });

const OP = { add: 0, sub: 1, mul: 2, div: 3, sqrt: 4, fmadd: 5, fmsub: 6, fnmsub: 7, fnmadd: 8, cvtFF: 9, toInt: 10,
  fromInt: 11, cmp: 12, min: 13, max: 14, fclass: 15 } as const;

function core(op: number, a: bigint, b: bigint, c: bigint, dbl: boolean, rm: number, kind = 0): M.Res {
  const s = (x: bigint) => BigInt.asIntN(64, x);
  const bits = BigInt.asUintN(64, ex.sfOp(op, s(a), s(b), s(c), dbl ? 1 : 0, rm, kind));
  return { bits, flags: ex.sfFlags() };
}

const mask = (f: Fmt) => (1n << BigInt(f.width)) - 1n;
const signBit = (f: Fmt) => 1n << BigInt(f.width - 1);
const fracBits = (f: Fmt) => BigInt(f.p - 1);
const expField = (f: Fmt) => (1n << BigInt(f.ebits)) - 1n;

function randBits(rng: Rng, n: number): bigint {
  let v = 0n;
  for (let i = 0; i < n; i += 32) v = (v << 32n) | BigInt(rng.u32());
  return v & ((1n << BigInt(n)) - 1n);
}

/** The format's value sign * 2^e * (1 + small ulps offset), clamped to the encoding. */
function pow2(f: Fmt, e: number, neg: boolean): bigint {
  const biased = BigInt(e + f.bias);
  if (biased <= 0n) return (neg ? signBit(f) : 0n) | (1n << (fracBits(f) - 1n + biased)); // subnormal power of two
  return (neg ? signBit(f) : 0n) | (biased << fracBits(f));
}

function specials(f: Fmt): bigint[] {
  const S = signBit(f), E = expField(f) << fracBits(f), Q = 1n << (fracBits(f) - 1n);
  const xs = [0n, 1n, Q - 1n, (1n << fracBits(f)) - 1n, 1n << fracBits(f), E - 1n, E, E | Q, E | 1n, E | Q | 5n, E | (Q - 1n),
    pow2(f, 0, false), pow2(f, 1, false), pow2(f, -1, false), pow2(f, 0, false) | 1n, pow2(f, 0, false) | Q,
    pow2(f, 31, false), pow2(f, 32, false), pow2(f, 63, false), pow2(f, 64, false), pow2(f, 62, false),
    pow2(f, 31, false) - 1n, pow2(f, 32, false) - 1n, pow2(f, 63, false) - 1n, pow2(f, 64, false) - 1n,
    pow2(f, f.bias, false) - 1n, pow2(f, 1 - f.bias, false) + 1n, pow2(f, -1, false) | Q, pow2(f, 1, false) | Q];
  return xs.flatMap((x) => [x, x | S]);
}

/** An operand: specials, fully random bits, values near 1, or near another value. */
function operand(rng: Rng, f: Fmt, near?: bigint): bigint {
  const r = rng.int(100);
  if (near !== undefined && r < 30) {
    // within a few ulps of `near`, or `near` scaled by a small power of two (cancellation, ties)
    const d = BigInt(rng.range(-4, 4));
    let v = (near + d) & mask(f);
    if (rng.chance(0.4)) v = (near & ~(expField(f) << fracBits(f))) | ((((near >> fracBits(f)) & expField(f)) + BigInt(rng.range(-3, 3))) & expField(f)) << fracBits(f);
    if (rng.chance(0.5)) v ^= signBit(f);
    return v & mask(f);
  }
  if (r < 45) return rng.pick(specials(f));
  if (r < 70) return randBits(rng, f.width);
  if (r < 85) { // exponents around 0: ordinary arithmetic
    const e = BigInt(f.bias + rng.range(-8, 8));
    return ((rng.chance(0.5) ? signBit(f) : 0n) | (e << fracBits(f)) | randBits(rng, f.p - 1)) & mask(f);
  }
  // tiny or huge exponents: underflow and overflow
  const e = rng.chance(0.5) ? BigInt(rng.range(0, 3 + f.p)) : expField(f) - 1n - BigInt(rng.range(0, f.p));
  const frac = rng.chance(0.3) ? (1n << fracBits(f)) - 1n - BigInt(rng.int(3)) : randBits(rng, f.p - 1);
  return ((rng.chance(0.5) ? signBit(f) : 0n) | (e << fracBits(f)) | frac) & mask(f);
}

/**
 * A pair whose product (or quotient, div: true) lands right at the smallest
 * normal, where tininess after rounding and the subnormal rounding decide.
 */
function underflowPair(rng: Rng, f: Fmt, div: boolean): [bigint, bigint] {
  const e1 = rng.range(-f.p, f.p);
  const emin = 1 - f.bias;
  const ones = (1n << fracBits(f)) - 1n - BigInt(rng.int(4));
  const a = (pow2(f, e1, rng.chance(0.5)) | (rng.chance(0.7) ? ones : randBits(rng, f.p - 1))) & mask(f);
  const b = (pow2(f, div ? e1 - emin + rng.int(2) : emin - e1 - rng.int(2), rng.chance(0.5)) | BigInt(rng.int(3))) & mask(f);
  return [a, b];
}

const hex = (x: bigint) => "0x" + x.toString(16);
const fmts: [string, Fmt, boolean][] = [["binary32", F32, false], ["binary64", F64, true]];
const N = 2500;

function check(label: string, got: M.Res, want: M.Res, args: bigint[]): void {
  if (got.bits !== want.bits || got.flags !== want.flags) {
    expect({ label, args: args.map(hex), bits: hex(got.bits), flags: got.flags })
      .toEqual({ label, args: args.map(hex), bits: hex(want.bits), flags: want.flags });
  }
}

describe("soft-float core against the rational reference model", () => {
  for (const [name, f, dbl] of fmts) {
    const binary: [string, number, (a: bigint, b: bigint, rm: number) => M.Res][] = [
      ["add", OP.add, (a, b, rm) => M.add(a, b, f, rm)],
      ["sub", OP.sub, (a, b, rm) => M.add(a, b, f, rm, true)],
      ["mul", OP.mul, (a, b, rm) => M.mul(a, b, f, rm)],
      ["div", OP.div, (a, b, rm) => M.div(a, b, f, rm)],
      ["min", OP.min, (a, b) => M.minmax(a, b, f, false)],
      ["max", OP.max, (a, b) => M.minmax(a, b, f, true)],
    ];
    for (const [op, code, model] of binary) {
      it(`${name} ${op}: bits and flags in every rounding mode`, () => {
        const rng = new Rng(0xf00 + code * 7 + (dbl ? 1 : 0));
        for (let i = 0; i < N; i++) {
          const rm = i % 5;
          let a = operand(rng, f), b = operand(rng, f, a);
          if ((code === OP.mul || code === OP.div) && rng.chance(0.25)) [a, b] = underflowPair(rng, f, code === OP.div);
          check(`${op} rm${rm}`, core(code, a, b, 0n, dbl, rm), model(a, b, rm), [a, b]);
        }
      });
    }

    it(`${name} sqrt: bits and flags in every rounding mode`, () => {
      const rng = new Rng(0x5a + (dbl ? 1 : 0));
      for (let i = 0; i < N; i++) {
        const rm = i % 5;
        let a = operand(rng, f);
        if (rng.chance(0.6)) a &= ~signBit(f);
        check(`sqrt rm${rm}`, core(OP.sqrt, a, 0n, 0n, dbl, rm), M.sqrt(a, f, rm), [a]);
      }
    });

    for (const [op, code, negProd, negC] of [["fmadd", OP.fmadd, false, false], ["fmsub", OP.fmsub, false, true],
      ["fnmsub", OP.fnmsub, true, false], ["fnmadd", OP.fnmadd, true, true]] as const) {
      it(`${name} ${op}: one rounding, bits and flags in every rounding mode`, () => {
        const rng = new Rng(0xfa + code * 3 + (dbl ? 1 : 0));
        for (let i = 0; i < N; i++) {
          const rm = i % 5;
          let a = operand(rng, f), b = operand(rng, f, a);
          if (rng.chance(0.2)) [a, b] = underflowPair(rng, f, false);
          // often an addend that nearly cancels the product
          let c = operand(rng, f, b);
          if (rng.chance(0.35)) {
            const p = M.mul(a, b, f, RNE_OR(rng)).bits;
            c = (p ^ (negProd === negC ? signBit(f) : 0n)) + BigInt(rng.range(-2, 2));
            c &= mask(f);
          }
          check(`${op} rm${rm}`, core(code, a, b, c, dbl, rm), M.fma(a, b, c, f, rm, negProd, negC), [a, b, c]);
        }
      });
    }

    it(`${name} conversions to the other format`, () => {
      const rng = new Rng(0xcf + (dbl ? 1 : 0));
      const from = dbl ? F32 : F64; // the result's format is f
      for (let i = 0; i < N; i++) {
        const rm = i % 5;
        const a = operand(rng, from);
        check(`cvt rm${rm}`, core(OP.cvtFF, a, 0n, 0n, dbl, rm), M.cvtFF(a, from, f, rm), [a]);
      }
    });

    for (const [kname, kind] of [["W", 0], ["WU", 1], ["L", 2], ["LU", 3]] as const) {
      it(`${name} FCVT.${kname}: rounding, saturation and flags`, () => {
        const rng = new Rng(0xc1 + kind * 5 + (dbl ? 1 : 0));
        for (let i = 0; i < N; i++) {
          const rm = i % 5;
          const a = operand(rng, f);
          check(`to ${kname} rm${rm}`, core(OP.toInt, a, 0n, 0n, dbl, rm, kind), M.cvtToInt(a, f, rm, kind), [a]);
        }
      });
      it(`${name} FCVT from ${kname}: rounding and flags`, () => {
        const rng = new Rng(0xc7 + kind * 5 + (dbl ? 1 : 0));
        const edges = [0n, 1n, (1n << 31n) - 1n, 1n << 31n, (1n << 32n) - 1n, 1n << 32n, (1n << 63n) - 1n, 1n << 63n,
          (1n << 64n) - 1n, (1n << 24n) + 1n, (1n << 53n) + 1n, (1n << 54n) + 3n];
        for (let i = 0; i < N; i++) {
          const rm = i % 5;
          const v = rng.chance(0.3) ? rng.pick(edges) + BigInt(rng.range(-2, 2))
            : randBits(rng, 64) >> BigInt(rng.int(64));
          const x = BigInt.asUintN(64, rng.chance(0.5) ? -v : v);
          check(`from ${kname} rm${rm}`, core(OP.fromInt, x, 0n, 0n, dbl, rm, kind), M.cvtFromInt(x, f, rm, kind), [x]);
        }
      });
    }

    it(`${name} FEQ / FLT / FLE and FCLASS`, () => {
      const rng = new Rng(0xce + (dbl ? 1 : 0));
      for (let i = 0; i < N; i++) {
        const which = i % 3;
        const a = operand(rng, f), b = operand(rng, f, a);
        check(`cmp ${which}`, core(OP.cmp, a, b, 0n, dbl, 0, which), M.compare(a, b, f, which), [a, b]);
        check("class", core(OP.fclass, a, 0n, 0n, dbl, 0), { bits: M.fclass(a, f), flags: 0 }, [a]);
      }
    });
  }
});

/** A rounding mode for building near-cancelling addends (any will do). */
function RNE_OR(rng: Rng): number { return rng.int(5); }
