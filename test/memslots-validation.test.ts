// KVM_SET_USER_MEMORY_REGION{,2}: one test per check of __kvm_set_memory_region,
// in the kernel's order. Checks 2-16 all answer EINVAL, so their relative order
// is asserted through KvmError.check (the core's record of the failing check).
import { describe, it, expect, beforeEach } from "vitest";
import {
  Kvm, Vm, KvmError, KVM_SET_USER_MEMORY_REGION, KVM_SET_USER_MEMORY_REGION2, kvm_userspace_memory_region,
  kvm_userspace_memory_region2, KVM_MEM_LOG_DIRTY_PAGES as LOG, KVM_MEM_READONLY as RO, KVM_MEM_GUEST_MEMFD as GMEM,
  CHECK as C, type MemoryRegion2,
} from "../src/index.js";
import { openKvm } from "./helpers.js";

let kvm: Kvm, vm: Vm, A: bigint;

/** errno name and check code of a typed REGION2 call ("ok" on success). */
function r2(r: Partial<MemoryRegion2> & { slot: number }, v1 = false): [string, number] {
  const req = { guestPhysAddr: 0, memorySize: 0x1000, userspaceAddr: A, ...r };
  try {
    if (v1) vm.setUserMemoryRegion(req);
    else vm.setUserMemoryRegion2(req);
    return ["ok", 0];
  } catch (e) {
    if (!(e instanceof KvmError)) throw e;
    return [e.code, e.check];
  }
}
const r1 = (r: Partial<MemoryRegion2> & { slot: number }) => r2(r, true);
const state = () => JSON.stringify({ s: vm.memslots(), g: vm.generation().toString() }, (_, v) => typeof v === "bigint" ? v.toString() : v);

beforeEach(async () => {
  kvm = await openKvm();
  vm = kvm.createVm();
  A = kvm.memory.mmap(0x100000);
});

