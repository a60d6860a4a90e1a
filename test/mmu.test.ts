// The shadow MMU (arch/x86/kvm/mmu/mmu.c): MMIO sptes and the memslot generation, zaps on
// DELETE / MOVE and MMU-notifier events, faults on INVALID slots, READONLY and
// unusable backing. Guest accesses are single load/store instructions run by
// the conformance runner's guest (the same fault path as any guest).
import { describe, it, expect, beforeEach } from "vitest";
import { Kvm, KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS as IN_PROGRESS } from "../src/index.js";
import { ScriptRunner } from "../src/conformance/index.js";
import { MMU_STAT } from "../src/abi.gen.js";
import { openKvm } from "./helpers.js";

let kvm: Kvm;
let r: ScriptRunner;
const op = (line: string) => r.line(line);
const stat = (i: number): number => kvm.core.mmuStat(i);
const { FAULTS, MMIO_SPTE_HITS: MMIO_HITS, MMIO_SPTE_INSTALLS: MMIO_INSTALLS, FAULT_RETRIES: RETRIES, ZAP_ALL,
  SLOT_ZAPS, REMOTE_FLUSHES } = MMU_STAT;

beforeEach(async () => {
  kvm = await openKvm();
  r = new ScriptRunner(kvm);
  for (const l of ["vm", "hostmap A 0x100000", "hostmap B 0x100000", "set 0 0 0x0 0x10000 A+0", "vcpu"]) expect(op(l)).toBe("ok");
});
const vm = () => r.currentVm!;

describe("MMIO sptes and the generation (mark_mmio_spte, check_mmio_spte)", () => {
  it("an MMIO spte is reused while the generation matches", () => {
    expect(op("read 0x30000")).toBe("mmio read 0x30000 4; ok 0x0");
    const installs = stat(MMIO_INSTALLS), hits = stat(MMIO_HITS);
    expect(op("read 0x30004")).toBe("mmio read 0x30004 4; ok 0x0");
    expect(op("write 0x30008 1")).toBe("mmio write 0x30008 4 01000000; ok");
    expect(stat(MMIO_INSTALLS)).toBe(installs);
    // Each access probes the MMIO spte twice: when it exits, and when it re-executes
    // to complete (the data of the read comes from kvm_run then).
    expect(stat(MMIO_HITS)).toBe(hits + 4);
  });

  it("any memslot change makes it stale: the next access re-evaluates the gfn", () => {
    op("read 0x30000");
    const installs = stat(MMIO_INSTALLS);
    expect(op("set 1 0 0x80000 0x1000 B+0")).toBe("ok"); // elsewhere
    expect(op("read 0x30000")).toBe("mmio read 0x30000 4; ok 0x0");
    expect(stat(MMIO_INSTALLS)).toBe(installs + 1);
    expect(op("set 2 0 0x30000 0x1000 B+0")).toBe("ok"); // RAM appears where MMIO was
    expect(op("poke B+0 0x1234")).toBe("ok");
    expect(op("read 0x30000")).toBe("ok 0x1234");
  });

  it("an MMIO spte made while an update is in flight carries the old generation and is stale after it", () => {
    let during = "";
    kvm.setReaderHook((v, point) => {
      if (point === "published" && (v.generation() & IN_PROGRESS) !== 0n && during === "") during = op("read 0x40000");
    });
    expect(op("set 3 0 0x40000 0x1000 B+0")).toBe("ok");
    kvm.setReaderHook(null);
    // During the publish the gfn had RAM already (the new set is live) ...
    expect(during).toBe("ok 0x0");
    // ... and an MMIO spte made under g|bit63 never matches a settled generation:
    expect(op("set 3 0 0 0 0")).toBe("ok");
    let installedDuring = -1;
    kvm.setReaderHook((v, point) => {
      if (point === "published" && (v.generation() & IN_PROGRESS) !== 0n && installedDuring < 0) {
        const before = stat(MMIO_INSTALLS);
        expect(op("read 0x50000")).toBe("mmio read 0x50000 4; ok 0x0");
        installedDuring = stat(MMIO_INSTALLS) - before;
      }
    });
    expect(op("set 4 0 0x90000 0x1000 B+0")).toBe("ok");
    kvm.setReaderHook(null);
    // While in flight no MMIO spte is ever valid (check_mmio_spte): each probe made one.
    expect(installedDuring).toBeGreaterThanOrEqual(1);
    const installs = stat(MMIO_INSTALLS);
    expect(op("read 0x50000")).toBe("mmio read 0x50000 4; ok 0x0");
    expect(stat(MMIO_INSTALLS)).toBe(installs + 1); // stale once settled: re-evaluated, not served
  });

  it("generation wraparound of the 19-bit MMIO generation zaps every spte", () => {
    const v = vm();
    expect(kvm.core.debugSetGeneration(v.fd, 0, (1n << 19n) - 1n)).toBeTruthy();
    op("read 0x30000");
    const zaps = stat(ZAP_ALL);
    expect(op("set 5 0 0xa0000 0x1000 B+0")).toBe("ok"); // settles at 2^19: wraps to 0
    expect(v.generation()).toBe(1n << 19n);
    expect(stat(ZAP_ALL)).toBe(zaps + 1);
    const installs = stat(MMIO_INSTALLS);
    op("read 0x30000");
    expect(stat(MMIO_INSTALLS)).toBe(installs + 1);
  });
});

