// The dirty ring (virt/kvm/dirty_ring.c; behaviour the goldens do not
// record): enable rules, ENXIO for the bitmap ioctls, ring order
// and entry format, one entry per page per protection epoch, the soft-full
// exit, KVM_RESET_DIRTY_RINGS and its count, and ring entries vs memslot
// changes. Guest stores are single store instructions run by the conformance
// runner's guest; "ring LIST" lines are the runner's harvest output.
import { describe, it, expect, beforeEach } from "vitest";
import {
  Kvm, Vm, KVM_CAP, KVM_ENABLE_CAP, KVM_RESET_DIRTY_RINGS, KVM_EXIT, kvm_enable_cap, errnoName, riscv,
} from "../src/index.js";
import { ScriptRunner } from "../src/conformance/index.js";
import { openKvm, code } from "./helpers.js";
import * as A from "./cpu/asm.js";

let kvm: Kvm;
let r: ScriptRunner;
const op = (line: string) => r.line(line);
const ops = (...lines: string[]) => lines.map(op);
const vm = (): Vm => r.currentVm!;
const RING = KVM_CAP.DIRTY_LOG_RING, ACQ_REL = KVM_CAP.DIRTY_LOG_RING_ACQ_REL;

/** KVM_ENABLE_CAP with a raw u64 args[0] and flags: "ok" or the errno name. */
function enable(v: Vm, cap: number, arg0: bigint | number, flags = 0): string {
  const res = v.ioctl(KVM_ENABLE_CAP, kvm_enable_cap.encode({ cap, flags, arg0: BigInt(arg0) }));
  return res >= 0 ? "ok" : errnoName(-res);
}
const fresh = () => kvm.createVm();
const resetRaw = (v: Vm) => { const x = v.ioctl(KVM_RESET_DIRTY_RINGS); return x < 0 ? errnoName(-x) : `ok ${x}`; };

/** `n` writes to distinct pages of slot 0 starting at page `from`; every result. */
function writePages(from: number, n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(op(`write 0x${((from + i) * 0x1000).toString(16)} 0x${(i + 1).toString(16)}`));
  return out;
}

beforeEach(async () => {
  kvm = await openKvm();
  r = new ScriptRunner(kvm);
  expect(ops(
    "vm",
    "cap dirty_ring 4096",
    "hostmap A 0x2000000",
    "set 0 1 0x0 0x1000000 A+0",              // 4096 pages, logged
    "set 1 0 0x1000000 0x100000 A+0x1000000", // not logged
  ).every((x) => x === "ok")).toBe(true);
});

