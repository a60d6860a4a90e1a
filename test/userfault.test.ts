// Host memory's missing mode (src/host-memory.ts over assembly/hostmm/userfaultfd.ts):
// userfaultfd's UFFDIO_REGISTER with MODE_MISSING, UFFDIO_UNREGISTER,
// UFFDIO_COPY and UFFDIO_ZEROPAGE as Linux has them (fs/userfaultfd.c,
// mm/userfaultfd.c), rule by rule; what a missing page does to host reads and
// writes, kvm_read/write_guest, KVM_PRE_FAULT_MEMORY and a guest's accesses in
// KVM_RUN (EFAULT with KVM_EXIT_MEMORY_FAULT at the page's gpa); and a
// randomized run against a page-by-page model. Guest code runs, so this file
// runs on both tiers.
import { describe, it, expect, beforeEach } from "vitest";
import { Kvm, KvmError, KVM_EXIT, KVM_GET_DIRTY_LOG, KVM_MEM_LOG_DIRTY_PAGES, kvm_dirty_log, type Vm, type Vcpu } from "../src/index.js";
import { CHECK, INJECT } from "../src/abi.gen.js";
import { openKvm, code, MiB } from "./helpers.js";
import { Program, REG } from "./cpu/asm.js";
import * as A from "./cpu/asm.js";
import { Rng } from "./rng.js";
import { readFileSync } from "node:fs";
import { Machine } from "../src/index.js";

const PAGE = 4096n;
const RAM = 0x80000000n;
const ENOMEM = 12;
const { t0, t1, t2 } = REG;

let kvm: Kvm;
beforeEach(async () => { kvm = await openKvm(); });

/** The KvmError fn throws (fails the test if it throws none). */
function error(fn: () => unknown): KvmError {
  try { fn(); } catch (e) { if (e instanceof KvmError) return e; throw e; }
  throw new Error("no KvmError thrown");
}

/** `n` pages of `byte`. */
const pages = (n: number, byte: number) => new Uint8Array(n * 4096).fill(byte);

