// Dirty logging through bitmaps (kvm_get_dirty_log_protect, kvm_clear_dirty_log_protect): every errno of
// KVM_GET_DIRTY_LOG and KVM_CLEAR_DIRTY_LOG and their order, get-and-clear vs
// manual protect, CLEAR and re-protection, bitmaps across memslot changes,
// initially-set, host-side writes, read-only slots and the manual-protect cap.
// Guest stores are single store instructions run by the conformance runner's
// guest; "dirty LIST" lines are the runner's getlog output.
import { describe, it, expect, beforeEach } from "vitest";
import {
  Kvm, Vm, KVM_GET_DIRTY_LOG, KVM_CLEAR_DIRTY_LOG, KVM_ENABLE_CAP, kvm_dirty_log, kvm_clear_dirty_log, kvm_enable_cap,
  KVM_CAP, PROT_NONE, PROT_READ, errnoName, CHECK,
} from "../src/index.js";
import { ScriptRunner } from "../src/conformance/index.js";
import { openKvm, code } from "./helpers.js";

let kvm: Kvm;
let r: ScriptRunner;
const op = (line: string) => r.line(line);
const ops = (...lines: string[]) => lines.map(op);
const vm = (): Vm => r.currentVm!;

// The check codes that tell equal errnos apart.
const { COPY_FROM_USER, DIRTY_NO_BITMAPS: NO_BITMAPS, DIRTY_SLOT_ID: SLOT_ID, DIRTY_NO_SLOT: NO_SLOT, DIRTY_COPY: COPY,
  CLEAR_FIRST_ALIGN: FIRST_ALIGN, CLEAR_FIRST_RANGE: FIRST_RANGE, CLEAR_NUM_RANGE: NUM_RANGE,
  CLEAR_NUM_ALIGN: NUM_ALIGN } = CHECK;

/** "ok", or "ERRNO/check" of a raw ioctl result on v. */
function outcome(res: number, v: Vm): string {
  return res >= 0 ? "ok" : `${errnoName(-res)}/${v.kvm.core.lastFailedCheck()}`;
}
/** Raw KVM_GET_DIRTY_LOG; len shortens the struct. */
function rawGet(slot: number | bigint, bitmap: bigint, len = 16, v: Vm = vm()): string {
  const b = kvm_dirty_log.encode({ slot: BigInt(slot), dirty_bitmap: bitmap });
  return outcome(v.ioctl(KVM_GET_DIRTY_LOG, b.subarray(0, len)), v);
}
/** Raw KVM_CLEAR_DIRTY_LOG; len shortens the struct. */
function rawClear(slot: number | bigint, first: bigint | number, num: number, bitmap: bigint, len = 24, v: Vm = vm()): string {
  const b = kvm_clear_dirty_log.encode({ slot: BigInt(slot), num_pages: num, first_page: BigInt(first), dirty_bitmap: bitmap });
  return outcome(v.ioctl(KVM_CLEAR_DIRTY_LOG, b.subarray(0, len)), v);
}
/** Raw KVM_ENABLE_CAP(MANUAL_DIRTY_LOG_PROTECT2). */
function manualCap(arg0: bigint | number, flags = 0, v: Vm = vm()): string {
  const b = kvm_enable_cap.encode({ cap: KVM_CAP.MANUAL_DIRTY_LOG_PROTECT2, flags, arg0: BigInt(arg0) });
  const res = v.ioctl(KVM_ENABLE_CAP, b);
  return res >= 0 ? "ok" : errnoName(-res);
}
/** A readable+writable host buffer of `pages` pages whose next page is inaccessible. */
function bufferBeforeHole(pages = 1): bigint {
  const hva = kvm.memory.mmap((pages + 1) * 4096);
  kvm.memory.mprotect(hva + BigInt(pages * 4096), 4096, PROT_NONE);
  return hva;
}

beforeEach(async () => {
  kvm = await openKvm();
  r = new ScriptRunner(kvm);
  expect(ops(
    "vm",
    "hostmap A 0x1000000",
    "set 0 1 0x0 0x100000 A+0",               // 256 pages, logged
    "set 1 0 0x100000 0x100000 A+0x100000",   // not logged
    "set 2 1 0x200000 0x64000 A+0x200000",    // 100 pages, logged
    "set 3 1 0x300000 0x80000 A+0x300000",    // 128 pages, logged
  ).every((x) => x === "ok")).toBe(true);
});

