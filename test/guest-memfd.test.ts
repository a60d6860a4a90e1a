// guest_memfd, memory attributes and KVM_EXIT_MEMORY_FAULT (virt/kvm/guest_memfd.c),
// one test per rule. Guest accesses are single load/store instructions run by
// the conformance runner's guest, as in test/mmu.test.ts.
import { describe, it, expect, beforeEach } from "vitest";
import {
  Kvm, Vm, GuestMemfd, KvmError, KVM_CREATE_GUEST_MEMFD, KVM_SET_MEMORY_ATTRIBUTES, kvm_create_guest_memfd,
  kvm_memory_attributes, KVM_MEM_GUEST_MEMFD as GMEM, KVM_MEM_LOG_DIRTY_PAGES as LOG, GUEST_MEMFD_FLAG_MMAP as MMAP,
  GUEST_MEMFD_FLAG_INIT_SHARED as INIT_SHARED, KVM_MEMORY_ATTRIBUTE_PRIVATE as PRIVATE, FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE, KVM_MEMORY_EXIT_FLAG_PRIVATE,
} from "../src/index.js";
import { ScriptRunner } from "../src/conformance/index.js";
import { GMEM_STAT } from "../src/abi.gen.js";
import { openKvm, code, MiB } from "./helpers.js";

const PAGE = 0x1000n;
/** A host with software-protected VMs (type 1) and generic memory attributes. */
const PRIV = { config: { vmTypes: 0b11, memoryAttributes: true } };
/** The runner's first host mapping (conformance README: host memory layout). */
const A0 = 0x100000000000n + (1n << 30n);

/** The failing check's message, or "ok". */
function why(fn: () => unknown): string {
  try {
    fn();
    return "ok";
  } catch (e) {
    if (!(e instanceof KvmError)) throw e;
    return e.message;
  }
}

describe("KVM_CREATE_GUEST_MEMFD (kvm_gmem_create)", () => {
  let kvm: Kvm, vm: Vm;
  beforeEach(async () => {
    kvm = await openKvm(PRIV);
    vm = kvm.createVm();
  });

  it("flags: MMAP always, INIT_SHARED only for VMs without private memory, any other bit is EINVAL", () => {
    for (const flags of [0, 1, 2, 3]) expect(code(() => vm.createGuestMemfd({ size: PAGE, flags }))).toBe("ok");
    for (const flags of [4n, 1n << 32n, 1n << 63n]) {
      expect(why(() => vm.createGuestMemfd({ size: PAGE, flags }))).toMatch(/^EINVAL: .*flags .* are not supported/);
    }
    const pvm = kvm.createVm({ type: 1 });
    expect(code(() => pvm.createGuestMemfd({ size: PAGE, flags: MMAP }))).toBe("ok");
    expect(code(() => pvm.createGuestMemfd({ size: PAGE, flags: INIT_SHARED }))).toBe("EINVAL");
    expect(code(() => pvm.createGuestMemfd({ size: PAGE, flags: MMAP | INIT_SHARED }))).toBe("EINVAL");
    // KVM_CAP_GUEST_MEMFD_FLAGS says the same.
    expect(vm.checkExtension("guest_memfd_flags")).toBe(3);
    expect(pvm.checkExtension("guest_memfd_flags")).toBe(1);
    expect(kvm.checkExtension("guest_memfd_flags")).toBe(3);
    expect(vm.checkExtension("guest_memfd")).toBe(1);
  });

  it("size: positive as an s64 and page aligned; the largest aligned size is fine and nothing is allocated", () => {
    for (const size of [0n, 0x800n, 0x1001n, 1n << 63n, (1n << 64n) - 4096n]) {
      expect(why(() => vm.createGuestMemfd({ size }))).toMatch(/^EINVAL: .*size .* is not positive/);
    }
    const frames = kvm.memory.framesInUse;
    const heap = kvm.core.statHeapBytes();
    const files = [PAGE, 0x7ffffffffffff000n, 1n << 40n].map((size) => vm.createGuestMemfd({ size }));
    expect(files.map((f) => f.pagesAllocated)).toEqual([0, 0, 0]);
    expect(kvm.memory.framesInUse).toBe(frames);
    expect(Number(kvm.core.statHeapBytes() - heap)).toBeLessThan(4096);
  });

  it("exactly 64 bytes are read (EFAULT when shorter); reserved[6] is not checked", () => {
    const bytes = kvm_create_guest_memfd.encode({ size: PAGE, flags: 0 });
    expect(vm.ioctl(KVM_CREATE_GUEST_MEMFD, bytes.subarray(0, 63))).toBe(-14);
    bytes.fill(0xff, 16);
    const fd = vm.ioctl(KVM_CREATE_GUEST_MEMFD, bytes);
    expect(fd).toBeGreaterThanOrEqual(3);
    expect(kvm.core.gmemFileStat(fd, GMEM_STAT.SIZE)).toBe(PAGE);
  });

  it("every call makes a new file at the lowest free fd; the file takes no ioctls", () => {
    const a = vm.createGuestMemfd({ size: PAGE }), b = vm.createGuestMemfd({ size: PAGE });
    expect(b.fd).toBe(a.fd + 1);
    a.close();
    const c = vm.createGuestMemfd({ size: 2n * PAGE });
    expect(c.fd).toBe(a.fd);
    expect(c.size).toBe(2n * PAGE);
    expect(kvm.core.ioctl(c.fd, KVM_CREATE_GUEST_MEMFD, -1, 0n)).toBe(-25);
  });

  it("EMFILE when no fd is free", () => {
    const files: GuestMemfd[] = [];
    let err = "";
    for (let i = 0; i < 5000 && err === ""; i++) {
      try {
        files.push(vm.createGuestMemfd({ size: PAGE }));
      } catch (e) {
        err = (e as KvmError).code;
      }
    }
    expect(err).toBe("EMFILE");
    expect(files.length).toBeGreaterThan(4000);
    const live = kvm.core.statGmemFilesLive();
    for (const f of files) f.close();
    expect(kvm.core.statGmemFilesLive()).toBe(live - files.length);
  });
});

