// No capability that lies: every capability KVM_CHECK_EXTENSION answers
// non-zero for, with every host-dependent option of the configuration turned
// on, has the ioctl(s) behind it, and they do their job (never ENOTTY).
import { describe, it, expect } from "vitest";
import { Kvm, Vm, KVM_CAP, KVM_CHECK_EXTENSION, KVM_CREATE_VM, KVM_SET_USER_MEMORY_REGION, KVM_SET_USER_MEMORY_REGION2,
  KVM_ENABLE_CAP, KVM_CLEAR_DIRTY_LOG, KVM_RESET_DIRTY_RINGS, KVM_SET_MEMORY_ATTRIBUTES, KVM_CREATE_GUEST_MEMFD,
  KVM_PRE_FAULT_MEMORY, KVM_RUN, KVM_GET_STATS_FD, KVM_MEM_READONLY, KVM_MEM_LOG_DIRTY_PAGES, kvm_userspace_memory_region,
  kvm_userspace_memory_region2, kvm_enable_cap, kvm_clear_dirty_log, kvm_memory_attributes, kvm_create_guest_memfd,
  kvm_pre_fault_memory } from "../src/index.js";
import { openKvm } from "./helpers.js";

const ENOTTY = 25;
/** Every option the configuration can turn on (DEFAULT_CONFIG has them off). */
const ALL_ON = { addressSpaces: 2, memoryAttributes: true, vmTypes: 0b111111, preFaultMemory: true } as const;
const KVM_CAP_DISABLE_QUIRKS2 = 213; // x86, not in the generic list

let kvm: Kvm;
let n = 0; // gives each probe's slot its own gpa
/** A fresh VM with one 64 KiB slot at gpa 0 (slot id 0). */
function freshVm(type = 0): Vm {
  const vm = kvm.createVm({ type });
  vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0, memorySize: 0x10000, userspaceAddr: kvm.memory.mmap(0x10000) });
  return vm;
}
const region = (vm: Vm, slot: number, flags = 0) => vm.ioctl(KVM_SET_USER_MEMORY_REGION, kvm_userspace_memory_region.encode({
  slot, flags, guest_phys_addr: 0x100000n * BigInt(++n), memory_size: 0x1000, userspace_addr: kvm.memory.mmap(0x1000) }));
const enable = (vm: Vm, cap: number, arg0: bigint | number = 0) => vm.ioctl(KVM_ENABLE_CAP, kvm_enable_cap.encode({ cap, arg0 }));

/** Per capability: the ioctls behind it, each result (>= 0 expected). */
const PROBES: Record<number, () => number[]> = {
  [KVM_CAP.USER_MEMORY]: () => [region(freshVm(), 1)],
  [KVM_CAP.NR_MEMSLOTS]: () => [region(freshVm(), 32763)],
  [KVM_CAP.SYNC_MMU]: () => [region(freshVm(), 1)],
  [KVM_CAP.DESTROY_MEMORY_REGION_WORKS]: () => {
    const vm = freshVm();
    return [vm.ioctl(KVM_SET_USER_MEMORY_REGION, kvm_userspace_memory_region.encode({ slot: 0, memory_size: 0 }))];
  },
  [KVM_CAP.JOIN_MEMORY_REGIONS_WORKS]: () => [region(freshVm(), 1)],
  [KVM_CAP.READONLY_MEM]: () => [region(freshVm(), 1, KVM_MEM_READONLY)],
  [KVM_CAP.ENABLE_CAP_VM]: () => [enable(freshVm(), KVM_CAP.HALT_POLL, 1000)],
  [KVM_CAP.CHECK_EXTENSION_VM]: () => [freshVm().ioctl(KVM_CHECK_EXTENSION, KVM_CAP.USER_MEMORY)],
  [KVM_CAP.MULTI_ADDRESS_SPACE]: () => [region(freshVm(), (1 << 16) | 1)],
  [KVM_CAP.MANUAL_DIRTY_LOG_PROTECT2]: () => {
    const vm = freshVm();
    const r = [enable(vm, KVM_CAP.MANUAL_DIRTY_LOG_PROTECT2, 1), region(vm, 1, KVM_MEM_LOG_DIRTY_PAGES)];
    const bitmap = kvm.memory.mmap(0x1000);
    r.push(vm.ioctl(KVM_CLEAR_DIRTY_LOG, kvm_clear_dirty_log.encode({ slot: 1, num_pages: 1, first_page: 0, dirty_bitmap: bitmap })));
    return r;
  },
  [KVM_CAP.HALT_POLL]: () => [enable(freshVm(), KVM_CAP.HALT_POLL, 200000)],
  [KVM_CAP.DIRTY_LOG_RING]: () => { const vm = freshVm(); return [enable(vm, KVM_CAP.DIRTY_LOG_RING, 4096), vm.ioctl(KVM_RESET_DIRTY_RINGS)]; },
  [KVM_CAP.DIRTY_LOG_RING_ACQ_REL]: () => {
    const vm = freshVm();
    return [enable(vm, KVM_CAP.DIRTY_LOG_RING_ACQ_REL, 4096), vm.ioctl(KVM_RESET_DIRTY_RINGS)];
  },
  [KVM_CAP_DISABLE_QUIRKS2]: () => [enable(freshVm(), KVM_CAP_DISABLE_QUIRKS2, 0)],
  [KVM_CAP.USER_MEMORY2]: () => [freshVm().ioctl(KVM_SET_USER_MEMORY_REGION2, kvm_userspace_memory_region2.encode({
    slot: 1, guest_phys_addr: 0x100000, memory_size: 0x1000, userspace_addr: kvm.memory.mmap(0x1000) }))],
  // Not an ioctl of its own but KVM_RUN's memory_fault exit: KVM_RUN must exist (here it fails, EOPNOTSUPP: no code).
  [KVM_CAP.MEMORY_FAULT_INFO]: () => { const r = freshVm().createVcpu(0).ioctl(KVM_RUN); return [r === -ENOTTY ? r : 0]; },
  [KVM_CAP.MEMORY_ATTRIBUTES]: () => [freshVm(1).ioctl(KVM_SET_MEMORY_ATTRIBUTES,
    kvm_memory_attributes.encode({ address: 0, size: 0x1000, attributes: 8 }))],
  [KVM_CAP.GUEST_MEMFD]: () => [freshVm(1).ioctl(KVM_CREATE_GUEST_MEMFD, kvm_create_guest_memfd.encode({ size: 0x10000 }))],
  [KVM_CAP.GUEST_MEMFD_FLAGS]: () => [freshVm().ioctl(KVM_CREATE_GUEST_MEMFD, kvm_create_guest_memfd.encode({ size: 0x10000, flags: 3 }))],
  [KVM_CAP.VM_TYPES]: () => {
    const types = kvm.checkExtension("vm_types");
    return [0, 1, 2, 3, 4, 5].filter((t) => types & (1 << t)).map((t) => kvm.ioctl(KVM_CREATE_VM, t));
  },
  [KVM_CAP.PRE_FAULT_MEMORY]: () => [freshVm().createVcpu(0).ioctl(KVM_PRE_FAULT_MEMORY, kvm_pre_fault_memory.encode({ gpa: 0, size: 0x10000 }))],
};