describe("KVM_GET_DIRTY_LOG: errors and their order (kvm_get_dirty_log_protect)", () => {
  it("#1: a struct shorter than 16 bytes is EFAULT, checked before ENXIO", async () => {
    const buf = kvm.memory.mmap(4096);
    expect(rawGet(0, buf, 15)).toBe(`EFAULT/${COPY_FROM_USER}`);
    expect(rawGet(0, buf, 0)).toBe(`EFAULT/${COPY_FROM_USER}`);
    expect(rawGet(0, buf, 16)).toBe("ok");
    const v = kvm.createVm();
    v.enableDirtyRing(4096);
    expect(rawGet(40000, buf, 15, v)).toBe(`EFAULT/${COPY_FROM_USER}`);
    expect(rawGet(40000, buf, 16, v)).toBe(`ENXIO/${NO_BITMAPS}`);
  });

  it("#2: a VM with a dirty ring has no bitmaps (ENXIO), checked before the slot id", () => {
    const v = kvm.createVm();
    const hva = kvm.memory.mmap(0x10000);
    v.setUserMemoryRegion({ slot: 0, flags: 1, guestPhysAddr: 0, memorySize: 0x10000, userspaceAddr: hva });
    v.enableDirtyRing(4096); // after a logged slot with a bitmap: that bitmap is unreachable now
    const buf = kvm.memory.mmap(4096);
    for (const slot of [0, 1, 32764, 40000, 0x10000, 0x20000, 0xffffffff]) expect(rawGet(slot, buf, 16, v)).toBe(`ENXIO/${NO_BITMAPS}`);
    expect(rawGet(0, 0n, 16, v)).toBe(`ENXIO/${NO_BITMAPS}`);
  });

  it("#3: as_id >= nr_as or id >= 32764 is EINVAL, checked before ENOENT", async () => {
    const buf = kvm.memory.mmap(4096);
    for (const slot of [32764, 32765, 32766, 40000, 65535, 0x10000, 0x10001, 0x20000, 0xffff0000])
      expect([slot, rawGet(slot, buf)]).toEqual([slot, `EINVAL/${SLOT_ID}`]);
    // With two address spaces, as_id 1 is valid: an absent slot there is ENOENT.
    const k2 = await openKvm({ config: { addressSpaces: 2 } });
    const v2 = k2.createVm();
    expect(v2.addressSpaces).toBe(2);
    const b2 = k2.memory.mmap(4096);
    const g = (slot: number) => rawGet(slot, b2, 16, v2);
    expect(g(0x10000)).toBe(`ENOENT/${NO_SLOT}`);
    expect(g(0x10000 | 32764)).toBe(`EINVAL/${SLOT_ID}`);
    expect(g(0x20000)).toBe(`EINVAL/${SLOT_ID}`);
  });

  it("with two address spaces, slots of address space 1 have their own bitmaps (slot field 1 << 16 | id)", async () => {
    const k2 = await openKvm({ config: { addressSpaces: 2 } });
    const v2 = k2.createVm();
    const hva = k2.memory.mmap(0x20000);
    v2.setUserMemoryRegion({ slot: 3, asId: 1, flags: 1, guestPhysAddr: 0x10000, memorySize: 0x10000, userspaceAddr: hva });
    v2.setUserMemoryRegion({ slot: 3, asId: 0, flags: 1, guestPhysAddr: 0x10000, memorySize: 0x10000, userspaceAddr: hva + 0x10000n });
    v2.writeGuest(0x12000, new Uint8Array([1]), 1);
    v2.writeGuest(0x15000, new Uint8Array([1]), 0);
    expect(Array.from(v2.getDirtyLog(3, 1))).toEqual([0x04, 0, 0, 0, 0, 0, 0, 0]);
    expect(Array.from(v2.getDirtyLog(3, 0))).toEqual([0x20, 0, 0, 0, 0, 0, 0, 0]);
    v2.writeGuest(0x1f000, new Uint8Array([1]), 1);
    v2.clearDirtyLog(3, 0, 16, undefined, 1);
    expect(Array.from(v2.getDirtyLog(3, 1))).toEqual(Array(8).fill(0));
  });

  it("internal slot ids are EINVAL for GET and CLEAR even when the internal slot exists", () => {
    vm().x86SetMemoryRegion(32764, 0x10000000, 0x1000);
    const buf = kvm.memory.mmap(4096);
    expect(rawGet(32764, buf)).toBe(`EINVAL/${SLOT_ID}`);
    expect(rawClear(32764, 0, 1, buf)).toBe(`EINVAL/${SLOT_ID}`);
  });

  it("#4: an absent slot or a slot without logging is ENOENT", () => {
    const buf = kvm.memory.mmap(4096);
    expect(rawGet(1, buf)).toBe(`ENOENT/${NO_SLOT}`);   // not logged
    expect(rawGet(7, buf)).toBe(`ENOENT/${NO_SLOT}`);   // absent
    expect(rawGet(32763, buf)).toBe(`ENOENT/${NO_SLOT}`);
    expect(op("set 4 2 0x400000 0x1000 A+0")).toBe("ok"); // READONLY without logging
    expect(rawGet(4, buf)).toBe(`ENOENT/${NO_SLOT}`);
    expect(op("getlog 1")).toBe("ENOENT");
  });

  it("#1–#4 come before the copy-out: a bad slot with an unusable bitmap address is not EFAULT", () => {
    expect(rawGet(1, 0n)).toBe(`ENOENT/${NO_SLOT}`);
    expect(rawGet(9, 0n)).toBe(`ENOENT/${NO_SLOT}`);
    expect(rawGet(32764, 0n)).toBe(`EINVAL/${SLOT_ID}`);
  });

  it("#5: the copy-out writes exactly ALIGN(npages, 64) / 8 bytes; unmapped or read-only destinations are EFAULT", () => {
    const hva = bufferBeforeHole();
    const end = hva + 4096n;
    // 100-page slot: 16 bytes. Ending exactly at the hole is fine, one byte further is not.
    expect(rawGet(2, end - 16n)).toBe("ok");
    expect(rawGet(2, end - 15n)).toBe(`EFAULT/${COPY}`);
    // 128-page slot: 16 bytes; 256-page slot: 32 bytes.
    expect(rawGet(3, end - 16n)).toBe("ok");
    expect(rawGet(0, end - 32n)).toBe("ok");
    expect(rawGet(0, end - 24n)).toBe(`EFAULT/${COPY}`);
    expect(rawGet(0, 0n)).toBe(`EFAULT/${COPY}`);
    const ro = kvm.memory.mmap(4096, { prot: PROT_READ });
    expect(rawGet(0, ro)).toBe(`EFAULT/${COPY}`);
    // Nothing past the bitmap is written: fill with a pattern, GET into the middle.
    const pat = new Uint8Array(64).fill(0xaa);
    kvm.memory.write(hva, pat);
    expect(op("write 0x200000 1")).toBe("ok");
    expect(op("write 0x263000 1")).toBe("ok"); // page 99, the last one
    expect(rawGet(2, hva + 16n)).toBe("ok");
    const got = Array.from(kvm.memory.read(hva, 64));
    expect(got.slice(0, 16)).toEqual(Array(16).fill(0xaa));
    expect(got.slice(16, 32)).toEqual([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0, 0, 0]);
    expect(got.slice(32)).toEqual(Array(32).fill(0xaa));
  });

  it("without manual protect an EFAULT on copy-out loses the bits (cleared and re-protected first)", () => {
    expect(op("write 0x3000 1")).toBe("ok");
    expect(op("write 0x5000 1")).toBe("ok");
    expect(rawGet(0, 0n)).toBe(`EFAULT/${COPY}`);
    expect(op("getlog 0")).toBe("dirty none");
    // The pages were re-protected: their next writes are logged again.
    expect(op("write 0x3000 2")).toBe("ok");
    expect(op("getlog 0")).toBe("dirty 3");
  });

  it("with manual protect an EFAULT on copy-out loses nothing", () => {
    expect(op("cap manual_protect")).toBe("ok");
    expect(op("write 0x3000 1")).toBe("ok");
    expect(rawGet(0, 0n)).toBe(`EFAULT/${COPY}`);
    expect(op("getlog 0")).toBe("dirty 3");
  });

  it("padding1 is ignored", () => {
    expect(op("write 0x3000 1")).toBe("ok");
    const buf = kvm.memory.mmap(4096);
    const b = kvm_dirty_log.encode({ slot: 0, padding1: 0xffffffff, dirty_bitmap: buf });
    expect(outcome(vm().ioctl(KVM_GET_DIRTY_LOG, b), vm())).toBe("ok");
    expect(kvm.memory.read(buf, 1)[0]).toBe(1 << 3);
  });
});

