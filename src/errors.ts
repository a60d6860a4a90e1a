// KvmError: errno number + code name + the check that failed, with the
// offending values in the message (Cloud Hypervisor's error style).

import type { CoreExports } from "./core.js";

export const ERRNO: Record<number, string> = {
  1: "EPERM", 2: "ENOENT", 4: "EINTR", 5: "EIO", 6: "ENXIO", 7: "E2BIG", 9: "EBADF", 11: "EAGAIN", 12: "ENOMEM",
  14: "EFAULT", 16: "EBUSY", 17: "EEXIST", 19: "ENODEV", 22: "EINVAL", 24: "EMFILE", 25: "ENOTTY", 27: "EFBIG",
  28: "ENOSPC", 34: "ERANGE", 95: "EOPNOTSUPP", 133: "EHWPOISON",
};

export const errnoName = (e: number): string => ERRNO[e] ?? `E${e}`;

/** Values a check message may quote. */
export type CheckContext = Record<string, unknown>;

const h = (v: unknown) => (typeof v === "bigint" || typeof v === "number" ? "0x" + BigInt(v).toString(16) : String(v));

/** The core's check codes (assembly/errno.ts) and how to say what failed. */
const CHECKS: Record<number, (c: CheckContext) => string> = {
  1: (c) => `the ${c.size}-byte argument of ${c.ioctl} could not be read (${c.len} bytes given)`,
  2: (c) => `flags ${h(c.flags)} have bits other than LOG_DIRTY_PAGES|READONLY (v1 ioctl)`,
  3: (c) => `slot id ${Number(BigInt(c.slot as bigint) & 0xffffn)} is not a user slot (0..32763)`,
  4: (c) => `flags ${h(c.flags)} are not valid for this VM and request`,
  5: (c) => `memory_size ${h(c.memory_size)} is not page aligned`,
  6: (c) => `guest_phys_addr ${h(c.guest_phys_addr)} is not page aligned`,
  7: (c) => `userspace_addr ${h(c.userspace_addr)} is not page aligned`,
  8: (c) => `userspace_addr ${h(c.userspace_addr)} + memory_size ${h(c.memory_size)} is not a valid user range`,
  9: (c) => `guest_memfd_offset ${h(c.guest_memfd_offset)} is not page aligned or wraps with memory_size`,
  10: (c) => `address space ${Number(BigInt(c.slot as bigint) >> 16n)} does not exist in this VM`,
  11: (c) => `guest_phys_addr ${h(c.guest_phys_addr)} + memory_size ${h(c.memory_size)} wraps`,
  12: (c) => `memory_size ${h(c.memory_size)} is more than 2^31 - 1 pages`,
  13: (c) => `slot ${c.slot} does not exist, so it cannot be deleted`,
  14: () => `nr_memslot_pages is smaller than the slot being deleted (internal inconsistency)`,
  15: () => `an existing slot cannot be modified with KVM_MEM_GUEST_MEMFD`,
  16: () => `an existing slot's size, userspace_addr, READONLY and GUEST_MEMFD cannot change`,
  17: (c) => `gpa range ${h(c.guest_phys_addr)}+${h(c.memory_size)} overlaps another slot`,
  18: () => `no memory for the new slot`,
  19: (c) => `guest_memfd ${c.guest_memfd} is not an open file descriptor`,
  20: (c) => `fd ${c.guest_memfd} is not a guest_memfd`,
  21: () => `no memory for the INVALID copy of the slot`,
  22: () => `no memory for the dirty bitmap`,
  23: () => `arch prepare failed (per-slot metadata allocation)`,
  24: (c) => `gpa range ${h(c.guest_phys_addr)}+${h(c.memory_size)} ends above the largest guest frame`,
  25: () => `a slot cannot move while an external page-track user is registered`,
  26: (c) => `unknown or unsupported ioctl ${h(c.nr)}`,
  27: (c) => `VM type ${c.type} is not supported (KVM_CAP_VM_TYPES)`,
  28: (c) => `fd ${c.fd} is not open`,
  29: (c) => `vcpu id ${c.id} is out of range`,
  30: (c) => `vcpu id ${c.id} already exists`,
  31: () => `the VM has the maximum number of vCPUs`,
  32: (c) => `slot id ${c.id} is not an internal slot id (32764..32766)`,
  33: (c) => `internal slot ${c.id} already exists`,
  34: () => `invalid mmap/munmap/mprotect arguments`,
  35: () => `the range does not fit the user address space`,
  36: () => `out of memory for host mappings`,
  37: () => `the range is not fully mapped`,
  38: (c) => `hva ${h(c.hva)} has no usable mapping for this access`,
  39: (c) => `gpa ${h(c.gpa)} is not covered by a memslot`,
  40: (c) => `gpa ${h(c.gpa)} lies in a slot that is being updated (INVALID)`,
  41: (c) => `gpa ${h(c.gpa)} lies in a read-only slot`,
  42: (c) => `capability ${c.cap} cannot be enabled with these arguments (or is not supported by this build)`,
  43: () => `memslot update attempted from inside a reader hook (slots_lock is held)`,
  44: () => `injected failure`,
  45: (c) => `register ${typeof c.id === "bigint" ? "0x" + c.id.toString(16) : c.id} is unknown or the value is invalid`,
  46: () => `interrupted`,
  47: () => `the VM logs dirty pages in a dirty ring, not in bitmaps`,
  48: (c) => `slot ${c.slot} is not a user slot of an existing address space`,
  49: (c) => `slot ${c.slot} does not exist or does not log dirty pages`,
  50: () => `the dirty bitmap buffer cannot be accessed`,
  51: (c) => `first_page ${c.first_page} is not a multiple of 64`,
  52: (c) => `first_page ${c.first_page} is past the end of the slot`,
  53: (c) => `num_pages ${c.num_pages} runs past the end of the slot`,
  54: (c) => `num_pages ${c.num_pages} is not a multiple of 64 and does not end at the slot end`,
  55: () => `the VM has no dirty ring`,
  56: (c) => `gfn ${h(c.gfn)} is not covered by a memslot (write tracking)`,
  57: () => `the pfn cache needs a valid gpa (or a valid user address range)`,
  58: () => `the access does not fit in the cached page`,
  59: () => `the pfn cache is not active`,
  60: () => `no writable RAM backs the cached address now`,
  61: (c) => `guest_memfd flags ${h(c.flags)} are not supported by this VM (GUEST_MEMFD_FLAG_MMAP, INIT_SHARED without private memory)`,
  62: (c) => `guest_memfd size ${h(c.size)} is not positive (as s64) or not page aligned`,
  63: () => `no free file descriptor`,
  64: () => `no memory for the guest_memfd or its pages`,
  65: (c) => `guest_memfd ${c.guest_memfd} was created by another VM`,
  66: (c) => `guest_memfd_offset ${h(c.guest_memfd_offset)} + memory_size ${h(c.memory_size)} does not fit the file (s64)`,
  67: (c) => `guest_memfd ${c.guest_memfd} pages at offset ${h(c.guest_memfd_offset)} are already bound to another slot`,
  68: (c) => `fd ${c.fd} is not a guest_memfd`,
  69: (c) => `fallocate mode ${h(c.mode)} is not supported (KEEP_SIZE, optionally with PUNCH_HOLE)`,
  70: (c) => `fallocate offset ${h(c.offset)} / len ${h(c.len)} is negative, empty or not page aligned`,
  71: (c) => `fallocate offset ${h(c.offset)} + len ${h(c.len)} overflows the file offset range`,
  72: (c) => `allocation of ${h(c.offset)}+${h(c.len)} runs past the end of the file`,
  73: () => `the guest_memfd was not created with GUEST_MEMFD_FLAG_MMAP`,
  74: () => `a guest_memfd can only be mapped MAP_SHARED`,
  75: () => `the size of a guest_memfd cannot change`,
  76: () => `the file has no read/write operations`,
  77: (c) => `hva ${h(c.hva)}: guest_memfd page past the end of the file or file not INIT_SHARED (SIGBUS)`,
  78: (c) => `memory attributes flags ${h(c.flags)} must be 0`,
  79: (c) => `attributes ${h(c.attributes)} are not supported by this VM`,
  80: (c) => `address ${h(c.address)} + size ${h(c.size)} is empty or wraps`,
  81: (c) => `address ${h(c.address)} or size ${h(c.size)} is not page aligned`,
  82: () => `no memory for the attribute ranges`,
  83: (c) => `the guest fetched an instruction at pc ${h(c.pc)} from a gpa without usable RAM (RISC-V KVM emulates MMIO only for loads and stores)`,
  84: (c) => `the guest's MMIO or read-only-slot access at pc ${h(c.pc)} is by an instruction the MMIO emulation cannot decode (LR, SC or an AMO)`,
  85: (c) => `flags ${h(c.flags)} must be 0`,
  86: (c) => `gpa ${h(c.gpa)} / size ${h(c.size)} is not page aligned, empty or wraps`,
  87: () => `this VM type does not allow pre-faulting (yet)`,
  88: (c) => `gpa ${h(c.gpa)} could not be mapped (no memslot, unusable backing, or its slot is being updated)`,
  89: () => `the host has no two-dimensional paging (KVM_CAP_PRE_FAULT_MEMORY is 0; config.preFaultMemory)`,
};

export class KvmError extends Error {
  readonly errno: number;
  readonly code: string;
  readonly check: number;

  constructor(errno: number, check: number, ctx: CheckContext = {}, what?: string) {
    const code = errnoName(errno);
    const detail = (CHECKS[check] ?? (() => (what ? `${what} failed` : "failed")))(ctx);
    super(`${code}: ${what && CHECKS[check] ? `${what}: ` : ""}${detail}`);
    this.name = "KvmError";
    this.errno = errno;
    this.code = code;
    this.check = check;
  }
}

/** A core result: -errno throws a KvmError naming the check the core recorded; 0 or a value passes. */
export function throwIfFailed(core: CoreExports, r: number | bigint, what: string,
                              ctx: CheckContext = {}): void {
  const v = Number(r);
  if (v < 0) throw new KvmError(-v, core.lastFailedCheck(), ctx, what);
}