describe("the guest_memfd file (kvm_gmem_fops)", () => {
  let kvm: Kvm, vm: Vm;
  beforeEach(async () => {
    kvm = await openKvm();
    vm = kvm.createVm();
  });

  it("fallocate without KEEP_SIZE, or with a mode bit other than PUNCH_HOLE, is EOPNOTSUPP", () => {
    const g = vm.createGuestMemfd({ size: 16n * PAGE });
    for (const mode of [0, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 0x100 | FALLOC_FL_KEEP_SIZE]) {
      expect(code(() => g.fallocate(mode, 0, PAGE))).toBe("EOPNOTSUPP");
    }
  });

  it("fallocate offset and len must be page aligned; allocation stays inside the size, a hole may reach past it", () => {
    const size = 16n * PAGE;
    const g = vm.createGuestMemfd({ size });
    expect(code(() => g.allocate(0x800, PAGE))).toBe("EINVAL");
    expect(code(() => g.allocate(0, 0x800))).toBe("EINVAL");
    expect(code(() => g.punchHole(PAGE, 0x801))).toBe("EINVAL");
    expect(why(() => g.allocate(PAGE, size))).toMatch(/runs past the end of the file/);
    expect(code(() => g.allocate(0, size))).toBe("ok");
    expect(code(() => g.punchHole(size - PAGE, 1n << 30n))).toBe("ok");
    expect(code(() => g.punchHole(size * 4n, PAGE))).toBe("ok");
    // vfs_fallocate: a negative offset or an empty range is EINVAL, a loff_t overflow EFBIG.
    expect(code(() => g.punchHole(1n << 63n, PAGE))).toBe("EINVAL");
    expect(code(() => g.allocate(0, 0))).toBe("EINVAL");
    expect(code(() => g.punchHole((1n << 63n) - PAGE, 2n * PAGE))).toBe("EFBIG");
  });

  it("allocate gives the file zeroed pages up front; punch hole frees them", () => {
    const g = vm.createGuestMemfd({ size: 1n << 40n });
    const frames = kvm.memory.framesInUse;
    g.allocate(1n << 30n, 8n * PAGE);
    expect(g.pagesAllocated).toBe(8);
    expect(kvm.memory.framesInUse).toBe(frames + 8);
    expect(g.pagePresent((1n << 30n) + 3n * PAGE)).toBe(true);
    g.punchHole((1n << 30n) + 2n * PAGE, 4n * PAGE);
    expect(g.pagesAllocated).toBe(4);
    expect(g.pagePresent((1n << 30n) + 3n * PAGE)).toBe(false);
    g.close();
    expect(kvm.memory.framesInUse).toBe(frames);
  });

  it("ftruncate (any attribute change) and read/write are EINVAL; a closed file is EBADF", () => {
    const g = vm.createGuestMemfd({ size: PAGE });
    expect(why(() => g.truncate(2n * PAGE))).toMatch(/^EINVAL: .*cannot change/);
    expect(kvm.core.gmemReadWrite(g.fd)).toBe(-22);
    expect(kvm.core.gmemFallocate(vm.fd, FALLOC_FL_KEEP_SIZE, 0n, PAGE)).toBe(-19); // not a guest_memfd
    g.close();
    expect(code(() => g.allocate(0, PAGE))).toBe("EBADF");
    expect(kvm.core.gmemTruncate(g.fd, PAGE)).toBe(-9);
  });

  it("mmap: ENODEV without GUEST_MEMFD_FLAG_MMAP, EINVAL unless MAP_SHARED", () => {
    const plain = vm.createGuestMemfd({ size: PAGE });
    expect(why(() => plain.mmap())).toMatch(/^ENODEV: .*GUEST_MEMFD_FLAG_MMAP/);
    expect(code(() => plain.mmap({ shared: false }))).toBe("ENODEV");
    const m = vm.createGuestMemfd({ size: PAGE, flags: MMAP });
    expect(why(() => m.mmap({ shared: false }))).toMatch(/^EINVAL: .*MAP_SHARED/);
    expect(code(() => m.mmap({ offset: 0x800 }))).toBe("EINVAL");
    expect(typeof m.mmap()).toBe("bigint");
  });

  it("host faults: zero-filled file pages shared by every mapping; past the end or without INIT_SHARED is EFAULT (SIGBUS)", () => {
    const g = vm.createGuestMemfd({ size: 2n * PAGE, flags: MMAP | INIT_SHARED });
    const hva = g.mmap({ length: 4n * PAGE });
    expect(kvm.memory.peek(hva + PAGE, 8)).toBe(0n);
    kvm.memory.poke(hva + PAGE + 8n, 0x1234n, 4);
    expect(g.pagesAllocated).toBe(1);
    const second = g.mmap({ offset: PAGE, length: PAGE });
    expect(kvm.memory.peek(second + 8n, 4)).toBe(0x1234n);
    expect(why(() => kvm.memory.peek(hva + 2n * PAGE))).toMatch(/^EFAULT: .*past the end of the file/);
    const noShared = vm.createGuestMemfd({ size: PAGE, flags: MMAP });
    const h2 = noShared.mmap();
    expect(code(() => kvm.memory.peek(h2))).toBe("EFAULT");
    expect(noShared.pagesAllocated).toBe(0);
  });

  it("punch hole unmaps the pages from the host too: the next access sees a fresh zero page", () => {
    const g = vm.createGuestMemfd({ size: 4n * PAGE, flags: MMAP | INIT_SHARED });
    const hva = g.mmap();
    kvm.memory.poke(hva + 2n * PAGE, 0xabcdn);
    g.punchHole(2n * PAGE, PAGE);
    expect(g.pagesAllocated).toBe(0);
    expect(kvm.memory.peek(hva + 2n * PAGE)).toBe(0n);
    expect(g.pagesAllocated).toBe(1);
  });

  it("a mapping keeps the file alive after close; the last munmap releases it", () => {
    const live = kvm.core.statGmemFilesLive();
    const g = vm.createGuestMemfd({ size: 4n * PAGE, flags: MMAP | INIT_SHARED });
    const hva = g.mmap();
    kvm.memory.mprotect(hva + PAGE, PAGE, "r"); // splits the mapping: both parts hold the file
    kvm.memory.poke(hva + 3n * PAGE, 7n);
    g.close();
    expect(kvm.core.statGmemFilesLive()).toBe(live + 1);
    expect(kvm.memory.peek(hva + 3n * PAGE)).toBe(7n);
    kvm.memory.munmap(hva, 2n * PAGE);
    expect(kvm.core.statGmemFilesLive()).toBe(live + 1);
    kvm.memory.munmap(hva + 2n * PAGE, 2n * PAGE);
    expect(kvm.core.statGmemFilesLive()).toBe(live);
  });
});