describe("faults against slots", () => {
  it("a write to a READONLY slot exits as an MMIO write and is never cached; reads read memory", () => {
    expect(op("set 1 2 0x20000 0x1000 B+0")).toBe("ok");
    expect(op("poke B+0 0x77")).toBe("ok");
    const installs = stat(MMIO_INSTALLS);
    expect(op("write 0x20000 0x55")).toBe("mmio write 0x20000 4 55000000; ok");
    expect(op("write 0x20000 0x55")).toBe("mmio write 0x20000 4 55000000; ok");
    expect(stat(MMIO_INSTALLS)).toBe(installs);
    expect(op("read 0x20000")).toBe("ok 0x77");
  });

  it("unusable host backing makes KVM_RUN fail with EFAULT and fill memory_fault", () => {
    expect(op("hostmap R 0x1000 ro")).toBe("ok");
    expect(op("set 1 0 0x50000 0x1000 R+0")).toBe("ok");
    expect(op("set 2 0 0x60000 0x1000 0")).toBe("ok");
    expect(op("read 0x50000")).toBe("ok 0x0");
    expect(op("write 0x50000 1")).toBe("EFAULT memory_fault gpa=0x50000 size=0x1000 flags=0x0");
    expect(op("read 0x60010")).toBe("EFAULT memory_fault gpa=0x60000 size=0x1000 flags=0x0");
    expect(op("hostunmap B")).toBe("ok");
    expect(op("set 3 0 0x70000 0x1000 B+0")).toBe("ok");
    expect(op("read 0x70000")).toBe("EFAULT memory_fault gpa=0x70000 size=0x1000 flags=0x0");
  });

  it("a fault on an INVALID slot retries (EINTR) and installs nothing, never MMIO", () => {
    op("poke A+0x3000 0x99");
    let during = "";
    const installs = stat(MMIO_INSTALLS);
    const vcpu = r.currentVcpu!;
    kvm.setReaderHook((v, point) => {
      if (point !== "invalidated") return;
      vcpu.setReg(10, 0x3000); // a0 = gpa; the runner's 4-byte load stub
      vcpu.pc = 0xfff00000n + 0x20n + 16n;
      const exit = vcpu.run();
      during = `${exit.name} ${exit.errno}`;
    });
    expect(op("set 0 0 0x100000 0x10000 A+0")).toBe("ok"); // MOVE
    kvm.setReaderHook(null);
    expect(during).toBe("intr 4"); // KVM_EXIT_INTR, EINTR: the load did not happen
    expect(stat(MMIO_INSTALLS)).toBe(installs);
    expect(stat(RETRIES)).toBeGreaterThan(0);
    expect(op("read 0x103000")).toBe("ok 0x99");
  });
});