describe("KVM_CLEAR_DIRTY_LOG: errors and their order (kvm_clear_dirty_log_protect)", () => {
  let ones: bigint;
  beforeEach(() => {
    ones = kvm.memory.mmap(4096);
    kvm.memory.write(ones, new Uint8Array(4096).fill(0xff));
  });

  it("#1: a struct shorter than 24 bytes is EFAULT, checked before ENXIO", () => {
    expect(rawClear(0, 0, 64, ones, 23)).toBe(`EFAULT/${COPY_FROM_USER}`);
    expect(rawClear(0, 0, 64, ones, 24)).toBe("ok");
    const v = kvm.createVm();
    v.enableDirtyRing(4096);
    expect(rawClear(40000, 1, 64, ones, 23, v)).toBe(`EFAULT/${COPY_FROM_USER}`);
  });

  it("#2: ENXIO with a dirty ring, before the slot id and first_page checks", () => {
    const v = kvm.createVm();
    v.enableDirtyRing(4096);
    expect(rawClear(0, 0, 64, ones, 24, v)).toBe(`ENXIO/${NO_BITMAPS}`);
    expect(rawClear(40000, 1, 64, ones, 24, v)).toBe(`ENXIO/${NO_BITMAPS}`);
    expect(rawClear(0x20000, 1, 63, 0n, 24, v)).toBe(`ENXIO/${NO_BITMAPS}`);
  });

  it("#3: a bad slot id or address space is EINVAL, before the first_page alignment", () => {
    for (const slot of [32764, 32766, 40000, 0x10000, 0x20000])
      for (const first of [0, 1]) expect([slot, first, rawClear(slot, first, 64, ones)]).toEqual([slot, first, `EINVAL/${SLOT_ID}`]);
  });

  it("#4: first_page not a multiple of 64 is EINVAL, before ENOENT (absent and unlogged slots)", () => {
    expect(rawClear(2, 1, 64, ones)).toBe(`EINVAL/${FIRST_ALIGN}`);
    expect(rawClear(2, 63, 1, ones)).toBe(`EINVAL/${FIRST_ALIGN}`);
    expect(rawClear(7, 1, 64, ones)).toBe(`EINVAL/${FIRST_ALIGN}`); // absent
    expect(rawClear(1, 32, 0, ones)).toBe(`EINVAL/${FIRST_ALIGN}`); // unlogged
    expect(rawClear(7, 0, 64, ones)).toBe(`ENOENT/${NO_SLOT}`);
    expect(rawClear(1, 0, 64, ones)).toBe(`ENOENT/${NO_SLOT}`);
  });

  it("#5: an absent or unlogged slot is ENOENT, before the range checks", () => {
    const huge = (1n << 64n) - 64n;
    expect(rawClear(7, huge, 0, ones)).toBe(`ENOENT/${NO_SLOT}`);
    expect(rawClear(1, huge, 64, ones)).toBe(`ENOENT/${NO_SLOT}`);
    expect(rawClear(1, 0, 0xffffffff, ones)).toBe(`ENOENT/${NO_SLOT}`);
  });

  it("boundary cases on a 100-page slot (#4, #6, #7, #8)", () => {
    const cases: [bigint | number, number, string][] = [
      [64, 36, "ok"], [64, 35, `EINVAL/${NUM_ALIGN}`], [64, 37, `EINVAL/${NUM_RANGE}`],
      [0, 100, "ok"], [0, 99, `EINVAL/${NUM_ALIGN}`], [0, 64, "ok"], [0, 101, `EINVAL/${NUM_RANGE}`],
      [0, 0, "ok"], [64, 0, "ok"], [0, 1, `EINVAL/${NUM_ALIGN}`],
      [100, 0, `EINVAL/${FIRST_ALIGN}`],   // first_page == npages, but not a multiple of 64
      [128, 0, `EINVAL/${FIRST_RANGE}`],
      [(1n << 64n) - 64n, 0, `EINVAL/${FIRST_RANGE}`],
      [(1n << 64n) - 64n, 64, `EINVAL/${FIRST_RANGE}`],
      [1n << 32n, 64, `EINVAL/${FIRST_RANGE}`], // first_page is a full u64 (truncated it would be 0: ok)
      [1n << 63n, 0, `EINVAL/${FIRST_RANGE}`],
      [0, 0xffffffff, `EINVAL/${NUM_RANGE}`],   // num_pages is a u32
      [64, 0xffffffc0, `EINVAL/${NUM_RANGE}`],
    ];
    for (const [first, num, want] of cases) expect([first, num, rawClear(2, first, num, ones)]).toEqual([first, num, want]);
  });

  it("boundary cases on a 128-page slot: (128, 0) is accepted", () => {
    const cases: [number, number, string][] = [
      [128, 0, "ok"], [64, 64, "ok"], [0, 128, "ok"], [0, 127, `EINVAL/${NUM_ALIGN}`], [64, 63, `EINVAL/${NUM_ALIGN}`],
      [64, 65, `EINVAL/${NUM_RANGE}`], [128, 1, `EINVAL/${NUM_RANGE}`], [192, 0, `EINVAL/${FIRST_RANGE}`],
    ];
    for (const [first, num, want] of cases) expect([first, num, rawClear(3, first, num, ones)]).toEqual([first, num, want]);
  });

  it("#9: exactly ALIGN(num_pages, 64) / 8 bytes are read; an unreadable bitmap is EFAULT and clears nothing", () => {
    expect(op("cap manual_protect")).toBe("ok");
    expect(op("write 0x200000 1")).toBe("ok");
    expect(op("write 0x241000 1")).toBe("ok"); // page 65
    const hva = bufferBeforeHole();
    kvm.memory.write(hva, new Uint8Array(4096).fill(0xff));
    const end = hva + 4096n;
    expect(rawClear(2, 0, 100, end - 8n)).toBe(`EFAULT/${COPY}`); // needs 16 bytes
    expect(rawClear(2, 0, 100, end - 15n)).toBe(`EFAULT/${COPY}`);
    expect(op("getlog 2")).toBe("dirty 0,65");                    // nothing cleared
    expect(rawClear(2, 0, 100, 0n)).toBe(`EFAULT/${COPY}`);
    expect(op("getlog 2")).toBe("dirty 0,65");
    expect(rawClear(2, 64, 36, end - 8n)).toBe("ok");             // 8 bytes, ending at the hole
    expect(op("getlog 2")).toBe("dirty 0");
    expect(rawClear(2, 0, 64, end - 8n)).toBe("ok");
    expect(op("getlog 2")).toBe("dirty none");
    expect(rawClear(2, 0, 0, 0n)).toBe("ok");                     // nothing to read
    expect(rawClear(2, 64, 0, 0n)).toBe("ok");
    expect(rawClear(3, 128, 0, 0n)).toBe("ok");
  });

  it("#4–#8 come before the bitmap read", () => {
    expect(rawClear(2, 1, 64, 0n)).toBe(`EINVAL/${FIRST_ALIGN}`);
    expect(rawClear(7, 0, 64, 0n)).toBe(`ENOENT/${NO_SLOT}`);
    expect(rawClear(1, 0, 64, 0n)).toBe(`ENOENT/${NO_SLOT}`);
    expect(rawClear(2, 128, 0, 0n)).toBe(`EINVAL/${FIRST_RANGE}`);
    expect(rawClear(2, 64, 37, 0n)).toBe(`EINVAL/${NUM_RANGE}`);
    expect(rawClear(2, 64, 35, 0n)).toBe(`EINVAL/${NUM_ALIGN}`);
    expect(rawClear(2, 64, 36, 0n)).toBe(`EFAULT/${COPY}`);
  });
});

