// bench/native/gfnindex.c runs the core's gfn search (gfn_index.ts recordAddrFor,
// search.ts searchHva) in C over a copy of the core's own records and bucket
// index, for bench/lookup.js's "wasm vs native C of the same index" row. The
// ratio means something only if the C answers exactly as the core does: on
// sets built by random creates, moves and deletes (so gaps, grown arrays and
// repaired buckets), small and large (a handful of buckets or thousands),
// every probed gfn must give the core's hva. Skipped without a C compiler.

import { it, expect } from "vitest";
// @ts-expect-error: plain JS helpers of the bench
import { gfnIndexImage, runGfnIndex } from "../bench/native/gfnindex.js";
// @ts-expect-error: plain JS helpers of the bench
import { build } from "../bench/native/native.js";
import { openKvm } from "./helpers.js";
import { Rng } from "./rng.js";
import { isErrorHva } from "../src/index.js";

const PAGE = 4096n;

it("the native gfn index answers every gfn as the core does", async (ctx) => {
  const cc = build("gfnindex");
  if (cc.skipped) ctx.skip(cc.skipped);
  for (const [seed, slots] of [[1, 5], [2, 300], [3, 1200]]) {
    const rng = new Rng(seed);
    const kvm = await openKvm();
    const vm = kvm.createVm();
    const hva = kvm.memory.mmap(BigInt(slots) * 8n * PAGE);
    const windows = slots * 4; // gfn space: 8-page windows, a quarter of them used
    const used = new Set<number>();
    const place = (id: number) => {
      let w: number;
      do w = rng.int(windows); while (used.has(w));
      used.add(w);
      const npages = BigInt(rng.range(1, 8));
      vm.setUserMemoryRegion({ slot: id, guestPhysAddr: BigInt(w) * 8n * PAGE, memorySize: npages * PAGE,
        userspaceAddr: hva + BigInt(id) * 8n * PAGE });
      return w;
    };
    const at = Array.from({ length: slots }, (_, id) => place(id));
    for (let i = 0; i < slots / 3; i++) {
      const id = rng.int(slots);
      if (at[id] < 0) continue;
      used.delete(at[id]);
      vm.setUserMemoryRegion({ slot: id, guestPhysAddr: 0n, memorySize: 0n, userspaceAddr: 0n }); // delete
      at[id] = rng.chance(0.5) ? place(id) : -1; // and sometimes create it elsewhere
    }
    const keys: bigint[] = [];
    for (let i = 0; i < 3000; i++) keys.push(BigInt(rng.int(windows * 8 + 64)));
    const r = runGfnIndex(`test-gfnindex-${seed}`, gfnIndexImage(kvm.core, vm.fd), keys.slice(0, 64), keys, 0, 1);
    expect(r.skipped).toBeUndefined();
    const want = keys.map((g) => {
      const h = vm.gfnToHva(g, { write: false });
      return isErrorHva(h) ? 0n : h;
    });
    expect(Array.from(r.hvas as BigUint64Array), `seed ${seed}, ${slots} slots`).toEqual(want);
    expect(want.filter((h) => h !== 0n).length).toBeGreaterThan(100);
  }
});
