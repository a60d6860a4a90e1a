// KVM's user ABI as webkvm implements it (include/uapi/linux/kvm.h): ioctl numbers,
// constants, and codecs for the structs, with the kernel's byte layouts.
// Each codec lists its fields with offset and size; encode/decode are
// little-endian and check every value against its field's width.

import { type U64, toU64 } from "./u64.js";
import { PAGE } from "./abi.gen.js";

export const KVMIO = 0xae;
const IOC_NONE = 0, IOC_WRITE = 1, IOC_READ = 2;
const ioc = (dir: number, nr: number, size: number) => ((dir << 30) | (size << 16) | (KVMIO << 8) | nr) >>> 0;
export const _IO = (nr: number) => ioc(IOC_NONE, nr, 0);
export const _IOW = (nr: number, size: number) => ioc(IOC_WRITE, nr, size);
export const _IOWR = (nr: number, size: number) => ioc(IOC_READ | IOC_WRITE, nr, size);

export const KVM_GET_API_VERSION = _IO(0x00);
export const KVM_CREATE_VM = _IO(0x01);
export const KVM_CHECK_EXTENSION = _IO(0x03);
export const KVM_GET_VCPU_MMAP_SIZE = _IO(0x04);
export const KVM_CREATE_VCPU = _IO(0x41);
export const KVM_GET_DIRTY_LOG = _IOW(0x42, 16);
export const KVM_SET_NR_MMU_PAGES = _IO(0x44);
export const KVM_SET_USER_MEMORY_REGION = _IOW(0x46, 32);
export const KVM_SET_TSS_ADDR = _IO(0x47);
export const KVM_SET_IDENTITY_MAP_ADDR = _IOW(0x48, 8);
export const KVM_SET_USER_MEMORY_REGION2 = _IOW(0x49, 160);
export const KVM_RUN = _IO(0x80);
/** struct kvm_interrupt { __u32 irq; }: on RISC-V, KVM_INTERRUPT_SET raises the supervisor external interrupt; any other value lowers it. */
export const KVM_INTERRUPT = _IOW(0x86, 4);
export const KVM_INTERRUPT_SET = 0xffffffff;
export const KVM_INTERRUPT_UNSET = 0xfffffffe;
export const KVM_ENABLE_CAP = _IOW(0xa3, 104);
export const KVM_GET_ONE_REG = _IOW(0xab, 16);
export const KVM_SET_ONE_REG = _IOW(0xac, 16);
/** struct kvm_reg_list { __u64 n; __u64 reg[]; }: the ids of KVM_GET/SET_ONE_REG (E2BIG, with n set, when n is too small). */
export const KVM_GET_REG_LIST = _IOWR(0xb0, 8);
export const KVM_CLEAR_DIRTY_LOG = _IOWR(0xc0, 24);
export const KVM_RESET_DIRTY_RINGS = _IO(0xc7);
export const KVM_GET_STATS_FD = _IO(0xce);
export const KVM_SET_MEMORY_ATTRIBUTES = _IOW(0xd2, 32);
export const KVM_CREATE_GUEST_MEMFD = _IOWR(0xd4, 64);
export const KVM_PRE_FAULT_MEMORY = _IOWR(0xd5, 64);

export const KVM_API_VERSION = 12;

/** The page size of guest and host memory (the core's PAGE_SIZE). */
export const PAGE_SIZE: number = PAGE.PAGE_SIZE;

export const KVM_MEM_LOG_DIRTY_PAGES = 1 << 0;
export const KVM_MEM_READONLY = 1 << 1;
export const KVM_MEM_GUEST_MEMFD = 1 << 2;
export const KVM_MEMSLOT_INVALID = 1 << 16;
export const KVM_MEMSLOT_GMEM_ONLY = 1 << 17;

export const KVM_MEM_SLOTS_NUM = 32767;
export const KVM_USER_MEM_SLOTS = 32764;
export const KVM_MEM_MAX_NR_PAGES = 2 ** 31 - 1;
export const TSS_PRIVATE_MEMSLOT = 32764;
export const APIC_ACCESS_PAGE_PRIVATE_MEMSLOT = 32765;
export const IDENTITY_PAGETABLE_PRIVATE_MEMSLOT = 32766;
export const KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS = 1n << 63n;

export const KVM_X86_DEFAULT_VM = 0;
export const KVM_X86_SW_PROTECTED_VM = 1;
export const KVM_X86_SEV_VM = 2;
export const KVM_X86_SEV_ES_VM = 3;
export const KVM_X86_SNP_VM = 4;
export const KVM_X86_TDX_VM = 5;