describe("GET: get-and-clear vs manual protect (kvm_get_dirty_log_protect)", () => {
  it("without manual protect GET reports and clears: the second GET is empty", () => {
    expect(ops("write 0x3000 1", "write 0x3008 2 8", "write 0x5fff 0x1234 2", "write 0x101000 1")).toEqual(["ok", "ok", "ok", "ok"]);
    expect(op("getlog 0")).toBe("dirty 3,5-6");
    expect(op("getlog 0")).toBe("dirty none");
  });

  it("with manual protect GET reports without clearing", () => {
    expect(ops("cap manual_protect", "write 0x2000 1", "write 0x3000 1", "write 0x4000 1")).toEqual(["ok", "ok", "ok", "ok"]);
    expect(op("getlog 0")).toBe("dirty 2-4");
    expect(op("getlog 0")).toBe("dirty 2-4");
    expect(op("write 0x9000 1")).toBe("ok");
    expect(op("getlog 0")).toBe("dirty 2-4,9");
  });

  it("disabling manual protect (args 0) makes GET clear again", () => {
    expect(ops("cap manual_protect", "write 0x2000 1")).toEqual(["ok", "ok"]);
    expect(op("getlog 0")).toBe("dirty 2");
    expect(op("cap manual_protect 0")).toBe("ok");
    expect(op("getlog 0")).toBe("dirty 2");
    expect(op("getlog 0")).toBe("dirty none");
  });

  it("a bitmap of several pages lands whole in any destination: untouched, frames in a row, scattered, unaligned", () => {
    const v = kvm.createVm();
    v.enableCap("manual_dirty_log_protect2", [3n]); // INITIALLY_SET: every bit starts set
    const npages = 3 * 32768 + 100, bytes = Math.ceil(npages / 64) * 8;
    v.setUserMemoryRegion({ slot: 0, flags: 1, guestPhysAddr: 0, memorySize: BigInt(npages) * 4096n,
      userspaceAddr: kvm.memory.mmap(BigInt(npages) * 4096n) });
    // CLEAR a pattern: word w keeps the bits of w * 0x9e3779b97f4a7c15 (the rest cleared).
    const keep = new BigUint64Array(bytes / 8).map((_, w) => BigInt.asUintN(64, BigInt(w) * 0x9e3779b97f4a7c15n));
    const clearMask = new Uint8Array(new BigUint64Array(keep.map((k) => ~k & ((1n << 64n) - 1n))).buffer);
    const maskAt = kvm.memory.mmap(bytes);
    kvm.memory.write(maskAt, clearMask);
    const cl = kvm_clear_dirty_log.encode({ slot: 0n, first_page: 0n, num_pages: npages, dirty_bitmap: maskAt });
    expect(v.ioctl(KVM_CLEAR_DIRTY_LOG, cl)).toBe(0);
    const want = new Uint8Array(keep.buffer).slice();
    const tail = npages % 64; // bits past npages in the last word do not exist
    const last = bytes - 8;
    for (let b = tail; b < 64; b++) want[last + (b >> 3)] &= ~(1 << (b & 7));
    const pages = Math.ceil((bytes + 8) / 4096);
    const dests: [string, bigint][] = [];
    const fresh = kvm.memory.mmap(pages * 4096);
    dests.push(["untouched", fresh]);
    const inRow = kvm.memory.mmap(pages * 4096);
    for (let p = 0; p < pages; p++) kvm.memory.poke(inRow + BigInt(p * 4096), 1, 1);
    dests.push(["frames in a row", inRow]);
    const scattered = kvm.memory.mmap(pages * 4096);
    for (let p = pages - 1; p >= 0; p--) { kvm.memory.poke(scattered + BigInt(p * 4096), 1, 1); }
    dests.push(["scattered", scattered]);
    dests.push(["unaligned", inRow + 8n]);
    for (const [name, at] of dests) {
      const get = kvm_dirty_log.encode({ slot: 0n, dirty_bitmap: at });
      expect(v.ioctl(KVM_GET_DIRTY_LOG, get), name).toBe(0);
      expect(kvm.memory.read(at, bytes), name).toEqual(want);
    }
  });

  it("a destination whose frames are in a row but for one page (elsewhere, the zero page, untouched) gets every byte, wherever that page is", () => {
    // The copy takes one run only when every page's frame follows the last
    // (hostmm/pgtable.ts privateRunLocked, four ptes per compare): a break in
    // any lane of a compare, or in the pages after the last whole compare,
    // must send the copy page by page.
    const v = kvm.createVm();
    v.enableCap("manual_dirty_log_protect2", [3n]);
    const pages = 12, bytes = pages * 4096, npages = bytes * 8;
    v.setUserMemoryRegion({ slot: 0, flags: 1, guestPhysAddr: 0, memorySize: BigInt(npages) * 4096n,
      userspaceAddr: kvm.memory.mmap(BigInt(npages) * 4096n) });
    const keep = new BigUint64Array(bytes / 8).map((_, w) => BigInt.asUintN(64, BigInt(w + 1) * 0x9e3779b97f4a7c15n));
    const maskAt = kvm.memory.mmap(bytes);
    kvm.memory.write(maskAt, new Uint8Array(new BigUint64Array(keep.map((k) => ~k & ((1n << 64n) - 1n))).buffer));
    expect(v.ioctl(KVM_CLEAR_DIRTY_LOG, kvm_clear_dirty_log.encode({ slot: 0n, first_page: 0n, num_pages: npages, dirty_bitmap: maskAt }))).toBe(0);
    const want = new Uint8Array(keep.buffer);
    const elsewhere = kvm.memory.mmap(pages * 4096);
    const breaks = [1, 2, 3, 4, 6, 8, 9, 11]; // each lane of the two compares (pages 1-8), and the three after
    for (const kind of ["elsewhere", "zero page", "untouched"]) {
      for (const k of breaks) {
        const at = kvm.memory.mmap(pages * 4096);
        // Frames are handed out in order: page k's goes to another buffer, so
        // every other page keeps the frame a run from page 0 would give it.
        for (let p = 0; p < pages; p++) {
          const page = at + BigInt(p * 4096);
          if (p !== k) { kvm.memory.poke(page, 1, 1); continue; }
          if (kind === "zero page") expect(kvm.memory.peek(page, 1)).toBe(0n);
          kvm.memory.poke(elsewhere + BigInt(k * 4096), 1, 1);
        }
        if (kind === "elsewhere") kvm.memory.poke(at + BigInt(k * 4096), 1, 1);
        expect(v.ioctl(KVM_GET_DIRTY_LOG, kvm_dirty_log.encode({ slot: 0n, dirty_bitmap: at })), `${kind} ${k}`).toBe(0);
        const got = kvm.memory.read(at, bytes);
        expect(got.findIndex((b, i) => b !== want[i]), `${kind} ${k}: first wrong byte`).toBe(-1);
      }
    }
    const other = kvm.memory.read(elsewhere, pages * 4096);
    expect(other.findIndex((b, i) => b !== (i % 4096 === 0 && breaks.includes(i / 4096) ? 1 : 0)), "the other buffer").toBe(-1);
  });

  it("the bitmap is slot-relative, ALIGN(npages, 64) / 8 bytes, bit i of byte i/8 little-endian", () => {
    expect(ops("write 0x200000 1", "write 0x209000 1", "write 0x240000 1", "write 0x263000 1")).toEqual(["ok", "ok", "ok", "ok"]);
    const bm = vm().getDirtyLog(2);
    expect(Array.from(bm)).toEqual([0x01, 0x02, 0, 0, 0, 0, 0, 0, 0x01, 0, 0, 0, 0x08, 0, 0, 0]);
  });
});

