// KVM_PRE_FAULT_MEMORY, rule by rule as Linux 6.18 x86 has them:
// kvm_vcpu_pre_fault_memory (virt/kvm/kvm_main.c) checks flags, then the
// range, then loops page by page (a signal ends the loop), moving gpa/size in
// the struct it copies back, and succeeds if any page was mapped;
// kvm_arch_vcpu_pre_fault_memory / kvm_tdp_map_page (arch/x86/kvm/mmu/mmu.c)
// refuse VMs whose pre_fault_allowed is not set and hosts without TDP
// (EOPNOTSUPP), and map one page as a read fault: no slot is ENOENT, a slot
// being deleted or moved EAGAIN, an unusable page EFAULT with a memory fault.
// The cases of tools/testing/selftests/kvm/pre_fault_memory_test.c are here
// by name. Guest code runs (to show a pre-faulted page needs no fault), so
// this file runs on both tiers.
import { describe, it, expect, beforeEach } from "vitest";
import { Kvm, Vm, Vcpu, KvmError, KVM_EXIT, KVM_MEM_READONLY, KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_GUEST_MEMFD,
  KVM_PRE_FAULT_MEMORY, kvm_pre_fault_memory } from "../src/index.js";
import { openKvm } from "./helpers.js";
import * as A from "./cpu/asm.js";

const PAGE = 4096n;
const SZ_2M = 2n << 20n;
const BASE = 0x100000000n; // the selftest's slot: 2 MiB + one page
const TEST_SIZE = SZ_2M + PAGE;
const RAM = 0x80000000n; // the vCPU's code
const EINVAL = 22, EFAULT = 14, EOPNOTSUPP = 95, ENOENT = 2, EAGAIN = 11, EINTR = 4;
const FAULTS = 0; // kvm.core.mmuStat

let kvm: Kvm, vm: Vm, vcpu: Vcpu, hva: bigint;

/** The raw ioctl: result and the struct as copied back. */
function raw(gpa: bigint, size: bigint, flags = 0n, v = vcpu): [number, bigint, bigint] {
  const buf = kvm_pre_fault_memory.encode({ gpa, size, flags });
  const r = v.ioctl(KVM_PRE_FAULT_MEMORY, buf);
  const out = kvm_pre_fault_memory.decode(buf);
  return [r, out.gpa, out.size];
}

async function setup(preFaultMemory: boolean, vmTypes = 1): Promise<void> {
  kvm = await openKvm({ config: { preFaultMemory, vmTypes } });
  vm = kvm.createVm();
  hva = kvm.memory.mmap(TEST_SIZE);
  vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: BASE, memorySize: TEST_SIZE, userspaceAddr: hva });
  vcpu = vm.createVcpu(0);
}

describe("KVM_PRE_FAULT_MEMORY: argument checks (kvm_vcpu_pre_fault_memory)", () => {
  beforeEach(() => setup(true));

  it("flags other than 0 are EINVAL, checked first (before the range and the host's paging)", async () => {
    expect(raw(BASE, PAGE, 1n)).toEqual([-EINVAL, BASE, PAGE]);
    expect(raw(BASE + 1n, 0n, 1n << 63n)).toEqual([-EINVAL, BASE + 1n, 0n]);
    await setup(false);
    expect(raw(BASE, PAGE, 2n)).toEqual([-EINVAL, BASE, PAGE]);
    expect(kvm.core.lastFailedCheck()).toBe(85);
  });

  it("gpa or size not page aligned, size 0, or gpa + size wrapping past 2^64 is EINVAL, range unchanged", () => {
    for (const [gpa, size] of [[BASE + 1n, PAGE], [BASE, PAGE + 8n], [BASE, 0n], [(1n << 64n) - PAGE, PAGE],
      [PAGE, (1n << 64n) - PAGE]]) {
      expect(raw(gpa, size)).toEqual([-EINVAL, gpa, size]);
    }
    expect(raw((1n << 64n) - 2n * PAGE, PAGE)[0]).toBe(-ENOENT); // ends exactly at 2^64 - PAGE: valid
  });

  it("an argument shorter than the 64-byte struct is EFAULT (copy_from_user); padding[5] is not checked", () => {
    expect(vcpu.ioctl(KVM_PRE_FAULT_MEMORY, new Uint8Array(63))).toBe(-EFAULT);
    const buf = kvm_pre_fault_memory.encode({ gpa: BASE, size: PAGE });
    buf.fill(0xff, 24);
    expect(vcpu.ioctl(KVM_PRE_FAULT_MEMORY, buf)).toBe(0);
  });
});