describe("binding to a memslot (kvm_gmem_bind)", () => {
  let kvm: Kvm, vm: Vm, hva: bigint, g: GuestMemfd;
  const region = (slot: number, gpa: bigint, size: bigint, fd: number | GuestMemfd, off: bigint, flags = GMEM) =>
    () => vm.setUserMemoryRegion2({ slot, flags, guestPhysAddr: gpa, memorySize: size, userspaceAddr: hva,
      guestMemfd: fd, guestMemfdOffset: off });
  beforeEach(async () => {
    kvm = await openKvm();
    vm = kvm.createVm();
    hva = kvm.memory.mmap(MiB);
    g = vm.createGuestMemfd({ size: MiB });
  });

  it("checks in order: EBADF, not a guest_memfd, another VM's file, offset range, overlap", () => {
    expect(why(region(0, 0n, 16n * PAGE, -1, 2n * MiB))).toMatch(/^EBADF: .*not an open file descriptor/);
    expect(code(region(0, 0n, 16n * PAGE, 999, 0n))).toBe("EBADF");
    expect(why(region(0, 0n, 16n * PAGE, vm.fd, 2n * MiB))).toMatch(/^EINVAL: .*is not a guest_memfd/);
    const vcpu = vm.createVcpu(0);
    expect(code(region(0, 0n, 16n * PAGE, vcpu.fd, 0n))).toBe("EINVAL");
    const other = kvm.createVm().createGuestMemfd({ size: MiB });
    expect(why(region(0, 0n, 16n * PAGE, other, 2n * MiB))).toMatch(/^EINVAL: .*created by another VM/);
    expect(why(region(0, 0n, 16n * PAGE, g, 1n << 63n))).toMatch(/^EINVAL: .*does not fit the file/);
    expect(code(region(0, 0n, 16n * PAGE, g, MiB))).toBe("EINVAL");
    expect(code(region(0, 0n, 16n * PAGE, g, 0n))).toBe("ok");
    expect(why(region(1, 0x10000n, 16n * PAGE, g, 0x8000n))).toMatch(/^EINVAL: .*already bound to another slot/);
    expect(code(region(1, 0x10000n, 16n * PAGE, g, 0x10000n))).toBe("ok"); // adjacent
    expect(g.bindings).toBe(2);
    expect(vm.memslots()).toHaveLength(2);
  });

  it("the generic checks and the overlap check come before the bind", () => {
    expect(why(region(0, 0n, 16n * PAGE, -1, 0x800n))).toMatch(/^EINVAL: .*guest_memfd_offset 0x800 is not page aligned/); // __kvm_set_memory_region's alignment check
    expect(code(region(0, 0n, 16n * PAGE, g, 0n))).toBe("ok");
    expect(code(region(1, 0x8000n, 16n * PAGE, -1, 0n))).toBe("EEXIST");
    expect(code(region(1, 0n, 16n * PAGE, g, 0n, GMEM | LOG))).toBe("EINVAL");
  });

  it("an end exactly at the file size is accepted, one page more is EINVAL", () => {
    expect(code(region(0, 0n, 16n * PAGE, g, 0xf0000n))).toBe("ok");
    expect(code(region(1, 0x100000n, 17n * PAGE, g, 0xef000n))).toBe("EINVAL");
    const big = vm.createGuestMemfd({ size: 0x7ffffffffffff000n });
    expect(code(region(2, 0x200000n, PAGE, big, 0x7ffffffffffff000n - PAGE))).toBe("ok"); // its last page
  });

  it("the end is an s64 that wraps: from 2^63 on it is negative and the bind succeeds, recording those pages", () => {
    expect(code(region(0, 0n, PAGE, g, 0x7fffffffffffe000n))).toBe("EINVAL"); // end 2^63 - 4096: no wrap
    expect(code(region(0, 0n, PAGE, g, 0x7ffffffffffff000n))).toBe("ok"); // end 2^63: wraps
    expect(code(region(1, 0x10000n, 2n * PAGE, g, 0x7ffffffffffff000n))).toBe("EINVAL"); // those pages are bound
    expect(code(region(1, 0x10000n, 2n * PAGE, g, 0x7fffffffffffe000n))).toBe("EINVAL"); // overlaps one of them
    expect(code(region(1, 0x10000n, 2n * PAGE, g, 0x8000000000000000n))).toBe("EINVAL"); // negative offset
    expect(code(region(0, 0n, 0n, -1, 0n, 0))).toBe("ok");
    expect(code(region(1, 0x10000n, 2n * PAGE, g, 0x7ffffffffffff000n))).toBe("ok"); // two pages, end 2^63 + 4096
    const big = vm.createGuestMemfd({ size: 0x7ffffffffffff000n });
    expect(code(region(2, 0x20000n, PAGE, big, 0x7ffffffffffff000n))).toBe("ok"); // a page past its end: wraps too
  });

  it("files of every flag bind alike; ranges of one file may share it among slots and cover it together", () => {
    expect(code(region(0, 0n, MiB / 2n, g, 0n))).toBe("ok");
    expect(code(region(1, MiB, MiB / 2n, g, MiB / 2n))).toBe("ok");
    for (const flags of [MMAP, INIT_SHARED, MMAP | INIT_SHARED]) {
      const f = vm.createGuestMemfd({ size: PAGE, flags });
      expect(code(region(2 + flags, BigInt(flags) << 24n, PAGE, f, 0n))).toBe("ok");
    }
    expect(vm.memslots().every((s) => s.flags === GMEM)).toBe(true);
  });

  it("a guest_memfd slot is immutable: identical re-issue, dropping the flag, moving, v1 changes are EINVAL", () => {
    expect(code(region(0, 0n, 16n * PAGE, g, 0n))).toBe("ok");
    const gen = vm.generation();
    expect(why(region(0, 0n, 16n * PAGE, g, 0n))).toMatch(/cannot be modified with KVM_MEM_GUEST_MEMFD/);
    expect(code(region(0, 0n, 16n * PAGE, g, 0n, 0))).toBe("EINVAL");
    expect(code(region(0, 0x100000n, 16n * PAGE, g, 0n))).toBe("EINVAL");
    expect(code(() => vm.setUserMemoryRegion({ slot: 0, flags: LOG, guestPhysAddr: 0, memorySize: 16n * PAGE, userspaceAddr: hva }))).toBe("EINVAL");
    g.close();
    expect(code(region(0, 0n, 16n * PAGE, -1, 0n))).toBe("EINVAL"); // even with a closed file
    expect(vm.generation()).toBe(gen);
  });

  it("DELETE unbinds at commit (REGION2 or v1): the range binds again; a delete never looks at the fd", () => {
    expect(code(region(0, 0n, 16n * PAGE, g, 0n))).toBe("ok");
    expect(code(region(0, 0n, 0n, 12345, 0x800n))).toBe("EINVAL"); // unaligned offset still checked
    expect(code(region(0, 0n, 0n, 12345, 0n))).toBe("ok");
    expect(g.bindings).toBe(0);
    expect(code(region(1, 0x40000n, 16n * PAGE, g, 0n))).toBe("ok");
    expect(code(() => vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: 0, memorySize: 0, userspaceAddr: 0 }))).toBe("ok");
    expect(code(region(2, 0x80000n, 16n * PAGE, g, 0n))).toBe("ok");
    expect(g.bindings).toBe(1);
  });

  it("a create that fails after the bind unbinds again: the GPA limit, an arch-prepare failure", () => {
    const high = 1n << 52n;
    expect(code(region(0, high, PAGE, -1, 0n))).toBe("EBADF"); // the bind comes before the limit
    expect(why(region(0, high, PAGE, g, 0n))).toMatch(/largest guest frame/);
    expect(g.bindings).toBe(0);
    vm.debug.injectFault("arch_prepare", 12);
    expect(code(region(0, 0n, PAGE, g, 0n))).toBe("ENOMEM");
    expect(g.bindings).toBe(0);
    expect(code(region(0, 0n, PAGE, g, 0n))).toBe("ok");
    expect(g.bindings).toBe(1);
  });

  it("a file outlives its slots and its VM, and stays that VM's: a new VM cannot bind it", () => {
    expect(code(region(0, 0n, 16n * PAGE, g, 0n))).toBe("ok");
    g.allocate(0, 4n * PAGE);
    vm.close();
    expect(g.bindings).toBe(0);
    expect(g.pagesAllocated).toBe(4);
    g.punchHole(0, 2n * PAGE);
    expect(g.pagesAllocated).toBe(2);
    vm = kvm.createVm(); // may reuse the old VM's fd and memory
    expect(why(region(0, 0n, 16n * PAGE, g, 0n))).toMatch(/created by another VM/);
    const live = kvm.core.statGmemFilesLive();
    g.close();
    expect(kvm.core.statGmemFilesLive()).toBe(live - 1);
  });

  it("closing the file detaches its slots: they stay, refuse modification, delete normally; binding the fd is EBADF", () => {
    expect(code(region(0, 0n, 16n * PAGE, g, 0n))).toBe("ok");
    const fd = g.fd;
    g.close();
    expect(vm.memslots().map((s) => [s.id, s.flags])).toEqual([[0, GMEM]]);
    expect(code(() => vm.setUserMemoryRegion({ slot: 0, flags: LOG, guestPhysAddr: 0, memorySize: 16n * PAGE, userspaceAddr: hva }))).toBe("EINVAL");
    expect(code(region(1, 0x40000n, 16n * PAGE, fd, 0n))).toBe("EBADF");
    expect(code(() => vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0, memorySize: 0, userspaceAddr: 0 }))).toBe("ok");
    expect(vm.memslots()).toEqual([]);
  });
});

