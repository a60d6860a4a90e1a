// Large memslot sets against a plain model: the gfn and hva orders are packed
// arrays (assembly/memslots/packed.ts) whose insertions shift into nearby gaps,
// re-spread windows and grow, and whose gfn index is repaired edit by edit.
// Each pattern below drives one of those paths hard; after every edit the
// debug core checks the set invariants (order, gap keys, index buckets, hva
// block maxima), and probes compare gfn lookups, hva routing and the slot list
// with the model.

import { describe, it, expect } from "vitest";
import { openKvm, code } from "./helpers.js";
import { Rng } from "./rng.js";
import { KVM_MEM_LOG_DIRTY_PAGES, KVM_HVA_ERR_BAD, type Kvm, type Vm } from "../src/index.js";

const PAGE = 4096n;

interface S { id: number; gfn: bigint; npages: bigint; hva: bigint; flags: number }

class Harness {
  slots = new Map<number, S>();
  constructor(readonly kvm: Kvm, readonly vm: Vm, readonly base: bigint, readonly rng: Rng) {}

  static async open(seed: number, mapPages: bigint): Promise<Harness> {
    const kvm = await openKvm();
    const vm = kvm.createVm();
    return new Harness(kvm, vm, kvm.memory.mmap(mapPages * PAGE), new Rng(seed));
  }

  overlaps(id: number, gfn: bigint, npages: bigint): boolean {
    for (const s of this.slots.values()) if (s.id !== id && gfn < s.gfn + s.npages && s.gfn < gfn + npages) return true;
    return false;
  }

  /** Sets a region and checks the outcome the model predicts. */
  set(id: number, gfn: bigint, npages: bigint, hvaPage: bigint, flags = 0): void {
    const hva = this.base + hvaPage * PAGE;
    const r = { slot: id, flags, guestPhysAddr: gfn * PAGE, memorySize: npages * PAGE, userspaceAddr: hva };
    const old = this.slots.get(id);
    let want = "ok";
    if (npages === 0n) want = old ? "ok" : "EINVAL";
    else if (old && (old.hva !== hva || old.npages !== npages)) want = "EINVAL";
    else if ((!old || old.gfn !== gfn) && this.overlaps(id, gfn, npages)) want = "EEXIST";
    expect(code(() => this.vm.setUserMemoryRegion(r)), `slot ${id} gfn ${gfn}+${npages}`).toBe(want);
    if (want !== "ok") return;
    if (npages === 0n) this.slots.delete(id);
    else this.slots.set(id, { id, gfn, npages, hva, flags });
  }

  modelLookup(gfn: bigint): S | undefined {
    for (const s of this.slots.values()) if (gfn >= s.gfn && gfn < s.gfn + s.npages) return s;
    return undefined;
  }

  /** Lookups at slot edges and at random gfns, hva routing of random ranges, and the ordered slot list. */
  probe(span: bigint, hvaSpan: bigint, n = 24): void {
    const all = [...this.slots.values()];
    const gfns: bigint[] = [];
    for (let i = 0; i < n; i++) gfns.push(BigInt(this.rng.int(Number(span) + 8)));
    for (let i = 0; i < Math.min(n, all.length); i++) {
      const s = all[this.rng.int(all.length)];
      gfns.push(s.gfn, s.gfn + s.npages - 1n, s.gfn + s.npages, s.gfn - 1n);
    }
    for (const gfn of gfns) {
      if (gfn < 0n) continue;
      const want = this.modelLookup(gfn);
      const got = this.vm.debug.lookup(gfn);
      expect(got?.id, `search_memslots(${gfn})`).toBe(want?.id);
      expect(this.vm.gfnToHva(gfn), `gfn_to_hva(${gfn})`).toBe(want ? want.hva + (gfn - want.gfn) * PAGE : KVM_HVA_ERR_BAD);
    }
    for (let i = 0; i < 6; i++) {
      const start = this.base + BigInt(this.rng.int(Number(hvaSpan))) * PAGE + BigInt(this.rng.int(4096));
      const end = start + BigInt(1 + this.rng.int(64)) * PAGE - BigInt(this.rng.int(4096));
      const want = all.filter((s) => s.hva < end && s.hva + s.npages * PAGE > start).map((s) => s.id).sort((a, b) => a - b);
      expect(this.vm.debug.hvaToSlots(start, end).sort((a, b) => a - b), `hva [${start}, ${end})`).toEqual(want);
    }
    const listed = this.vm.memslots().map((s) => [s.id, s.baseGfn]);
    const model = all.sort((a, b) => (a.gfn < b.gfn ? -1 : 1)).map((s) => [s.id, s.gfn]);
    expect(listed).toEqual(model);
  }
}