describe("enabling (kvm_vm_ioctl_enable_dirty_log_ring)", () => {
  it("size 0, sizes below 4096 and sizes that are not powers of two are EINVAL", () => {
    const v = fresh();
    for (const s of [0, 1, 16, 1024, 2048, 4095, 6144, 4097, 12288, 0x7ffff])
      expect([s, enable(v, RING, s)]).toEqual([s, "EINVAL"]);
    expect(enable(v, RING, 4096)).toBe("ok"); // none of them set the size
  });

  it("more than 65536 entries (1 MiB) is E2BIG; 1 MiB itself is accepted", () => {
    const v = fresh();
    for (const s of [1 << 21, 1 << 24, 0x80000000]) expect([s, enable(v, RING, s)]).toEqual([s, "E2BIG"]);
    expect(enable(v, RING, 1 << 20)).toBe("ok");
    const vcpu = v.createVcpu(0);
    expect(vcpu.dirtyRing.size).toBe(65536);
  });

  it("0x180000 (not a power of two, above 1 MiB) is EINVAL: the power-of-two check comes before E2BIG", () => {
    const v = fresh();
    expect(enable(v, RING, 0x180000)).toBe("EINVAL");
    expect(enable(v, ACQ_REL, 0x180000)).toBe("EINVAL");
    expect(enable(v, RING, 0xffffffff)).toBe("EINVAL");
  });

  it("the size is truncated to u32 before any check: 0x100001000 enables 4096 bytes", () => {
    const v = fresh();
    expect(enable(v, RING, 0x100000000n)).toBe("EINVAL");  // size 0
    expect(enable(v, RING, 0x100200000n)).toBe("E2BIG");   // 2 MiB
    expect(enable(v, RING, 0xffffffff00000000n)).toBe("EINVAL");
    expect(enable(v, RING, 0x100001000n)).toBe("ok");
    expect(v.createVcpu(0).dirtyRing.size).toBe(256);
  });

  it("a ring size can be set only once, and either cap blocks the other", () => {
    const a = fresh();
    expect(enable(a, RING, 4096)).toBe("ok");
    expect(enable(a, RING, 4096)).toBe("EINVAL");
    expect(enable(a, RING, 8192)).toBe("EINVAL");
    expect(enable(a, ACQ_REL, 4096)).toBe("EINVAL");
    const b = fresh();
    expect(enable(b, ACQ_REL, 8192)).toBe("ok");
    expect(enable(b, RING, 4096)).toBe("EINVAL");
    expect(enable(b, ACQ_REL, 8192)).toBe("EINVAL");
    expect(b.createVcpu(0).dirtyRing.size).toBe(512);
  });

  it("after a vCPU exists enabling is EINVAL (and the vCPU has no ring)", () => {
    const v = fresh();
    const vcpu = v.createVcpu(0);
    expect(enable(v, RING, 4096)).toBe("EINVAL");
    expect(enable(v, ACQ_REL, 4096)).toBe("EINVAL");
    expect(vcpu.dirtyRing.size).toBe(0);
    expect(resetRaw(v)).toBe("EINVAL");
    expect(op("cap dirty_ring 4096")).toBe("EINVAL"); // the runner's VM: set already
    expect(op("vcpu")).toBe("ok");
  });

  it("E2BIG is checked before 'already set' and before 'a vCPU exists'", () => {
    const a = fresh();
    expect(enable(a, RING, 4096)).toBe("ok");
    expect(enable(a, RING, 1 << 21)).toBe("E2BIG");
    expect(enable(a, ACQ_REL, 1 << 21)).toBe("E2BIG");
    const b = fresh();
    b.createVcpu(0);
    expect(enable(b, RING, 1 << 21)).toBe("E2BIG");
    expect(enable(b, RING, 2048)).toBe("EINVAL");
  });

  it("flags are not checked", () => {
    expect(enable(fresh(), RING, 4096, 1)).toBe("ok");
    expect(enable(fresh(), RING, 4096, 0xffffffff)).toBe("ok");
    expect(enable(fresh(), ACQ_REL, 4096, 0x80000000)).toBe("ok");
  });

  it("the reserve is host-dependent: with PML's 512 extra entries the smallest ring is 16384 bytes", async () => {
    const k = await openKvm({ config: { dirtyRingReserved: 64 + 512 } });
    const v = k.createVm();
    const en = (s: number) => enable(v, RING, s);
    expect(en(4096)).toBe("EINVAL");
    expect(en(8192)).toBe("EINVAL");
    expect(en(16384)).toBe("ok");
  });

  it("KVM_CHECK_EXTENSION: both ring caps answer 1 MiB, WITH_BITMAP 0, with or without a ring", () => {
    for (const v of [fresh(), vm()]) {
      expect(v.checkExtension(RING)).toBe(1 << 20);
      expect(v.checkExtension(ACQ_REL)).toBe(1 << 20);
      expect(v.checkExtension(KVM_CAP.DIRTY_LOG_RING_WITH_BITMAP)).toBe(0);
    }
    expect(kvm.checkExtension(RING)).toBe(1 << 20);
  });

  it("KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP is always EINVAL on x86, with or without a ring", () => {
    expect(enable(fresh(), KVM_CAP.DIRTY_LOG_RING_WITH_BITMAP, 1)).toBe("EINVAL");
    expect(enable(vm(), KVM_CAP.DIRTY_LOG_RING_WITH_BITMAP, 1)).toBe("EINVAL");
    expect(enable(vm(), KVM_CAP.DIRTY_LOG_RING_WITH_BITMAP, 0)).toBe("EINVAL");
  });

  it("existing logged slots do not block enabling; logged slots made afterwards get no bitmap", () => {
    const v = fresh();
    const hva = kvm.memory.mmap(0x20000);
    v.setUserMemoryRegion({ slot: 0, flags: 1, guestPhysAddr: 0, memorySize: 0x10000, userspaceAddr: hva });
    expect(enable(v, RING, 4096)).toBe("ok");
    expect(code(() => v.getDirtyLog(0))).toBe("ENXIO");
    v.setUserMemoryRegion({ slot: 1, flags: 1, guestPhysAddr: 0x10000, memorySize: 0x10000, userspaceAddr: hva + 0x10000n });
    expect(v.memslots().find((s) => s.id === 1)!.hasDirtyBitmap).toBe(false);
    v.setUserMemoryRegion({ slot: 0, flags: 0, guestPhysAddr: 0, memorySize: 0x10000, userspaceAddr: hva });
    v.setUserMemoryRegion({ slot: 0, flags: 1, guestPhysAddr: 0, memorySize: 0x10000, userspaceAddr: hva });
    expect(v.memslots().find((s) => s.id === 0)!.hasDirtyBitmap).toBe(false);
  });

  it("each vCPU created afterwards gets a zeroed ring of size/16 entries", () => {
    expect(op("vcpu")).toBe("ok");
    const vcpu = r.currentVcpu!;
    expect(vcpu.dirtyRing.size).toBe(256);
    const ring = new Uint8Array(kvm.core.memory.buffer, kvm.core.vcpuDirtyRing(vcpu.fd), 4096);
    expect(ring.every((b) => b === 0)).toBe(true);
    expect(vcpu.dirtyRing.harvest()).toEqual([]);
    const v1 = vm().createVcpu(1);
    expect(v1.dirtyRing.size).toBe(256);
  });
});