describe("CLEAR and re-protection (kvm_arch_mmu_enable_log_dirty_pt_masked)", () => {
  it("re-protect: after a non-manual GET the next write to a reported page is logged again", () => {
    expect(op("write 0x3000 1")).toBe("ok");
    expect(op("getlog 0")).toBe("dirty 3");
    expect(op("write 0x3000 2")).toBe("ok");
    expect(op("getlog 0")).toBe("dirty 3");
    expect(op("write 0x3ffc 3")).toBe("ok");
    expect(op("getlog 0")).toBe("dirty 3");
    expect(op("getlog 0")).toBe("dirty none");
  });

  it("re-protect with manual protect: without CLEAR the page stays reported; after CLEAR a new write is needed", () => {
    expect(ops("cap manual_protect", "write 0x3000 1")).toEqual(["ok", "ok"]);
    expect(op("getlog 0")).toBe("dirty 3");
    expect(op("write 0x3000 2")).toBe("ok");
    expect(op("getlog 0")).toBe("dirty 3");
    expect(op("clearlog 0 0 64")).toBe("ok");
    expect(op("getlog 0")).toBe("dirty none");
    expect(op("getlog 0")).toBe("dirty none");
    expect(op("write 0x3004 3")).toBe("ok");
    expect(op("getlog 0")).toBe("dirty 3");
  });

  it("CLEAR of a subset leaves the rest: only the given bits, only the given range", () => {
    expect(ops("cap manual_protect", "write 0x1000 1", "write 0x2000 1", "write 0x3000 1", "write 0x4000 1",
      "write 0x41000 1", "write 0xc8000 1")).toEqual(Array(7).fill("ok"));
    expect(op("clearlog 0 0 64 2,4")).toBe("ok");
    expect(op("getlog 0")).toBe("dirty 1,3,65,200");
    expect(op("clearlog 0 64 64")).toBe("ok");            // [64, 128) only
    expect(op("getlog 0")).toBe("dirty 1,3,200");
    expect(op("clearlog 0 192 64 8")).toBe("ok");         // page 200 = bit 8 of the word at 192
    expect(op("getlog 0")).toBe("dirty 1,3");
    expect(op("clearlog 0 0 256 none")).toBe("ok");
    expect(op("getlog 0")).toBe("dirty 1,3");
  });

  it("CLEAR re-arms the pages whose bits it cleared, and no others", () => {
    expect(ops("cap manual_protect", "write 0x2000 1", "write 0x3000 1", "write 0x4000 1")).toEqual(Array(4).fill("ok"));
    // Bits 2 and 3 cleared (both dirty), bit 10 given but clean, 4 not given.
    expect(op("clearlog 0 0 64 2,3,10")).toBe("ok");
    expect(op("getlog 0")).toBe("dirty 4");
    expect(ops("write 0x2000 2", "write 0x4000 2")).toEqual(["ok", "ok"]);
    expect(op("getlog 0")).toBe("dirty 2,4");             // 2 was re-armed; 3 was not written again
    expect(op("write 0xa000 1")).toBe("ok");               // a clean page named in a CLEAR still logs its first write
    expect(op("getlog 0")).toBe("dirty 2,4,10");
  });

  it("CLEAR re-arms a page that was never write-protected (INITIALLY_SET skips the protection on enable)", () => {
    // Page 5 of slot 1 becomes writable while slot 1 is not logged.
    expect(op("write 0x105000 1")).toBe("ok");
    expect(op("write 0x106000 1")).toBe("ok");
    expect(op("cap manual_protect initially_set")).toBe("ok");
    expect(op("set 1 1 0x100000 0x100000 A+0x100000")).toBe("ok");
    expect(op("getlog 1")).toBe("dirty 0-255");
    expect(op("clearlog 1 0 256")).toBe("ok");
    expect(op("getlog 1")).toBe("dirty none");
    expect(op("write 0x105000 2")).toBe("ok");
    expect(op("write 0x106004 2")).toBe("ok");
    expect(op("getlog 1")).toBe("dirty 5-6");
  });

  it("input bits beyond npages in the last word are harmless", () => {
    expect(ops("cap manual_protect", "write 0x263000 1", "write 0x240000 1")).toEqual(["ok", "ok", "ok"]);
    const bits = new Uint8Array(8).fill(0xff);
    vm().clearDirtyLog(2, 64, 36, bits);
    expect(op("getlog 2")).toBe("dirty none");
    expect(Array.from(vm().getDirtyLog(2))).toEqual(Array(16).fill(0));
    expect(op("write 0x263000 1")).toBe("ok");
    expect(op("getlog 2")).toBe("dirty 99");
  });

  it("Vm.clearDirtyLog writes no bitmap for a call that fails its checks first (kvm_clear_dirty_log_protect reads it last)", () => {
    expect(op("cap manual_protect")).toBe("ok");
    const frames = kvm.memory.framesInUse;
    // num_pages 2^32 - 1 from page 2^40: EINVAL at once, without a 512 MiB all-ones bitmap in JS or in frames
    expect(code(() => vm().clearDirtyLog(0, 1n << 40n, 0xffffffff))).toBe("EINVAL");
    expect(code(() => vm().clearDirtyLog(0, 0, 0xffffffff))).toBe("EINVAL");
    expect(kvm.memory.framesInUse).toBe(frames);
    expect(ops("write 0x1000 1", "getlog 0")).toEqual(["ok", "dirty 1"]);
    vm().clearDirtyLog(0, 0, 64);                       // a call that passes still clears with the default bitmap
    expect(ops("write 0x1000 2", "getlog 0")).toEqual(["ok", "dirty 1"]);
  });

  it("CLEAR works without manual protect, and re-arms", () => {
    expect(ops("write 0x1000 1", "write 0x41000 1")).toEqual(["ok", "ok"]);
    expect(op("clearlog 0 0 64")).toBe("ok");
    expect(op("write 0x1000 2")).toBe("ok");
    expect(op("getlog 0")).toBe("dirty 1,65");
    expect(op("getlog 0")).toBe("dirty none");
  });
});