export const GUEST_MEMFD_FLAG_MMAP = 1 << 0;
export const GUEST_MEMFD_FLAG_INIT_SHARED = 1 << 1;
export const KVM_MEMORY_ATTRIBUTE_PRIVATE = 1 << 3;
export const KVM_MEMORY_EXIT_FLAG_PRIVATE = 1 << 3;
/** fallocate(2) modes a guest_memfd understands (the others are EOPNOTSUPP). */
export const FALLOC_FL_KEEP_SIZE = 0x01;
export const FALLOC_FL_PUNCH_HOLE = 0x02;
export const FALLOC_FL_ZERO_RANGE = 0x10;

export const KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE = 1 << 0;
export const KVM_DIRTY_LOG_INITIALLY_SET = 1 << 1;

/** x86-64 PAGE_OFFSET (4-level): gfn→hva failures return these. */
export const KVM_HVA_ERR_BAD = 0xffff888000000000n;
export const KVM_HVA_ERR_RO_BAD = KVM_HVA_ERR_BAD + 4096n;
export const isErrorHva = (hva: bigint) => hva >= KVM_HVA_ERR_BAD;

export const KVM_CAP = {
  USER_MEMORY: 3,
  NR_MEMSLOTS: 10,
  SYNC_MMU: 16,
  DESTROY_MEMORY_REGION_WORKS: 21,
  JOIN_MEMORY_REGIONS_WORKS: 30,
  READONLY_MEM: 81,
  ENABLE_CAP_VM: 98,
  CHECK_EXTENSION_VM: 105,
  MULTI_ADDRESS_SPACE: 118,
  MANUAL_DIRTY_LOG_PROTECT: 166,
  MANUAL_DIRTY_LOG_PROTECT2: 168,
  HALT_POLL: 182,
  DIRTY_LOG_RING: 192,
  BINARY_STATS_FD: 203,
  DISABLE_QUIRKS2: 213,
  DIRTY_LOG_RING_ACQ_REL: 223,
  DIRTY_LOG_RING_WITH_BITMAP: 225,
  USER_MEMORY2: 231,
  MEMORY_FAULT_INFO: 232,
  MEMORY_ATTRIBUTES: 233,
  GUEST_MEMFD: 234,
  VM_TYPES: 235,
  PRE_FAULT_MEMORY: 236,
  GUEST_MEMFD_FLAGS: 244,
} as const;

// ---- struct codecs ----
export interface Field {
  readonly name: string;
  readonly offset: number;
  readonly size: 1 | 2 | 4 | 8;
  /** Bytes a padding/array field spans, when larger than `size`. */
  readonly span?: number;
}

export class StructCodec<T extends Record<string, U64>> {
  constructor(readonly name: string, readonly size: number, readonly fields: readonly Field[]) {}

  field(name: string): Field {
    const f = this.fields.find((x) => x.name === name);
    if (!f) throw new Error(`${this.name} has no field ${name}`);
    return f;
  }

  encode(values: Partial<T>, into?: Uint8Array): Uint8Array {
    const out = into ?? new Uint8Array(this.size);
    const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
    for (const f of this.fields) {
      const v = values[f.name as keyof T];
      if (v === undefined) continue;
      const x = toU64(v, `${this.name}.${f.name}`);
      if (f.size < 8 && x >= 1n << BigInt(f.size * 8)) {
        throw new RangeError(`${this.name}.${f.name} ${v} does not fit in ${f.size * 8} bits`);
      }
      if (f.size === 8) dv.setBigUint64(f.offset, x, true);
      else if (f.size === 4) dv.setUint32(f.offset, Number(x), true);
      else if (f.size === 2) dv.setUint16(f.offset, Number(x), true);
      else dv.setUint8(f.offset, Number(x));
    }
    return out;
  }

  decode(bytes: Uint8Array): { [K in keyof T]: bigint } {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const out: Record<string, bigint> = {};
    for (const f of this.fields) {
      if (f.span) continue;
      out[f.name] = f.size === 8 ? dv.getBigUint64(f.offset, true)
        : f.size === 4 ? BigInt(dv.getUint32(f.offset, true))
        : f.size === 2 ? BigInt(dv.getUint16(f.offset, true)) : BigInt(dv.getUint8(f.offset));
    }
    return out as { [K in keyof T]: bigint };
  }
}

export type UserspaceMemoryRegion = {
  slot: U64; flags: U64; guest_phys_addr: U64; memory_size: U64; userspace_addr: U64;
};
export type UserspaceMemoryRegion2 = UserspaceMemoryRegion & {
  guest_memfd_offset: U64; guest_memfd: U64; pad1: U64;
};

export const kvm_userspace_memory_region = new StructCodec<UserspaceMemoryRegion>("kvm_userspace_memory_region", 32, [
  { name: "slot", offset: 0, size: 4 },
  { name: "flags", offset: 4, size: 4 },
  { name: "guest_phys_addr", offset: 8, size: 8 },
  { name: "memory_size", offset: 16, size: 8 },
  { name: "userspace_addr", offset: 24, size: 8 },
]);