describe("__kvm_set_memory_region checks, in order", () => {
  it("check 1: copy_from_user copies exactly 32 (v1) / 160 (v2) bytes; fewer is EFAULT", () => {
    const v1 = kvm_userspace_memory_region.encode({ slot: 0, guest_phys_addr: 0, memory_size: 0x1000, userspace_addr: A });
    const v2 = kvm_userspace_memory_region2.encode({ slot: 0, guest_phys_addr: 0, memory_size: 0x1000, userspace_addr: A, guest_memfd: 0xffffffff });
    expect(vm.ioctl(KVM_SET_USER_MEMORY_REGION, v1.subarray(0, 31))).toBe(-14);
    expect(vm.ioctl(KVM_SET_USER_MEMORY_REGION2, v2.subarray(0, 159))).toBe(-14);
    expect(vm.ioctl(KVM_SET_USER_MEMORY_REGION2, v2.subarray(0, 32))).toBe(-14);
    expect(vm.memslots()).toEqual([]);
    expect(vm.ioctl(KVM_SET_USER_MEMORY_REGION, v1)).toBe(0);
    expect(vm.ioctl(KVM_SET_USER_MEMORY_REGION2, v2)).toBe(0); // identical: no-op
  });

  it("check 1 precedes every other check (a short struct with a bad slot id is EFAULT)", () => {
    const bad = kvm_userspace_memory_region.encode({ slot: 40000, flags: 8, guest_phys_addr: 1, memory_size: 1 });
    expect(vm.ioctl(KVM_SET_USER_MEMORY_REGION, bad.subarray(0, 16))).toBe(-14);
  });

  it("check 2: the v1 ioctl rejects flags beyond LOG_DIRTY_PAGES|READONLY, before the slot id check", () => {
    expect(r1({ slot: 0, flags: GMEM })).toEqual(["EINVAL", C.V1_FLAGS]);
    expect(r1({ slot: 0, flags: 8 })).toEqual(["EINVAL", C.V1_FLAGS]);
    expect(r1({ slot: 32764, flags: 0x80000000 })).toEqual(["EINVAL", C.V1_FLAGS]);
    expect(r2({ slot: 32764, flags: GMEM })).toEqual(["EINVAL", C.USER_SLOT_ID]); // v2: no such check
  });

  it("check 3: (slot & 0xffff) >= 32764 is EINVAL, before the flag checks; 32763 is the last user slot", () => {
    expect(r1({ slot: 32763 })).toEqual(["ok", 0]);
    for (const slot of [32764, 32765, 32766, 32767, 65535, 0xffffffff]) expect(r2({ slot, flags: 8 })[1]).toBe(C.USER_SLOT_ID);
    // Only the low 16 bits count here: address space 2 passes check 3 and fails check 9.
    expect(r1({ slot: 0x20005, guestPhysAddr: 0x60000 })).toEqual(["EINVAL", C.AS_ID]);
  });

  it("check 4: flag validity (check_memory_region_flags) for a default VM", () => {
    expect(r2({ slot: 1, flags: RO | LOG, guestPhysAddr: 0x10000 })).toEqual(["ok", 0]);
    expect(r2({ slot: 2, flags: GMEM | LOG, guestMemfd: -1 })).toEqual(["EINVAL", C.FLAGS]);
    expect(r2({ slot: 2, flags: GMEM | RO, guestMemfd: -1 })).toEqual(["EINVAL", C.FLAGS]);
    for (const f of [8, 1 << 15, 1 << 16, 1 << 17, 0x80000000]) expect(r2({ slot: 2, flags: f })).toEqual(["EINVAL", C.FLAGS]);
    expect(r2({ slot: 2, flags: 8, memorySize: 0x1001 })[1]).toBe(C.FLAGS); // before the size check
  });

  it("check 5: memory_size must be a multiple of 4096", () => {
    expect(r1({ slot: 0, memorySize: 0x1001 })).toEqual(["EINVAL", C.SIZE_ALIGN]);
    expect(r1({ slot: 0, memorySize: 0x1001, guestPhysAddr: 1 })[1]).toBe(C.SIZE_ALIGN);
  });

  it("check 6: guest_phys_addr must be page aligned", () => {
    expect(r1({ slot: 0, guestPhysAddr: 1 })).toEqual(["EINVAL", C.GPA_ALIGN]);
    expect(r1({ slot: 0, guestPhysAddr: 1, userspaceAddr: A + 1n })[1]).toBe(C.GPA_ALIGN);
  });

  it("check 7: userspace_addr page aligned and a valid user range (access_ok against 0x7ffffffff000)", () => {
    expect(r1({ slot: 0, userspaceAddr: A + 1n })).toEqual(["EINVAL", C.HVA_ALIGN]);
    expect(r1({ slot: 0, userspaceAddr: 0x7fffffffe000n })).toEqual(["ok", 0]);
    expect(r1({ slot: 1, guestPhysAddr: 0x10000, userspaceAddr: 0x7fffffffd000n, memorySize: 0x2000 })).toEqual(["ok", 0]);
    for (const [hva, size] of [[0x7ffffffff000n, 0x1000], [0x7fffffffe000n, 0x2000], [0x800000000000n, 0x1000],
      [0xffff800000000000n, 0x1000], [0xfffffffffffff000n, 0x2000]] as const) {
      expect(r1({ slot: 2, guestPhysAddr: 0x80000, userspaceAddr: hva, memorySize: size })).toEqual(["EINVAL", C.HVA_RANGE]);
    }
    expect(r1({ slot: 3, guestPhysAddr: 0x70000, userspaceAddr: 0 })).toEqual(["ok", 0]); // hva 0 is a user address
    // A delete (size 0) only needs userspace_addr <= the limit.
    expect(r1({ slot: 3, memorySize: 0, userspaceAddr: 0x7ffffffff000n })).toEqual(["ok", 0]);
    expect(r1({ slot: 1, memorySize: 0, userspaceAddr: 0x800000000000n })).toEqual(["EINVAL", C.HVA_RANGE]);
  });

  it("check 8: with GUEST_MEMFD, guest_memfd_offset must be aligned and offset + size must not wrap", () => {
    expect(r2({ slot: 0, flags: GMEM, guestMemfd: -1, guestMemfdOffset: 0x800 })).toEqual(["EINVAL", C.GMEM_OFFSET]);
    expect(r2({ slot: 0, flags: GMEM, guestMemfd: -1, guestMemfdOffset: 0xfffffffffffff000n })).toEqual(["EINVAL", C.GMEM_OFFSET]);
    expect(r2({ slot: 0, flags: GMEM, guestMemfd: -1, guestMemfdOffset: 0xffffffffffffe000n })).toEqual(["EBADF", C.GMEM_BIND_FD]);
    // Without GUEST_MEMFD the fields are ignored entirely.
    expect(r2({ slot: 0, guestMemfd: -1, guestMemfdOffset: 0x801 })).toEqual(["ok", 0]);
  });

  it("check 9: as_id >= nr_as is EINVAL (after the size, address and offset checks)", async () => {
    expect(r1({ slot: 0x10000 })).toEqual(["EINVAL", C.AS_ID]);
    expect(r1({ slot: 0x10000, guestPhysAddr: 1 })[1]).toBe(C.GPA_ALIGN);
    const smm = (await openKvm({ config: { addressSpaces: 2 } })).createVm();
    expect(smm.addressSpaces).toBe(2);
    const B = smm.kvm.memory.mmap(0x1000);
    smm.setUserMemoryRegion({ slot: 0, asId: 1, guestPhysAddr: 0, memorySize: 0x1000, userspaceAddr: B });
    expect(() => smm.setUserMemoryRegion({ slot: 0, asId: 2, guestPhysAddr: 0, memorySize: 0x1000, userspaceAddr: B })).toThrow(/EINVAL/);
  });

  it("check 10: guest_phys_addr + memory_size must not wrap", () => {
    expect(r1({ slot: 0, guestPhysAddr: 0xfffffffffffff000n })).toEqual(["EINVAL", C.GPA_WRAP]);
    // One page lower passes this check and fails at the x86 gfn limit (check 21).
    expect(r1({ slot: 0, guestPhysAddr: 0xffffffffffffe000n })).toEqual(["EINVAL", C.MAX_GFN]);
  });

  it("check 11: a user slot has at most 2^31 - 1 pages", () => {
    const max = (2n ** 31n - 1n) * 4096n;
    expect(r1({ slot: 0, memorySize: max + 4096n, userspaceAddr: 0x100000000000n })).toEqual(["EINVAL", C.MAX_PAGES]);
    expect(r1({ slot: 0, memorySize: max, userspaceAddr: 0x100000000000n })).toEqual(["ok", 0]);
    expect(vm.memslots()[0].npages).toBe(2n ** 31n - 1n);
  });

  it("check 12: deleting a slot that does not exist is EINVAL, not a no-op", () => {
    expect(r1({ slot: 5, memorySize: 0 })).toEqual(["EINVAL", C.DELETE_ABSENT]);
    expect(vm.generation()).toBe(0n);
  });

  it("checks 2-11 also run for deletes; a delete compares nothing with the old slot", () => {
    expect(r1({ slot: 0 })[0]).toBe("ok");
    expect(r1({ slot: 0, memorySize: 0, guestPhysAddr: 1 })[1]).toBe(C.GPA_ALIGN);
    expect(r1({ slot: 0, memorySize: 0, userspaceAddr: A + 1n })[1]).toBe(C.HVA_ALIGN);
    expect(r1({ slot: 0, memorySize: 0, flags: 8 })[1]).toBe(C.V1_FLAGS);
    expect(r2({ slot: 0, memorySize: 0, flags: 8 })[1]).toBe(C.FLAGS);
    expect(r1({ slot: 0, memorySize: 0, flags: RO, guestPhysAddr: 0x5000, userspaceAddr: 0 })).toEqual(["ok", 0]);
    expect(vm.memslots()).toEqual([]);
  });

  it("a REGION2 delete of a normal slot may carry GUEST_MEMFD with any fd", () => {
    expect(r1({ slot: 0 })[0]).toBe("ok");
    expect(r2({ slot: 0, memorySize: 0, flags: GMEM, guestMemfd: -1 })).toEqual(["ok", 0]);
  });

  it("check 15: modifying an existing slot with GUEST_MEMFD is EINVAL, before the no-op check", () => {
    expect(r1({ slot: 0 })[0]).toBe("ok");
    expect(r2({ slot: 0, flags: GMEM, guestMemfd: -1 })).toEqual(["EINVAL", C.MODIFY_GMEM]);
    expect(r2({ slot: 0, flags: GMEM, guestMemfd: vm.fd })).toEqual(["EINVAL", C.MODIFY_GMEM]);
  });

  it("check 16: size, userspace_addr and READONLY of an existing slot are immutable", () => {
    expect(r1({ slot: 0, memorySize: 0x2000 })[0]).toBe("ok");
    const g = vm.generation();
    expect(r1({ slot: 0, memorySize: 0x3000 })).toEqual(["EINVAL", C.MODIFY_IMMUTABLE]);
    expect(r1({ slot: 0, memorySize: 0x2000, userspaceAddr: A + 0x1000n })).toEqual(["EINVAL", C.MODIFY_IMMUTABLE]);
    expect(r1({ slot: 0, memorySize: 0x2000, flags: RO })).toEqual(["EINVAL", C.MODIFY_IMMUTABLE]);
    expect(r1({ slot: 0, memorySize: 0x2000, flags: RO, guestPhysAddr: 0x10000 })[1]).toBe(C.MODIFY_IMMUTABLE);
    expect(vm.generation()).toBe(g);
  });

  it("check 17: an identical re-issue of a normal slot succeeds and changes nothing", () => {
    expect(r1({ slot: 0, flags: LOG })[0]).toBe("ok");
    const before = state();
    expect(r1({ slot: 0, flags: LOG })).toEqual(["ok", 0]);
    expect(r2({ slot: 0, flags: LOG, guestMemfd: 77, guestMemfdOffset: 3 })).toEqual(["ok", 0]);
    expect(state()).toBe(before);
  });

  it("check 18: CREATE or MOVE overlapping another slot of the address space is EEXIST; adjacent is fine", () => {
    expect(r1({ slot: 0, guestPhysAddr: 0x10000, memorySize: 0x4000 })[0]).toBe("ok");
    expect(r1({ slot: 1, guestPhysAddr: 0x10000 })).toEqual(["EEXIST", C.OVERLAP]);
    expect(r1({ slot: 1, guestPhysAddr: 0xf000, memorySize: 0x2000 })).toEqual(["EEXIST", C.OVERLAP]);
    expect(r1({ slot: 1, guestPhysAddr: 0x13000 })).toEqual(["EEXIST", C.OVERLAP]);
    expect(r1({ slot: 1, guestPhysAddr: 0x14000 })).toEqual(["ok", 0]);
    expect(r1({ slot: 2, guestPhysAddr: 0xf000 })).toEqual(["ok", 0]);
    // MOVE onto another slot; MOVE over its own old range is allowed.
    expect(r1({ slot: 2, guestPhysAddr: 0x11000 })).toEqual(["EEXIST", C.OVERLAP]);
    expect(r1({ slot: 1, memorySize: 0 })).toEqual(["ok", 0]);
    expect(r1({ slot: 0, guestPhysAddr: 0x12000, memorySize: 0x4000 })).toEqual(["ok", 0]);
    expect(vm.memslots().map((x) => [x.id, x.baseGfn])).toEqual([[2, 0xfn], [0, 0x12n]]);
  });

  it("checks 2-16 precede the overlap check, the bind and the no-op", () => {
    expect(r1({ slot: 0, guestPhysAddr: 0x10000, memorySize: 0x4000 })[0]).toBe("ok");
    expect(r1({ slot: 1, guestPhysAddr: 0x10000, userspaceAddr: A + 1n })[1]).toBe(C.HVA_ALIGN);
    expect(r2({ slot: 1, flags: GMEM, guestMemfd: -1, guestMemfdOffset: 1 })[1]).toBe(C.GMEM_OFFSET);
    expect(r1({ slot: 0, guestPhysAddr: 0x10000, memorySize: 0x4000, flags: 8 })[1]).toBe(C.V1_FLAGS);
  });

  it("check 19: failure to allocate the new slot is ENOMEM and changes nothing", () => {
    vm.debug.injectFault("alloc_slot", 12);
    expect(r1({ slot: 0 })).toEqual(["ENOMEM", C.ALLOC_SLOT]);
    expect(vm.memslots()).toEqual([]);
    expect(vm.generation()).toBe(0n);
    expect(r1({ slot: 0 })).toEqual(["ok", 0]);
  });

  it("check 20: the guest_memfd bind: a closed fd is EBADF, a file that is not a guest_memfd is EINVAL", () => {
    expect(r2({ slot: 0, flags: GMEM, guestMemfd: -1 })).toEqual(["EBADF", C.GMEM_BIND_FD]);
    expect(r2({ slot: 0, flags: GMEM, guestMemfd: 999 })).toEqual(["EBADF", C.GMEM_BIND_FD]);
    expect(r2({ slot: 0, flags: GMEM, guestMemfd: vm.fd })).toEqual(["EINVAL", C.GMEM_BIND_KIND]);
    expect(vm.memslots()).toEqual([]);
  });

  it("check 21: [x86] CREATE or MOVE ending above the largest gfn is EINVAL, after overlap and bind", () => {
    const top = (1n << 40n) - 1n;
    expect(r1({ slot: 0, guestPhysAddr: top << 12n })).toEqual(["ok", 0]);
    expect(r1({ slot: 1, guestPhysAddr: (top + 1n) << 12n })).toEqual(["EINVAL", C.MAX_GFN]);
    expect(r1({ slot: 1, guestPhysAddr: 0x10000000000000n })).toEqual(["EINVAL", C.MAX_GFN]);
    expect(r1({ slot: 1, guestPhysAddr: top << 12n, memorySize: 0x2000 })).toEqual(["EEXIST", C.OVERLAP]);
    expect(r2({ slot: 1, flags: GMEM, guestMemfd: -1, guestPhysAddr: (top + 1n) << 12n })).toEqual(["EBADF", C.GMEM_BIND_FD]);
    expect(r1({ slot: 2, guestPhysAddr: 0 })[0]).toBe("ok");
    expect(r1({ slot: 2, guestPhysAddr: (top + 1n) << 12n })).toEqual(["EINVAL", C.MAX_GFN]);
    expect(vm.memslots().find((s) => s.id === 2)!.baseGfn).toBe(0n); // a failed MOVE leaves the slot
  });

  it("the largest gfn is host configuration", async () => {
    const k = await openKvm({ config: { maxGfn: (1n << 36n) - 1n } });
    const v = k.createVm();
    expect(() => v.setUserMemoryRegion({ slot: 0, guestPhysAddr: 1n << 48n, memorySize: 0x1000, userspaceAddr: 0 })).toThrow(/EINVAL/);
    v.setUserMemoryRegion({ slot: 0, guestPhysAddr: ((1n << 36n) - 1n) << 12n, memorySize: 0x1000, userspaceAddr: 0 });
  });
});