describe("bitmaps across memslot changes (kvm_prepare_memory_region, kvm_commit_memory_region)", () => {
  it("MOVE with logging kept keeps the bitmap: old bits are reported at the new gfns", () => {
    expect(ops("write 0x3000 1", "write 0x7000 1")).toEqual(["ok", "ok"]);
    expect(op("set 0 1 0x400000 0x100000 A+0")).toBe("ok");
    expect(op("getlog 0")).toBe("dirty 3,7");
    // The old range is MMIO now; the new one logs (its mappings are new).
    expect(op("write 0x3000 1")).toBe("mmio write 0x3000 4 01000000; ok");
    expect(op("write 0x403000 5")).toBe("ok");
    expect(op("getlog 0")).toBe("dirty 3");
    expect(vm().getDirtyLog(0).length).toBe(32);
  });

  it("MOVE with logging kept under manual protect keeps unreported and reported bits alike", () => {
    expect(ops("cap manual_protect", "write 0x3000 1")).toEqual(["ok", "ok"]);
    expect(op("getlog 0")).toBe("dirty 3");
    expect(op("write 0x9000 1")).toBe("ok");
    expect(op("set 0 1 0x400000 0x100000 A+0")).toBe("ok");
    expect(op("getlog 0")).toBe("dirty 3,9");
  });

  it("MOVE turning logging off frees the bitmap; MOVE turning it on starts a fresh one", () => {
    expect(op("write 0x3000 1")).toBe("ok");
    expect(op("set 0 0 0x400000 0x100000 A+0")).toBe("ok");
    expect(op("getlog 0")).toBe("ENOENT");
    expect(op("write 0x404000 1")).toBe("ok");             // not logged
    expect(op("set 0 1 0x500000 0x100000 A+0")).toBe("ok");
    expect(op("getlog 0")).toBe("dirty none");
    expect(op("write 0x504000 1")).toBe("ok");
    expect(op("getlog 0")).toBe("dirty 4");
  });

  it("flags-only off then on starts a fresh bitmap and write-protects the slot", () => {
    expect(ops("write 0x3000 1", "write 0x4000 1")).toEqual(["ok", "ok"]);
    expect(op("set 0 0 0x0 0x100000 A+0")).toBe("ok");
    expect(op("getlog 0")).toBe("ENOENT");
    expect(vm().memslots().find((s) => s.id === 0)!.hasDirtyBitmap).toBe(false);
    expect(ops("write 0x3000 2", "write 0x5000 2")).toEqual(["ok", "ok"]); // unlogged: writable mappings
    expect(op("set 0 1 0x0 0x100000 A+0")).toBe("ok");
    expect(op("getlog 0")).toBe("dirty none");
    // Every page that was writable before the enable is logged on its next write.
    expect(ops("write 0x3000 3", "write 0x4000 3", "write 0x5000 3")).toEqual(["ok", "ok", "ok"]);
    expect(op("getlog 0")).toBe("dirty 3-5");
  });

  it("flags-only enable on a slot written while unlogged: the first write after the enable is logged", () => {
    expect(op("write 0x108000 1")).toBe("ok");
    expect(op("set 1 1 0x100000 0x100000 A+0x100000")).toBe("ok");
    expect(op("getlog 1")).toBe("dirty none");
    expect(op("write 0x108000 2")).toBe("ok");
    expect(op("getlog 1")).toBe("dirty 8");
  });

  it("DELETE loses pending bits; a re-created slot starts clean", () => {
    expect(op("write 0x3000 1")).toBe("ok");
    expect(op("set 0 0 0x0 0 A+0")).toBe("ok");
    expect(op("getlog 0")).toBe("ENOENT");
    expect(op("set 0 1 0x0 0x100000 A+0")).toBe("ok");
    expect(op("getlog 0")).toBe("dirty none");
  });

  it("re-setting identical flags leaves the bitmap untouched", () => {
    expect(op("write 0x3000 1")).toBe("ok");
    expect(op("set 0 1 0x0 0x100000 A+0")).toBe("ok");
    expect(op("getlog 0")).toBe("dirty 3");
  });
});