describe("registerMissing (UFFDIO_REGISTER, MODE_MISSING)", () => {
  it("validate_range: an unaligned start or length, length 0, or a range not below TASK_SIZE is EINVAL", () => {
    const a = kvm.memory.mmap(4n * PAGE);
    for (const [h, len] of [[a + 1n, PAGE], [a, PAGE + 1n], [a, 0n], [0x7ffffffff000n, PAGE], [a, 1n << 47n]] as const) {
      const e = error(() => kvm.memory.registerMissing(h, len));
      expect([e.code, e.check]).toEqual(["EINVAL", CHECK.UFFD_RANGE]);
    }
    expect(kvm.memory.isMissing(a)).toBe(false);
    expect(() => kvm.memory.registerMissing(-1, PAGE)).toThrow(RangeError);
  });

  it("a range no mapping overlaps is EINVAL; holes between mappings in the range are allowed", () => {
    const a = kvm.memory.mmap(4n * PAGE);
    kvm.memory.munmap(a + PAGE, 2n * PAGE);
    const e = error(() => kvm.memory.registerMissing(a + PAGE, 2n * PAGE));
    expect([e.code, e.check]).toEqual(["EINVAL", CHECK.UFFD_NO_VMA]);
    kvm.memory.registerMissing(a, 4n * PAGE);
    expect([0n, 3n].map((i) => kvm.memory.isMissing(a + i * PAGE))).toEqual([true, true]);
    expect(kvm.memory.isMissing(a + PAGE)).toBe(false); // unmapped: nothing to be missing
  });

  it("vma_can_userfault: a guest_memfd mapping in the range is EINVAL, checked before anything changes", () => {
    const vm = kvm.createVm();
    const anon = kvm.memory.mmap(2n * PAGE);
    const file = vm.createGuestMemfd({ size: 2n * PAGE, flags: 1 });
    const fh = file.mmap({ addr: anon + 2n * PAGE });
    expect(fh).toBe(anon + 2n * PAGE);
    const e = error(() => kvm.memory.registerMissing(anon, 4n * PAGE));
    expect([e.code, e.check]).toEqual(["EINVAL", CHECK.UFFD_VMA_KIND]);
    expect(kvm.memory.isMissing(anon)).toBe(false); // the anonymous part before it was not registered
    expect(code(() => kvm.memory.unregisterMissing(anon, 4n * PAGE))).toBe("EINVAL");
    kvm.memory.registerMissing(anon, 2n * PAGE);
    expect(kvm.memory.isMissing(anon)).toBe(true);
  });

  it("registration splits the mapping at the range's ends, covers private and shared anonymous memory, and registering again changes nothing", () => {
    const a = kvm.memory.mmap(8n * PAGE);
    kvm.memory.registerMissing(a + 2n * PAGE, 3n * PAGE);
    expect(kvm.memory.mappings().map((m) => [m.start - a, m.end - a])).toEqual([[0n, 2n * PAGE], [2n * PAGE, 5n * PAGE], [5n * PAGE, 8n * PAGE]]);
    kvm.memory.registerMissing(a + 2n * PAGE, 3n * PAGE);
    expect(kvm.memory.mappings().length).toBe(3);
    expect([1n, 2n, 4n, 5n].map((i) => kvm.memory.isMissing(a + i * PAGE))).toEqual([false, true, true, false]);
    const s = kvm.memory.mmap(2n * PAGE, { shared: true });
    kvm.memory.registerMissing(s, 2n * PAGE);
    expect(kvm.memory.isMissing(s + PAGE)).toBe(true);
  });

  it("pages present at registration stay present: a written page keeps its data, a page read as the zero page reads zero", () => {
    const a = kvm.memory.mmap(3n * PAGE);
    kvm.memory.poke(a, 0x1234n);
    expect(kvm.memory.peek(a + PAGE)).toBe(0n);
    kvm.memory.registerMissing(a, 3n * PAGE);
    expect([0n, 1n, 2n].map((i) => kvm.memory.isMissing(a + i * PAGE))).toEqual([false, false, true]);
    expect([kvm.memory.peek(a), kvm.memory.peek(a + PAGE)]).toEqual([0x1234n, 0n]);
  });
});

describe("a missing page", () => {
  it("a host read or write of a missing page fails EFAULT, naming the page; no frame is taken and it stays missing", () => {
    const a = kvm.memory.mmap(4n * PAGE);
    kvm.memory.poke(a, 1n);
    kvm.memory.registerMissing(a, 4n * PAGE);
    const frames = kvm.memory.framesInUse;
    const r = error(() => kvm.memory.read(a + 100n, 2 * 4096));
    expect([r.code, r.check]).toEqual(["EFAULT", CHECK.UFFD_MISSING]);
    expect(r.message).toContain(`hva 0x${(a + PAGE).toString(16)} is a missing page`);
    const w = error(() => kvm.memory.poke(a + 2n * PAGE + 8n, 7n));
    expect([w.code, w.check]).toEqual(["EFAULT", CHECK.UFFD_MISSING]);
    expect(w.message).toContain(`hva 0x${(a + 2n * PAGE).toString(16)} is a missing page`);
    expect(kvm.memory.framesInUse).toBe(frames);
    expect([kvm.memory.isMissing(a + PAGE), kvm.memory.resident(a + PAGE), kvm.memory.isMissing(a + 2n * PAGE)]).toEqual([true, false, true]);
  });

  it("kvm_read_guest / kvm_write_guest of a missing page fail EFAULT naming its gpa", () => {
    const vm = kvm.createVm();
    const hva = kvm.memory.mmap(MiB);
    vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: RAM, memorySize: MiB, userspaceAddr: hva });
    kvm.memory.registerMissing(hva, MiB);
    const r = error(() => vm.readGuest(RAM + 0x3000n, 8));
    expect([r.code, r.check]).toEqual(["EFAULT", CHECK.UFFD_MISSING]);
    expect(r.message).toContain("gpa 0x80003000 is a missing page");
    expect(code(() => vm.writeGuest(RAM + 0x5008n, new Uint8Array(8)))).toBe("EFAULT");
    expect(kvm.memory.isMissing(hva + 0x5000n)).toBe(true);
  });

  it("a pfn cache over a missing page cannot be made valid (hva_to_pfn fails: EFAULT); placed, a refresh maps the placed data", () => {
    const vm = kvm.createVm();
    const hva = kvm.memory.mmap(MiB);
    vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: RAM, memorySize: MiB, userspaceAddr: hva });
    kvm.memory.registerMissing(hva, MiB);
    const gpc = vm.createPfnCache();
    expect(code(() => gpc.activate(RAM + 0x4010n, 8))).toBe("EFAULT");
    expect([gpc.active, gpc.valid, kvm.memory.isMissing(hva + 0x4000n)]).toEqual([true, false, true]);
    kvm.memory.placePages(hva + 0x4000n, pages(1, 0x5a));
    gpc.refresh(8);
    expect([gpc.valid, gpc.read(8)]).toEqual([true, pages(1, 0x5a).subarray(0, 8)]);
  });

  it("KVM_PRE_FAULT_MEMORY of a missing page fails EFAULT with a memory fault at its gpa; after placing it, it maps", async () => {
    kvm = await openKvm({ config: { preFaultMemory: true } });
    const vm = kvm.createVm();
    const hva = kvm.memory.mmap(MiB);
    vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: RAM, memorySize: MiB, userspaceAddr: hva });
    const vcpu = vm.createVcpu(0);
    kvm.memory.registerMissing(hva, MiB);
    expect(code(() => vcpu.preFaultMemory({ gpa: RAM + 0x7000n, size: PAGE }))).toBe("EFAULT");
    expect(vcpu.kvmRun.memoryFault.gpa).toBe(RAM + 0x7000n);
    kvm.memory.placePages(hva + 0x7000n, pages(1, 9));
    expect(vcpu.preFaultMemory({ gpa: RAM + 0x7000n, size: PAGE })).toEqual({ gpa: RAM + 0x8000n, size: 0n });
  });
});

