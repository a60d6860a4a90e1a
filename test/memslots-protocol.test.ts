// The update protocol (kvm_set_memslot) and lookups (search_memslots, __gfn_to_hva_many):
// generations per change type, failures and rollback, the in-progress bit,
// the INVALID slot, internal slots, and last-used caches.
import { describe, it, expect, beforeEach } from "vitest";
import {
  Kvm, Vm, KvmError, KVM_MEM_LOG_DIRTY_PAGES as LOG, KVM_MEM_READONLY as RO, KVM_HVA_ERR_BAD, KVM_HVA_ERR_RO_BAD,
  KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS as IN_PROGRESS, isErrorHva, type ReaderPoint,
} from "../src/index.js";
import { openKvm, code } from "./helpers.js";

let kvm: Kvm, vm: Vm, A: bigint;

const set = (slot: number, gpa: bigint | number, size: bigint | number, flags = 0, hva = A, asId?: number, v = vm) =>
  v.setUserMemoryRegion({ slot, asId, flags, guestPhysAddr: gpa, memorySize: size, userspaceAddr: hva });
const snapshot = (v = vm) => JSON.stringify([0, 1].slice(0, v.addressSpaces).map((as) =>
  ({ s: v.memslots({ asId: as }), i: v.memslots({ asId: as, inactive: true }), g: v.generation(as) })),
  (_, x) => typeof x === "bigint" ? x.toString() : x);

beforeEach(async () => {
  kvm = await openKvm();
  vm = kvm.createVm();
  A = kvm.memory.mmap(0x400000);
});

