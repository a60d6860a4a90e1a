// The VMM address space (src/host-memory.ts, assembly/hostmm): mmap / munmap /
// mprotect semantics, demand paging, and the MMU-notifier events they send.
import { describe, it, expect, beforeEach } from "vitest";
import { Kvm, PROT_NONE, PROT_READ } from "../src/index.js";
import { openKvm, code, GiB, MiB } from "./helpers.js";

let kvm: Kvm;
beforeEach(async () => { kvm = await openKvm(); });

describe("mmap", () => {
  it("returns page-aligned hvas in the user range, non-overlapping", () => {
    const a = kvm.memory.mmap(0x1234);
    const b = kvm.memory.mmap(0x1000);
    expect(a % 4096n).toBe(0n);
    expect(a + 0x2000n <= 0x7ffffffff000n).toBe(true);
    expect(b + 0x1000n <= a || a + 0x2000n <= b).toBe(true);
    expect(kvm.memory.mappings().length).toBe(2);
  });

  it("a 16 GiB mapping costs no frames until touched; a write faults in exactly one frame", () => {
    const before = kvm.memory.framesInUse;
    const a = kvm.memory.mmap(16n * GiB);
    expect(kvm.memory.framesInUse).toBe(before);
    expect(kvm.memory.peek(a + 8n * GiB, 8)).toBe(0n); // reads map the zero page
    expect(kvm.memory.framesInUse).toBe(before);
    expect(kvm.memory.resident(a + 8n * GiB)).toBe(false);
    kvm.memory.poke(a + 8n * GiB + 16n, 0xabcdn, 2);
    expect(kvm.memory.framesInUse).toBe(before + 1);
    expect(kvm.memory.resident(a + 8n * GiB)).toBe(true);
    expect(kvm.memory.peek(a + 8n * GiB + 16n, 2)).toBe(0xabcdn);
  });

  it("MAP_FIXED replaces what was there; bad arguments are EINVAL / ENOMEM", () => {
    const a = kvm.memory.mmap(0x4000);
    kvm.memory.poke(a + 0x1000n, 7n);
    kvm.memory.mmap(0x1000, { addr: a + 0x1000n });
    expect(kvm.memory.peek(a + 0x1000n)).toBe(0n);
    expect(code(() => kvm.memory.mmap(0))).toBe("EINVAL");
    expect(code(() => kvm.memory.mmap(0x1000, { addr: a + 1n }))).toBe("EINVAL");
    expect(code(() => kvm.memory.mmap(0x2000, { addr: 0x7fffffffe000n }))).toBe("ENOMEM");
    expect(code(() => kvm.memory.mmap(1n << 48n))).toBe("ENOMEM");
    expect(() => kvm.memory.mmap(-1)).toThrow(RangeError);
    expect(() => kvm.memory.mmap(1n << 64n)).toThrow(RangeError);
  });

  it("readInto reads into the caller's buffer (a view, past the 64 KiB I/O buffer) and returns it; an unmapped page is EFAULT", () => {
    const a = kvm.memory.mmap(0x30000);
    const bytes = Uint8Array.from({ length: 0x30000 }, (_, i) => (i * 131 + (i >> 12)) & 0xff);
    kvm.memory.write(a, bytes);
    const buf = new Uint8Array(0x30000 + 24).fill(0xee);
    const view = buf.subarray(8, 8 + 0x20001);
    expect(kvm.memory.readInto(a + 0xfffn, view)).toBe(view);
    expect(view).toEqual(bytes.subarray(0xfff, 0xfff + 0x20001));
    expect(buf.subarray(0, 8).every((b) => b === 0xee) && buf.subarray(8 + 0x20001).every((b) => b === 0xee)).toBe(true);
    expect(kvm.memory.read(a + 5n, 9)).toEqual(bytes.subarray(5, 14));
    expect(code(() => kvm.memory.readInto(a + 0x2f000n, new Uint8Array(0x2000)))).toBe("EFAULT");
  });

  it("touching an unmapped hva is EFAULT", () => {
    expect(code(() => kvm.memory.peek(0x1000))).toBe("EFAULT");
    expect(code(() => kvm.memory.poke(0x7ffffffff000n, 1))).toBe("EFAULT");
  });
});