describe("the bitmap ioctls with a ring (kvm_vm_ioctl_get_dirty_log, kvm_vm_ioctl_clear_dirty_log)", () => {
  it("GET and CLEAR are ENXIO, checked before the slot id and first_page", () => {
    expect(ops("getlog 0", "getlog 1", "getlog 40000", "getlog 32764", "getlog 0x20000")).toEqual(Array(5).fill("ENXIO"));
    expect(ops("clearlog 0 0 64", "clearlog 40000 1 64", "clearlog 0x20000 1 63", "clearlog 9 0 64")).toEqual(Array(4).fill("ENXIO"));
  });
});

describe("KVM_RESET_DIRTY_RINGS (kvm_dirty_ring_reset)", () => {
  it("without a ring it is EINVAL, also with a vCPU; with a ring but no vCPU it resets 0", () => {
    const a = fresh();
    expect(resetRaw(a)).toBe("EINVAL");
    a.createVcpu(0);
    expect(resetRaw(a)).toBe("EINVAL");
    expect(code(() => a.resetDirtyRings())).toBe("EINVAL");
    expect(op("ringreset")).toBe("ok 0"); // the runner's VM: ring, no vCPU yet
    expect(op("vcpu")).toBe("ok");
    expect(op("ringreset")).toBe("ok 0");
  });

  it("the count is the number of harvested entries processed; unharvested entries are left", () => {
    expect(ops("write 0x3000 1", "write 0x4000 1", "write 0x5000 1")).toEqual(["ok", "ok", "ok"]);
    expect(op("ringreset")).toBe("ok 0");                  // nothing harvested yet
    expect(op("ring")).toBe("ring 0:3-5");
    expect(op("write 0x6000 1")).toBe("ok");              // pushed after the harvest
    expect(op("ringreset")).toBe("ok 3");
    expect(op("ringreset")).toBe("ok 0");
    expect(op("ring")).toBe("ring 0:6");
    expect(op("ringreset")).toBe("ok 1");
  });

  it("entries of a deleted slot are still counted (their batch is ignored)", () => {
    expect(op("set 2 1 0x1800000 0x10000 A+0x1800000")).toBe("ok");
    expect(ops("write 0x1801000 1", "write 0x1802000 1", "write 0x3000 1")).toEqual(["ok", "ok", "ok"]);
    expect(op("ring")).toBe("ring 2:1-2,0:3");
    expect(op("set 2 0 0x1800000 0 A+0x1800000")).toBe("ok");
    expect(op("ringreset")).toBe("ok 3");
    // Slot 0's entry was applied: page 3 is logged again.
    expect(op("write 0x3000 2")).toBe("ok");
    expect(op("ring")).toBe("ring 0:3");
  });

  it("entries of a moved slot are counted too", () => {
    expect(op("write 0x3000 1")).toBe("ok");
    expect(op("ring")).toBe("ring 0:3");
    expect(op("set 0 1 0x2000000 0x1000000 A+0")).toBe("ok");
    expect(op("ringreset")).toBe("ok 1");
  });

  it("a reused slot id after delete gets the reset applied at the same offset", () => {
    expect(op("set 2 1 0x1800000 0x10000 A+0x1800000")).toBe("ok");
    expect(op("write 0x1803000 1")).toBe("ok");
    expect(op("ring")).toBe("ring 2:3");                  // entry E1 = 2:3, harvested
    expect(op("set 2 0 0x1800000 0 A+0x1800000")).toBe("ok");
    expect(op("set 2 1 0x1c00000 0x10000 A+0x1c00000")).toBe("ok");
    expect(op("write 0x1c03000 1")).toBe("ok");           // E2 = 2:3 of the new slot, not harvested
    expect(op("write 0x1c03008 1")).toBe("ok");           // same epoch: nothing
    expect(op("ringreset")).toBe("ok 1");                 // E1 re-protects page 3 of the *new* slot 2
    expect(op("write 0x1c03010 1")).toBe("ok");           // so this store is logged again
    expect(op("ring")).toBe("ring 2:3,2:3");
  });

  it("after a MOVE the reset applies to the moved slot at the same offset", () => {
    expect(op("write 0x3000 1")).toBe("ok");
    expect(op("ring")).toBe("ring 0:3");                  // E1, harvested
    expect(op("set 0 1 0x2000000 0x1000000 A+0")).toBe("ok");
    expect(op("write 0x2003000 1")).toBe("ok");           // E2: the move dropped the mappings
    expect(op("write 0x2003008 1")).toBe("ok");           // same epoch
    expect(op("ringreset")).toBe("ok 1");                 // E1 re-protects offset 3 of the moved slot
    expect(op("write 0x2003010 1")).toBe("ok");
    expect(op("ring")).toBe("ring 0:3,0:3");
  });

  it("a reused slot id too small for the offset: the batch is ignored, the entry still counted", () => {
    expect(op("set 2 1 0x1800000 0x10000 A+0x1800000")).toBe("ok");
    expect(op("write 0x180a000 1")).toBe("ok");
    expect(op("ring")).toBe("ring 2:10");
    expect(op("set 2 0 0x1800000 0 A+0x1800000")).toBe("ok");
    expect(op("set 2 1 0x1c00000 0x4000 A+0x1c00000")).toBe("ok"); // 4 pages
    expect(op("ringreset")).toBe("ok 1");
    expect(op("write 0x1c03000 1")).toBe("ok");
    expect(op("ring")).toBe("ring 2:3");
  });

  it("every harvested entry's page is re-armed, whatever the batching (other slots, backwards, far apart)", () => {
    expect(op("set 2 1 0x1800000 0x100000 A+0x1800000")).toBe("ok");
    const pages = [0x10, 0x0b, 0x14, 0x4f, 0x0a, 0x200, 0x1c0, 0x201];
    const writes = [...pages.map((p) => `write 0x${(p * 0x1000).toString(16)} 1`), "write 0x1805000 1", "write 0x11000 1"];
    expect(ops(...writes)).toEqual(Array(writes.length).fill("ok"));
    const first = r.currentVcpu!.dirtyRing.harvest();
    const want = [...pages.map((p) => ({ slot: 0, offset: BigInt(p) })), { slot: 2, offset: 5n }, { slot: 0, offset: 0x11n }];
    expect(first).toEqual(want);
    expect(op("ringreset")).toBe(`ok ${want.length}`);
    expect(ops(...writes.map((w) => w.replace(/ 1$/, " 2")))).toEqual(Array(writes.length).fill("ok"));
    expect(r.currentVcpu!.dirtyRing.harvest()).toEqual(want);
  });

  it("only the RESET bit is examined, and processing stops at the first entry without it (no skipping)", () => {
    expect(ops("write 0x3000 1", "write 0x4000 1", "write 0x5000 1")).toEqual(["ok", "ok", "ok"]);
    const vcpu = r.currentVcpu!;
    const ringAt = kvm.core.vcpuDirtyRing(vcpu.fd);
    const dv = () => new DataView(kvm.core.memory.buffer, ringAt, 4096);
    const entry = (i: number) => [dv().getUint32(16 * i, true), dv().getUint32(16 * i + 4, true), dv().getBigUint64(16 * i + 8, true)];
    expect([entry(0), entry(1), entry(2), entry(3)]).toEqual([[1, 0, 3n], [1, 0, 4n], [1, 0, 5n], [0, 0, 0n]]);
    dv().setUint32(0, 2, true);      // RESET without DIRTY: still processed
    dv().setUint32(32, 3, true);     // entry 2 marked, entry 1 not: processing stops at entry 1
    expect(op("ringreset")).toBe("ok 1");
    expect(entry(0)[0]).toBe(0);
    expect([entry(1)[0], entry(2)[0]]).toEqual([1, 3]);
    expect(op("write 0x3000 2")).toBe("ok");   // page 3 re-armed: a new entry at index 3
    expect(op("write 0x5000 2")).toBe("ok");   // page 5 not reset yet: nothing
    expect(entry(3)).toEqual([1, 0, 3n]);
    expect(entry(4)[0]).toBe(0);
    dv().setUint32(16, 3, true);
    expect(op("ringreset")).toBe("ok 2");      // entries 1 and 2; entry 3 is not marked
    expect([entry(1)[0], entry(2)[0], entry(3)[0]]).toEqual([0, 0, 1]);
  });

  it("vm.resetDirtyRings returns the count; vm.dirtyPages coalesces harvested entries of one slot", () => {
    expect(ops("write 0x5000 1", "write 0x3000 1", "write 0x4000 1", "write 0x9000 1")).toEqual(Array(4).fill("ok"));
    expect(vm().dirtyPages(0)).toEqual([{ gpa: 0x3000n, length: 0x3000n }, { gpa: 0x9000n, length: 0x1000n }]);
    expect(vm().resetDirtyRings()).toBe(4);
  });
});