describe("guest_memfd-backed guest memory (default VM)", () => {
  let kvm: Kvm, r: ScriptRunner;
  const op = (line: string) => r.line(line);
  beforeEach(async () => {
    kvm = await openKvm();
    r = new ScriptRunner(kvm);
    for (const l of ["vm", "hostmap A 0x100000", "gmem G 0x100000 0", "gmem M 0x100000 3", "vcpu"]) expect(op(l)).toBe("ok");
  });
  const check = () => expect(kvm.core.debugCheckInvariants(r.currentVm!.fd)).toBeTruthy();

  it("a slot of an MMAP file (GMEM_ONLY) is served from the file, not from userspace_addr", () => {
    expect(op("set2 0 4 0x0 0x10000 A+0 M 0x20000")).toBe("ok");
    expect(op("write 0x3008 0x5a5a")).toBe("ok");
    expect(op("read 0x3008")).toBe("ok 0x5a5a");
    expect(op("peek A+0x3008")).toBe("ok 0x0");
    const m = r.guestMemfd("M")!;
    expect(m.pagePresent(0x23000)).toBe(true);
    const hva = m.mmap();
    expect(kvm.memory.peek(hva + 0x23008n)).toBe(0x5a5an);
    kvm.memory.poke(hva + 0x24000n, 0x77n);
    expect(op("read 0x4000")).toBe("ok 0x77");
    check();
  });

  it("a slot of a plain file serves shared accesses from userspace_addr", () => {
    expect(op("set2 0 4 0x0 0x10000 A+0 G 0")).toBe("ok");
    expect(op("write 0x3000 0x99")).toBe("ok");
    expect(op("peek A+0x3000")).toBe("ok 0x99");
    expect(r.guestMemfd("G")!.pagesAllocated).toBe(0);
    check();
  });

  it("once the file is released, an access that needs it fails with EFAULT and a memory fault (flags 0)", () => {
    expect(op("set2 0 4 0x0 0x10000 A+0 M 0")).toBe("ok");
    expect(op("set2 1 4 0x10000 0x10000 A+0x10000 G 0")).toBe("ok");
    expect(op("write 0x2000 1")).toBe("ok");
    expect(op("gmemclose M")).toBe("ok");
    expect(op("read 0x2000")).toBe("EFAULT memory_fault gpa=0x2000 size=0x1000 flags=0x0");
    expect(op("gmemclose G")).toBe("ok");
    expect(op("read 0x12000")).toBe("ok 0x0"); // shared, from userspace_addr: no file needed
    check();
    expect(op("set 0 0 0 0 0")).toBe("ok");
    expect(op("read 0x2000")).toBe("mmio read 0x2000 4; ok 0x0");
  });

  it("a mapping keeps the file (and its bindings) after close; unmapping releases it", () => {
    expect(op("set2 0 4 0x0 0x10000 A+0 M 0")).toBe("ok");
    const m = r.guestMemfd("M")!;
    const hva = m.mmap({ length: 0x10000n });
    expect(op("write 0x1000 0x31")).toBe("ok");
    expect(op("gmemclose M")).toBe("ok");
    expect(op("read 0x1000")).toBe("ok 0x31");
    kvm.memory.munmap(hva, 0x10000n);
    expect(op("read 0x1000")).toBe("EFAULT memory_fault gpa=0x1000 size=0x1000 flags=0x0");
  });

  it("punch hole zaps the guest's mappings of the range first: the guest then reads a fresh zero page", () => {
    expect(op("set2 0 4 0x0 0x10000 A+0 M 0x8000")).toBe("ok");
    expect(op("write 0x1000 0x42")).toBe("ok");
    expect(op("write 0x2000 0x43")).toBe("ok");
    expect(kvm.core.slotRmapCount(r.currentVm!.fd, 0n)).toBeGreaterThanOrEqual(2);
    r.guestMemfd("M")!.punchHole(0x9000, 0x1000); // gfn 1 only
    check();
    expect(op("read 0x1000")).toBe("ok 0x0");
    expect(op("read 0x2000")).toBe("ok 0x43");
  });

  it("a binding past 2^63 (the s64 wrap) serves guest pages from file indices near 2^51", () => {
    expect(op("set2 0 4 0x0 0x2000 A+0 M 0x7ffffffffffff000")).toBe("ok");
    expect(op("write 0x1000 0x1234")).toBe("ok");
    expect(op("read 0x1000")).toBe("ok 0x1234");
    expect(r.guestMemfd("M")!.pagePresent(0x8000000000000000n)).toBe(true);
    check();
  });
});