describe("a missing page as a KVM ioctl's user buffer", () => {
  it("a dirty bitmap copied to a missing page (copy_to_user) is EFAULT even when every bit is clear; placed, the same copy succeeds", () => {
    const vm = kvm.createVm();
    const hva = kvm.memory.mmap(MiB);
    vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: RAM, memorySize: MiB, userspaceAddr: hva, flags: KVM_MEM_LOG_DIRTY_PAGES });
    const buf = kvm.memory.mmap(PAGE);
    kvm.memory.registerMissing(buf, PAGE);
    const get = () => {
      const r = vm.ioctl(KVM_GET_DIRTY_LOG, kvm_dirty_log.encode({ slot: 0n, dirty_bitmap: buf }));
      return r >= 0 ? "ok" : `${-r}/${kvm.core.lastFailedCheck()}`;
    };
    expect(get()).toBe(`14/${CHECK.DIRTY_COPY}`);
    kvm.memory.placeZeroPages(buf, PAGE);
    expect(get()).toBe("ok");
  });
});

describe("a guest touching a missing page", () => {
  let vm: Vm, vcpu: Vcpu, hva: bigint, p: Program;
  const DATA = RAM + 0x10000n;

  beforeEach(() => {
    vm = kvm.createVm();
    hva = kvm.memory.mmap(MiB);
    vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: RAM, memorySize: MiB, userspaceAddr: hva });
    p = new Program(RAM);
    p.label("load").emit(A.ld(t2, t0, 8), A.ecall());
    p.label("store").emit(A.sd(t1, t0, 16), A.ecall());
    vcpu = vm.createVcpu(0);
    const words = p.finish();
    vm.writeGuest(RAM, new Uint8Array(words.buffer, words.byteOffset, words.byteLength)); // the code page is present
    kvm.memory.registerMissing(hva, MiB); // as a post-copy destination: everything else is missing
  });

  const run = (label: string, value = 0n) => {
    vcpu.pc = p.addr(label);
    vcpu.setReg(t0, DATA);
    vcpu.setReg(t1, value);
    return vcpu.run();
  };

  it("a load: KVM_RUN fails EFAULT with KVM_EXIT_MEMORY_FAULT at the page's gpa, retires nothing, and after placePages KVM_RUN again loads the placed data", () => {
    const exit = run("load");
    expect([exit.errno, exit.reason]).toEqual([14, KVM_EXIT.MEMORY_FAULT]);
    const mf = vcpu.kvmRun.memoryFault;
    expect([mf.gpa, mf.size, mf.flags]).toEqual([DATA, PAGE, 0n]);
    expect(vcpu.pc).toBe(p.addr("load"));
    expect(kvm.memory.isMissing(hva + 0x10000n)).toBe(true);
    const data = new Uint8Array(4096);
    new DataView(data.buffer).setBigUint64(8, 0x1122334455667788n, true);
    expect(kvm.memory.placePages(hva + 0x10000n, data)).toBe(4096);
    expect(vcpu.run().reason).toBe(KVM_EXIT.RISCV_SBI);
    expect(vcpu.getReg(t2)).toBe(0x1122334455667788n);
    expect(kvm.core.debugCheckInvariants(vm.fd)).toBeTruthy();
  });

  it("an instruction fetch from a missing page: the same exit at the page's gpa; placed, the instruction runs", () => {
    vcpu.pc = RAM + 0x20000n;
    const exit = vcpu.run();
    expect([exit.errno, exit.reason, vcpu.kvmRun.memoryFault.gpa, vcpu.pc]).toEqual([14, KVM_EXIT.MEMORY_FAULT, RAM + 0x20000n, RAM + 0x20000n]);
    const code = new Uint8Array(4096);
    new DataView(code.buffer).setUint32(0, A.ecall(), true);
    kvm.memory.placePages(hva + 0x20000n, code);
    expect(vcpu.run().reason).toBe(KVM_EXIT.RISCV_SBI);
  });

  it("a store: the same exit; after placeZeroPages the store completes into a private frame, the rest of the page zero", () => {
    const exit = run("store", 0xabcdn);
    expect([exit.errno, exit.reason, vcpu.kvmRun.memoryFault.gpa]).toEqual([14, KVM_EXIT.MEMORY_FAULT, DATA]);
    expect(kvm.memory.placeZeroPages(hva + 0x10000n, PAGE)).toBe(4096);
    expect(vcpu.run().reason).toBe(KVM_EXIT.RISCV_SBI);
    expect(kvm.memory.resident(hva + 0x10000n)).toBe(true);
    expect([kvm.memory.peek(hva + 0x10010n, 8), kvm.memory.peek(hva + 0x10008n, 8)]).toEqual([0xabcdn, 0n]);
    expect(kvm.core.debugCheckInvariants(vm.fd)).toBeTruthy();
  });
});