describe("pushing entries (kvm_dirty_ring_push, one entry per page per protection epoch)", () => {
  it("entries appear in ring order with slot-relative offsets", () => {
    expect(op("set 5 1 0x1800000 0x100000 A+0x1800000")).toBe("ok");
    expect(ops("write 0x9000 1", "write 0x2000 1", "write 0x1001000 1", "write 0x1807000 1", "write 0x5000 1",
      "write 0x1800000 1")).toEqual(Array(6).fill("ok"));
    expect(op("ring")).toBe("ring 0:9,0:2,5:7,0:5,5:0");
    expect(op("ring")).toBe("ring none");
  });

  it("the slot field is (as_id << 16) | id and the offset is gfn - base_gfn", () => {
    expect(op("set 32763 1 0x1840000 0x10000 A+0x1800000")).toBe("ok");
    expect(op("set 700 1 0x1a00000 0x10000 A+0x1a00000")).toBe("ok");
    expect(ops("write 0x184f000 1", "write 0x1a00000 1", "write 0xfff000 1")).toEqual(["ok", "ok", "ok"]);
    expect(r.currentVcpu!.dirtyRing.harvest()).toEqual([
      { slot: 32763, offset: 15n }, { slot: 700, offset: 0n }, { slot: 0, offset: 4095n }]);
    // The raw entries: flags DIRTY|RESET (harvested), slot, offset.
    const p = kvm.core.vcpuDirtyRing(r.currentVcpu!.fd);
    const dv = new DataView(kvm.core.memory.buffer, p, 48);
    expect([dv.getUint32(0, true), dv.getUint32(4, true), dv.getBigUint64(8, true)]).toEqual([3, 32763, 15n]);
    expect([dv.getUint32(16, true), dv.getUint32(20, true), dv.getBigUint64(24, true)]).toEqual([3, 700, 0n]);
  });

  it("several stores to one page within an epoch push one entry", () => {
    expect(ops("write 0x3000 1", "write 0x3008 1", "write 0x3ffc 7", "write 0x3000 0x1122334455667788 8", "write 0x3001 1 2"))
      .toEqual(Array(5).fill("ok"));
    expect(op("ring")).toBe("ring 0:3");
    expect(op("write 0x3000 9")).toBe("ok");               // harvested but not reset: still the same epoch
    expect(op("ring")).toBe("ring none");
  });

  it("a store crossing pages pushes one entry per page, lower page first", () => {
    expect(op("write 0x6ffe 0x1234")).toBe("ok");
    expect(op("write 0x6ffc 0x11223344 4")).toBe("ok");
    expect(op("write 0x8fff 0x1234 2")).toBe("ok");
    expect(op("ring")).toBe("ring 0:6-9"); // 6, 7, 8, 9 in this order
  });

  it("a new epoch after reset: the page is logged again on its next write", () => {
    expect(op("write 0x3000 1")).toBe("ok");
    expect(op("ring")).toBe("ring 0:3");
    expect(op("write 0x3000 2")).toBe("ok");
    expect(op("ring")).toBe("ring none");
    expect(op("ringreset")).toBe("ok 1");
    expect(op("ring")).toBe("ring none");
    expect(op("write 0x3004 3")).toBe("ok");
    expect(op("ring")).toBe("ring 0:3");
  });

  it("a reset without a harvest leaves the page in its epoch", () => {
    expect(op("write 0x3000 1")).toBe("ok");
    expect(op("ringreset")).toBe("ok 0");
    expect(op("write 0x3000 2")).toBe("ok");
    expect(op("ring")).toBe("ring 0:3");
  });

  it("a MOVE ends the epoch (mappings dropped); logging off pushes nothing", () => {
    expect(op("write 0x3000 1")).toBe("ok");
    expect(op("ring")).toBe("ring 0:3");
    expect(op("set 0 1 0x2000000 0x1000000 A+0")).toBe("ok");
    expect(op("write 0x2003000 1")).toBe("ok");
    expect(op("ring")).toBe("ring 0:3");
    expect(op("set 0 0 0x2000000 0x1000000 A+0")).toBe("ok");
    expect(op("write 0x2004000 1")).toBe("ok");
    expect(op("ring")).toBe("ring none");
    expect(op("set 0 1 0x2000000 0x1000000 A+0")).toBe("ok"); // on again: write-protected
    expect(op("write 0x2004000 2")).toBe("ok");
    expect(op("ring")).toBe("ring 0:4");
  });

  it("with INITIALLY_SET a flags-only enable does not write-protect: pages writable before push nothing", () => {
    expect(ops("write 0x1001000 1", "write 0x1002000 1")).toEqual(["ok", "ok"]); // slot 1, unlogged: writable
    expect(op("cap manual_protect initially_set")).toBe("ok");
    expect(op("set 1 1 0x1000000 0x100000 A+0x1000000")).toBe("ok");
    expect(ops("write 0x1001000 2", "write 0x1003000 2")).toEqual(["ok", "ok"]);
    expect(op("ring")).toBe("ring 1:3");                  // page 1 stayed writable; page 3 faulted
    expect(op("cap manual_protect 0")).toBe("ok");
    expect(op("set 1 0 0x1000000 0x100000 A+0x1000000")).toBe("ok");
    expect(op("set 1 1 0x1000000 0x100000 A+0x1000000")).toBe("ok"); // without it: write-protected
    expect(ops("write 0x1001000 3", "write 0x1002000 3")).toEqual(["ok", "ok"]);
    expect(op("ring")).toBe("ring 1:1-2");
  });

  it("stores to unlogged slots and loads push nothing", () => {
    expect(ops("write 0x1001000 1", "read 0x7000", "read 0x1002000")).toEqual(["ok", "ok 0x0", "ok 0x0"]);
    expect(op("ring")).toBe("ring none");
  });

  it("writes without a running vCPU (vm.writeGuest) are not logged in ring mode", () => {
    expect(op("vcpu")).toBe("ok");
    vm().writeGuest(0x3000, new Uint8Array([1, 2, 3]));
    expect(op("ring")).toBe("ring none");
    expect(op("peek A+0x3000")).toBe("ok 0x30201");
    expect(op("write 0x3000 1")).toBe("ok");
    expect(op("ring")).toBe("ring 0:3");
  });
});