describe("generations (kvm_swap_active_memslots)", () => {
  it("address space i starts at generation i", async () => {
    const k = await openKvm({ config: { addressSpaces: 2 } });
    const v = k.createVm();
    expect([v.generation(0), v.generation(1)]).toEqual([0n, 1n]);
    expect(vm.generation(0)).toBe(0n);
  });

  it("every publish adds nr_as: CREATE 1 swap, FLAGS_ONLY 1, MOVE 2, DELETE 2, no-op 0", async () => {
    for (const nrAs of [1, 2] as const) {
      const k = await openKvm({ config: { addressSpaces: nrAs } });
      const v = k.createVm();
      const as = nrAs - 1;
      const B = k.memory.mmap(0x10000);
      const n = BigInt(nrAs);
      const g0 = BigInt(as);
      set(0, 0x10000, 0x4000, 0, B, as, v);
      expect(v.generation(as)).toBe(g0 + n);
      set(0, 0x10000, 0x4000, LOG, B, as, v);
      expect(v.generation(as)).toBe(g0 + 2n * n);
      set(0, 0x10000, 0x4000, LOG, B, as, v);
      expect(v.generation(as)).toBe(g0 + 2n * n);
      set(0, 0x20000, 0x4000, LOG, B, as, v);
      expect(v.generation(as)).toBe(g0 + 4n * n);
      set(0, 0, 0, 0, B, as, v);
      expect(v.generation(as)).toBe(g0 + 6n * n);
      if (nrAs === 2) expect(v.generation(0)).toBe(0n); // other address space untouched
    }
  });

  it("a failed MOVE (prepare error after the INVALID phase) still advances by 2·nr_as and leaves the slot", () => {
    set(0, 0x10000, 0x4000);
    const g = vm.generation();
    vm.debug.injectFault("arch_prepare", 12);
    expect(code(() => set(0, 0x20000, 0x4000))).toBe("ENOMEM");
    expect(vm.generation()).toBe(g + 2n);
    expect(vm.memslots().map((s) => [s.baseGfn, s.invalid])).toEqual([[0x10n, false]]);
    expect(vm.debug.lookup(0x10)).not.toBeNull();
  });

  it("a MOVE past the x86 gfn limit fails in prepare: EINVAL with 2 swaps", () => {
    set(0, 0x10000, 0x4000);
    expect(code(() => set(0, 1n << 52n, 0x4000))).toBe("EINVAL");
    expect(vm.generation()).toBe(3n);
  });

  it("a failed CREATE or FLAGS_ONLY advances nothing", () => {
    vm.debug.injectFault("arch_prepare", 12);
    expect(code(() => set(0, 0x10000, 0x4000))).toBe("ENOMEM");
    expect(vm.generation()).toBe(0n);
    expect(code(() => set(0, 1n << 52n, 0x4000))).toBe("EINVAL");
    expect(vm.generation()).toBe(0n);
    set(0, 0x10000, 0x4000);
    vm.debug.injectFault("alloc_bitmap", 12);
    expect(code(() => set(0, 0x10000, 0x4000, LOG))).toBe("ENOMEM");
    expect(vm.generation()).toBe(1n);
    expect(vm.memslots()[0].hasDirtyBitmap).toBe(false);
  });

  it("a DELETE or MOVE whose INVALID copy cannot be allocated fails with ENOMEM before any swap", () => {
    set(0, 0x10000, 0x4000);
    const before = snapshot();
    vm.debug.injectFault("alloc_invalid_slot", 12);
    expect(code(() => set(0, 0, 0))).toBe("ENOMEM");
    expect(snapshot()).toBe(before);
    vm.debug.injectFault("alloc_invalid_slot", 12);
    expect(code(() => set(0, 0x20000, 0x4000))).toBe("ENOMEM");
    expect(snapshot()).toBe(before);
  });

  it("rollback restores both sets exactly (same slots, same bitmaps)", () => {
    set(0, 0x10000, 0x4000, LOG);
    set(1, 0x40000, 0x4000);
    vm.debug.injectFault("arch_prepare", 12);
    const before = JSON.parse(snapshot());
    expect(code(() => set(0, 0x80000, 0x4000, LOG))).toBe("ENOMEM");
    const after = JSON.parse(snapshot());
    expect(after[0].s).toEqual(before[0].s);
    expect(after[0].i).toEqual(before[0].i);
    expect(BigInt(after[0].g)).toBe(BigInt(before[0].g) + 2n);
  });

  it("while a swap publishes, the generation carries bit 63 and the inactive set holds the old state", () => {
    set(0, 0x10000, 0x4000);
    const seen: [ReaderPoint, bigint, boolean][] = [];
    kvm.setReaderHook((v, point) => { seen.push([point, v.generation(), v.debug.lookup(0x10)?.invalid ?? false]); });
    set(0, 0x20000, 0x4000);
    kvm.setReaderHook(null);
    expect(seen).toEqual([
      ["published", 1n | IN_PROGRESS, true],   // pass 1: the INVALID copy goes live
      ["invalid-published", 2n, true],
      ["invalidated", 2n, true],
      ["published", 2n | IN_PROGRESS, false],  // pass 2: the moved slot goes live
    ]);
    expect(vm.generation()).toBe(3n);
  });

  it("a per-vCPU cache filled while an update is in flight misses once it settles", () => {
    set(0, 0x10000, 0x4000);
    const vcpu = vm.createVcpu(0);
    const during: (number | null)[] = [];
    const hvas: bigint[] = [];
    kvm.setReaderHook((v, point) => {
      if (point === "published" && (v.generation() & IN_PROGRESS)) {
        during.push(vcpu.gfnToMemslot(0x11)?.id ?? null);
        hvas.push(vcpu.gfnToHva(0x11));
      }
    });
    set(0, 0x20000, 0x4000);
    kvm.setReaderHook(null);
    // Pass 1 cached the INVALID copy at the old range under g|bit63; pass 2 saw the moved slot.
    expect(during).toEqual([0, null]);
    // ... and the INVALID copy it cached has no hva (kvm_vcpu_gfn_to_hva answers KVM_HVA_ERR_BAD).
    expect(hvas).toEqual([KVM_HVA_ERR_BAD, KVM_HVA_ERR_BAD]);
    expect(vcpu.gfnToMemslot(0x11)).toBeNull();
    expect(vcpu.gfnToMemslot(0x21)?.invalid).toBe(false);
  });
});

describe("the INVALID slot (kvm_invalidate_memslot)", () => {
  it("during DELETE/MOVE it is found by lookups but translates to KVM_HVA_ERR_BAD and is not visible", () => {
    set(0, 0x10000, 0x4000);
    vm.writeGuest(0x10000, new Uint8Array([7]));
    const seen: unknown[] = [];
    kvm.setReaderHook((v, point) => {
      if (point !== "invalidated") return;
      const s = v.debug.lookup(0x11);
      seen.push(s?.invalid, v.gfnToHva(0x11), v.isVisibleGfn(0x11), code(() => v.readGuest(0x11000, 1)));
    });
    set(0, 0, 0);
    kvm.setReaderHook(null);
    expect(seen).toEqual([true, KVM_HVA_ERR_BAD, false, "EFAULT"]);
  });

  it("memslot updates from a reader hook are refused (slots_lock is held)", () => {
    set(0, 0x10000, 0x4000);
    let inner = "";
    kvm.setReaderHook((v, point) => { if (point === "invalidated") inner = code(() => set(1, 0x80000, 0x1000)); });
    set(0, 0x20000, 0x4000);
    kvm.setReaderHook(null);
    expect(inner).toBe("EBUSY");
    expect(vm.memslots().length).toBe(1);
  });
});