describe("KVM_PRE_FAULT_MEMORY: what the host and the VM allow (kvm_arch_vcpu_pre_fault_memory)", () => {
  it("without two-dimensional paging (KVM_CAP_PRE_FAULT_MEMORY 0) the ioctl exists but a valid range is EOPNOTSUPP, nothing mapped", async () => {
    await setup(false);
    expect(kvm.checkExtension("pre_fault_memory")).toBe(0);
    expect(raw(BASE, PAGE)).toEqual([-EOPNOTSUPP, BASE, PAGE]);
    expect(kvm.core.lastFailedCheck()).toBe(89);
  });

  it("SNP and TDX VMs are EOPNOTSUPP: pre_fault_allowed is set only when their launch is finalized", async () => {
    await setup(true, 0b110011);
    for (const type of [4, 5]) {
      const v = kvm.createVm({ type }).createVcpu(0);
      expect([type, ...raw(BASE, PAGE, 0n, v)]).toEqual([type, -EOPNOTSUPP, BASE, PAGE]);
    }
    for (const type of [0, 1]) expect([type, raw(0n, PAGE, 0n, kvm.createVm({ type }).createVcpu(0))[0]]).toEqual([type, -ENOENT]);
  });
});

describe("KVM_PRE_FAULT_MEMORY: mapping and partial progress (pre_fault_memory_test)", () => {
  beforeEach(() => setup(true));

  it("a range inside a slot is mapped: 0, gpa moved to its end, size 0 (pre_fault_memory(vcpu, gpa, 0, SZ_2M, 0))", () => {
    expect(raw(BASE, SZ_2M)).toEqual([0, BASE + SZ_2M, 0n]);
  });

  it("a range running past the slot maps what it can: 0 with the rest left (pre_fault_memory(vcpu, gpa, SZ_2M, PAGE_SIZE * 2, PAGE_SIZE))", () => {
    expect(raw(BASE + SZ_2M, 2n * PAGE)).toEqual([0, BASE + SZ_2M + PAGE, PAGE]);
    // The next call starts where there is no slot: now the error shows.
    expect(raw(BASE + SZ_2M + PAGE, PAGE)).toEqual([-ENOENT, BASE + SZ_2M + PAGE, PAGE]);
  });

  it("a range that starts without a memslot is ENOENT, range unchanged (RET_PF_EMULATE; pre_fault_memory(vcpu, gpa, TEST_SIZE, PAGE_SIZE, PAGE_SIZE))", () => {
    expect(raw(BASE + TEST_SIZE, PAGE)).toEqual([-ENOENT, BASE + TEST_SIZE, PAGE]);
    expect(kvm.core.lastFailedCheck()).toBe(88);
    expect(raw(0n, 1n << 40n)).toEqual([-ENOENT, 0n, 1n << 40n]);
  });

  it("a pre-faulted page needs no fault when the guest reads it (the gpa-indexed, bare-mode table holds it)", () => {
    kvm.memory.poke(hva + 0x5008n, 0xfeedn, 8);
    vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: RAM, memorySize: 1n << 16n, userspaceAddr: kvm.memory.mmap(1n << 16n) });
    // t0 = 0x1_0000_5000 (1 << 32, plus lui 5); t1 = *(t0 + 8); ecall
    const code = [A.addi(5, 0, 1), A.slli(5, 5, 32), A.lui(7, 5), A.add(5, 5, 7), A.ld(6, 5, 8), A.ecall()];
    vm.writeGuest(RAM, new Uint8Array(new Uint32Array(code).buffer));
    vcpu.pc = RAM;
    expect(vcpu.run().reason).toBe(KVM_EXIT.RISCV_SBI); // the code page faulted in; the data page not yet touched
    vcpu.pc = RAM;
    expect(raw(BASE + 0x5000n, PAGE)[0]).toBe(0);
    const faults = kvm.core.mmuStat(FAULTS);
    expect(vcpu.run().reason).toBe(KVM_EXIT.RISCV_SBI);
    expect(vcpu.getReg(6)).toBe(0xfeedn);
    expect(kvm.core.mmuStat(FAULTS)).toBe(faults);
  });

  it("mappings are made as read faults: a READONLY slot maps, a dirty-logged slot gets no page logged", () => {
    const ro = kvm.memory.mmap(1n << 16n);
    vm.setUserMemoryRegion({ slot: 2, guestPhysAddr: 0x200000000n, memorySize: 1n << 16n, userspaceAddr: ro, flags: KVM_MEM_READONLY });
    expect(raw(0x200000000n, 1n << 16n)).toEqual([0, 0x200010000n, 0n]);
    vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: BASE, memorySize: TEST_SIZE, userspaceAddr: hva, flags: KVM_MEM_LOG_DIRTY_PAGES });
    expect(raw(BASE, TEST_SIZE)).toEqual([0, BASE + TEST_SIZE, 0n]);
    expect(vm.getDirtyLog(0).every((b) => b === 0)).toBe(true);
    expect(vm.debug.stats().nrMemslotsDirtyLogging).toBe(1);
  });

  it("a slot being deleted (INVALID) is EAGAIN for the caller to retry; once it is gone the same call is ENOENT", () => {
    let during: [number, bigint, bigint] | null = null;
    kvm.setReaderHook((_vm, point) => {
      if (point === "invalidated" && during === null) during = raw(BASE, PAGE);
    });
    vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: BASE, memorySize: 0n, userspaceAddr: 0n });
    kvm.setReaderHook(null);
    expect(during).toEqual([-EAGAIN, BASE, PAGE]);
    expect(raw(BASE, PAGE)).toEqual([-ENOENT, BASE, PAGE]);
  });

  it("a page whose backing is gone is EFAULT with a KVM_EXIT_MEMORY_FAULT in kvm_run; pages mapped before it still count (0)", () => {
    kvm.memory.munmap(hva + 0x3000n, PAGE);
    expect(raw(BASE, 8n * PAGE)).toEqual([0, BASE + 0x3000n, 5n * PAGE]);
    expect(raw(BASE + 0x3000n, 5n * PAGE)).toEqual([-EFAULT, BASE + 0x3000n, 5n * PAGE]);
    expect(vcpu.kvmRun.exitReason).toBe(KVM_EXIT.MEMORY_FAULT);
    expect(vcpu.kvmRun.memoryFault).toEqual({ flags: 0n, gpa: BASE + 0x3000n, size: PAGE });
  });

  it("a pending signal ends the loop: EINTR with nothing mapped, range unchanged; the retry maps", () => {
    kvm.core.vcpuKick(vcpu.fd);
    expect(raw(BASE, 4n * PAGE)).toEqual([-EINTR, BASE, 4n * PAGE]);
    expect(raw(BASE, 4n * PAGE)).toEqual([0, BASE + 4n * PAGE, 0n]);
  });

  it("a huge range returns after 2^18 pages with the rest left, as a signal would make it (0: the caller loops)", async () => {
    const big = (1n << 30n) + 4n * PAGE;
    const mem = kvm.memory.mmap(big);
    vm.setUserMemoryRegion({ slot: 3, guestPhysAddr: 0x400000000n, memorySize: big, userspaceAddr: mem });
    expect(raw(0x400000000n, big)).toEqual([0, 0x400000000n + (1n << 30n), 4n * PAGE]);
    expect(raw(0x400000000n + (1n << 30n), 4n * PAGE)).toEqual([0, 0x400000000n + big, 0n]);
  });

  it("the mappings it installs keep the debug MMU invariants across a later host munmap (the notifier zaps them)", () => {
    expect(raw(BASE, TEST_SIZE)[0]).toBe(0);
    kvm.memory.munmap(hva, SZ_2M);
    expect(vm.debug.stats().mnActiveInvalidateCount).toBe(0);
    expect(kvm.core.debugCheckInvariants(vm.fd)).toBe(1);
    expect(raw(BASE, PAGE)[0]).toBe(-EFAULT);
  });

  it("the sptes it installs go with the zap of all a DELETE makes (KVM_X86_QUIRK_SLOT_ZAP_ALL), on every vCPU", () => {
    const other = vm.createVcpu(1);
    expect(raw(BASE, PAGE)[0]).toBe(0);
    expect(raw(BASE + 5n * PAGE, PAGE, 0n, other)[0]).toBe(0);
    expect(kvm.core.slotRmapCount(vm.fd, BASE >> 12n)).toBe(2); // slot 0's rmap: one spte per vCPU
    vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: 0n, memorySize: PAGE, userspaceAddr: kvm.memory.mmap(PAGE) });
    vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: 0n, memorySize: 0n, userspaceAddr: 0n });
    expect(kvm.core.slotRmapCount(vm.fd, BASE >> 12n)).toBe(0);
    expect(kvm.core.debugCheckInvariants(vm.fd)).toBe(1);
  });
});