// The kernel has one spte per gfn for the whole VM; make_spte logs the page
// (mark_page_dirty_in_slot) only when it makes that spte writable, and only
// write protection (reset, logging turned on, write tracking) or a zap (MMU
// notifier, DELETE / MOVE, zap-all) takes write access away again. The vCPU's
// own tables here are caches of it, so losing an entry must not log twice.
describe("one spte per gfn for the VM: a page is logged when its spte becomes writable, not when a vCPU refills it", () => {
  const T0 = A.REG.t0, T1 = A.REG.t1;
  const CODE = 0x1000000n; // slot 1, unlogged

  /** Runs words at CODE on a vCPU until its ecall (a7 = an EID the kernel leaves to userspace). */
  function runGuest(vcpu: ReturnType<Vm["createVcpu"]>, words: number[]): void {
    const b = new Uint8Array(words.length * 4);
    words.forEach((w, i) => new DataView(b.buffer).setUint32(i * 4, w, true));
    vm().writeGuest(CODE, b);
    vcpu.pc = CODE;
    vcpu.setReg(17, 0x52554e52n);
    expect(vcpu.run().reason).toBe(KVM_EXIT.RISCV_SBI);
  }
  const storeTo = (page: number) => [A.lui(T0, page), A.sw(T1, T0, 0)];

  it("a store whose table entry another page took in between is not logged again", () => {
    // Page 3 and page 0x1003 (slot 1) share an entry of the vCPU's direct-mapped table.
    expect(ops("write 0x3000 1", "write 0x1003000 1", "write 0x3008 2")).toEqual(["ok", "ok", "ok"]);
    expect(r.currentVcpu!.dirtyRing.harvest()).toEqual([{ slot: 0, offset: 3n }]);
    // Harvested, not reset: still writable, however often the entry is taken.
    expect(ops("write 0x1003000 2", "write 0x3000 3", "write 0x1003000 3", "write 0x3000 4")).toEqual(Array(4).fill("ok"));
    expect(op("ring")).toBe("ring none");
    expect(op("ringreset")).toBe("ok 1");
    expect(ops("write 0x1003000 4", "write 0x3000 5")).toEqual(["ok", "ok"]);
    expect(op("ring")).toBe("ring 0:3");
  });

  it("sfence.vma flushes the guest's translations, not the spte: the next store is not logged again", () => {
    expect(op("vcpu")).toBe("ok");
    runGuest(r.currentVcpu!, [...storeTo(3), A.sfence_vma(), A.sw(T1, T0, 8), A.ecall()]);
    expect(r.currentVcpu!.dirtyRing.harvest()).toEqual([{ slot: 0, offset: 3n }]);
  });

  it("a page another vCPU made writable is logged once, on that vCPU's ring", () => {
    expect(op("vcpu")).toBe("ok");
    const other = vm().createVcpu(1);
    runGuest(r.currentVcpu!, [...storeTo(5), A.ecall()]);
    runGuest(other, [...storeTo(5), ...storeTo(6), A.ecall()]);
    runGuest(r.currentVcpu!, [...storeTo(6), A.ecall()]);
    expect(r.currentVcpu!.dirtyRing.harvest()).toEqual([{ slot: 0, offset: 5n }]);
    expect(other.dirtyRing.harvest()).toEqual([{ slot: 0, offset: 6n }]);
    // The reset re-protects the VM's spte: the next store, from either vCPU, logs again.
    expect(op("ringreset")).toBe("ok 2");
    runGuest(other, [...storeTo(5), A.ecall()]);
    expect(other.dirtyRing.harvest()).toEqual([{ slot: 0, offset: 5n }]);
  });

  it("an MMU-notifier invalidation of the page's backing zaps its spte: the next store is logged again", () => {
    expect(op("write 0x4000 1")).toBe("ok");
    expect(op("ring")).toBe("ring 0:4");
    const hva = vm().memslots().find((m) => m.id === 0)!.userspaceAddr + 0x4000n;
    kvm.memory.mprotect(hva, 0x1000n, "r");
    kvm.memory.mprotect(hva, 0x1000n, "rw");
    expect(op("write 0x4000 2")).toBe("ok");
    expect(op("ring")).toBe("ring 0:4");
    // A range that does not cover the page leaves it writable.
    kvm.memory.mprotect(hva + 0x1000n, 0x1000n, "r");
    expect(op("write 0x4000 3")).toBe("ok");
    expect(op("ring")).toBe("ring none");
  });

  it("write tracking takes write access away: each tracked store is emulated and logged, then the first store after is", () => {
    const untrack = vm().pageTrack.register({ trackWrite: () => {}, trackRemoveRegion: () => {} });
    expect(ops("write 0x7000 1", "ring")).toEqual(["ok", "ring 0:7"]);
    vm().pageTrack.addWriteTracking(7);
    expect(ops("write 0x7000 2", "write 0x7008 3")).toEqual(["ok", "ok"]);
    expect(r.currentVcpu!.dirtyRing.harvest()).toEqual([{ slot: 0, offset: 7n }, { slot: 0, offset: 7n }]);
    vm().pageTrack.removeWriteTracking(7);
    expect(ops("write 0x7000 4", "write 0x7008 5", "ring")).toEqual(["ok", "ok", "ring 0:7"]);
    untrack();
  });

  it("deleting another slot zaps every spte with the SLOT_ZAP_ALL quirk, only that slot's without it", () => {
    expect(ops("set 5 0 0x1800000 0x100000 A+0x1800000", "write 0x4000 1", "ring")).toEqual(["ok", "ok", "ring 0:4"]);
    expect(op("set 5 0 0x1800000 0 A+0x1800000")).toBe("ok"); // DELETE: zap-all
    expect(ops("write 0x4000 2", "ring")).toEqual(["ok", "ring 0:4"]);
    expect(op("cap 213 0x80")).toBe("ok");                    // KVM_CAP_DISABLE_QUIRKS2: SLOT_ZAP_ALL
    expect(ops("set 5 0 0x1800000 0x100000 A+0x1800000", "set 5 0 0x1800000 0 A+0x1800000")).toEqual(["ok", "ok"]);
    expect(ops("write 0x4000 3", "ring")).toEqual(["ok", "ring none"]);
  });
});