describe("placePages (UFFDIO_COPY)", () => {
  it("placed pages are visible to the host and the guest, each in its own new frame", () => {
    const vm = kvm.createVm();
    const hva = kvm.memory.mmap(8n * PAGE);
    vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: RAM, memorySize: 8n * PAGE, userspaceAddr: hva });
    kvm.memory.registerMissing(hva, 8n * PAGE);
    const frames = kvm.memory.framesInUse;
    const bytes = new Uint8Array(3 * 4096).map((_, i) => (i * 7) & 0xff);
    expect(kvm.memory.placePages(hva + 2n * PAGE, bytes)).toBe(3 * 4096);
    expect(kvm.memory.framesInUse).toBe(frames + 3);
    expect(kvm.memory.read(hva + 2n * PAGE, bytes.length)).toEqual(bytes);
    expect(vm.readGuest(RAM + 2n * PAGE, bytes.length)).toEqual(bytes);
    expect([1n, 2n, 4n, 5n].map((i) => kvm.memory.isMissing(hva + i * PAGE))).toEqual([true, false, false, true]);
    expect(kvm.memory.resident(hva + 3n * PAGE)).toBe(true);
  });

  it("more pages than one core buffer holds are placed whole", () => {
    const a = kvm.memory.mmap(64n * PAGE);
    kvm.memory.registerMissing(a, 64n * PAGE);
    const bytes = new Uint8Array(40 * 4096).map((_, i) => (i >> 12) + 1);
    expect(kvm.memory.placePages(a, bytes)).toBe(bytes.length);
    expect(kvm.memory.read(a, bytes.length)).toEqual(bytes);
    expect([kvm.memory.isMissing(a + 39n * PAGE), kvm.memory.isMissing(a + 40n * PAGE)]).toEqual([false, true]);
  });

  it("a page already present is EEXIST and unchanged; a run reaching a present page places the pages before it and returns their bytes", () => {
    const a = kvm.memory.mmap(6n * PAGE);
    kvm.memory.registerMissing(a, 6n * PAGE);
    kvm.memory.placePages(a + 2n * PAGE, pages(1, 0x22));
    const frames = kvm.memory.framesInUse;
    const e = error(() => kvm.memory.placePages(a + 2n * PAGE, pages(2, 0x55)));
    expect([e.code, e.check]).toEqual(["EEXIST", CHECK.UFFD_EXISTS]);
    expect(kvm.memory.framesInUse).toBe(frames);
    expect(kvm.memory.isMissing(a + 3n * PAGE)).toBe(true); // nothing after it either
    expect(kvm.memory.read(a + 2n * PAGE, 4096)).toEqual(pages(1, 0x22));
    // Linux: copied ? copied : err, the ioctl then EAGAIN with uffdio_copy.copy = 4096.
    expect(kvm.memory.placePages(a + PAGE, pages(3, 0x11))).toBe(4096);
    expect(kvm.memory.read(a + PAGE, 2 * 4096)).toEqual(new Uint8Array([...pages(1, 0x11), ...pages(1, 0x22)]));
    expect(kvm.memory.isMissing(a + 3n * PAGE)).toBe(true);
    // A zero-page pte (a read before registration) is present too.
    const b = kvm.memory.mmap(PAGE);
    kvm.memory.peek(b);
    kvm.memory.registerMissing(b, PAGE);
    expect(code(() => kvm.memory.placePages(b, pages(1, 1)))).toBe("EEXIST");
  });

  it("uffd_mfill_lock / validate_dst_vma: a dst range not inside one registered mapping is ENOENT; unaligned hva or length EINVAL", () => {
    const a = kvm.memory.mmap(4n * PAGE);
    const plain = kvm.memory.mmap(PAGE);
    kvm.memory.registerMissing(a, 2n * PAGE);
    for (const [h, n] of [[plain, 1], [a + PAGE, 2], [a + 8n * PAGE, 1]] as const) {
      const e = error(() => kvm.memory.placePages(h, pages(n, 1)));
      expect([e.code, e.check]).toEqual(["ENOENT", CHECK.UFFD_DST]);
    }
    kvm.memory.munmap(a + 4n * PAGE, PAGE); // (nothing there) and a range reaching past the mapping's end:
    expect(code(() => kvm.memory.placePages(a + 3n * PAGE, pages(2, 1)))).toBe("ENOENT");
    expect(code(() => kvm.memory.placePages(a + 1n, pages(1, 1)))).toBe("EINVAL");
    expect(code(() => kvm.memory.placePages(a, new Uint8Array(100)))).toBe("EINVAL");
    expect(code(() => kvm.memory.placePages(a, new Uint8Array(0)))).toBe("EINVAL");
    expect([kvm.memory.isMissing(a), kvm.memory.isMissing(a + PAGE)]).toEqual([true, true]);
    // Registered separately, the two halves are still one mapping as Linux merges them.
    kvm.memory.registerMissing(a + 2n * PAGE, 2n * PAGE);
    expect(kvm.memory.placePages(a + PAGE, pages(2, 3))).toBe(2 * 4096);
  });

  it("no frame left: ENOMEM for the first page with nothing placed; a later page's ENOMEM keeps the pages before it", () => {
    const a = kvm.memory.mmap(4n * PAGE);
    kvm.memory.registerMissing(a, 4n * PAGE);
    const frames = kvm.memory.framesInUse;
    kvm.core.injectFault(INJECT.FRAME, ENOMEM, 0);
    const e = error(() => kvm.memory.placePages(a, pages(2, 5)));
    expect([e.code, e.check]).toEqual(["ENOMEM", CHECK.UFFD_NOMEM]);
    expect(kvm.memory.framesInUse).toBe(frames);
    expect([kvm.memory.isMissing(a), kvm.memory.isMissing(a + PAGE)]).toEqual([true, true]);
    kvm.core.injectFault(INJECT.FRAME, ENOMEM, 1);
    expect(kvm.memory.placePages(a, pages(3, 6))).toBe(4096);
    expect([kvm.memory.isMissing(a), kvm.memory.isMissing(a + PAGE)]).toEqual([false, true]);
    expect(kvm.memory.framesInUse).toBe(frames + 1);
  });
});

