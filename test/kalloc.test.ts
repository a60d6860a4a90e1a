// kalloc.ts: kzalloc / kfree, including the small-block caches (freed blocks of
// TLSF's smallest sizes are handed out again without going through TLSF).
import { describe, it, expect, beforeEach } from "vitest";
import { Kvm } from "../src/index.js";
import { openKvm } from "./helpers.js";

let kvm: Kvm;
beforeEach(async () => { kvm = await openKvm(); });

describe("kzalloc / kfree", () => {
  const live = () => kvm.core.statLiveAllocations() as number;
  const bytes = (p: number, n: number) => new Uint8Array(kvm.core.memory.buffer, p, n);
  /** More blocks than a cache holds (1,024). */
  const N = 3000;

  it("a block freed and allocated again (one size class of the caches) reads zero", () => {
    for (const size of [1, 12, 20, 28, 40, 44, 56, 60, 64, 100]) {
      const p = kvm.core.kmalloc(size);
      bytes(p, size).fill(0x5a);
      kvm.core.kmfree(p);
      const q = kvm.core.kmalloc(size);
      expect([...bytes(q, size)].every((b) => b === 0), `size ${size}`).toBe(true);
      kvm.core.kmfree(q);
    }
  });

  it("more blocks freed than the caches hold: every later allocation is a distinct block, zeroed, and the live count returns", () => {
    const before = live();
    for (const size of [24, 56]) {
      const a = Array.from({ length: N }, () => kvm.core.kmalloc(size));
      for (const p of a) bytes(p, size).fill(0xee);
      for (const p of a) kvm.core.kmfree(p);
      expect(live()).toBe(before);
      const b = Array.from({ length: N }, () => kvm.core.kmalloc(size));
      expect(new Set(b).size).toBe(N);
      const sorted = [...b].sort((x, y) => x - y);
      for (let i = 1; i < sorted.length; i++) expect(sorted[i] - sorted[i - 1]).toBeGreaterThanOrEqual(size);
      for (const p of b) {
        expect([...bytes(p, size)].every((x) => x === 0)).toBe(true);
        bytes(p, size).fill(0x11);
      }
      expect(live()).toBe(before + N);
      for (const p of b) kvm.core.kmfree(p);
      expect(live()).toBe(before);
    }
  });
});
