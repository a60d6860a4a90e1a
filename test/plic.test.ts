// The PLIC model (src/vmm/devices/plic.ts) register by register, as Linux's
// irq-sifive-plic driver programs it: priority at 4 * source, pending bits at
// 0x1000, context c's enables at 0x2000 + 0x80 c, its threshold at
// 0x200000 + 0x1000 c and its claim/complete register 4 bytes above.
import { describe, it, expect } from "vitest";
import { Plic } from "../src/index.js";

const PRIO = (s: number) => BigInt(4 * s), PENDING = 0x1000n;
const ENABLE = (c: number) => BigInt(0x2000 + 0x80 * c);
const THRESHOLD = (c: number) => BigInt(0x200000 + 0x1000 * c), CLAIM = (c: number) => THRESHOLD(c) + 4n;

function plic(ndev = 31, contexts = 2) {
  const lines: boolean[] = new Array(contexts).fill(false);
  const changes: [number, boolean][] = [];
  const p = new Plic(ndev, contexts, (c, high) => { lines[c] = high; changes.push([c, high]); });
  const w = (off: bigint, v: number) => p.write(off, 4, BigInt(v));
  const r = (off: bigint) => Number(p.read(off, 4));
  return { p, lines, changes, w, r };
}

describe("PLIC", () => {
  it("a source with priority 0 never interrupts; priority 1 and enabled, above threshold 0, raises the context's line", () => {
    const { p, lines, w } = plic();
    w(ENABLE(0), 1 << 5);
    p.setIrq(5, true);
    expect(lines[0]).toBe(false);
    w(PRIO(5), 1);
    expect(lines).toEqual([true, false]);
  });

  it("a source not enabled for a context does not raise that context's line", () => {
    const { p, lines, w } = plic();
    w(PRIO(3), 1);
    w(ENABLE(1), 1 << 3);
    p.setIrq(3, true);
    expect(lines).toEqual([false, true]);
  });

  it("the threshold masks sources whose priority is not above it", () => {
    const { p, lines, w } = plic();
    w(PRIO(2), 3); w(ENABLE(0), 1 << 2); p.setIrq(2, true);
    w(THRESHOLD(0), 3);
    expect(lines[0]).toBe(false);
    w(THRESHOLD(0), 2);
    expect(lines[0]).toBe(true);
  });

  it("priorities and thresholds keep 3 bits; source 0's priority reads 0", () => {
    const { r, w } = plic();
    w(PRIO(1), 0xff); w(THRESHOLD(0), 0x1f); w(PRIO(0), 7);
    expect([r(PRIO(1)), r(THRESHOLD(0)), r(PRIO(0))]).toEqual([7, 7, 0]);
  });

  it("pending bits show forwarded sources and are read-only", () => {
    const { p, r, w } = plic();
    p.setIrq(1, true); p.setIrq(31, true);
    expect(r(PENDING) >>> 0).toBe(((1 << 1) | (1 << 31)) >>> 0);
    w(PENDING, 0);
    expect(r(PENDING) >>> 0).toBe(((1 << 1) | (1 << 31)) >>> 0);
  });

  it("enable bits read back; source 0 and sources past ndev cannot be enabled", () => {
    const { r, w } = plic(7);
    w(ENABLE(1), 0xffffffff);
    expect(r(ENABLE(1))).toBe(0xfe);
  });

  it("claim returns the highest-priority pending enabled source (ties: the lowest id), which stops being pending", () => {
    const { p, r, w } = plic();
    for (const [s, prio] of [[4, 2], [6, 5], [9, 5]]) { w(PRIO(s), prio); p.setIrq(s, true); }
    w(ENABLE(0), (1 << 4) | (1 << 6) | (1 << 9));
    expect(r(CLAIM(0))).toBe(6);
    expect(r(PENDING) & (1 << 6)).toBe(0);
    expect(r(CLAIM(0))).toBe(9);
    expect(r(CLAIM(0))).toBe(4);
    expect(r(CLAIM(0))).toBe(0);
  });

  it("claiming the last pending source lowers the line; a level source still high is forwarded again only on complete", () => {
    const { p, lines, r, w } = plic();
    w(PRIO(1), 1); w(ENABLE(0), 2); p.setIrq(1, true);
    expect(r(CLAIM(0))).toBe(1);
    expect(lines[0]).toBe(false);
    p.setIrq(1, true); // still claimed: the gateway holds it
    expect(lines[0]).toBe(false);
    w(CLAIM(0), 1);
    expect(lines[0]).toBe(true);
    expect(r(CLAIM(0))).toBe(1);
    p.setIrq(1, false);
    w(CLAIM(0), 1);
    expect([lines[0], r(CLAIM(0))]).toEqual([false, 0]);
  });

  it("a complete for a source not enabled for the context is ignored", () => {
    const { p, lines, r, w } = plic();
    w(PRIO(2), 1); w(ENABLE(0), 1 << 2); p.setIrq(2, true);
    expect(r(CLAIM(0))).toBe(2);
    w(CLAIM(1), 2); // context 1 does not have source 2 enabled
    expect(lines[0]).toBe(false);
    w(CLAIM(0), 2);
    expect(lines[0]).toBe(true);
  });

  it("a level source whose line drops before it is claimed is no longer pending", () => {
    const { p, lines, r, w } = plic();
    w(PRIO(1), 1); w(ENABLE(0), 2);
    p.setIrq(1, true); p.setIrq(1, false);
    expect([lines[0], r(PENDING), r(CLAIM(0))]).toEqual([false, 0, 0]);
  });

  it("the context's line is driven only when it changes", () => {
    const { p, changes, w } = plic();
    w(PRIO(1), 1); w(ENABLE(0), 2);
    p.setIrq(1, true); p.setIrq(1, true); w(PRIO(1), 2);
    expect(changes).toEqual([[0, true]]);
  });

  it("accesses other than aligned 32-bit words read 0 and change nothing; a bad source or size is a RangeError", () => {
    const { p, r } = plic();
    p.write(PRIO(1), 1, 1n);
    p.write(PRIO(1) + 2n, 4, 1n);
    expect([r(PRIO(1)), Number(p.read(PRIO(1), 1))]).toEqual([0, 0]);
    expect(() => p.setIrq(0, true)).toThrow(RangeError);
    expect(() => p.setIrq(32, true)).toThrow(RangeError);
    expect(() => new Plic(0, 1, () => {})).toThrow(RangeError);
  });
});
