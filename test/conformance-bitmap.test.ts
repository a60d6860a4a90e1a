// The runner's dirty-bitmap buffer against a plain reference (one bit at a
// time): what clearlog writes and what getlog reads back, for random lists of
// runs on bitmaps that span several write chunks and pages.
import { describe, it, expect, beforeAll } from "vitest";
import type { Kvm } from "../src/kvm.js";
import { BitmapBuffer } from "../src/conformance/dirty-bitmap.js";
import { bitmapBytes } from "../src/bitmap.js";
import { parseBits } from "../src/conformance/parser.js";
import { runsList } from "../src/conformance/output.js";
import { openKvm } from "./helpers.js";
import { Rng } from "./rng.js";

/** The reference: bit i of a little-endian byte array, set one by one. */
function reference(bits: number, runs: { lo: number; hi: number }[] | null): Uint8Array {
  const b = new Uint8Array(bitmapBytes(bits));
  for (const r of runs ?? [{ lo: 0, hi: bits - 1 }]) {
    for (let i = r.lo; i <= Math.min(r.hi, bits - 1); i++) b[Math.floor(i / 8)] |= 1 << (i % 8);
  }
  return b;
}

/** The reference's set bits as a list ("0,5-7"). */
function referenceList(b: Uint8Array, bits: number): string {
  const xs: string[] = [];
  for (let i = 0; i < bits;) {
    if (!(b[i >> 3] & (1 << (i & 7)))) { i++; continue; }
    let j = i;
    while (j + 1 < bits && b[(j + 1) >> 3] & (1 << ((j + 1) & 7))) j++;
    xs.push(j === i ? `${i}` : `${i}-${j}`);
    i = j + 1;
  }
  return xs.length === 0 ? "none" : xs.join(",");
}

describe("the runner's dirty-bitmap buffer", () => {
  let kvm: Kvm;
  beforeAll(async () => { kvm = await openKvm(); });

  it("writes exactly the listed bits below NUM (random runs, up to 3 write chunks), and reads them back", () => {
    const buf = new BitmapBuffer(kvm.memory);
    const g = new Rng(14);
    const next = () => g.u32() / 4294967296;
    for (let round = 0; round < 40; round++) {
      const bits = 1 + Math.floor(next() * (round % 8 === 0 ? 24 << 20 : 5000));
      const runs: { lo: number; hi: number }[] = [];
      const n = Math.floor(next() * 12);
      for (let k = 0; k < n; k++) {
        const lo = Math.floor(next() * (bits + 200)); // some start past NUM: ignored
        runs.push({ lo, hi: lo + Math.floor(next() * (next() < 0.3 ? bits : 70)) });
      }
      const spec = round % 10 === 0 ? null : runs;
      const hva = buf.write(bits, spec);
      const want = reference(bits, spec);
      const got = kvm.memory.read(hva, want.length);
      expect(got.findIndex((x, i) => x !== want[i]), `round ${round}: first differing byte`).toBe(-1);
      expect(runsList(buf.read(bits))).toBe(referenceList(want, bits));
    }
  });

  it("a BITS list stays runs: 0-4294967295 on a 100-bit bitmap sets bits 0..99 only", () => {
    const buf = new BitmapBuffer(kvm.memory);
    const hva = buf.write(100, parseBits("0-4294967295"));
    expect(kvm.memory.read(hva, 16)).toEqual(reference(100, null));
  });

  it("each call starts from an untouched buffer: a write of `none` reads back as none after a write of `all`", () => {
    const buf = new BitmapBuffer(kvm.memory);
    buf.write(1 << 16, null);
    const hva = buf.write(1 << 16, []);
    expect(kvm.memory.read(hva, 8192).every((x) => x === 0)).toBe(true);
    expect(kvm.memory.resident(hva)).toBe(false);
  });
});
