// Malformed input through the raw ioctl surface and the typed one: a clear
// result (-errno or RangeError), never a trap, and the state unchanged.
import { describe, it, expect, beforeEach } from "vitest";
import {
  Kvm, Vm, KVM_SET_USER_MEMORY_REGION, KVM_SET_USER_MEMORY_REGION2, KVM_CHECK_EXTENSION, KVM_CREATE_VM,
  KVM_SET_MEMORY_ATTRIBUTES, KVM_ENABLE_CAP, KVM_CREATE_VCPU, KVM_GET_API_VERSION, KVM_GET_VCPU_MMAP_SIZE,
  kvm_userspace_memory_region, kvm_userspace_memory_region2, kvm_enable_cap, KVM_CAP,
} from "../src/index.js";
import { openKvm, code } from "./helpers.js";

let kvm: Kvm, vm: Vm, A: bigint;
const state = () => JSON.stringify({ s: vm.memslots(), g: vm.generation() }, (_, v) => typeof v === "bigint" ? v.toString() : v);

beforeEach(async () => {
  kvm = await openKvm();
  vm = kvm.createVm();
  A = kvm.memory.mmap(0x10000);
  vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0, memorySize: 0x10000, userspaceAddr: A });
});

describe("raw ioctls", () => {
  it("short buffers are EFAULT for every pointer ioctl; longer ones are read up to the struct size", () => {
    const before = state();
    for (const [nr, size] of [[KVM_SET_USER_MEMORY_REGION, 32], [KVM_SET_USER_MEMORY_REGION2, 160], [KVM_ENABLE_CAP, 104]]) {
      for (const len of [0, 1, size - 1]) expect(vm.ioctl(nr, new Uint8Array(len))).toBe(-14);
    }
    expect(state()).toBe(before);
    const long = new Uint8Array(4096);
    long.set(kvm_userspace_memory_region.encode({ slot: 1, guest_phys_addr: 0x20000, memory_size: 0x1000, userspace_addr: A }));
    long.fill(0xff, 32);
    expect(vm.ioctl(KVM_SET_USER_MEMORY_REGION, long)).toBe(0);
    const huge = new Uint8Array(1 << 20);
    expect(vm.ioctl(KVM_SET_USER_MEMORY_REGION, huge)).toBe(0); // all zeros: delete slot 0
    expect(vm.memslots().map((s) => s.id)).toEqual([1]);
  });

  it("past the caller's struct the core's ioctl buffer holds zeros, whatever a longer raw or typed call left there", () => {
    const tail = (from: number) => {
      const at = kvm.core.ioctlBuffer(), size = kvm.core.ioctlBufferSize();
      return new Uint8Array(kvm.core.memory.buffer, at + from, size - from).findIndex((b) => b !== 0);
    };
    const nr = 0x4010ae99; // unknown: ENOTTY, after the struct was copied in
    expect(vm.ioctl(nr, new Uint8Array(4096).fill(0xff))).toBe(-25);
    expect(vm.ioctl(nr, new Uint8Array(16).fill(0xff))).toBe(-25);
    expect(tail(16)).toBe(-1);
    expect(vm.ioctl(nr, new Uint8Array(100).fill(0xee))).toBe(-25);
    expect(vm.ioctl(nr, new Uint8Array(0))).toBe(-25);
    expect(tail(0)).toBe(-1);
    vm.setUserMemoryRegion({ slot: 3, guestPhysAddr: 0x100000, memorySize: 0x1000, userspaceAddr: A }); // typed: fields written in place
    expect(vm.ioctl(nr, new Uint8Array(8).fill(0xff))).toBe(-25);
    expect(tail(8)).toBe(-1);
    // A grow detaches the host's views of the buffer, not its bytes.
    expect(vm.ioctl(nr, new Uint8Array(2048).fill(0xdd))).toBe(-25);
    const pages = kvm.core.memory.buffer.byteLength;
    const big = kvm.memory.mmap(64 << 20);
    for (let p = 0; p < 64 << 20; p += 4096) kvm.memory.poke(big + BigInt(p), 1, 1);
    expect(kvm.core.memory.buffer.byteLength).toBeGreaterThan(pages);
    expect(vm.ioctl(nr, new Uint8Array(24).fill(0xff))).toBe(-25);
    expect(tail(24)).toBe(-1);
  });

  it("unknown ioctl numbers are ENOTTY on a VM and EINVAL on /dev/kvm; nothing changes", () => {
    const before = state();
    for (const nr of [0, 1, 0xae99, 0xffffffff, 0x4020ae47, KVM_SET_USER_MEMORY_REGION ^ 0x10000]) {
      expect(vm.ioctl(nr, new Uint8Array(32))).toBe(-25);
      expect(vm.ioctl(nr, 5)).toBe(-25);
    }
    expect(vm.ioctl(KVM_SET_MEMORY_ATTRIBUTES, new Uint8Array(32))).toBe(-25); // not built yet: absent
    expect(kvm.ioctl(0xae99)).toBe(-22);
    expect(state()).toBe(before);
  });

  it("/dev/kvm ioctls: API version 12, vcpu mmap size, VM types, extensions", () => {
    expect(kvm.ioctl(KVM_GET_API_VERSION)).toBe(12);
    expect(kvm.ioctl(KVM_GET_VCPU_MMAP_SIZE)).toBe(12288);
    expect(kvm.ioctl(KVM_CREATE_VM, 1)).toBe(-22);
    expect(kvm.ioctl(KVM_CREATE_VM, 6)).toBe(-22);
    expect(kvm.ioctl(KVM_CREATE_VM, 2n ** 32n)).toBe(-22);
    expect(kvm.ioctl(KVM_CREATE_VM, -1)).toBe(-22);
    expect(kvm.ioctl(KVM_CHECK_EXTENSION, 2n ** 63n)).toBe(0);
    expect(kvm.ioctl(KVM_CHECK_EXTENSION, -1)).toBe(0);
  });

  it("huge values in struct fields are errors, never traps", () => {
    const before = state();
    const max = (1n << 64n) - 1n;
    for (const f of [
      { slot: 0xffffffff, flags: 0xffffffff, guest_phys_addr: max, memory_size: max, userspace_addr: max },
      { slot: 1, flags: 0, guest_phys_addr: max & ~0xfffn, memory_size: max & ~0xfffn, userspace_addr: 0 },
      { slot: 1, flags: 0, guest_phys_addr: 0, memory_size: 1n << 63n, userspace_addr: 1n << 63n },
    ]) {
      expect(vm.ioctl(KVM_SET_USER_MEMORY_REGION, kvm_userspace_memory_region.encode(f))).toBe(-22);
      expect(vm.ioctl(KVM_SET_USER_MEMORY_REGION2, kvm_userspace_memory_region2.encode({ ...f, guest_memfd: 0xffffffff, guest_memfd_offset: max }))).toBe(-22);
    }
    expect(vm.ioctl(KVM_CREATE_VCPU, (1n << 64n) - 1n)).toBe(-22);
    expect(vm.ioctl(KVM_ENABLE_CAP, kvm_enable_cap.encode({ cap: 0xffffffff, flags: 0xffffffff, arg0: max }))).toBe(-22);
    expect(state()).toBe(before);
  });

  it("KVM_ENABLE_CAP(MANUAL_DIRTY_LOG_PROTECT2) takes ENABLE, ENABLE|INITIALLY_SET, 0; not INITIALLY_SET alone", () => {
    const en = (arg0: number, flags = 0) => vm.ioctl(KVM_ENABLE_CAP, kvm_enable_cap.encode({ cap: KVM_CAP.MANUAL_DIRTY_LOG_PROTECT2, flags, arg0 }));
    expect(en(2)).toBe(-22);
    expect(en(4)).toBe(-22);
    expect(en(1, 1)).toBe(-22);
    expect(en(1)).toBe(0);
    expect(vm.debug.stats().manualDirtyLogProtect).toBe(1);
    expect(en(3)).toBe(0);
    expect(en(0)).toBe(0);
    expect(vm.debug.stats().manualDirtyLogProtect).toBe(0);
  });

  it("closed fds are EBADF", () => {
    const v = kvm.createVm();
    v.close();
    expect(v.ioctl(KVM_CHECK_EXTENSION, 3)).toBe(-9);
  });
});