describe("placeZeroPages (UFFDIO_ZEROPAGE)", () => {
  it("maps the zero page read-only: reads give zeros without a frame; a write then takes a private frame", () => {
    const a = kvm.memory.mmap(4n * PAGE);
    kvm.memory.registerMissing(a, 4n * PAGE);
    const frames = kvm.memory.framesInUse;
    expect(kvm.memory.placeZeroPages(a, 2n * PAGE)).toBe(8192);
    expect(kvm.memory.read(a, 8192)).toEqual(new Uint8Array(8192));
    expect([kvm.memory.isMissing(a), kvm.memory.resident(a), kvm.memory.framesInUse]).toEqual([false, false, frames]);
    kvm.memory.poke(a + PAGE + 8n, 42n);
    expect([kvm.memory.resident(a + PAGE), kvm.memory.framesInUse, kvm.memory.peek(a + PAGE + 8n)]).toEqual([true, frames + 1, 42n]);
    expect(code(() => kvm.memory.placeZeroPages(a, PAGE))).toBe("EEXIST");
    expect(kvm.memory.placeZeroPages(a + 2n * PAGE, 2n * PAGE)).toBe(8192);
    const e = error(() => kvm.memory.placeZeroPages(a + 4n * PAGE, PAGE));
    expect([e.code, e.check]).toEqual(["ENOENT", CHECK.UFFD_DST]);
  });
});

