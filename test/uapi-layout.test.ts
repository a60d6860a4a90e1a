// The struct codecs of src/uapi.ts and the kvm_run view of src/kvm-run.ts
// against the kernel's include/uapi/linux/kvm.h: every field's offset and size,
// every struct's total size, and the ioctl numbers (whose size field must match the struct).
import { describe, it, expect } from "vitest";
import * as uapi from "../src/uapi.js";
import { type StructCodec, type Field } from "../src/uapi.js";
import { KvmRun } from "../src/kvm-run.js";
import type { CoreExports } from "../src/core.js";

/** [name, offset, bytes] per include/uapi/linux/kvm.h (arrays and padding as one span). */
type Row = [string, number, number];
const LAYOUTS: [StructCodec<any>, number, Row[]][] = [
  [uapi.kvm_userspace_memory_region, 32, [
    ["slot", 0, 4], ["flags", 4, 4], ["guest_phys_addr", 8, 8], ["memory_size", 16, 8], ["userspace_addr", 24, 8],
  ]],
  [uapi.kvm_userspace_memory_region2, 160, [
    ["slot", 0, 4], ["flags", 4, 4], ["guest_phys_addr", 8, 8], ["memory_size", 16, 8], ["userspace_addr", 24, 8],
    ["guest_memfd_offset", 32, 8], ["guest_memfd", 40, 4], ["pad1", 44, 4], ["pad2", 48, 112],
  ]],
  [uapi.kvm_enable_cap, 104, [
    ["cap", 0, 4], ["flags", 4, 4], ["arg0", 8, 8], ["arg1", 16, 8], ["arg2", 24, 8], ["arg3", 32, 8], ["pad", 40, 64],
  ]],
  [uapi.kvm_dirty_log, 16, [["slot", 0, 4], ["padding1", 4, 4], ["dirty_bitmap", 8, 8]]],
  [uapi.kvm_clear_dirty_log, 24, [["slot", 0, 4], ["num_pages", 4, 4], ["first_page", 8, 8], ["dirty_bitmap", 16, 8]]],
  [uapi.kvm_dirty_gfn, 16, [["flags", 0, 4], ["slot", 4, 4], ["offset", 8, 8]]],
  [uapi.kvm_one_reg, 16, [["id", 0, 8], ["addr", 8, 8]]],
  [uapi.kvm_create_guest_memfd, 64, [["size", 0, 8], ["flags", 8, 8], ["reserved", 16, 48]]],
  [uapi.kvm_memory_attributes, 32, [["address", 0, 8], ["size", 8, 8], ["attributes", 16, 8], ["flags", 24, 8]]],
  [uapi.kvm_pre_fault_memory, 64, [["gpa", 0, 8], ["size", 8, 8], ["flags", 16, 8], ["padding", 24, 40]]],
];

const span = (f: Field) => f.span ?? f.size;

describe("struct layouts (include/uapi/linux/kvm.h)", () => {
  for (const [codec, size, rows] of LAYOUTS) {
    it(`${codec.name}: ${size} bytes, every field at its offset with its size`, () => {
      expect(codec.size).toBe(size);
      expect(codec.fields.map((f) => [f.name, f.offset, span(f)])).toEqual(rows);
      // Fields tile the struct: no gaps, no overlaps, nothing past the end.
      let at = 0;
      for (const f of codec.fields) {
        expect(f.offset).toBe(at);
        at += span(f);
      }
      expect(at).toBe(size);
    });

    it(`${codec.name}: encode puts each field's bytes at its offset, little-endian; decode reads them back`, () => {
      for (const f of codec.fields) {
        if (f.span) continue;
        const v = ((1n << BigInt(f.size * 8)) - 1n) ^ 0x5an; // every byte non-zero
        const bytes = codec.encode({ [f.name]: v });
        expect(bytes.length).toBe(size);
        const dv = new DataView(bytes.buffer);
        const got = f.size === 8 ? dv.getBigUint64(f.offset, true) : f.size === 4 ? BigInt(dv.getUint32(f.offset, true))
          : f.size === 2 ? BigInt(dv.getUint16(f.offset, true)) : BigInt(dv.getUint8(f.offset));
        expect(got).toBe(v);
        // Only this field's bytes are set.
        const others = bytes.filter((_, i) => i < f.offset || i >= f.offset + f.size);
        expect(others.every((b) => b === 0)).toBe(true);
        expect(codec.decode(bytes)[f.name]).toBe(v);
      }
    });
  }

  it("a value wider than its field is a RangeError, never a silent wrap", () => {
    expect(() => uapi.kvm_userspace_memory_region.encode({ slot: 1n << 32n })).toThrow(RangeError);
    expect(() => uapi.kvm_create_guest_memfd.encode({ size: 1n << 64n })).toThrow(RangeError);
  });
});

