// Page tracking (arch/x86/kvm/mmu/page_track.c) with an external user, KVMGT-style.
import { describe, it, expect, beforeEach } from "vitest";
import { Kvm, Vm } from "../src/index.js";
import { ScriptRunner } from "../src/conformance/index.js";
import { openKvm, code } from "./helpers.js";
import * as A from "./cpu/asm.js";

let kvm: Kvm, r: ScriptRunner, vm: Vm;
const op = (l: string) => r.line(l);
let writes: [bigint, number[]][];
let removed: [bigint, bigint][];
let unregister: () => void;

beforeEach(async () => {
  kvm = await openKvm();
  r = new ScriptRunner(kvm);
  for (const l of ["vm", "hostmap A 0x100000", "set 0 0 0x0 0x10000 A+0", "set 1 0 0x20000 0x10000 A+0x10000", "vcpu"]) {
    expect(op(l)).toBe("ok");
  }
  vm = r.currentVm!;
  writes = [];
  removed = [];
  unregister = vm.pageTrack.register({
    trackWrite: (gpa, bytes) => writes.push([gpa, Array.from(bytes)]),
    trackRemoveRegion: (base, npages) => removed.push([base, npages]),
  });
});

describe("write tracking", () => {
  it("a gfn without a slot cannot be tracked (EINVAL); counters go up and down per gfn", () => {
    expect(code(() => vm.pageTrack.addWriteTracking(0x15))).toBe("EINVAL");
    expect(code(() => vm.pageTrack.removeWriteTracking(0x15))).toBe("EINVAL");
    vm.pageTrack.addWriteTracking(3);
    vm.pageTrack.addWriteTracking(3);
    expect(vm.pageTrack.count(3)).toBe(2);
    vm.pageTrack.removeWriteTracking(3);
    expect([vm.pageTrack.count(3), vm.pageTrack.count(4)]).toEqual([1, 0]);
  });

  it("removing below zero warns and does nothing", () => {
    const w = kvm.core.statTrackWarnings();
    vm.pageTrack.removeWriteTracking(5);
    expect(vm.pageTrack.count(5)).toBe(0);
    expect(kvm.core.statTrackWarnings()).toBe(w + 1);
  });

  it("a guest write to a tracked gfn is performed, then reported; it is never mapped writable", () => {
    expect(op("write 0x3000 0x11")).toBe("ok"); // writable mapping exists now
    vm.pageTrack.addWriteTracking(3);            // ... and is taken away at once
    expect(op("write 0x3010 0xaabbccdd")).toBe("ok");
    expect(op("write 0x3020 0x7 1")).toBe("ok");
    expect(writes).toEqual([[0x3010n, [0xdd, 0xcc, 0xbb, 0xaa]], [0x3020n, [7]]]);
    expect(op("peek A+0x3010")).toBe("ok 0xaabbccdd");
    expect(op("read 0x3010")).toBe("ok 0xaabbccdd"); // reads are not tracked
    expect(kvm.core.debugCheckInvariants(vm.fd)).toBeTruthy(); // no writable spte for a tracked gfn
    vm.pageTrack.removeWriteTracking(3);
    expect(op("write 0x3030 1")).toBe("ok");
    expect(writes.length).toBe(2);
  });

  it("host-side writes (kvm_write_guest) are not reported", () => {
    vm.pageTrack.addWriteTracking(2);
    vm.writeGuest(0x2000, new Uint8Array([1, 2]));
    expect(writes).toEqual([]);
  });

  it("track_remove_region fires at DELETE commit, never for a failed DELETE, MOVE, FLAGS_ONLY or CREATE", () => {
    vm.debug.injectFault("alloc_invalid_slot", 12);
    expect(op("set 1 0 0 0 0")).toBe("ENOMEM");
    expect(op("set 1 1 0x20000 0x10000 A+0x10000")).toBe("ok"); // FLAGS_ONLY
    expect(op("set 2 0 0x40000 0x1000 A+0x20000")).toBe("ok");   // CREATE
    expect(removed).toEqual([]);
    expect(op("set 1 0 0 0 0")).toBe("ok");
    expect(removed).toEqual([[0x20n, 0x10n]]);
  });

  it("MOVE is refused while a user is registered, after the INVALID phase (generation +2)", () => {
    vm.pageTrack.addWriteTracking(0x21);
    const g = vm.generation();
    expect(op("set 1 0 0x80000 0x10000 A+0x10000")).toBe("EINVAL");
    expect(vm.generation()).toBe(g + 2n);
    expect(vm.memslots().find((s) => s.id === 1)!.baseGfn).toBe(0x20n);
    expect(vm.pageTrack.count(0x21)).toBe(1);
  });

  it("seed scenario: a failed MOVE leaves the tracker's protections and story intact", () => {
    for (const g of [0x22, 0x23]) vm.pageTrack.addWriteTracking(g);
    expect(op("write 0x22000 1")).toBe("ok");
    for (const inject of ["alloc_invalid_slot", "arch_prepare"] as const) {
      vm.debug.injectFault(inject, 12);
      expect(op("set 1 0 0x80000 0x10000 A+0x10000")).not.toBe("ok");
      vm.debug.injectFault("frame", 0, 1 << 30); // disarm whatever did not fire
    }
    expect([vm.pageTrack.count(0x22), vm.pageTrack.count(0x23)]).toEqual([1, 1]);
    expect(op("write 0x23000 2")).toBe("ok");
    expect(op("write 0x22000 3")).toBe("ok");
    expect(writes.map((w) => w[0])).toEqual([0x22000n, 0x23000n, 0x22000n]);
    expect(removed).toEqual([]);
    expect(kvm.core.debugCheckInvariants(vm.fd)).toBeTruthy();
  });

  it("a MOVE after the user left gets fresh, zero counters at the new place", () => {
    vm.pageTrack.addWriteTracking(0x21);
    unregister();
    expect(op("set 1 0 0x80000 0x10000 A+0x10000")).toBe("ok");
    expect(vm.pageTrack.count(0x81)).toBe(0);
  });

  it("an emulated write to a tracked gfn of a logged slot is logged", () => {
    expect(op("set 1 1 0x20000 0x10000 A+0x10000")).toBe("ok");
    vm.pageTrack.addWriteTracking(0x24);
    expect(op("write 0x24000 9")).toBe("ok");
    expect(op("getlog 1")).toBe("dirty 4");
  });

  it("what a notifier changes is seen from the guest's next instruction on (the run stops after the write)", () => {
    // A loop storing to tracked gfn 3; at the 100th report the host rewrites
    // the instruction right after the store (by then, with the default tier
    // settings, the loop runs as a translated region).
    const words = [A.sw(5, 6, 0), A.addi(7, 7, 1), A.addi(8, 8, -1), A.bne(8, 0, -12), A.ecall()];
    vm.writeGuest(0x1000n, new Uint8Array(Uint32Array.from(words, (w) => w >>> 0).buffer));
    vm.pageTrack.addWriteTracking(3);
    let reports = 0;
    unregister();
    unregister = vm.pageTrack.register({
      trackWrite: () => {
        if (++reports === 100) vm.writeGuest(0x1004n, new Uint8Array(Uint32Array.of(A.addi(7, 7, 100) >>> 0).buffer));
      },
    });
    const vcpu = r.currentVcpu!;
    vcpu.setRegs({ pc: 0x1000n, mode: 1n, x: [0n, 0n, 0n, 0n, 0n, 0x55n, 0x3000n, 0n, 200n] });
    let exit = vcpu.run();
    while (exit.name !== "riscv_sbi") {
      expect(exit.name).toBe("intr");
      exit = vcpu.run();
    }
    expect(reports).toBe(200);
    expect(vcpu.getReg(7)).toBe(99n + 101n * 100n);
  });
});