describe("KVM_SET_MEMORY_ATTRIBUTES (kvm_vm_ioctl_set_mem_attributes)", () => {
  let kvm: Kvm, vm: Vm;
  const attrs = (address: bigint, size: bigint, attributes: bigint | number = PRIVATE, flags: bigint | number = 0) =>
    () => vm.setMemoryAttributes({ address, size, attributes, flags });
  beforeEach(async () => {
    kvm = await openKvm(PRIV);
    vm = kvm.createVm({ type: 1 });
  });

  it("exists only when memory attributes are configured (ENOTTY otherwise); KVM_CAP_MEMORY_ATTRIBUTES agrees", async () => {
    const plain = await openKvm();
    const pvm = plain.createVm();
    expect(code(() => pvm.setMemoryAttributes({ address: 0, size: PAGE, attributes: 0 }))).toBe("ENOTTY");
    expect(plain.checkExtension("memory_attributes")).toBe(0);
    expect(pvm.checkExtension("memory_attributes")).toBe(0);
    expect(kvm.checkExtension("memory_attributes")).toBe(PRIVATE);
    expect(vm.checkExtension("memory_attributes")).toBe(PRIVATE);
    expect(kvm.createVm().checkExtension("memory_attributes")).toBe(0);
    expect(kvm.checkExtension("vm_types")).toBe(3);
  });

  it("errnos in order: EFAULT (32 bytes), flags, unsupported attributes, empty or wrapping range, alignment", () => {
    expect(vm.ioctl(KVM_SET_MEMORY_ATTRIBUTES, new Uint8Array(31))).toBe(-14);
    expect(why(attrs(0x800n, 0n, 1, 1))).toMatch(/flags 0x1 must be 0/);
    expect(why(attrs(0x800n, 0n, 1))).toMatch(/attributes 0x1 are not supported/);
    expect(code(attrs(0n, PAGE, PRIVATE | 4))).toBe("EINVAL");
    expect(why(attrs(0x800n, 0n))).toMatch(/is empty or wraps/);
    expect(code(attrs(0xfffffffffffff000n, PAGE))).toBe("EINVAL"); // address + size wraps to 0
    expect(why(attrs(0x800n, PAGE))).toMatch(/not page aligned/);
    expect(code(attrs(0n, 0x800n))).toBe("EINVAL");
    expect(code(attrs(0xffffffffffffe000n, PAGE))).toBe("ok");
    expect(vm.memoryAttributes(0xffffffffffffen)).toBe(BigInt(PRIVATE));
  });

  it("a VM without private memory takes only 0, which is always a no-op", () => {
    const dvm = kvm.createVm();
    expect(code(() => dvm.setMemoryAttributes({ address: 0, size: PAGE, attributes: PRIVATE }))).toBe("EINVAL");
    const seq = dvm.debug.stats().mmuInvalidateSeq;
    expect(code(() => dvm.setMemoryAttributes({ address: 0, size: 1n << 40n, attributes: 0 }))).toBe("ok");
    expect(dvm.debug.stats().mmuInvalidateSeq).toBe(seq);
    expect(dvm.debug.attributeRanges()).toBe(0);
  });

  it("attributes are per gfn and VM-wide, without slots; the call replaces a range's value; equal neighbours merge", () => {
    attrs(0x10000n, 0x4000n)();
    attrs(0x14000n, 0x2000n)();
    expect(vm.debug.attributeRanges()).toBe(1);
    expect([0xfn, 0x10n, 0x15n, 0x16n].map((g) => vm.memoryAttributes(g))).toEqual([0n, 8n, 8n, 0n]);
    attrs(0x12000n, PAGE, 0)(); // punch a shared gfn in the middle
    expect(vm.debug.attributeRanges()).toBe(2);
    expect([0x11n, 0x12n, 0x13n].map((g) => vm.memoryAttributes(g))).toEqual([8n, 0n, 8n]);
    attrs(0x8000n, 0x20000n, 0)();
    expect(vm.debug.attributeRanges()).toBe(0);
  });

  it("attributes survive memslot deletion and creation", () => {
    const hva = kvm.memory.mmap(0x10000);
    vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0, memorySize: 0x10000, userspaceAddr: hva });
    attrs(0x3000n, PAGE)();
    vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0, memorySize: 0, userspaceAddr: 0 });
    expect(vm.memoryAttributes(3)).toBe(8n);
    vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: 0, memorySize: 0x10000, userspaceAddr: hva });
    expect(vm.memoryAttributes(3)).toBe(8n);
  });

  it("a change zaps the mappings of intersecting slots inside one invalidation (seq + 1); the generation stays; a no-op does nothing", () => {
    const r = new ScriptRunner(kvm);
    const op = (l: string) => r.line(l);
    for (const l of ["vm 1", "hostmap A 0x100000", "set 0 0 0x0 0x10000 A+0", "set 1 0 0x10000 0x10000 A+0x10000"]) expect(op(l)).toBe("ok");
    const v = r.currentVm!;
    for (const gpa of ["0x1000", "0x2000", "0x11000"]) expect(op(`read ${gpa}`)).toBe("ok 0x0");
    const gen = v.generation(), seq = v.debug.stats().mmuInvalidateSeq;
    expect(kvm.core.slotRmapCount(v.fd, 0n)).toBe(2);
    v.setMemoryAttributes({ address: 0x2000, size: 0x10000, attributes: PRIVATE }); // gfns 2..0x11
    expect(kvm.core.slotRmapCount(v.fd, 0n)).toBe(1);
    expect(kvm.core.slotRmapCount(v.fd, 0x10n)).toBe(0);
    expect(v.debug.stats().mmuInvalidateSeq).toBe(seq + 1n);
    expect(v.generation()).toBe(gen);
    v.setMemoryAttributes({ address: 0x3000, size: 0x2000, attributes: PRIVATE }); // already private
    expect(v.debug.stats().mmuInvalidateSeq).toBe(seq + 1n);
    v.setMemoryAttributes({ address: 0x100000, size: 0x1000, attributes: PRIVATE }); // no slot there: no invalidation
    expect(v.debug.stats().mmuInvalidateSeq).toBe(seq + 1n);
    expect(v.debug.stats().mnActiveInvalidateCount).toBe(0);
    r.close();
  });
});