describe("every advertised capability has its ioctls (no capability that lies)", () => {
  it("with every configurable option on, each capability answered non-zero by /dev/kvm or a VM of any type has probes, and they succeed", async () => {
    kvm = await openKvm({ config: ALL_ON });
    const vms = [0, 1, 2, 3, 4, 5].map((type) => kvm.createVm({ type }));
    const advertised: number[] = [];
    for (let cap = 0; cap < 512; cap++) {
      if (kvm.checkExtension(cap) !== 0 || vms.some((vm) => vm.checkExtension(cap) !== 0)) advertised.push(cap);
    }
    // Every capability the options turn on is among them.
    for (const cap of [KVM_CAP.MULTI_ADDRESS_SPACE, KVM_CAP.MEMORY_ATTRIBUTES, KVM_CAP.PRE_FAULT_MEMORY]) expect(advertised).toContain(cap);
    expect(kvm.checkExtension("vm_types")).toBe(0b111111);
    for (const cap of advertised) {
      expect([cap, PROBES[cap] !== undefined]).toEqual([cap, true]);
      const results = PROBES[cap]();
      expect(results.length).toBeGreaterThan(0);
      for (const r of results) expect([cap, r === -ENOTTY, r >= 0]).toEqual([cap, false, true]);
    }
  });

  it("KVM_CAP_BINARY_STATS_FD is not advertised: this build has no KVM_GET_STATS_FD (ENOTTY on VM and vCPU fds)", async () => {
    kvm = await openKvm({ config: ALL_ON });
    const vm = freshVm();
    expect([kvm.checkExtension("binary_stats_fd"), vm.checkExtension("binary_stats_fd")]).toEqual([0, 0]);
    expect([vm.ioctl(KVM_GET_STATS_FD), vm.createVcpu(0).ioctl(KVM_GET_STATS_FD)]).toEqual([-ENOTTY, -ENOTTY]);
  });

  it("KVM_PRE_FAULT_MEMORY exists whatever the host's paging: without TDP it is EOPNOTSUPP, never ENOTTY", async () => {
    kvm = await openKvm();
    expect(kvm.checkExtension("pre_fault_memory")).toBe(0);
    const v = freshVm().createVcpu(0);
    expect(v.ioctl(KVM_PRE_FAULT_MEMORY, kvm_pre_fault_memory.encode({ gpa: 0, size: 0x1000 }))).toBe(-95);
  });

  it("KVM_ENABLE_CAP(KVM_CAP_HALT_POLL) takes a 32-bit limit and no flags (kvm_vm_ioctl_enable_cap_generic)", async () => {
    kvm = await openKvm();
    const vm = freshVm();
    expect(enable(vm, KVM_CAP.HALT_POLL, 0xffffffff)).toBe(0);
    expect(enable(vm, KVM_CAP.HALT_POLL, 1n << 32n)).toBe(-22);
    expect(vm.ioctl(KVM_ENABLE_CAP, kvm_enable_cap.encode({ cap: KVM_CAP.HALT_POLL, flags: 1, arg0: 5 }))).toBe(-22);
  });
});