describe("ioctl numbers (include/uapi/linux/kvm.h)", () => {
  const table: [string, number, number][] = [
    ["KVM_GET_API_VERSION", 0x0000ae00, 0], ["KVM_CREATE_VM", 0x0000ae01, 0], ["KVM_CHECK_EXTENSION", 0x0000ae03, 0],
    ["KVM_GET_VCPU_MMAP_SIZE", 0x0000ae04, 0], ["KVM_CREATE_VCPU", 0x0000ae41, 0], ["KVM_GET_DIRTY_LOG", 0x4010ae42, 16],
    ["KVM_SET_NR_MMU_PAGES", 0x0000ae44, 0], ["KVM_SET_USER_MEMORY_REGION", 0x4020ae46, 32],
    ["KVM_SET_TSS_ADDR", 0x0000ae47, 0], ["KVM_SET_IDENTITY_MAP_ADDR", 0x4008ae48, 8],
    ["KVM_SET_USER_MEMORY_REGION2", 0x40a0ae49, 160], ["KVM_RUN", 0x0000ae80, 0], ["KVM_ENABLE_CAP", 0x4068aea3, 104],
    ["KVM_CLEAR_DIRTY_LOG", 0xc018aec0, 24], ["KVM_RESET_DIRTY_RINGS", 0x0000aec7, 0], ["KVM_GET_STATS_FD", 0x0000aece, 0],
    ["KVM_SET_MEMORY_ATTRIBUTES", 0x4020aed2, 32], ["KVM_CREATE_GUEST_MEMFD", 0xc040aed4, 64],
    ["KVM_PRE_FAULT_MEMORY", 0xc040aed5, 64],
  ];
  for (const [name, nr, size] of table) {
    it(`${name} = 0x${nr.toString(16).padStart(8, "0")} (${size} bytes)`, () => {
      expect((uapi as unknown as Record<string, number>)[name]).toBe(nr);
      expect(uapi.ioctlSize(nr)).toBe(size);
    });
  }
  it("the struct ioctls carry their codec's size", () => {
    expect(uapi.ioctlSize(uapi.KVM_SET_USER_MEMORY_REGION)).toBe(uapi.kvm_userspace_memory_region.size);
    expect(uapi.ioctlSize(uapi.KVM_SET_USER_MEMORY_REGION2)).toBe(uapi.kvm_userspace_memory_region2.size);
    expect(uapi.ioctlSize(uapi.KVM_ENABLE_CAP)).toBe(uapi.kvm_enable_cap.size);
    expect(uapi.ioctlSize(uapi.KVM_GET_DIRTY_LOG)).toBe(uapi.kvm_dirty_log.size);
    expect(uapi.ioctlSize(uapi.KVM_CLEAR_DIRTY_LOG)).toBe(uapi.kvm_clear_dirty_log.size);
    expect(uapi.ioctlSize(uapi.KVM_GET_ONE_REG)).toBe(uapi.kvm_one_reg.size);
    expect(uapi.ioctlSize(uapi.KVM_CREATE_GUEST_MEMFD)).toBe(uapi.kvm_create_guest_memfd.size);
    expect(uapi.ioctlSize(uapi.KVM_SET_MEMORY_ATTRIBUTES)).toBe(uapi.kvm_memory_attributes.size);
    expect(uapi.ioctlSize(uapi.KVM_PRE_FAULT_MEMORY)).toBe(uapi.kvm_pre_fault_memory.size);
  });
  it("flag values: memslot flags, guest_memfd flags, attributes, the memory-fault flag", () => {
    expect([uapi.KVM_MEM_LOG_DIRTY_PAGES, uapi.KVM_MEM_READONLY, uapi.KVM_MEM_GUEST_MEMFD]).toEqual([1, 2, 4]);
    expect([uapi.KVM_MEMSLOT_INVALID, uapi.KVM_MEMSLOT_GMEM_ONLY]).toEqual([1 << 16, 1 << 17]);
    expect([uapi.GUEST_MEMFD_FLAG_MMAP, uapi.GUEST_MEMFD_FLAG_INIT_SHARED]).toEqual([1, 2]);
    expect(uapi.KVM_MEMORY_ATTRIBUTE_PRIVATE).toBe(8);
    expect(uapi.KVM_MEMORY_EXIT_FLAG_PRIVATE).toBe(8);
  });
});