describe("initially-set (KVM_DIRTY_LOG_INITIALLY_SET)", () => {
  it("new bitmaps start all ones; bits >= npages are zero", () => {
    expect(op("cap manual_protect initially_set")).toBe("ok");
    expect(op("set 5 1 0x600000 0x64000 A+0x600000")).toBe("ok"); // 100 pages
    const bm = vm().getDirtyLog(5);
    expect(Array.from(bm)).toEqual([...Array(12).fill(0xff), 0x0f, 0, 0, 0]);
    expect(op("getlog 5")).toBe("dirty 0-99");
    expect(op("getlog 5")).toBe("dirty 0-99"); // manual protect: GET does not clear
  });

  it("a flags-only enable under INITIALLY_SET starts all ones", () => {
    expect(op("cap manual_protect initially_set")).toBe("ok");
    expect(op("set 1 1 0x100000 0x100000 A+0x100000")).toBe("ok");
    expect(op("getlog 1")).toBe("dirty 0-255");
    expect(op("clearlog 1 0 256")).toBe("ok");
    expect(op("write 0x1ff000 1")).toBe("ok");
    expect(op("getlog 1")).toBe("dirty 255");
    expect(op("set 1 1 0x400000 0x100000 A+0x100000")).toBe("ok"); // MOVE keeps the bitmap (no refill)
    expect(op("getlog 1")).toBe("dirty 255");
    expect(op("set 1 0 0x400000 0x100000 A+0x100000")).toBe("ok");
    expect(op("set 1 1 0x400000 0x100000 A+0x100000")).toBe("ok"); // on again: fresh, all ones
    expect(op("getlog 1")).toBe("dirty 0-255");
  });

  it("what counts is the mode when the bitmap is allocated, not when the slot was created", () => {
    expect(op("cap manual_protect")).toBe("ok");
    expect(op("set 5 1 0x600000 0x40000 A+0x600000")).toBe("ok");
    expect(op("cap manual_protect initially_set")).toBe("ok");
    expect(op("getlog 5")).toBe("dirty none");            // allocated before INITIALLY_SET
    expect(op("set 6 0 0x700000 0x40000 A+0x700000")).toBe("ok");
    expect(op("set 6 1 0x700000 0x40000 A+0x700000")).toBe("ok");
    expect(op("getlog 6")).toBe("dirty 0-63");            // allocated under it
    expect(op("cap manual_protect 0")).toBe("ok");
    expect(op("getlog 6")).toBe("dirty 0-63");            // non-manual now: reported and cleared
    expect(op("getlog 6")).toBe("dirty none");
    expect(op("set 7 1 0x800000 0x40000 A+0x800000")).toBe("ok");
    expect(op("getlog 7")).toBe("dirty none");            // allocated after it was switched off
  });

  it("slots created before the cap keep their zero bitmaps; the 128-page slot reads back 16 bytes of ones", () => {
    expect(op("cap manual_protect initially_set")).toBe("ok");
    expect(op("getlog 3")).toBe("dirty none");
    expect(op("set 3 0 0x300000 0x80000 A+0x300000")).toBe("ok");
    expect(op("set 3 1 0x300000 0x80000 A+0x300000")).toBe("ok");
    expect(Array.from(vm().getDirtyLog(3))).toEqual(Array(16).fill(0xff));
  });
});