describe("KVM_PRE_FAULT_MEMORY: pre_fault_memory_test's loop, shared and private", () => {
  /**
   * The selftest's pre_fault_memory(): call until done, failed for good or not
   * interrupted, asserting each call either shrank the range or failed
   * (never both, never neither); the final errno and what is left.
   */
  function selftestLoop(v: Vcpu, gpa: bigint, size: bigint): [number, bigint] {
    const buf = kvm_pre_fault_memory.encode({ gpa, size });
    for (;;) {
      const prev = kvm_pre_fault_memory.decode(buf).size;
      const r = v.ioctl(KVM_PRE_FAULT_MEMORY, buf);
      const left = kvm_pre_fault_memory.decode(buf).size;
      expect(left < prev !== r < 0).toBe(true);
      if (r < 0 && r !== -EINTR) return [-r, left];
      if (r >= 0 && left === 0n) return [0, left];
    }
  }

  for (const priv of [false, true]) {
    it(`${priv ? "private" : "shared"}: SZ_2M maps whole; SZ_2M + 2 pages leaves one page (ENOENT); TEST_SIZE + 1 page maps nothing (ENOENT)`, async () => {
      kvm = await openKvm({ config: { preFaultMemory: true, vmTypes: 0b11, memoryAttributes: true } });
      vm = kvm.createVm({ type: priv ? 1 : 0 });
      const h = kvm.memory.mmap(TEST_SIZE);
      if (priv) {
        const gmem = vm.createGuestMemfd({ size: TEST_SIZE });
        vm.setUserMemoryRegion2({ slot: 0, flags: KVM_MEM_GUEST_MEMFD, guestPhysAddr: BASE, memorySize: TEST_SIZE,
          userspaceAddr: h, guestMemfd: gmem, guestMemfdOffset: 0 });
        vm.setMemoryAttributes({ address: BASE, size: TEST_SIZE, attributes: 8 });
      } else {
        vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: BASE, memorySize: TEST_SIZE, userspaceAddr: h });
      }
      const v = vm.createVcpu(0);
      expect(selftestLoop(v, BASE, SZ_2M)).toEqual([0, 0n]);
      expect(selftestLoop(v, BASE + SZ_2M, 2n * PAGE)).toEqual([ENOENT, PAGE]);
      expect(selftestLoop(v, BASE + TEST_SIZE, PAGE)).toEqual([ENOENT, PAGE]);
    });
  }
});