describe("lookups and translation (search_memslots, __gfn_to_hva_many)", () => {
  it("gfn -> hva is userspace_addr + (gfn - base_gfn) * 4096; READONLY fails write lookups only", () => {
    set(0, 0x10000, 0x4000, 0, A + 0x8000n);
    set(1, 0x20000, 0x4000, RO, A);
    expect(vm.gfnToHva(0x13)).toBe(A + 0x8000n + 0x3000n);
    expect(vm.gfnToHva(0x14)).toBe(KVM_HVA_ERR_BAD);
    expect(vm.gfnToHva(0x21)).toBe(KVM_HVA_ERR_RO_BAD);
    expect(vm.gfnToHva(0x21, { write: false })).toBe(A + 0x1000n);
    expect(isErrorHva(KVM_HVA_ERR_RO_BAD)).toBe(true);
  });

  it("kvm_read_guest / kvm_write_guest cross slot boundaries and fail with EFAULT on holes and read-only slots", () => {
    set(0, 0x10000, 0x1000, 0, A);
    set(1, 0x11000, 0x1000, 0, A + 0x5000n);
    set(2, 0x13000, 0x1000, RO, A + 0x9000n);
    vm.writeGuest(0x10ffe, new Uint8Array([1, 2, 3, 4]));
    expect(Array.from(vm.readGuest(0x10ffe, 4))).toEqual([1, 2, 3, 4]);
    expect(kvm.memory.peek(A + 0x5000n, 2)).toBe(0x0403n);
    expect(code(() => vm.readGuest(0x11ffe, 4))).toBe("EFAULT");
    expect(code(() => vm.writeGuest(0x13000, new Uint8Array([1])))).toBe("EFAULT");
    expect(Array.from(vm.readGuest(0x13000, 1))).toEqual([0]);
    // Pages before the failing one were written, as in the kernel.
    expect(code(() => vm.writeGuest(0x11ffe, new Uint8Array([9, 9, 9, 9])))).toBe("EFAULT");
    expect(kvm.memory.peek(A + 0x5ffen, 2)).toBe(0x0909n);
  });

  it("a slot whose host backing is unmapped faults only when touched (EFAULT)", () => {
    set(0, 0x10000, 0x1000, 0, 0x200000000000n);
    expect(code(() => vm.readGuest(0x10000, 1))).toBe("EFAULT");
  });

  it("the VM-wide last_used_slot never serves a deleted or moved slot", () => {
    set(0, 0x10000, 0x4000);
    set(1, 0x40000, 0x4000, 0, A + 0x10000n);
    expect(vm.debug.lookup(0x11, { cached: true })?.id).toBe(0);
    set(0, 0x20000, 0x4000);
    expect(vm.debug.lookup(0x11, { cached: true })).toBeNull();
    expect(vm.debug.lookup(0x21, { cached: true })?.baseGfn).toBe(0x20n);
    set(0, 0, 0);
    expect(vm.debug.lookup(0x21, { cached: true })).toBeNull();
    expect(vm.debug.lookup(0x41, { cached: true })?.id).toBe(1);
  });

  it("once the last slot of an address space is deleted, every lookup misses", () => {
    set(2, 0x2f000, 0x28000);
    expect(vm.debug.lookup(0x30)?.id).toBe(2);
    set(2, 0, 0);
    expect(vm.debug.lookup(0x30)).toBeNull();
    expect(vm.debug.lookup(0x30, { cached: true })).toBeNull();
    expect(vm.gfnToHva(0x30)).toBe(KVM_HVA_ERR_BAD);
    expect(code(() => vm.writeGuest(0x30000, new Uint8Array([1])))).toBe("EFAULT");
  });

  it("the per-vCPU last_used_slot is dropped when the generation changes", () => {
    set(0, 0x10000, 0x4000);
    const vcpu = vm.createVcpu(0);
    expect(vcpu.gfnToMemslot(0x12)?.id).toBe(0);
    const hva = vcpu.gfnToHva(0x12);
    expect(hva).toBe(vm.gfnToHva(0x12));
    set(0, 0x30000, 0x4000);
    expect(vcpu.gfnToMemslot(0x12)).toBeNull();
    expect(vcpu.gfnToHva(0x12)).toBe(KVM_HVA_ERR_BAD);
    expect(vcpu.gfnToHva(0x32)).toBe(hva); // the same host page, moved by 0x20 gfns
    expect(vcpu.gfnToMemslot(0x32)?.baseGfn).toBe(0x30n);
    set(0, 0, 0);
    set(5, 0x30000, 0x4000);
    expect(vcpu.gfnToMemslot(0x32)?.id).toBe(5);
  });

  it("vcpu memslot lookup counters: every kvm_vcpu_gfn_to_memslot counts; an answer from the last-used slot is a cache hit", () => {
    set(0, 0x10000, 0x4000);
    set(1, 0x40000, 0x4000, 0, A + 0x10000n);
    const vcpu = vm.createVcpu(0);
    expect(vcpu.memslotLookups).toEqual({ lookups: 0n, cacheHits: 0n });
    // The cache holds the last slot a search found: a hole finds none and leaves it as it was.
    let last: [bigint, bigint] | null = null, lookups = 0n, hits = 0n;
    const look = (gfn: bigint) => {
      const slot = vcpu.gfnToMemslot(gfn);
      lookups++;
      if (last !== null && gfn >= last[0] && gfn < last[1]) hits++;
      else if (slot !== null) last = [slot.baseGfn, slot.baseGfn + slot.npages];
      expect(vcpu.memslotLookups).toEqual({ lookups, cacheHits: hits });
    };
    for (const g of [0x11n, 0x12n, 0x41n, 0x42n, 0x5n, 0x43n, 0x13n, 0x13n]) look(g);
    expect(hits).toBe(4n);
    // A new generation empties the cache: the next lookup searches even inside the old window.
    set(2, 0x80000, 0x1000, 0, A + 0x20000n);
    last = null;
    look(0x13n);
    look(0x13n);
    expect(vcpu.memslotLookups).toEqual({ lookups: 10n, cacheHits: 5n });
  });

  it("the batched per-vCPU lookup (bench) answers what kvm_vcpu_gfn_to_hva answers, gfn by gfn", () => {
    set(0, 0x10000, 0x4000);
    set(1, 0x40000, 0x4000, 0, A + 0x10000n);
    set(2, 0x80000, 0x4000, LOG, A + 0x20000n);
    const vcpu = vm.createVcpu(0);
    // runs of hits broken by window misses, holes and a slot change mid-way
    const gfns = [0x11n, 0x12n, 0x13n, 0x41n, 0x42n, 0x5n, 0x43n, 0x81n, 0x81n, 0x99n, 0x10n, 0x13n, 0x14n, 0x80n];
    const core = kvm.core;
    const ptr = core.kmalloc(gfns.length * 8);
    new BigUint64Array(core.memory.buffer, ptr, gfns.length).set(gfns);
    const one = () => gfns.reduce((sum, g) => BigInt.asUintN(64, sum + vcpu.gfnToHva(g)), 0n);
    const want = one();
    expect(BigInt.asUintN(64, core.benchLookup(vcpu.fd, 0, ptr, gfns.length, 2, 1))).toBe(want);
    expect(BigInt.asUintN(64, core.benchLookup(vcpu.fd, 0, ptr, gfns.length, 2, 3))).toBe(BigInt.asUintN(64, want * 3n));
    set(1, 0, 0);
    const after = one();
    expect(after).not.toBe(want);
    expect(BigInt.asUintN(64, core.benchLookup(vcpu.fd, 0, ptr, gfns.length, 2, 1))).toBe(after);
  });

  it("search finds every slot among many, and misses every hole", () => {
    const n = 300;
    for (let i = 0; i < n; i++) set(i, BigInt(i) * 0x10000n + (i % 7 === 0 ? 0x3000n : 0n), 0x2000 + (i % 3) * 0x1000, 0, A);
    for (let i = 0; i < n; i++) {
      const base = BigInt(i) * 0x10n + (i % 7 === 0 ? 3n : 0n);
      expect(vm.debug.lookup(base)?.id).toBe(i);
      expect(vm.debug.lookup(base + BigInt(2 + (i % 3)) - 1n)?.id).toBe(i);
      expect(vm.debug.lookup(base + BigInt(2 + (i % 3)))).toBeNull();
      if (base > 0n) expect(vm.debug.lookup(base - 1n)).toBeNull();
    }
  });
});