describe("unregisterMissing (UFFDIO_UNREGISTER)", () => {
  it("the range's remaining holes become ordinary demand-zero pages again; placed pages keep their data", () => {
    const a = kvm.memory.mmap(4n * PAGE);
    kvm.memory.registerMissing(a, 4n * PAGE);
    kvm.memory.placePages(a, pages(1, 0x77));
    kvm.memory.unregisterMissing(a, 2n * PAGE);
    expect([0n, 1n, 2n, 3n].map((i) => kvm.memory.isMissing(a + i * PAGE))).toEqual([false, false, true, true]);
    expect(kvm.memory.peek(a + PAGE)).toBe(0n); // the zero page, as before registration
    kvm.memory.poke(a + PAGE, 3n);
    expect([kvm.memory.peek(a, 1), kvm.memory.peek(a + PAGE)]).toEqual([0x77n, 3n]);
    expect(code(() => kvm.memory.placePages(a + PAGE, pages(1, 1)))).toBe("ENOENT");
    expect(code(() => kvm.memory.peek(a + 2n * PAGE))).toBe("EFAULT");
    const e = error(() => kvm.memory.unregisterMissing(a + 8n * PAGE, PAGE));
    expect([e.code, e.check]).toEqual(["EINVAL", CHECK.UFFD_NO_VMA]);
    expect(code(() => kvm.memory.unregisterMissing(a, PAGE + 1n))).toBe("EINVAL");
  });
});