export const kvm_userspace_memory_region2 = new StructCodec<UserspaceMemoryRegion2>("kvm_userspace_memory_region2", 160, [
  ...kvm_userspace_memory_region.fields,
  { name: "guest_memfd_offset", offset: 32, size: 8 },
  { name: "guest_memfd", offset: 40, size: 4 },
  { name: "pad1", offset: 44, size: 4 },
  { name: "pad2", offset: 48, size: 8, span: 112 },
]);

export type EnableCap = { cap: U64; flags: U64; arg0: U64; arg1: U64; arg2: U64; arg3: U64 };
export const kvm_enable_cap = new StructCodec<EnableCap>("kvm_enable_cap", 104, [
  { name: "cap", offset: 0, size: 4 },
  { name: "flags", offset: 4, size: 4 },
  { name: "arg0", offset: 8, size: 8 },
  { name: "arg1", offset: 16, size: 8 },
  { name: "arg2", offset: 24, size: 8 },
  { name: "arg3", offset: 32, size: 8 },
  { name: "pad", offset: 40, size: 1, span: 64 },
]);

export type DirtyLog = { slot: U64; padding1: U64; dirty_bitmap: U64 };
export const kvm_dirty_log = new StructCodec<DirtyLog>("kvm_dirty_log", 16, [
  { name: "slot", offset: 0, size: 4 },
  { name: "padding1", offset: 4, size: 4 },
  { name: "dirty_bitmap", offset: 8, size: 8 },
]);

export type ClearDirtyLog = { slot: U64; num_pages: U64; first_page: U64; dirty_bitmap: U64 };
export const kvm_clear_dirty_log = new StructCodec<ClearDirtyLog>("kvm_clear_dirty_log", 24, [
  { name: "slot", offset: 0, size: 4 },
  { name: "num_pages", offset: 4, size: 4 },
  { name: "first_page", offset: 8, size: 8 },
  { name: "dirty_bitmap", offset: 16, size: 8 },
]);

export type DirtyGfn = { flags: U64; slot: U64; offset: U64 };
/** One dirty-ring entry. */
export const kvm_dirty_gfn = new StructCodec<DirtyGfn>("kvm_dirty_gfn", 16, [
  { name: "flags", offset: 0, size: 4 },
  { name: "slot", offset: 4, size: 4 },
  { name: "offset", offset: 8, size: 8 },
]);
export const KVM_DIRTY_GFN_F_DIRTY = 1;
export const KVM_DIRTY_GFN_F_RESET = 2;

export type OneReg = { id: U64; addr: U64 };
export const kvm_one_reg = new StructCodec<OneReg>("kvm_one_reg", 16, [
  { name: "id", offset: 0, size: 8 },
  { name: "addr", offset: 8, size: 8 },
]);

export type KvmCreateGuestMemfd = { size: U64; flags: U64; reserved: U64 };
/** KVM_CREATE_GUEST_MEMFD's argument; reserved[6] is not checked by the kernel. */
export const kvm_create_guest_memfd = new StructCodec<KvmCreateGuestMemfd>("kvm_create_guest_memfd", 64, [
  { name: "size", offset: 0, size: 8 },
  { name: "flags", offset: 8, size: 8 },
  { name: "reserved", offset: 16, size: 8, span: 48 },
]);

export type KvmMemoryAttributes = { address: U64; size: U64; attributes: U64; flags: U64 };
/** KVM_SET_MEMORY_ATTRIBUTES's argument. */
export const kvm_memory_attributes = new StructCodec<KvmMemoryAttributes>("kvm_memory_attributes", 32, [
  { name: "address", offset: 0, size: 8 },
  { name: "size", offset: 8, size: 8 },
  { name: "attributes", offset: 16, size: 8 },
  { name: "flags", offset: 24, size: 8 },
]);

export type KvmPreFaultMemory = { gpa: U64; size: U64; flags: U64 };
/** KVM_PRE_FAULT_MEMORY's argument (in and out: gpa/size advance past what was mapped); padding[5] is not checked. */
export const kvm_pre_fault_memory = new StructCodec<KvmPreFaultMemory>("kvm_pre_fault_memory", 64, [
  { name: "gpa", offset: 0, size: 8 },
  { name: "size", offset: 8, size: 8 },
  { name: "flags", offset: 16, size: 8 },
  { name: "padding", offset: 24, size: 8, span: 40 },
]);

/** The fixed argument size the kernel copies for a pointer ioctl (the _IOC size field). */
export function ioctlSize(nr: number): number {
  return (nr >>> 16) & 0x3fff;
}

/**
 * The bytes of a caller's `len`-byte argument the kernel may write: the fixed
 * struct, or all of them for a struct ending in an array the kernel fills
 * (kvm_reg_list's reg[]).
 */
export function ioctlCopyOutSize(nr: number, len: number): number {
  return nr === KVM_GET_REG_LIST ? len : Math.min(len, ioctlSize(nr));
}
