// Stress: the guest reads and writes while the host moves, deletes and
// re-creates slots, toggles dirty logging, and unmaps / remaps / migrates host
// pages, with a pvclock device publishing on every entry. After every step the
// debug core's invariants hold, and every guest read returns what the current
// memslots and host mappings say — never data through a stale translation.
import { describe, it, expect } from "vitest";
import { PvClock } from "../src/index.js";
import { ScriptRunner } from "../src/conformance/index.js";
import { openKvm } from "./helpers.js";

const GIB = 1n << 30n;
const HOST = [0x100000000000n + GIB, 0x100000000000n + 64n * GIB + GIB]; // the runner's hostmap A, B
const PV_GPA = 0x8000n;

function rng(seed: number) {
  let s = BigInt(seed) | 1n;
  return (n: number) => {
    s ^= s << 13n; s &= (1n << 64n) - 1n; s ^= s >> 7n; s ^= s << 17n; s &= (1n << 64n) - 1n;
    return Number(s % BigInt(n));
  };
}

interface SlotModel { id: number; gpa: bigint; pages: bigint; hva: bigint; log: boolean }

describe("stress: guest accesses during memslot and host-mapping churn", () => {
  for (let seed = 1; seed <= 12; seed++) {
    it(`seed ${seed}`, async () => {
      const kvm = await openKvm();
      const r = new ScriptRunner(kvm);
      const op = (l: string) => r.line(l);
      for (const l of ["vm", "hostmap A 0x100000", "hostmap B 0x100000"]) expect(op(l)).toBe("ok");
      const slots: SlotModel[] = [
        { id: 0, gpa: 0n, pages: 16n, hva: HOST[0], log: false },
        { id: 1, gpa: 0x40000n, pages: 16n, hva: HOST[1], log: false },
      ];
      const unmapped = new Set<bigint>();
      const apply = (s: SlotModel, del = false) =>
        op(`set ${s.id} ${s.log ? 1 : 0} 0x${(del ? 0n : s.gpa).toString(16)} 0x${(del ? 0n : s.pages * 4096n).toString(16)} 0x${s.hva.toString(16)}`);
      for (const s of slots) expect(apply(s)).toBe("ok");
      expect(op("vcpu")).toBe("ok");
      const vm = r.currentVm!;
      const clock = new PvClock(r.currentVcpu!, PV_GPA);
      const rand = rng(seed * 7919);
      const live = new Set([0, 1]);

      const expectRead = (gpa: bigint, ctx: string) => {
        if (gpa >> 12n === PV_GPA >> 12n) return; // the clock rewrites that page on every entry
        const s = slots.find((x) => live.has(x.id) && gpa >= x.gpa && gpa < x.gpa + x.pages * 4096n);
        const got = op(`read 0x${gpa.toString(16)}`);
        if (!s) {
          expect(got, ctx).toBe(`mmio read 0x${gpa.toString(16)} 4; ok 0x0`);
          return;
        }
        const hva = s.hva + (gpa - s.gpa);
        if (unmapped.has(hva & ~0xfffn)) {
          expect(got, ctx).toBe(`EFAULT memory_fault gpa=0x${(gpa & ~0xfffn).toString(16)} size=0x1000 flags=0x0`);
          return;
        }
        expect(got, ctx).toBe(`ok 0x${kvm.memory.peek(hva, 4).toString(16)}`);
      };

      for (let step = 0; step < 120; step++) {
        const s = slots[rand(2)];
        const k = rand(7);
        let what = "";
        if (k === 0 && live.has(s.id)) {
          const gpa = s.gpa + BigInt(rand(Number(s.pages))) * 4096n + BigInt(rand(1024) * 4);
          what = `guest write 0x${gpa.toString(16)}`;
          const got = op(`write 0x${gpa.toString(16)} 0x${(step * 0x1010101 + seed).toString(16)}`);
          expect(["ok"].includes(got) || got.startsWith("EFAULT") || gpa >> 12n === PV_GPA >> 12n, `${what}: ${got}`).toBe(true);
        } else if (k === 1 && live.has(s.id)) {
          const other = slots.find((x) => x !== s)!;
          const to = BigInt(rand(24)) * 0x4000n;
          const overlaps = live.has(other.id) && to < other.gpa + other.pages * 4096n && other.gpa < to + s.pages * 4096n;
          what = `move slot ${s.id} to 0x${to.toString(16)}`;
          const old = s.gpa;
          s.gpa = to;
          const got = apply(s);
          if (overlaps) { expect(got, what).toBe("EEXIST"); s.gpa = old; } else expect(got, what).toBe("ok");
        } else if (k === 2) {
          what = live.has(s.id) ? `delete slot ${s.id}` : `re-create slot ${s.id}`;
          if (live.has(s.id)) { expect(apply(s, true)).toBe("ok"); live.delete(s.id); } else {
            const other = slots.find((x) => x !== s)!;
            const overlaps = live.has(other.id) && s.gpa < other.gpa + other.pages * 4096n && other.gpa < s.gpa + s.pages * 4096n;
            const got = apply(s);
            if (overlaps) expect(got).toBe("EEXIST"); else { expect(got).toBe("ok"); live.add(s.id); }
          }
        } else if (k === 3) {
          const page = s.hva + BigInt(rand(16)) * 4096n;
          what = unmapped.has(page) ? `remap host page 0x${page.toString(16)}` : `munmap host page 0x${page.toString(16)}`;
          if (unmapped.has(page)) { kvm.memory.mmap(0x1000, { addr: page }); unmapped.delete(page); } else {
            kvm.memory.munmap(page, 0x1000);
            unmapped.add(page);
          }
        } else if (k === 4) {
          what = `migrate host pages of slot ${s.id}`;
          for (let p = 0n; p < 16n; p++) if (!unmapped.has(s.hva + p * 4096n)) kvm.core.migratePages(s.hva + p * 4096n, 0x1000n);
        } else if (k === 5 && live.has(s.id)) {
          s.log = !s.log;
          what = `logging ${s.log ? "on" : "off"} for slot ${s.id}`;
          expect(apply(s)).toBe("ok");
          if (s.log) op(`getlog ${s.id}`);
        } else {
          what = "host poke";
          const page = s.hva + BigInt(rand(16)) * 4096n;
          if (!unmapped.has(page)) kvm.memory.poke(page + 8n, BigInt(step));
        }
        const ctx = `seed ${seed} step ${step}: ${what}`;
        expect(kvm.core.debugCheckInvariants(vm.fd), ctx).toBeTruthy();
        for (let i = 0; i < 4; i++) {
          const t = slots[rand(2)];
          expectRead(t.gpa + BigInt(rand(Number(t.pages))) * 4096n + BigInt(rand(1024) * 4), ctx);
        }
        expect(kvm.core.debugCheckInvariants(vm.fd), ctx).toBeTruthy();
      }
      expect(clock.published).toBeGreaterThan(0);
      clock.close();
    });
  }
});