describe("munmap / mprotect", () => {
  it("munmap of a sub-range leaves the rest mapped and frees its frames", () => {
    const a = kvm.memory.mmap(0x10000);
    for (let i = 0n; i < 16n; i++) kvm.memory.poke(a + i * 0x1000n, i + 1n);
    const frames = kvm.memory.framesInUse;
    kvm.memory.munmap(a + 0x4000n, 0x2000);
    expect(kvm.memory.framesInUse).toBe(frames - 2);
    expect(code(() => kvm.memory.peek(a + 0x4000n))).toBe("EFAULT");
    expect(code(() => kvm.memory.peek(a + 0x5ffcn))).toBe("EFAULT");
    expect(kvm.memory.peek(a + 0x3000n)).toBe(4n);
    expect(kvm.memory.peek(a + 0x6000n)).toBe(7n);
    expect(kvm.memory.mappings().length).toBe(2);
    expect(code(() => kvm.memory.munmap(a + 1n, 0x1000))).toBe("EINVAL");
    expect(code(() => kvm.memory.munmap(a, 0))).toBe("EINVAL");
    kvm.memory.munmap(a + 0x4000n, 0x2000); // unmapping a hole is fine
  });

  it("mprotect changes a sub-range: read-only refuses writes, PROT_NONE refuses reads, pages survive", () => {
    const a = kvm.memory.mmap(0x4000);
    kvm.memory.poke(a + 0x1000n, 0x55n);
    kvm.memory.mprotect(a + 0x1000n, 0x1000, PROT_READ);
    expect(code(() => kvm.memory.poke(a + 0x1000n, 1))).toBe("EFAULT");
    expect(kvm.memory.peek(a + 0x1000n)).toBe(0x55n);
    kvm.memory.poke(a + 0x2000n, 1n);
    kvm.memory.mprotect(a + 0x1000n, 0x1000, PROT_NONE);
    expect(code(() => kvm.memory.peek(a + 0x1000n))).toBe("EFAULT");
    kvm.memory.mprotect(a + 0x1000n, 0x1000, "rw");
    expect(kvm.memory.peek(a + 0x1000n)).toBe(0x55n);
    expect(kvm.memory.mappings().length).toBe(3);
    expect(code(() => kvm.memory.mprotect(a, 0x8000, "r"))).toBe("ENOMEM"); // partly unmapped
  });
});

describe("MMU-notifier events", () => {
  it("munmap and mprotect invalidate each VM: the sequence count advances and nothing stays in flight", () => {
    const vm = kvm.createVm();
    const a = kvm.memory.mmap(0x10000);
    vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0x100000, memorySize: 0x10000, userspaceAddr: a });
    const seq = vm.debug.stats().mmuInvalidateSeq;
    kvm.memory.mprotect(a, 0x1000, "r");
    kvm.memory.munmap(a + 0x8000n, 0x1000);
    expect(vm.debug.stats().mmuInvalidateSeq).toBe(seq + 2n);
    expect(vm.debug.stats().mnActiveInvalidateCount).toBe(0);
  });

  it("an invalidation reaches exactly the slots whose host range it meets, aliases included", () => {
    const vm = kvm.createVm();
    const a = kvm.memory.mmap(0x100000);
    vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0, memorySize: 0x10000, userspaceAddr: a });
    vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: 0x40000, memorySize: 0x10000, userspaceAddr: a });
    vm.setUserMemoryRegion({ slot: 2, guestPhysAddr: 0x80000, memorySize: 0x10000, userspaceAddr: a + 0x10000n });
    vm.setUserMemoryRegion({ slot: 3, guestPhysAddr: 0xc0000, memorySize: 0x1000, userspaceAddr: a + 0x30000n });
    expect(vm.debug.hvaToSlots(a + 0x8000n, a + 0x9000n).sort()).toEqual([0, 1]);
    expect(vm.debug.hvaToSlots(a + 0xf000n, a + 0x11000n).sort()).toEqual([0, 1, 2]);
    expect(vm.debug.hvaToSlots(a + 0x20000n, a + 0x30000n)).toEqual([]);
    expect(vm.debug.hvaToSlots(a + 0x30000n, a + 0x30001n)).toEqual([3]);
    expect(vm.debug.hvaToSlots(0n, a)).toEqual([]);
  });

  it("readers run between invalidate_range_start and _end, with the invalidation counted", () => {
    const vm = kvm.createVm();
    const a = kvm.memory.mmap(0x4000);
    const seen: number[] = [];
    kvm.setReaderHook((v, point) => { if (point === "mn-invalidating") seen.push(v.debug.stats().mnActiveInvalidateCount); });
    kvm.memory.munmap(a, 0x1000);
    kvm.setReaderHook(null);
    expect(seen).toEqual([1]);
    expect(vm.debug.stats().mnActiveInvalidateCount).toBe(0);
  });

  it("breaking copy-on-write from the zero page is an invalidation of that page", () => {
    const vm = kvm.createVm();
    const a = kvm.memory.mmap(0x4000);
    kvm.memory.peek(a + 0x2000n);
    const seq = vm.debug.stats().mmuInvalidateSeq;
    kvm.memory.poke(a + 0x2000n, 1n);
    expect(vm.debug.stats().mmuInvalidateSeq).toBe(seq + 1n);
    kvm.memory.poke(a + 0x3000n, 1n); // never mapped: no secondary MMU can hold it
    expect(vm.debug.stats().mmuInvalidateSeq).toBe(seq + 1n);
  });
});

describe("instances", () => {
  it("each Kvm instance is its own process: separate address spaces", async () => {
    const other = await openKvm();
    const a = kvm.memory.mmap(MiB);
    kvm.memory.poke(a, 1n);
    expect(code(() => other.memory.peek(a))).toBe("EFAULT");
  });
});
