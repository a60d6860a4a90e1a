// gfn -> pfn caches (virt/kvm/pfncache.c) and their two device users.
import { describe, it, expect, beforeEach } from "vitest";
import { Kvm, Vm, KvmError, CHECK, GfnToPfnCache, PvClock, RunstateArea, KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS as IN_PROGRESS } from "../src/index.js";
import { ScriptRunner } from "../src/conformance/index.js";
import { openKvm, code } from "./helpers.js";

let kvm: Kvm, vm: Vm, A: bigint, gpc: GfnToPfnCache;
const set = (slot: number, gpa: bigint | number, size: bigint | number, hva = A, flags = 0) =>
  vm.setUserMemoryRegion({ slot, flags, guestPhysAddr: gpa, memorySize: size, userspaceAddr: hva });

beforeEach(async () => {
  kvm = await openKvm();
  vm = kvm.createVm();
  A = kvm.memory.mmap(0x100000);
  set(0, 0, 0x10000);
  gpc = vm.createPfnCache();
});

describe("activate / check / refresh / deactivate", () => {
  it("activate refuses INVALID_GPA and a length that leaves the page, before any change", () => {
    expect(code(() => gpc.activate((1n << 64n) - 1n, 8))).toBe("EINVAL");
    expect(code(() => gpc.activate(0x1ff8, 9))).toBe("EINVAL");
    expect([gpc.active, gpc.valid]).toEqual([false, false]);
    gpc.activate(0x1ff8, 8);
    expect([gpc.active, gpc.valid, gpc.check(8), gpc.check(9)]).toEqual([true, true, true, false]);
  });

  it("writes go to the guest page; any memslot change in AS 0 makes check fail until refresh", () => {
    gpc.activate(0x2010, 4);
    gpc.write(new Uint8Array([1, 2, 3, 4]));
    expect(Array.from(vm.readGuest(0x2010, 4))).toEqual([1, 2, 3, 4]);
    set(5, 0x80000, 0x1000); // unrelated CREATE
    expect(gpc.check(4)).toBe(false);
    gpc.refresh(4);
    expect(gpc.check(4)).toBe(true);
  });

  it("READONLY slots cannot be cached (write lookup): EFAULT, not valid", () => {
    set(1, 0x20000, 0x1000, A + 0x20000n, 2);
    expect(code(() => gpc.activate(0x20000, 8))).toBe("EFAULT");
    expect([gpc.active, gpc.valid]).toEqual([true, false]);
  });

  it("after a MOVE the same gpa is re-resolved in the new layout (EFAULT when nothing covers it)", () => {
    kvm.memory.poke(A + 0x3000n, 0x77n);
    gpc.activate(0x3000, 4);
    set(0, 0x100000, 0x10000);
    expect(gpc.check(4)).toBe(false);
    expect(code(() => gpc.refresh(4))).toBe("EFAULT");
    set(0, 0, 0x10000);
    gpc.refresh(4);
    expect(gpc.read(4)[0]).toBe(0x77);
  });

  it("an MMU-notifier invalidation of the hva clears valid; a refresh after munmap is EFAULT", () => {
    gpc.activate(0x4000, 8);
    kvm.memory.mprotect(A + 0x5000n, 0x1000, "r"); // elsewhere: untouched
    expect(gpc.valid).toBe(true);
    kvm.memory.munmap(A + 0x4000n, 0x1000);
    expect([gpc.valid, gpc.check(8)]).toEqual([false, false]);
    expect(code(() => gpc.refresh(8))).toBe("EFAULT");
  });

  it("a host page migration invalidates it; refresh finds the new frame with the same contents", () => {
    gpc.activate(0x6000, 8);
    gpc.write(new Uint8Array([9, 8, 7]));
    expect(kvm.core.migratePages(A + 0x6000n, 0x1000n)).toBe(1);
    expect(gpc.valid).toBe(false);
    gpc.refresh(8);
    expect(Array.from(gpc.read(3))).toEqual([9, 8, 7]);
    expect(kvm.core.debugCheckInvariants(vm.fd)).toBeTruthy();
  });

  it("an HVA cache is immune to memslot changes but not to invalidations", () => {
    gpc.activateHva(A + 0x7000n, 16);
    set(0, 0, 0);
    expect(gpc.check(16)).toBe(true);
    kvm.memory.munmap(A + 0x7000n, 0x1000);
    expect(gpc.check(16)).toBe(false);
    expect(code(() => gpc.activateHva(0x7ffffffff000n, 16))).toBe("EINVAL");
  });

  it("deactivate: check false, refresh EINVAL; re-activation works", () => {
    gpc.activate(0x1000, 8);
    gpc.deactivate();
    expect(gpc.check(8)).toBe(false);
    expect(code(() => gpc.refresh(8))).toBe("EINVAL");
    gpc.activate(0x1000, 8);
    expect(gpc.check(8)).toBe(true);
  });

  it("a refresh during an update records the in-progress generation: stale once it settles", () => {
    gpc.activate(0x1000, 8);
    let during = 0n;
    kvm.setReaderHook((v, point) => {
      if (point === "published" && (v.generation() & IN_PROGRESS) && during === 0n) {
        gpc.refresh(8);
        during = v.generation();
        expect(gpc.check(8)).toBe(true);
      }
    });
    set(3, 0x90000, 0x1000);
    kvm.setReaderHook(null);
    expect(during & IN_PROGRESS).toBe(IN_PROGRESS);
    expect(gpc.check(8)).toBe(false);
  });

  it("hva_to_pfn_retry: an invalidation that runs while the refresh resolves the page makes it resolve again, so it maps the page the guest sees", () => {
    kvm.memory.poke(A + 0x6000n, 0x55n);
    // At the window where another CPU's invalidation would race (the page resolved,
    // gpc->lock not yet re-taken) the page migrates once: the first frame is stale.
    let resolved = 0;
    kvm.setReaderHook((_v, point) => {
      if (point === "gpc-resolved" && ++resolved === 1) expect(kvm.core.migratePages(A + 0x6000n, 0x1000n)).toBe(1);
    });
    gpc.activate(0x6000, 8);
    kvm.setReaderHook(null);
    expect(resolved).toBe(2);
    expect([gpc.valid, gpc.read(1)[0]]).toEqual([true, 0x55]);
    gpc.write(new Uint8Array([0x66]));
    expect(vm.readGuest(0x6000, 1)[0]).toBe(0x66);
  });

  it("a refresh from inside an invalidation this thread is running fails with EAGAIN instead of waiting for it to end", () => {
    gpc.activate(0x6000, 8);
    let inside: unknown = null;
    kvm.setReaderHook((_v, point) => {
      if (point !== "mn-invalidating" || inside !== null) return;
      try { gpc.refresh(8); inside = "refreshed"; } catch (e) { inside = e; }
    });
    expect(kvm.core.migratePages(A + 0x6000n, 0x1000n)).toBe(1);
    kvm.setReaderHook(null);
    expect(inside).toBeInstanceOf(KvmError);
    expect([(inside as KvmError).code, (inside as KvmError).check]).toEqual(["EAGAIN", CHECK.GPC_OWN_INVALIDATION]);
    // Once the invalidation ended, the refresh maps the new frame.
    gpc.refresh(8);
    gpc.write(new Uint8Array([0x77]));
    expect(vm.readGuest(0x6000, 1)[0]).toBe(0x77);
  });

  it("writes through the cache mark the page dirty in a logged slot", () => {
    set(1, 0x40000, 0x10000, A + 0x40000n, 1);
    gpc.activate(0x42000, 8);
    gpc.write(new Uint8Array([1]));
    expect(vm.getDirtyLog(1)[0]).toBe(4);
  });
});