describe("Vcpu.preFaultMemory", () => {
  beforeEach(() => setup(true));

  it("returns what is left of the range; throws KvmError naming the check when nothing was mapped", () => {
    expect(vcpu.preFaultMemory({ gpa: BASE, size: SZ_2M })).toEqual({ gpa: BASE + SZ_2M, size: 0n });
    expect(vcpu.preFaultMemory({ gpa: BASE + SZ_2M, size: 2n * PAGE })).toEqual({ gpa: BASE + SZ_2M + PAGE, size: PAGE });
    const err = (() => { try { vcpu.preFaultMemory({ gpa: BASE + TEST_SIZE, size: PAGE }); } catch (e) { return e; } })();
    expect(err).toBeInstanceOf(KvmError);
    expect((err as KvmError).code).toBe("ENOENT");
    expect((err as KvmError).message).toMatch(/KVM_PRE_FAULT_MEMORY: gpa 0x100201000 could not be mapped/);
    expect(() => vcpu.preFaultMemory({ gpa: BASE, size: PAGE, flags: 1n })).toThrow(/EINVAL: KVM_PRE_FAULT_MEMORY: flags 0x1 must be 0/);
    expect(() => vcpu.preFaultMemory({ gpa: -1n, size: PAGE })).toThrow(RangeError);
  });
});
