// Kvm: loading the core from every kind of source, KVM_CHECK_EXTENSION answers
// (kvm_vm_ioctl_check_extension_generic), and the debug core's invariant checks.
import { describe, it, expect } from "vitest";
import { readFileSync } from "node:fs";
import { Kvm, KVM_CAP } from "../src/index.js";
import { CORRUPT } from "../src/abi.gen.js";
import { openKvm } from "./helpers.js";
import { runScript } from "../src/conformance/index.js";

const wasmUrl = new URL("../build/debug.wasm", import.meta.url);

describe("Kvm.open", () => {
  it("loads the core from a URL, a path string, bytes, or a compiled module", async () => {
    const bytes = readFileSync(wasmUrl);
    const module = await WebAssembly.compile(bytes);
    for (const wasm of [wasmUrl, wasmUrl.href, bytes, new Uint8Array(bytes).buffer, module]) {
      const kvm = await Kvm.open({ wasm });
      expect(kvm.apiVersion()).toBe(12);
      expect(kvm.debugCore).toBe(true);
    }
  });

  it("the release core behaves the same (validation golden) with its checks compiled out", async () => {
    const kvm = await Kvm.open({ core: "release" });
    expect(kvm.debugCore).toBe(false);
    const golden = new URL("../conformance/golden/", import.meta.url);
    const got = await runScript(readFileSync(new URL("validation.txt", golden), "utf8"), kvm);
    expect(got.join("\n")).toBe(readFileSync(new URL("validation.out", golden), "utf8").trim());
  });
});

describe("KVM_CHECK_EXTENSION (kvm_vm_ioctl_check_extension_generic)", () => {
  const expected: [keyof typeof KVM_CAP, number, number][] = [
    // cap, /dev/kvm, default VM — the recorded host (no SMM, no TDP, no memory attributes); one
    // departure: BINARY_STATS_FD is 1 there, 0 here (no KVM_GET_STATS_FD; test/caps-backed.test.ts)
    ["USER_MEMORY", 1, 1], ["NR_MEMSLOTS", 32764, 32764], ["SYNC_MMU", 1, 1], ["DESTROY_MEMORY_REGION_WORKS", 1, 1],
    ["JOIN_MEMORY_REGIONS_WORKS", 1, 1], ["READONLY_MEM", 1, 1], ["ENABLE_CAP_VM", 1, 1], ["CHECK_EXTENSION_VM", 1, 1],
    ["MULTI_ADDRESS_SPACE", 0, 0], ["MANUAL_DIRTY_LOG_PROTECT", 0, 0], ["MANUAL_DIRTY_LOG_PROTECT2", 3, 3],
    ["HALT_POLL", 1, 1], ["DIRTY_LOG_RING", 1048576, 1048576], ["BINARY_STATS_FD", 0, 0],
    ["DIRTY_LOG_RING_ACQ_REL", 1048576, 1048576], ["DIRTY_LOG_RING_WITH_BITMAP", 0, 0], ["USER_MEMORY2", 1, 1],
    ["MEMORY_FAULT_INFO", 1, 1], ["MEMORY_ATTRIBUTES", 0, 0], ["GUEST_MEMFD", 1, 1], ["VM_TYPES", 1, 1],
    ["PRE_FAULT_MEMORY", 0, 0], ["GUEST_MEMFD_FLAGS", 3, 3],
  ];
  it("answers as Linux 6.18 on the recorded host, on /dev/kvm and on a VM", async () => {
    const kvm = await openKvm();
    const vm = kvm.createVm();
    for (const [cap, dev, onVm] of expected) {
      expect([cap, kvm.checkExtension(KVM_CAP[cap])]).toEqual([cap, dev]);
      expect([cap, vm.checkExtension(KVM_CAP[cap])]).toEqual([cap, onVm]);
    }
    expect(kvm.checkExtension(9999)).toBe(0);
  });

  it("host-dependent answers follow the configuration (SMM, memory attributes, VM types, TDP)", async () => {
    const kvm = await openKvm({ config: { addressSpaces: 2, memoryAttributes: true, vmTypes: 0b11, preFaultMemory: true } });
    expect(kvm.checkExtension("multi_address_space")).toBe(2);
    expect(kvm.checkExtension("memory_attributes")).toBe(8);
    expect(kvm.checkExtension("vm_types")).toBe(3);
    expect(kvm.checkExtension("pre_fault_memory")).toBe(1);
    const vm = kvm.createVm();
    expect(vm.checkExtension("multi_address_space")).toBe(2);
    expect(vm.checkExtension("memory_attributes")).toBe(0);
    expect(kvm.createVm({ addressSpaces: 1 }).checkExtension("multi_address_space")).toBe(0);
    const priv = kvm.createVm({ type: 1 });
    expect(priv.addressSpaces).toBe(1); // private-memory VMs get one address space
    expect(priv.checkExtension("memory_attributes")).toBe(8);
    expect(priv.checkExtension("guest_memfd_flags")).toBe(1); // no INIT_SHARED with private memory
  });
});

describe("debug core invariants", () => {
  it("an unsorted slot set is caught at the next update", async () => {
    const kvm = await openKvm();
    const vm = kvm.createVm();
    const a = kvm.memory.mmap(0x10000);
    vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0, memorySize: 0x1000, userspaceAddr: a });
    vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: 0x10000, memorySize: 0x1000, userspaceAddr: a });
    expect(kvm.core.debugCorruptForTest(vm.fd, CORRUPT.GFN_ORDER)).toBeTruthy();
    expect(() => vm.setUserMemoryRegion({ slot: 2, guestPhysAddr: 0x20000, memorySize: 0x1000, userspaceAddr: a }))
      .toThrow(/invariant violated/);
  });

  it("a last_used_slot outside the set is caught", async () => {
    const kvm = await openKvm();
    const vm = kvm.createVm();
    const a = kvm.memory.mmap(0x10000);
    vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0, memorySize: 0x1000, userspaceAddr: a });
    kvm.core.debugCorruptForTest(vm.fd, CORRUPT.LAST_USED_SLOT);
    expect(() => vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: 0x10000, memorySize: 0x1000, userspaceAddr: a }))
      .toThrow(/invariant violated: last_used_slot/);
  });
});