describe("devices on pfn caches", () => {
  async function runner() {
    const rr = new ScriptRunner(kvm);
    for (const l of ["vm", "hostmap A 0x100000", "set 0 0 0x0 0x10000 A+0", "vcpu"]) expect(rr.line(l)).toBe("ok");
    return rr;
  }

  it("pvclock publishes on every KVM_RUN entry with an even version, and survives a MOVE and a delete", async () => {
    const rr = await runner();
    const v = rr.currentVm!;
    const clock = new PvClock(rr.currentVcpu!, 0x5000);
    expect(rr.op(["read", "0x5000"])).toBe(`ok 0x${(2 * clock.published).toString(16)}`);
    const n = clock.published;
    expect(n).toBeGreaterThan(0);
    expect(rr.op(["set", "0", "0", "0x100000", "0x10000", "A+0"])).toBe("ok"); // gpa 0x5000 is MMIO now
    expect(rr.op(["read", "0x105000"])).not.toMatch(/EFAULT/);
    expect(clock.skipped).toBeGreaterThan(0);
    expect(rr.op(["set", "0", "0", "0x0", "0x10000", "A+0"])).toBe("ok");
    expect(rr.op(["read", "0x1000"])).toBe("ok 0x0");
    expect(clock.published).toBeGreaterThan(n);
    const version = Number(v.readGuest(0x5000, 4)[0]);
    expect(version % 2).toBe(0);
    clock.close();
  });

  it("a runstate area across a page boundary is written through two caches, and survives a host munmap", async () => {
    const rr = await runner();
    const v = rr.currentVm!;
    const area = new RunstateArea(rr.currentVcpu!, 0x2ff0n);
    expect(area.split).toBe(true);
    expect(rr.op(["read", "0x1000"])).toBe("ok 0x0");
    const entries = () => new DataView(v.readGuest(0x2ff0 + 16, 8).buffer).getBigUint64(0, true);
    expect(entries()).toBe(BigInt(area.published));
    kvm.memory.munmap(0x100000000000n + (1n << 30n) + 0x3000n, 0x1000); // the second page's host memory
    rr.op(["read", "0x1000"]);
    expect(area.skipped).toBeGreaterThan(0);
    kvm.memory.mmap(0x1000, { addr: 0x100000000000n + (1n << 30n) + 0x3000n });
    const before = area.published;
    rr.op(["read", "0x1000"]);
    expect(area.published).toBe(before + 1);
    expect(entries()).toBe(BigInt(area.published));
    area.close();
  });
});