describe("private memory in the fault path (kvm_mmu_faultin_pfn_private, software-protected VM)", () => {
  let kvm: Kvm, r: ScriptRunner, vm: Vm;
  const op = (line: string) => r.line(line);
  const convert = (gpa: bigint, size: bigint, attributes: number) => {
    vm.setMemoryAttributes({ address: gpa, size, attributes });
    expect(kvm.core.debugCheckInvariants(vm.fd)).toBeTruthy();
  };
  beforeEach(async () => {
    kvm = await openKvm(PRIV);
    r = new ScriptRunner(kvm);
    for (const l of ["vm 1", "hostmap A 0x100000", "gmem G 0x100000 0", "vcpu"]) expect(op(l)).toBe("ok");
    vm = r.currentVm!;
  });

  it("converting a page the guest uses switches its backing: private = the file's page, shared = the hva", () => {
    expect(op("set2 0 4 0x0 0x10000 A+0 G 0")).toBe("ok");
    expect(op("write 0x3000 0x11")).toBe("ok");
    expect(op("peek A+0x3000")).toBe("ok 0x11");
    convert(0x3000n, PAGE, PRIVATE);
    expect(op("read 0x3000")).toBe("ok 0x0"); // a zero-filled file page
    expect(op("write 0x3000 0x22")).toBe("ok");
    expect(op("read 0x3000")).toBe("ok 0x22");
    expect(op("peek A+0x3000")).toBe("ok 0x11");
    expect(r.guestMemfd("G")!.pagePresent(0x3000)).toBe(true);
    convert(0x3000n, PAGE, 0);
    expect(op("read 0x3000")).toBe("ok 0x11");
    convert(0x3000n, PAGE, PRIVATE);
    expect(op("read 0x3000")).toBe("ok 0x22");
    expect(op("read 0x4000")).toBe("ok 0x0"); // neighbours stay shared
    expect(r.guestMemfd("G")!.pagePresent(0x4000)).toBe(false);
  });

  it("punching a private page's hole zeroes what the guest sees", () => {
    expect(op("set2 0 4 0x0 0x10000 A+0 G 0x40000")).toBe("ok");
    convert(0n, 0x10000n, PRIVATE);
    expect(op("write 0x5000 0xfeed")).toBe("ok");
    r.guestMemfd("G")!.punchHole(0x45000, PAGE);
    expect(kvm.core.debugCheckInvariants(vm.fd)).toBeTruthy();
    expect(op("read 0x5000")).toBe("ok 0x0");
  });

  it("a private gfn without a slot exits with a memory fault flagged PRIVATE; shared again, it is MMIO", () => {
    convert(0x200000n, PAGE, PRIVATE);
    expect(op("read 0x200010")).toBe(`EFAULT memory_fault gpa=0x200000 size=0x1000 flags=0x${KVM_MEMORY_EXIT_FLAG_PRIVATE.toString(16)}`);
    expect(vm.memslots()).toHaveLength(1); // the runner's code slot only
    convert(0x200000n, PAGE, 0);
    expect(op("read 0x200010")).toBe("mmio read 0x200010 4; ok 0x0");
  });

  it("a private gfn in a slot without guest_memfd exits; after converting it back, re-running does the access", () => {
    expect(op("set 1 0 0x20000 0x10000 A+0x20000")).toBe("ok");
    expect(op("poke A+0x21000 0x66")).toBe("ok");
    convert(0x21000n, PAGE, PRIVATE);
    const vcpu = r.currentVcpu!;
    vcpu.setReg(10, 0x21000n);
    vcpu.setReg(17, 0x52554e52n);
    vcpu.pc = 0xfff00000n + 0x20n + 16n; // the runner's 4-byte load
    const exit = vcpu.run();
    expect([exit.name, exit.errno]).toEqual(["memory_fault", 14]);
    expect(vcpu.kvmRun.memoryFault).toEqual({ flags: 8n, gpa: 0x21000n, size: PAGE });
    convert(0x21000n, PAGE, 0);
    expect(vcpu.run().name).toBe("riscv_sbi"); // the same load, retried: done
    expect(vcpu.getReg(10)).toBe(0x66n);
  });

  it("after the file is closed, private accesses exit (PRIVATE) and shared ones of the slot still use the hva", () => {
    expect(op("set2 0 4 0x0 0x10000 A+0 G 0")).toBe("ok");
    convert(0x1000n, PAGE, PRIVATE);
    expect(op("write 0x1000 5")).toBe("ok");
    expect(op("gmemclose G")).toBe("ok");
    expect(op("read 0x1000")).toBe("EFAULT memory_fault gpa=0x1000 size=0x1000 flags=0x8");
    expect(op("poke A+0x2000 9")).toBe("ok");
    expect(op("read 0x2000")).toBe("ok 0x9");
  });

  it("a failing guest_memfd allocation fails KVM_RUN with its errno (ENOMEM) and fills memory_fault", () => {
    expect(op("set2 0 4 0x0 0x10000 A+0 G 0")).toBe("ok");
    convert(0x5000n, PAGE, PRIVATE);
    const vcpu = r.currentVcpu!;
    vcpu.setReg(10, 0x5000n);
    vcpu.setReg(17, 0x52554e52n);
    vcpu.pc = 0xfff00000n + 0x20n + 16n;
    vm.debug.injectFault("frame", 12);
    expect(code(() => vcpu.run())).toBe("ENOMEM");
    expect(vcpu.kvmRun.exitReason).toBe(39);
    expect(vcpu.kvmRun.memoryFault).toEqual({ flags: 8n, gpa: 0x5000n, size: PAGE });
    expect(vcpu.run().name).toBe("riscv_sbi");
    expect(vcpu.getReg(10)).toBe(0n);
  });

  it("a slot of an MMAP file serves shared and private gfns alike from the file", () => {
    expect(op("gmem M 0x100000 1")).toBe("ok");
    expect(op("set2 0 4 0x0 0x10000 A+0 M 0")).toBe("ok");
    expect(op("write 0x1000 0x71")).toBe("ok");
    convert(0x1000n, PAGE, PRIVATE);
    expect(op("read 0x1000")).toBe("ok 0x71"); // the same file page either way
    expect(op("peek A+0x1000")).toBe("ok 0x0");
  });

  it("a private write that would need emulation (a write-tracked gfn) exits instead", () => {
    expect(op("set2 0 4 0x0 0x10000 A+0 G 0")).toBe("ok");
    const writes: bigint[] = [];
    vm.pageTrack.register({ trackWrite: (gpa) => { writes.push(gpa); } });
    vm.pageTrack.addWriteTracking(3);
    expect(op("write 0x3000 1")).toBe("ok"); // shared: emulated and reported
    expect(writes).toEqual([0x3000n]);
    convert(0x3000n, PAGE, PRIVATE);
    expect(op("write 0x3000 2")).toBe("EFAULT memory_fault gpa=0x3000 size=0x1000 flags=0x8");
    expect(op("read 0x3000")).toBe("ok 0x0");
    expect(writes).toHaveLength(1);
  });
});