describe("soft-full (kvm_dirty_ring_soft_full; 4096 bytes = 256 entries, 64 reserved)", () => {
  it("the store that pushes the 192nd entry exits with dirty_ring_full and its memory is unchanged", () => {
    expect(writePages(0, 191)).toEqual(Array(191).fill("ok"));
    expect(op("poke A+0xbf000 0xabcd")).toBe("ok");
    expect(op("write 0xbf000 0x1234")).toBe("dirty_ring_full"); // page 191: the 192nd entry
    expect(op("peek A+0xbf000")).toBe("ok 0xabcd");
    const got = r.currentVcpu!.dirtyRing.harvest();
    expect(got.length).toBe(192);
    expect(got[191]).toEqual({ slot: 0, offset: 191n });
    expect(got.map((e) => Number(e.offset))).toEqual([...Array(192).keys()]);
  });

  it("KVM_RUN returns 0 with exit reason KVM_EXIT_DIRTY_RING_FULL (31), again on every re-run", () => {
    expect(writePages(0, 191)).toEqual(Array(191).fill("ok"));
    expect(op("write 0xbf000 1")).toBe("dirty_ring_full");
    const vcpu = r.currentVcpu!;
    for (let i = 0; i < 3; i++) {
      const exit = vcpu.run();
      expect([exit.reason, exit.errno]).toEqual([KVM_EXIT.DIRTY_RING_FULL, 0]);
    }
  });

  it("every later access exits the same way until harvest and reset; then the guest runs again", () => {
    expect(writePages(0, 191)).toEqual(Array(191).fill("ok"));
    expect(op("write 0xbf000 0x77")).toBe("dirty_ring_full");
    // A page already writable, an unlogged slot, a load, MMIO: none reach the guest.
    expect(ops("write 0x1000 5", "write 0x1001000 5", "read 0x2000", "write 0x1800000 5"))
      .toEqual(Array(4).fill("dirty_ring_full"));
    expect(op("peek A+0x1000")).toBe("ok 0x2");
    expect(op("peek A+0x1001000")).toBe("ok 0x0");
    expect(op("ringreset")).toBe("ok 0");                  // nothing harvested: still full
    expect(op("write 0x1000 5")).toBe("dirty_ring_full");
    expect(op("ring")).toMatch(/^ring 0:0-191$/);
    expect(op("write 0x1000 5")).toBe("dirty_ring_full"); // harvested but not reset: still full
    expect(op("ringreset")).toBe("ok 192");
    expect(op("write 0xbf000 0x77")).toBe("ok");          // the abandoned store, retried
    expect(op("peek A+0xbf000")).toBe("ok 0x77");
    expect(op("write 0x1000 6")).toBe("ok");
    expect(op("ring")).toBe("ring 0:191,0:1");
  });

  it("the limit counts entries, not pages: a page re-dirtied in a later epoch counts again", () => {
    expect(writePages(0, 100)).toEqual(Array(100).fill("ok"));
    expect(op("ring")).toBe("ring 0:0-99");
    // Harvested but not reset: the 100 entries still count against the limit.
    expect(writePages(100, 91)).toEqual(Array(91).fill("ok"));
    expect(op("write 0xbf000 1")).toBe("dirty_ring_full");
    expect(op("ring")).toBe("ring 0:100-191");
    expect(op("ringreset")).toBe("ok 192");
    expect(writePages(0, 191)).toEqual(Array(191).fill("ok")); // every page re-armed: 191 new entries
    expect(op("write 0x200000 1")).toBe("dirty_ring_full");
  });

  it("a larger ring has a larger limit: 8192 bytes = 512 entries, soft limit 448", () => {
    expect(ops("vm", "cap dirty_ring 8192", "set 0 1 0x0 0x1000000 A+0")).toEqual(["ok", "ok", "ok"]);
    expect(writePages(0, 447)).toEqual(Array(447).fill("ok"));
    expect(op("write 0x1bf000 1")).toBe("dirty_ring_full");
    expect(r.currentVcpu!.dirtyRing.harvest().length).toBe(448);
    expect(op("ringreset")).toBe("ok 448");
    expect(op("write 0x1bf000 1")).toBe("ok");
  });

  it("the ring index wraps around after several full cycles", () => {
    for (let round = 0; round < 3; round++) {
      expect(writePages(round * 200, 191)).toEqual(Array(191).fill("ok"));
      expect(op(`write 0x${((round * 200 + 191) * 0x1000).toString(16)} 1`)).toBe("dirty_ring_full");
      const got = r.currentVcpu!.dirtyRing.harvest();
      expect(got.map((e) => Number(e.offset))).toEqual([...Array(192).keys()].map((i) => round * 200 + i));
      expect(op("ringreset")).toBe("ok 192");
    }
  });
});