describe("x86 internal slots (__x86_set_memory_region)", () => {
  it("are created in every address space with flags 0, exempt from the page limit, and invisible", async () => {
    const k = await openKvm({ config: { addressSpaces: 2 } });
    const v = k.createVm();
    const hva = v.x86SetMemoryRegion(32765, 0xfee00000, 0x1000);
    expect(hva).not.toBe(0n);
    for (const as of [0, 1]) expect(v.memslots({ asId: as }).map((s) => [s.id, s.flags, s.userspaceAddr])).toEqual([[32765, 0, hva]]);
    expect([v.generation(0), v.generation(1)]).toEqual([2n, 3n]);
    expect(v.isVisibleGfn(0xfee00)).toBe(false);
    expect(v.debug.lookup(0xfee00)?.id).toBe(32765);
    v.x86SetMemoryRegion(32764, 1n << 40n, (1n << 31n) * 4096n); // 2^31 pages: no limit for internal slots
    expect(v.memslots()[1].npages).toBe(1n << 31n);
  });

  it("creating an existing one is EEXIST; deleting an absent one is a no-op; ids below 32764 are refused", () => {
    vm.x86SetMemoryRegion(32766, 0xfffbc000, 0x1000);
    expect(code(() => vm.x86SetMemoryRegion(32766, 0x10000, 0x1000))).toBe("EEXIST");
    expect(vm.x86SetMemoryRegion(32764, 0, 0)).toBe(0n);
    expect(code(() => vm.x86SetMemoryRegion(5, 0, 0x1000))).toBe("EINVAL");
    const g = vm.generation();
    vm.x86SetMemoryRegion(32766, 0, 0);
    expect(vm.memslots()).toEqual([]);
    expect(vm.generation()).toBe(g + 2n);
  });

  it("block overlapping user slots and cannot be addressed by the ioctls", () => {
    vm.x86SetMemoryRegion(32764, 0x100000, 0x3000);
    expect(code(() => set(0, 0x102000, 0x1000))).toBe("EEXIST");
    expect(code(() => set(32764, 0x200000, 0x1000))).toBe("EINVAL");
    expect(code(() => set(32764, 0, 0))).toBe("EINVAL");
    expect(vm.memslots().length).toBe(1);
  });

  it("their backing is fresh shared memory, unmapped again on delete", () => {
    const hva = vm.x86SetMemoryRegion(32765, 0xfee00000, 0x1000);
    const m = kvm.memory.mappings().find((x) => x.start === hva);
    expect(m?.shared).toBe(true);
    vm.writeGuest(0xfee00000, new Uint8Array([5]));
    expect(kvm.memory.peek(hva, 1)).toBe(5n);
    vm.x86SetMemoryRegion(32765, 0, 0);
    expect(kvm.memory.mappings().find((x) => x.start === hva)).toBeUndefined();
  });
});

describe("VM lifetime", () => {
  it("a fresh VM has no slots; host memory outlives the VM", () => {
    set(0, 0x10000, 0x1000);
    vm.writeGuest(0x10000, new Uint8Array([42]));
    vm.close();
    const v2 = kvm.createVm();
    expect(v2.memslots()).toEqual([]);
    expect(kvm.memory.peek(A, 1)).toBe(42n);
    expect(code(() => vm.memslots())).toBe("EBADF");
  });

  it("VM types follow KVM_CAP_VM_TYPES", async () => {
    expect(code(() => kvm.createVm({ type: 1 }))).toBe("EINVAL");
    expect(kvm.checkExtension("vm_types")).toBe(1);
    const k = await openKvm({ config: { vmTypes: 0b11 } });
    const v = k.createVm({ type: 1 });
    expect(v.addressSpaces).toBe(1);
    expect(() => k.createVm({ type: 2 ** 32 })).toThrow(RangeError);
  });
});
