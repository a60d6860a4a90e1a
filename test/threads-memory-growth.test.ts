// Issue 16: a memory-growth failure on one thread of a threads-core process is
// an error on that call, never a trap that leaves the shared memory's locks
// held. The process runs over a shared memory with a small maximum
// (Kvm.open's maximumMemory); a memslot update with dirty logging whose bitmap
// the memory cannot hold must fail with ENOMEM (check ALLOC_BITMAP), leave the
// heap lock free, and leave both threads working: a memslot update, a KVM_RUN,
// closing the VM. Bounded by the guests' own exits and by kicks, never by time.

import { describe, it, expect } from "vitest";
import { Worker } from "node:worker_threads";
import { Kvm, KvmError, VcpuThread, KVM_EXIT, KVM_MEM_LOG_DIRTY_PAGES, CHECK, ERRNO } from "../src/index.js";
import { ecall, jal } from "./cpu/asm.js";
import { vmWithCode, inGuestMode, WORKER } from "./threads-helpers.js";
import { code } from "./helpers.js";

/** 32 MiB: the metadata and frames of one small VM fit, a 1 TiB slot's dirty bitmap (32 MiB) does not. */
const MAX_PAGES = 512;
const HEAP_LOCK = 7; // debugLockWord: the process's heap lock word
/** A slot of 2^28 pages at an hva nothing maps (KVM checks only the range). */
const HUGE = { slot: 5, guestPhysAddr: 1n << 44n, memorySize: 1n << 40n, userspaceAddr: 1n << 44n };
const small = (kvm: Kvm, slot: number) =>
  ({ slot, guestPhysAddr: 0x40000000n + BigInt(slot) * 0x100000n, memorySize: 0x4000n, userspaceAddr: kvm.memory.mmap(0x4000n) });

async function open(): Promise<Kvm> {
  const kvm = await Kvm.open({ core: "threads", maximumMemory: MAX_PAGES });
  expect(kvm.core.isThreadsBuild()).toBe(1);
  return kvm;
}

/** The guest: an SBI call, then a loop only a kick ends. */
const CODE = [ecall(), jal(0, 0)];

describe("threads core: a memory-growth failure is an error on that call", () => {
  it("Kvm.open's maximumMemory is the shared memory's maximum, and needs the threads core", async () => {
    const kvm = await open();
    expect(() => kvm.core.memory.grow(MAX_PAGES)).toThrow(RangeError);
    await expect(Kvm.open({ core: "debug", maximumMemory: MAX_PAGES })).rejects.toThrow(/threads core/);
    await expect(Kvm.open({ core: "threads", maximumMemory: 1 })).rejects.toThrow(RangeError);
  });

  it("at the maximum, a request the heap's free blocks can hold still succeeds: only one that needs growth fails", async () => {
    const kvm = await open();
    const { vm, vcpus } = vmWithCode(kvm, CODE, 1);
    // 4 MiB of the heap freed again, then every page left taken by host memory frames.
    kvm.core.kmfree(kvm.core.kmalloc(4 << 20));
    const hva = kvm.memory.mmap(BigInt(MAX_PAGES) << 16n);
    let pages = 0;
    for (; pages < MAX_PAGES * 16; pages++) if (code(() => kvm.memory.poke(hva + BigInt(pages) * 4096n, 1n)) !== "ok") break;
    expect(pages).toBeLessThan(MAX_PAGES * 16); // the frames ran out (a failed copy to user memory: EFAULT)
    const room = MAX_PAGES - kvm.core.memory.buffer.byteLength / 65536;
    expect(room).toBeLessThan(16); // less than the 2 MiB below would need to grow
    const p = kvm.core.kmalloc(2 << 20);
    expect(p).not.toBe(0);
    kvm.core.kmfree(p);
    expect(code(() => vm.setUserMemoryRegion({ ...HUGE, flags: KVM_MEM_LOG_DIRTY_PAGES }))).toBe("ENOMEM");
    vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: 0x40000000n, memorySize: 0x4000n, userspaceAddr: hva });
    vcpus[0].setBudget(1000);
    expect(vcpus[0].run().reason).toBe(KVM_EXIT.RISCV_SBI);
    expect(kvm.core.debugLockWord(vm.fd, HEAP_LOCK)).toBe(0);
    vm.close();
  });

  it("on a Worker: the memslot update whose bitmap cannot grow the memory fails with ENOMEM, and both threads keep working", async () => {
    const kvm = await open();
    const { vm, vcpus } = vmWithCode(kvm, CODE, 1);
    const w = new Worker(new URL("./threads-memory-growth-worker.mjs", import.meta.url),
      { workerData: { share: kvm.share(), vmFd: vm.fd, vcpuFd: vcpus[0].fd, huge: HUGE, small: small(kvm, 1) } });
    const r = await new Promise<{ failed: { errno: number; check: number } | null; slots: number[]; exit: number; error?: string }>(
      (resolve, reject) => { w.once("message", resolve); w.once("error", reject); });
    await w.terminate();
    expect(r.error).toBeUndefined();
    expect(r.failed).toEqual({ errno: ERRNO.ENOMEM, check: CHECK.ALLOC_BITMAP });
    expect(r.slots).toEqual([0, 1]);
    expect(r.exit).toBe(KVM_EXIT.RISCV_SBI);
    expect(kvm.core.debugLockWord(vm.fd, HEAP_LOCK)).toBe(0);
    // The VMM thread: a memslot update, a KVM_RUN (the loop, ended by its budget), closing the VM.
    vm.setUserMemoryRegion(small(kvm, 2));
    expect(vm.memslots().map((s) => s.id).sort()).toEqual([0, 1, 2]);
    vcpus[0].setBudget(1000);
    expect(vcpus[0].run().reason).toBe(KVM_EXIT.INTR);
    vm.close();
    expect(kvm.createVm().fd).toBeGreaterThan(0);
  });

  it("on the VMM thread while a Worker vCPU runs: the same update fails with ENOMEM, the vCPU runs on and stops at a kick", async () => {
    const kvm = await open();
    const { vm, vcpus } = vmWithCode(kvm, CODE, 1);
    vcpus[0].setBudget(Number.MAX_SAFE_INTEGER);
    const t = await VcpuThread.start(kvm, vcpus[0], WORKER);
    expect((await t.run()).reason).toBe(KVM_EXIT.RISCV_SBI);
    const run = t.run();
    await inGuestMode(kvm, vm, 0);
    let err: unknown;
    try { vm.setUserMemoryRegion({ ...HUGE, flags: KVM_MEM_LOG_DIRTY_PAGES }); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(KvmError);
    expect([(err as KvmError).errno, (err as KvmError).check]).toEqual([ERRNO.ENOMEM, CHECK.ALLOC_BITMAP]);
    expect(kvm.core.debugLockWord(vm.fd, HEAP_LOCK)).toBe(0);
    vm.setUserMemoryRegion(small(kvm, 1));
    expect(vm.memslots().map((s) => s.id).sort()).toEqual([0, 1]);
    t.kick();
    expect(await run).toMatchObject({ reason: KVM_EXIT.INTR, errno: 4 });
    await t.terminate();
    vm.close();
  });
});