describe("zapping (kvm_arch_flush_shadow_memslot, kvm_unmap_gfn_range)", () => {
  for (const quirk of [true, false]) {
    it(`move while running: a slot moved by one page shows the new hva's data (zap-all quirk ${quirk ? "on" : "off"})`, () => {
      if (!quirk) vm().enableCap(213, [1n << 7n]);
      op("poke A+0x1000 0x1111");
      op("poke A+0x2000 0x2222");
      expect(op("set 0 0 0x10000 0x10000 A+0")).toBe("ok");
      expect(op("read 0x11000")).toBe("ok 0x1111");
      // Same hva, base one page lower: gpa 0x11000 now maps to A+0x2000.
      expect(op("set 0 0 0xf000 0x10000 A+0")).toBe("ok");
      expect(op("read 0x11000")).toBe("ok 0x2222");
      expect(op("write 0x11000 0x3333")).toBe("ok");
      expect(op("peek A+0x2000")).toBe("ok 0x3333");
    });
  }

  it("delete while running turns RAM into MMIO; re-creating turns it back", () => {
    op("poke A+0x4000 0xabcd");
    expect(op("read 0x4000")).toBe("ok 0xabcd");
    expect(op("set 0 0 0 0 0")).toBe("ok");
    expect(op("read 0x4000")).toBe("mmio read 0x4000 4; ok 0x0");
    expect(op("set 0 0 0x0 0x10000 A+0")).toBe("ok");
    expect(op("read 0x4000")).toBe("ok 0xabcd");
  });

  it("with KVM_X86_QUIRK_SLOT_ZAP_ALL (default) DELETE zaps every spte; without it only the slot's, by rmap", () => {
    const v = vm();
    expect(op("set 1 0 0x20000 0x1000 B+0")).toBe("ok");
    op("read 0x1000");
    op("read 0x20000");
    expect(kvm.core.slotRmapCount(v.fd, 0x1n)).toBe(1);
    expect(op("set 1 0 0 0 0")).toBe("ok");
    expect(kvm.core.slotRmapCount(v.fd, 0x1n)).toBe(0);
    v.enableCap(213, [1n << 7n]); // KVM_CAP_DISABLE_QUIRKS2
    expect(op("set 1 0 0x20000 0x1000 B+0")).toBe("ok");
    op("read 0x1000");
    op("read 0x20000");
    const zapAll = stat(ZAP_ALL), slotZaps = stat(SLOT_ZAPS);
    expect(op("set 1 0 0 0 0")).toBe("ok");
    expect(stat(ZAP_ALL)).toBe(zapAll);
    expect(stat(SLOT_ZAPS)).toBe(slotZaps + 1);
    expect(kvm.core.slotRmapCount(v.fd, 0x1n)).toBe(1); // slot 0 kept its spte
  });

  it("an MMU-notifier event from munmap / mprotect zaps the sptes of that hva range", () => {
    const v = vm();
    op("poke A+0x5000 7");
    op("read 0x5000");
    op("read 0x6000");
    expect(kvm.core.slotRmapCount(v.fd, 0n)).toBe(2);
    kvm.memory.mprotect(0x100000000000n + (1n << 30n) + 0x5000n, 0x1000, "r");
    expect(kvm.core.slotRmapCount(v.fd, 0n)).toBe(1);
    expect(op("read 0x5000")).toBe("ok 0x7");
    expect(op("write 0x5000 1")).toBe("EFAULT memory_fault gpa=0x5000 size=0x1000 flags=0x0");
    kvm.memory.munmap(0x100000000000n + (1n << 30n) + 0x6000n, 0x1000);
    expect(op("read 0x6000")).toBe("EFAULT memory_fault gpa=0x6000 size=0x1000 flags=0x0");
  });

  it("the first write to a page that was only read breaks COW from the zero page, and the guest sees it", () => {
    expect(op("read 0x8000")).toBe("ok 0x0");
    expect(op("write 0x8000 0x42")).toBe("ok");
    expect(op("read 0x8000")).toBe("ok 0x42");
    expect(op("peek A+0x8000")).toBe("ok 0x42");
  });
});

describe("write protection when dirty logging starts (kvm_mmu_slot_apply_flags)", () => {
  it("the remote TLB flush comes only when an spte was made read-only (Linux flushes always; none allowed a write otherwise)", () => {
    op("read 0x1000"); // a read-only spte in slot 0
    let flushes = stat(REMOTE_FLUSHES);
    expect(op("set 0 1 0x0 0x10000 A+0")).toBe("ok");
    expect(stat(REMOTE_FLUSHES)).toBe(flushes);
    expect(op("set 0 0 0x0 0x10000 A+0")).toBe("ok");
    expect(op("write 0x2000 7")).toBe("ok"); // a writable one
    flushes = stat(REMOTE_FLUSHES);
    expect(op("set 0 1 0x0 0x10000 A+0")).toBe("ok");
    expect(stat(REMOTE_FLUSHES)).toBe(flushes + 1);
    expect(op("write 0x2000 8")).toBe("ok"); // faults again: logged
    expect(op("read 0x2000")).toBe("ok 0x8");
  });
});