describe("typed methods", () => {
  it("values no field can hold are RangeErrors, and nothing changes", () => {
    const before = state();
    const base = { slot: 1, guestPhysAddr: 0x20000, memorySize: 0x1000, userspaceAddr: A };
    expect(() => vm.setUserMemoryRegion({ ...base, guestPhysAddr: 1n << 64n })).toThrow(RangeError);
    expect(() => vm.setUserMemoryRegion({ ...base, guestPhysAddr: -4096 })).toThrow(RangeError);
    expect(() => vm.setUserMemoryRegion({ ...base, memorySize: 0.5 })).toThrow(RangeError);
    expect(() => vm.setUserMemoryRegion({ ...base, memorySize: 2 ** 60 })).toThrow(RangeError); // not a safe integer
    expect(() => vm.setUserMemoryRegion({ ...base, slot: 2 ** 32 })).toThrow(RangeError);
    expect(() => vm.setUserMemoryRegion({ ...base, flags: -1 })).toThrow(RangeError);
    expect(() => vm.setUserMemoryRegion({ ...base, slot: 70000, asId: 1 })).toThrow(RangeError);
    expect(() => vm.ioctl(2 ** 32, 0)).toThrow(RangeError);
    expect(() => vm.ioctl(KVM_CHECK_EXTENSION, 1.5)).toThrow(RangeError);
    expect(() => vm.readGuest(-1, 4)).toThrow(RangeError);
    expect(() => vm.readGuest((1n << 64n) - 2n, 4)).toThrow(RangeError);
    expect(state()).toBe(before);
  });

  it("KvmError names the errno, the ioctl and the failing value", () => {
    try {
      vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: 0x1001, memorySize: 0x1000, userspaceAddr: A });
      expect.unreachable();
    } catch (e) {
      const k = e as { errno: number; code: string; message: string };
      expect(k.errno).toBe(22);
      expect(k.code).toBe("EINVAL");
      expect(k.message).toBe("EINVAL: KVM_SET_USER_MEMORY_REGION: guest_phys_addr 0x1001 is not page aligned");
    }
    expect(code(() => vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: 0, memorySize: 0x1000, userspaceAddr: A }))).toBe("EEXIST");
  });
});