describe("the registration goes with the mapping", () => {
  it("munmap of part of a registered range drops that part; the rest stays registered; a new mapping there (MAP_FIXED) is not registered", () => {
    const a = kvm.memory.mmap(6n * PAGE);
    kvm.memory.registerMissing(a, 6n * PAGE);
    kvm.memory.placePages(a + 2n * PAGE, pages(1, 9));
    kvm.memory.munmap(a + PAGE, 2n * PAGE);
    expect([0n, 3n, 5n].map((i) => kvm.memory.isMissing(a + i * PAGE))).toEqual([true, true, true]);
    expect(code(() => kvm.memory.peek(a + PAGE))).toBe("EFAULT");
    expect(code(() => kvm.memory.placePages(a + PAGE, pages(1, 1)))).toBe("ENOENT");
    kvm.memory.mmap(2n * PAGE, { addr: a + PAGE });
    expect([kvm.memory.isMissing(a + PAGE), kvm.memory.isMissing(a + 2n * PAGE), kvm.memory.peek(a + 2n * PAGE)]).toEqual([false, false, 0n]);
    kvm.memory.mmap(PAGE, { addr: a + 4n * PAGE }); // MAP_FIXED over a registered page
    expect([kvm.memory.isMissing(a + 4n * PAGE), kvm.memory.isMissing(a + 5n * PAGE)]).toEqual([false, true]);
  });

  it("mprotect keeps the registration of the pages it changes", () => {
    const a = kvm.memory.mmap(4n * PAGE);
    kvm.memory.registerMissing(a, 4n * PAGE);
    kvm.memory.mprotect(a + PAGE, PAGE, "r");
    expect([0n, 1n, 2n].map((i) => kvm.memory.isMissing(a + i * PAGE))).toEqual([true, true, true]);
    expect(code(() => kvm.memory.peek(a + PAGE))).toBe("EFAULT");
    expect(kvm.memory.placePages(a + PAGE, pages(1, 4))).toBe(4096); // UFFDIO_COPY needs no PROT_WRITE
    expect(kvm.memory.peek(a + PAGE, 1)).toBe(4n);
  });
});

describe("randomized: register / unregister / place / zero / munmap / mmap / host access against a page model", () => {
  type Page = { mapped: boolean; reg: boolean; kind: "none" | "zero" | "frame"; byte: number };
  const N = 48;

  for (const seed of [1, 2, 3, 4]) {
    it(`seed ${seed}: 400 operations, each page's state and data as the model says`, () => {
      const rng = new Rng(seed);
      const base = kvm.memory.mmap(BigInt(N) * PAGE);
      const model: Page[] = Array.from({ length: N }, () => ({ mapped: true, reg: false, kind: "none" as const, byte: 0 }));
      const at = (i: number) => base + BigInt(i) * PAGE;
      const missing = (p: Page) => p.mapped && p.reg && p.kind === "none";
      const outcome = (fn: () => unknown): string | number => {
        try { const r = fn(); return typeof r === "number" ? r : "ok"; } catch (e) { if (e instanceof KvmError) return e.code; throw e; }
      };
      for (let step = 0; step < 400; step++) {
        const i = rng.int(N), n = rng.range(1, Math.min(6, N - i));
        const range = model.slice(i, i + n);
        const op = rng.int(8);
        const what = `seed ${seed} step ${step}: op ${op} pages ${i}+${n}`;
        if (op === 0 || op === 1) {
          const reg = op === 0;
          const got = outcome(() => reg ? kvm.memory.registerMissing(at(i), BigInt(n) * PAGE) : kvm.memory.unregisterMissing(at(i), BigInt(n) * PAGE));
          const want = range.some((p) => p.mapped) ? "ok" : "EINVAL";
          expect(got, what).toBe(want);
          if (want === "ok") for (const p of range) if (p.mapped) p.reg = reg;
        } else if (op === 2 || op === 3) {
          const byte = rng.range(1, 255);
          const got = outcome(() => op === 2 ? kvm.memory.placePages(at(i), pages(n, byte)) : kvm.memory.placeZeroPages(at(i), BigInt(n) * PAGE));
          let want: string | number;
          if (!range.every((p) => p.mapped && p.reg)) want = "ENOENT";
          else {
            let k = 0;
            while (k < n && range[k].kind === "none") k++;
            want = k === 0 ? "EEXIST" : k * 4096;
            for (const p of range.slice(0, k)) { p.kind = op === 2 ? "frame" : "zero"; p.byte = op === 2 ? byte : 0; }
          }
          expect(got, what).toBe(want);
        } else if (op === 4) {
          kvm.memory.munmap(at(i), BigInt(n) * PAGE);
          for (const p of range) Object.assign(p, { mapped: false, reg: false, kind: "none", byte: 0 });
        } else if (op === 5) {
          kvm.memory.mmap(BigInt(n) * PAGE, { addr: at(i) });
          for (const p of range) Object.assign(p, { mapped: true, reg: false, kind: "none", byte: 0 });
        } else if (op === 6) {
          const byte = rng.range(1, 255);
          const p = range[0];
          const got = outcome(() => kvm.memory.poke(at(i) + 64n, byte, 1));
          expect(got, what).toBe(p.mapped && !missing(p) ? "ok" : "EFAULT");
          if (got === "ok") { p.kind = "frame"; p.byte = byte; } // the rest of the page keeps p.byte only at offset 64 (read back there)
        } else {
          const p = range[0];
          const got = outcome(() => Number(kvm.memory.peek(at(i) + 64n, 1)));
          expect(got, what).toBe(p.mapped && !missing(p) ? p.byte : "EFAULT");
          if (p.mapped && !missing(p) && p.kind === "none") p.kind = "zero";
        }
        for (let j = 0; j < N; j++) {
          expect(kvm.memory.isMissing(at(j)), `${what}: page ${j} missing`).toBe(missing(model[j]));
          expect(kvm.memory.resident(at(j)), `${what}: page ${j} resident`).toBe(model[j].mapped && model[j].kind === "frame");
        }
      }
    });
  }
});