describe("__kvm_set_memory_region change classification", () => {
  it("CREATE, FLAGS_ONLY (both ways), MOVE (with and without a logging toggle), no-op, DELETE", () => {
    const s = () => vm.memslots().map((x) => [x.id, x.baseGfn, x.flags, x.hasDirtyBitmap]);
    const g = () => vm.generation();
    expect(r1({ slot: 0, guestPhysAddr: 0x100000, memorySize: 0x10000 })[0]).toBe("ok");
    expect([s(), g()]).toEqual([[[0, 0x100n, 0, false]], 1n]);
    expect(r1({ slot: 0, guestPhysAddr: 0x100000, memorySize: 0x10000, flags: LOG })[0]).toBe("ok");
    expect([s(), g()]).toEqual([[[0, 0x100n, LOG, true]], 2n]);
    expect(r1({ slot: 0, guestPhysAddr: 0x100000, memorySize: 0x10000 })[0]).toBe("ok");
    expect([s(), g()]).toEqual([[[0, 0x100n, 0, false]], 3n]);
    expect(r1({ slot: 0, guestPhysAddr: 0x100000, memorySize: 0x10000 })[0]).toBe("ok");
    expect(g()).toBe(3n);
    expect(r1({ slot: 0, guestPhysAddr: 0x108000, memorySize: 0x10000 })[0]).toBe("ok");
    expect([s(), g()]).toEqual([[[0, 0x108n, 0, false]], 5n]);
    expect(r1({ slot: 0, guestPhysAddr: 0x300000, memorySize: 0x10000, flags: LOG })[0]).toBe("ok");
    expect([s(), g()]).toEqual([[[0, 0x300n, LOG, true]], 7n]);
    expect(r1({ slot: 0, memorySize: 0 })[0]).toBe("ok");
    expect([s(), g()]).toEqual([[], 9n]);
  });

  it("a range vacated by a MOVE is free for other slots at once", () => {
    expect(r1({ slot: 0, guestPhysAddr: 0x10000, memorySize: 0x4000 })[0]).toBe("ok");
    expect(r1({ slot: 0, guestPhysAddr: 0x20000, memorySize: 0x4000 })[0]).toBe("ok");
    expect(r1({ slot: 1, guestPhysAddr: 0x10000, memorySize: 0x4000 })[0]).toBe("ok");
  });

  it("address spaces are independent: slots may overlap in gpa and share host memory", async () => {
    const k = await openKvm({ config: { addressSpaces: 2 } });
    const v = k.createVm();
    const B = k.memory.mmap(0x4000);
    v.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0, memorySize: 0x4000, userspaceAddr: B });
    v.setUserMemoryRegion({ slot: 0, asId: 1, guestPhysAddr: 0, memorySize: 0x4000, userspaceAddr: B });
    v.setUserMemoryRegion({ slot: 1, asId: 1, guestPhysAddr: 0x4000, memorySize: 0x4000, userspaceAddr: B });
    expect(v.memslots({ asId: 1 }).length).toBe(2);
    expect(v.memslots({ asId: 0 }).length).toBe(1);
  });
});

describe("KVM_SET_USER_MEMORY_REGION argument conversion (before the ioctl)", () => {
  it("a u64 field given a value no u64 can hold is a RangeError naming it, and the VM is unchanged", () => {
    const before = state();
    const bad: [string, number | bigint][] = [["guestPhysAddr", -1n], ["memorySize", 1n << 64n], ["userspaceAddr", -4096n],
      ["guestPhysAddr", -1], ["memorySize", 2 ** 53], ["userspaceAddr", 0.5]];
    for (const [field, v] of bad) {
      expect(() => vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0n, memorySize: 0x1000n, userspaceAddr: A, [field]: v }))
        .toThrow(new RegExp(`^${field} `));
      expect(state()).toBe(before);
    }
    // The extremes a u64 holds go through to the kernel's checks (an unaligned size is EINVAL there).
    expect(r1({ slot: 0, memorySize: (1n << 64n) - 1n })).toEqual(["EINVAL", C.SIZE_ALIGN]);
    expect(r1({ slot: 0, memorySize: 0x1000n })).toEqual(["ok", 0]);
  });
});