describe("large memslot sets (packed gfn and hva orders)", () => {
  it("ascending creates (appends) then descending deletes: growth and the end of the array", async () => {
    const h = await Harness.open(1, 4096n);
    for (let i = 0; i < 1500; i++) {
      h.set(i, BigInt(i) * 4n, 2n, BigInt(i % 2000));
      if (i % 97 === 0) h.probe(6000n, 2000n);
    }
    h.probe(6000n, 2000n);
    for (let i = 1499; i >= 0; i -= 2) h.set(i, 0n, 0n, 0n);
    h.probe(6000n, 2000n);
    expect(h.vm.memslots().length).toBe(750);
  });

  it("descending creates (every insertion below the indexed span)", async () => {
    const h = await Harness.open(2, 4096n);
    for (let i = 1199; i >= 0; i--) {
      h.set(i, BigInt(i) * 3n, 1n + BigInt(i % 3), BigInt(i));
      if (i % 89 === 0) h.probe(4000n, 1300n);
    }
    h.probe(4000n, 1300n);
  });

  it("insertions packed into one spot: windows re-spread around a dense run", async () => {
    const h = await Harness.open(3, 8192n);
    // A wide spread of slots first, so the array has gaps everywhere but here.
    for (let i = 0; i < 400; i++) h.set(i, 100000n + BigInt(i) * 64n, 4n, BigInt(i));
    // Then 1,000 one-page slots filling [0, 1000) from both ends toward the middle.
    let lo = 0, hi = 999;
    for (let k = 0; k < 1000; k++) {
      const gfn = k % 2 === 0 ? lo++ : hi--;
      h.set(400 + k, BigInt(gfn), 1n, BigInt(400 + k));
      if (k % 61 === 0) h.probe(130000n, 1500n);
    }
    h.probe(130000n, 1500n);
  });

  it("random create / delete / move / flags churn with aliased and overlapping host ranges", async () => {
    const h = await Harness.open(4, 2048n);
    const r = h.rng;
    for (let op = 0; op < 6000; op++) {
      const id = r.int(700);
      const old = h.slots.get(id);
      const k = r.int(10);
      if (!old || k < 3) {
        // Host pages drawn from a small window, so ranges alias and overlap often.
        h.set(id, BigInt(r.int(20000)), BigInt(1 + r.int(12)), old ? (old.hva - h.base) / PAGE : BigInt(r.int(1000)));
      } else if (k < 5) {
        h.set(id, 0n, 0n, 0n);
      } else if (k < 8) {
        h.set(id, BigInt(r.int(20000)), old.npages, (old.hva - h.base) / PAGE, old.flags);
      } else {
        h.set(id, old.gfn, old.npages, (old.hva - h.base) / PAGE, old.flags ^ KVM_MEM_LOG_DIRTY_PAGES);
      }
      if (op % 150 === 0) h.probe(20020n, 1020n);
    }
    h.probe(20020n, 1020n, 200);
  });

  it("mass delete then re-create in another order: a gap-riddled array stays searchable", async () => {
    const h = await Harness.open(5, 4096n);
    for (let i = 0; i < 1000; i++) h.set(i, BigInt(i) * 8n, 8n, BigInt(i * 2));
    for (let i = 0; i < 1000; i++) if (i % 10 !== 3) h.set(i, 0n, 0n, 0n);
    h.probe(8100n, 2100n);
    // Re-create shifted by half a slot, so new keys fall inside old gaps' ranges.
    for (let i = 999; i >= 0; i--) if (i % 10 !== 3) h.set(i, BigInt(i) * 8n + 4n, 2n, BigInt(i * 2));
    h.probe(8100n, 2100n, 100);
  });
});