describe("what is logged (mark_page_dirty_in_slot)", () => {
  it("writes through vm.writeGuest are logged on every page they touch", () => {
    vm().writeGuest(0x7ffe, new Uint8Array([1, 2, 3, 4]));
    vm().writeGuest(0x20000, new Uint8Array(0x2001)); // pages 0x20..0x22
    vm().writeGuest(0x101000, new Uint8Array([1]));   // unlogged slot
    expect(op("getlog 0")).toBe("dirty 7-8,32-34");
    expect(op("getlog 1")).toBe("ENOENT");
    expect(op("cap manual_protect")).toBe("ok");
    vm().writeGuest(0x9000, new Uint8Array([1]));
    expect(op("getlog 0")).toBe("dirty 9");
  });

  it("a vm.writeGuest that fails part-way (EFAULT) logs the pages it did write", () => {
    // Slot 2 ends at 0x264000 with nothing behind it: page 99 is written, then the hole faults.
    expect(code(() => vm().writeGuest(0x263ffe, new Uint8Array([1, 2, 3, 4])))).toBe("EFAULT");
    expect(op("peek A+0x263ffe 2")).toBe("ok 0x201");
    expect(op("getlog 2")).toBe("dirty 99");
    expect(code(() => vm().writeGuest(0x264000, new Uint8Array([1])))).toBe("EFAULT");
    expect(op("getlog 2")).toBe("dirty none");
  });

  it("reads are not logged: vm.readGuest and guest loads", () => {
    vm().readGuest(0x3000, 0x3000);
    expect(op("read 0xa000")).toBe("ok 0x0");
    expect(op("read 0xb000 8")).toBe("ok 0x0");
    expect(op("getlog 0")).toBe("dirty none");
    // A page first read and then written is logged by the write.
    expect(op("write 0xa000 1")).toBe("ok");
    expect(op("getlog 0")).toBe("dirty 10");
  });

  it("a READONLY|LOG_DIRTY_PAGES slot has a bitmap, but stores exit as MMIO and log nothing", () => {
    expect(op("poke A+0x601000 0x55")).toBe("ok");
    expect(op("set 5 3 0x600000 0x10000 A+0x600000")).toBe("ok");
    expect(vm().memslots().find((s) => s.id === 5)!.hasDirtyBitmap).toBe(true);
    expect(op("getlog 5")).toBe("dirty none");
    expect(op("write 0x601000 1")).toBe("mmio write 0x601000 4 01000000; ok");
    expect(op("read 0x601000")).toBe("ok 0x55");
    expect(code(() => vm().writeGuest(0x602000, new Uint8Array([1])))).toBe("EFAULT");
    expect(op("getlog 5")).toBe("dirty none");
    expect(op("clearlog 5 0 16")).toBe("ok");
  });

  it("stores to a slot without LOG_DIRTY_PAGES are never logged", () => {
    expect(ops("write 0x101000 1", "write 0x1ff000 1")).toEqual(["ok", "ok"]);
    expect(op("set 1 1 0x100000 0x100000 A+0x100000")).toBe("ok");
    expect(op("getlog 1")).toBe("dirty none");
  });
});

describe("KVM_ENABLE_CAP(MANUAL_DIRTY_LOG_PROTECT2) (kvm_vm_ioctl_enable_cap_generic)", () => {
  it("args 0, 1 and 3 are accepted and stored verbatim", () => {
    for (const a of [1, 3, 0, 3, 1]) {
      expect(manualCap(a)).toBe("ok");
      expect(vm().debug.stats().manualDirtyLogProtect).toBe(a);
    }
  });

  it("INITIALLY_SET alone (2) and unknown bits are EINVAL", () => {
    for (const a of [2n, 4n, 5n, 6n, 7n, 8n, 1n << 32n, 1n << 63n, (1n << 64n) - 1n]) expect([a, manualCap(a)]).toEqual([a, "EINVAL"]);
    expect(vm().debug.stats().manualDirtyLogProtect).toBe(0);
  });

  it("flags other than 0 are EINVAL, also with args 0", () => {
    expect(manualCap(1, 1)).toBe("EINVAL");
    expect(manualCap(0, 1)).toBe("EINVAL");
    expect(manualCap(3, 0x80000000)).toBe("EINVAL");
    expect(manualCap(1)).toBe("ok");
    expect(manualCap(0, 2)).toBe("EINVAL");
    expect(vm().debug.stats().manualDirtyLogProtect).toBe(1);
  });

  it("args 0 disables it; it may be changed at any time, with slots and a vCPU present", () => {
    expect(op("vcpu")).toBe("ok");
    expect(manualCap(1)).toBe("ok");
    expect(op("write 0x3000 1")).toBe("ok");
    expect(op("getlog 0")).toBe("dirty 3");
    expect(op("getlog 0")).toBe("dirty 3");
    expect(manualCap(0)).toBe("ok");
    expect(op("getlog 0")).toBe("dirty 3");
    expect(op("getlog 0")).toBe("dirty none");
  });

  it("KVM_CHECK_EXTENSION answers 3; the obsolete cap 166 is EINVAL to enable and 0 to check", () => {
    expect(vm().checkExtension(KVM_CAP.MANUAL_DIRTY_LOG_PROTECT2)).toBe(3);
    expect(vm().checkExtension(KVM_CAP.MANUAL_DIRTY_LOG_PROTECT)).toBe(0);
    expect(code(() => vm().enableCap(KVM_CAP.MANUAL_DIRTY_LOG_PROTECT, [1]))).toBe("EINVAL");
  });
});