describe("a machine restored over missing memory (Machine.restore { memory: \"missing\" }, as a post-copy destination)", () => {
  it("memtest moved mid-way with no RAM sent runs to the same end, each page placed from the source's switch-over RAM when a memory-fault exit names it", async () => {
    const image = new Uint8Array(readFileSync(new URL("../guests/memtest/memtest.bin", import.meta.url)));
    // KVM_RUN turns of 10,000 instructions, so the source stops mid-way through memtest's write pass.
    const src = await Machine.create({ kvm: await openKvm(), memSize: 8n << 20n, turn: 10_000 });
    src.load(image, 512 * 1024);
    expect(src.run({ maxInstructions: 1_000_000n }).stop).toBe("limit");
    const state = src.saveState();
    const ram = src.memoryRegions().map((r) => ({ ...r, bytes: src.kvm.memory.read(r.hva, Number(r.size)) }));
    const dst = await Machine.restore(state, { kvm: await openKvm(), memory: "missing" });
    const regions = dst.memoryRegions();
    for (const r of regions) expect([dst.kvm.memory.isMissing(r.hva), dst.kvm.memory.isMissing(r.hva + r.size - PAGE)]).toEqual([true, true]);
    let faults = 0, ran = 0n, r;
    for (;;) {
      r = dst.run({ maxInstructions: 20_000_000n });
      ran += r.instructions;
      if (r.stop !== "memory-fault" && (r.stop !== "limit" || ran > 200_000_000n)) break;
      if (r.stop === "limit") continue;
      faults++;
      const gpa = dst.vcpus[r.hart].kvmRun.memoryFault.gpa;
      const d = regions.find((x) => x.asId === 0 && gpa >= x.gpa && gpa < x.gpa + x.size)!;
      const s0 = ram.find((x) => x.asId === 0 && x.slot === d.slot)!;
      const off = Number(gpa - d.gpa);
      expect(dst.kvm.memory.placePages(d.hva + BigInt(off), s0.bytes.subarray(off, off + 4096))).toBe(4096);
    }
    const end = src.run({ maxInstructions: 200_000_000n });
    expect([r.stop, r.reason]).toEqual([end.stop, end.reason]);
    expect([end.stop, end.reason]).toEqual(["shutdown", 0]);
    expect(dst.output).toMatch(/^memtest ok checksum=0x[0-9a-f]{16}\n$/);
    expect(dst.output).toBe(src.output);
    expect(faults).toBeGreaterThan(64); // most of memtest's 128 pages and its code and stack
    expect(faults).toBeLessThanOrEqual(2048); // at most once per page of the 8 MiB
  });
});