describe("the private/shared mismatch exit (kvm_mmu_prepare_memory_fault_exit)", () => {
  it("on an SNP-type VM (no C-bit in this CPU: every access is shared) a private gfn exits with flags 0", async () => {
    const kvm = await openKvm({ config: { vmTypes: 0b10001, memoryAttributes: true } });
    const r = new ScriptRunner(kvm);
    const op = (l: string) => r.line(l);
    for (const l of ["vm 4", "hostmap A 0x100000", "gmem G 0x100000 0", "set2 0 4 0x0 0x10000 A+0 G 0"]) expect(op(l)).toBe("ok");
    r.currentVm!.setMemoryAttributes({ address: 0x2000, size: PAGE, attributes: PRIVATE });
    expect(op("read 0x2000")).toBe("EFAULT memory_fault gpa=0x2000 size=0x1000 flags=0x0");
    expect(op("read 0x3000")).toBe("ok 0x0");
    r.close();
  });
});

describe("raw ioctls", () => {
  it("KVM_SET_MEMORY_ATTRIBUTES takes the kernel's 32-byte struct", async () => {
    const kvm = await openKvm(PRIV);
    const vm = kvm.createVm({ type: 1 });
    expect(vm.ioctl(KVM_SET_MEMORY_ATTRIBUTES, kvm_memory_attributes.encode({ address: 0x5000, size: 0x2000, attributes: PRIVATE }))).toBe(0);
    expect([4n, 5n, 6n, 7n].map((g) => vm.memoryAttributes(g))).toEqual([0n, 8n, 8n, 0n]);
  });
});