describe("struct kvm_run as src/kvm-run.ts reads it", () => {
  /** A stand-in core whose linear memory is one page holding the run struct at `base`. */
  const base = 256;
  const fake = () => {
    const memory = { buffer: new ArrayBuffer(8192) } as unknown as WebAssembly.Memory;
    const run = new KvmRun({ memory } as unknown as CoreExports, base);
    return { run, dv: new DataView(memory.buffer, base) };
  };

  it("immediate_exit @1 (u8), exit_reason @8 (u32)", () => {
    const { run, dv } = fake();
    run.immediateExit = 1;
    expect(dv.getUint8(1)).toBe(1);
    dv.setUint32(8, 39, true);
    expect(run.exitReason).toBe(39);
  });

  it("KVM_EXIT_MMIO: phys_addr @32 (8), data @40 (8), len @48 (4), is_write @52 (1)", () => {
    const { run, dv } = fake();
    dv.setBigUint64(32, 0x123456789abcn, true);
    for (let i = 0; i < 8; i++) dv.setUint8(40 + i, 0x10 + i);
    dv.setUint32(48, 4, true);
    dv.setUint8(52, 1);
    const m = run.mmio;
    expect(m.physAddr).toBe(0x123456789abcn);
    expect(Array.from(m.data)).toEqual([0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17]);
    expect(m.len).toBe(4);
    expect(m.isWrite).toBe(true);
    m.data[0] = 0xee; // the answer to a read lands in kvm_run
    expect(dv.getUint8(40)).toBe(0xee);
  });

  it("KVM_EXIT_MEMORY_FAULT: flags @32 (8), gpa @40 (8), size @48 (8)", () => {
    const { run, dv } = fake();
    dv.setBigUint64(32, 8n, true);
    dv.setBigUint64(40, 0xfedcba987000n, true);
    dv.setBigUint64(48, 0x1000n, true);
    expect(run.memoryFault).toEqual({ flags: 8n, gpa: 0xfedcba987000n, size: 0x1000n });
  });

  it("KVM_EXIT_RISCV_SBI: extension_id @32, function_id @40, args[6] @48, ret[2] @96 (unsigned long each)", () => {
    const { run, dv } = fake();
    dv.setBigUint64(32, 0x10n, true);
    dv.setBigUint64(40, 3n, true);
    for (let i = 0; i < 6; i++) dv.setBigUint64(48 + 8 * i, BigInt(100 + i), true);
    dv.setBigUint64(96 + 16, 0x5a5an, true); // just past ret[]: must stay untouched
    const s = run.riscvSbi;
    expect(s.extensionId).toBe(0x10n);
    expect(s.functionId).toBe(3n);
    expect(s.args).toEqual([100n, 101n, 102n, 103n, 104n, 105n]);
    run.setSbiReturn(-2n, 7n);
    expect(dv.getBigUint64(96, true)).toBe((1n << 64n) - 2n);
    expect(dv.getBigUint64(104, true)).toBe(7n);
    expect(dv.getBigUint64(112, true)).toBe(0x5a5an);
  });
});
