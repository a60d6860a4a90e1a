// KvmError: errno number + code name + the check that failed, with the
// offending values in the message (Cloud Hypervisor's error style).

import type { CoreExports } from "./core.js";
import { ERRNO, CHECK } from "./abi.gen.js";

export { ERRNO, CHECK };

const ERRNO_NAMES: Record<number, string> = Object.fromEntries(Object.entries(ERRNO).map(([name, e]) => [e, name]));

export const errnoName = (e: number): string => ERRNO_NAMES[e] ?? `E${e}`;

/** A check code of the core (assembly/errno.ts). */
export type CheckCode = (typeof CHECK)[keyof typeof CHECK];

/** Values a check message may quote. */
export type CheckContext = Record<string, unknown>;

const h = (v: unknown) => (typeof v === "bigint" || typeof v === "number" ? "0x" + BigInt(v).toString(16) : String(v));

/**
 * How to say what each check of the core (assembly/errno.ts) found. Keyed by
 * name; the type makes tsc refuse a check without a message, or a message
 * without a check.
 */
export const CHECK_MESSAGES: { readonly [K in Exclude<CheckCode, typeof CHECK.NONE>]: (c: CheckContext) => string } = {
  [CHECK.COPY_FROM_USER]: (c) => `the ${c.size}-byte argument of ${c.ioctl} could not be read (${c.len} bytes given)`,
  [CHECK.V1_FLAGS]: (c) => `flags ${h(c.flags)} have bits other than LOG_DIRTY_PAGES|READONLY (v1 ioctl)`,
  [CHECK.USER_SLOT_ID]: (c) => `slot id ${Number(BigInt(c.slot as bigint) & 0xffffn)} is not a user slot (0..32763)`,
  [CHECK.FLAGS]: (c) => `flags ${h(c.flags)} are not valid for this VM and request`,
  [CHECK.SIZE_ALIGN]: (c) => `memory_size ${h(c.memory_size)} is not page aligned`,
  [CHECK.GPA_ALIGN]: (c) => `guest_phys_addr ${h(c.guest_phys_addr)} is not page aligned`,
  [CHECK.HVA_ALIGN]: (c) => `userspace_addr ${h(c.userspace_addr)} is not page aligned`,
  [CHECK.HVA_RANGE]: (c) => `userspace_addr ${h(c.userspace_addr)} + memory_size ${h(c.memory_size)} is not a valid user range`,
  [CHECK.GMEM_OFFSET]: (c) => `guest_memfd_offset ${h(c.guest_memfd_offset)} is not page aligned or wraps with memory_size`,
  [CHECK.AS_ID]: (c) => `address space ${Number(BigInt(c.slot as bigint) >> 16n)} does not exist in this VM`,
  [CHECK.GPA_WRAP]: (c) => `guest_phys_addr ${h(c.guest_phys_addr)} + memory_size ${h(c.memory_size)} wraps`,
  [CHECK.MAX_PAGES]: (c) => `memory_size ${h(c.memory_size)} is more than 2^31 - 1 pages`,
  [CHECK.DELETE_ABSENT]: (c) => `slot ${c.slot} does not exist, so it cannot be deleted`,
  [CHECK.NR_PAGES_UNDERFLOW]: () => `nr_memslot_pages is smaller than the slot being deleted (internal inconsistency)`,
  [CHECK.MODIFY_GMEM]: () => `an existing slot cannot be modified with KVM_MEM_GUEST_MEMFD`,
  [CHECK.MODIFY_IMMUTABLE]: () => `an existing slot's size, userspace_addr, READONLY and GUEST_MEMFD cannot change`,
  [CHECK.OVERLAP]: (c) => `gpa range ${h(c.guest_phys_addr)}+${h(c.memory_size)} overlaps another slot`,
  [CHECK.ALLOC_SLOT]: () => `no memory for the new slot`,
  [CHECK.GMEM_BIND_FD]: (c) => `guest_memfd ${c.guest_memfd} is not an open file descriptor`,
  [CHECK.GMEM_BIND_KIND]: (c) => `fd ${c.guest_memfd} is not a guest_memfd`,
  [CHECK.ALLOC_INVALID_SLOT]: () => `no memory for the INVALID copy of the slot`,
  [CHECK.ALLOC_BITMAP]: () => `no memory for the dirty bitmap`,
  [CHECK.ARCH_PREPARE]: () => `arch prepare failed (per-slot metadata allocation)`,
  [CHECK.MAX_GFN]: (c) => `gpa range ${h(c.guest_phys_addr)}+${h(c.memory_size)} ends above the largest guest frame`,
  [CHECK.MOVE_WITH_TRACKER]: () => `a slot cannot move while an external page-track user is registered`,
  [CHECK.UNKNOWN_IOCTL]: (c) => `unknown or unsupported ioctl ${h(c.nr)}`,
  [CHECK.VM_TYPE]: (c) => `VM type ${c.type} is not supported (KVM_CAP_VM_TYPES)`,
  [CHECK.BAD_FD]: (c) => `fd ${c.fd} is not open`,
  [CHECK.VCPU_ID]: (c) => `vcpu id ${c.id} is out of range`,
  [CHECK.VCPU_EXISTS]: (c) => `vcpu id ${c.id} already exists`,
  [CHECK.VCPU_LIMIT]: () => `the VM has the maximum number of vCPUs`,
  [CHECK.INTERNAL_SLOT_ID]: (c) => `slot id ${c.id} is not an internal slot id (32764..32766)`,
  [CHECK.INTERNAL_EXISTS]: (c) => `internal slot ${c.id} already exists`,
  [CHECK.MMAP_ARGS]: () => `invalid mmap/munmap/mprotect arguments`,
  [CHECK.MMAP_RANGE]: () => `the range does not fit the user address space`,
  [CHECK.MMAP_NOMEM]: () => `out of memory for host mappings`,
  [CHECK.MPROTECT_UNMAPPED]: () => `the range is not fully mapped`,
  [CHECK.HVA_FAULT]: (c) => `hva ${h(c.hva)} has no usable mapping for this access`,
  [CHECK.GUEST_NO_SLOT]: (c) => `gpa ${h(c.gpa)} is not covered by a memslot`,
  [CHECK.GUEST_INVALID_SLOT]: (c) => `gpa ${h(c.gpa)} lies in a slot that is being updated (INVALID)`,
  [CHECK.GUEST_READONLY]: (c) => `gpa ${h(c.gpa)} lies in a read-only slot`,
  [CHECK.ENABLE_CAP]: (c) => `capability ${c.cap} cannot be enabled with these arguments (or is not supported by this build)`,
  [CHECK.UPDATE_IN_READER]: () => `memslot update attempted from inside a reader hook (slots_lock is held)`,
  [CHECK.INJECTED]: () => `injected failure`,
  [CHECK.ONE_REG]: (c) => `register ${typeof c.id === "bigint" ? "0x" + c.id.toString(16) : c.id} is unknown or the value is invalid`,
  [CHECK.VCPU_RUN]: () => `interrupted`,
  [CHECK.DIRTY_NO_BITMAPS]: () => `the VM logs dirty pages in a dirty ring, not in bitmaps`,
  [CHECK.DIRTY_SLOT_ID]: (c) => `slot ${c.slot} is not a user slot of an existing address space`,
  [CHECK.DIRTY_NO_SLOT]: (c) => `slot ${c.slot} does not exist or does not log dirty pages`,
  [CHECK.DIRTY_COPY]: () => `the dirty bitmap buffer cannot be accessed`,
  [CHECK.CLEAR_FIRST_ALIGN]: (c) => `first_page ${c.first_page} is not a multiple of 64`,
  [CHECK.CLEAR_FIRST_RANGE]: (c) => `first_page ${c.first_page} is past the end of the slot`,
  [CHECK.CLEAR_NUM_RANGE]: (c) => `num_pages ${c.num_pages} runs past the end of the slot`,
  [CHECK.CLEAR_NUM_ALIGN]: (c) => `num_pages ${c.num_pages} is not a multiple of 64 and does not end at the slot end`,
  [CHECK.RING_NOT_ENABLED]: () => `the VM has no dirty ring`,
  [CHECK.TRACK_NO_SLOT]: (c) => `gfn ${h(c.gfn)} is not covered by a memslot (write tracking)`,
  [CHECK.GPC_INVALID_GPA]: () => `the pfn cache needs a valid gpa (or a valid user address range)`,
  [CHECK.GPC_LEN]: () => `the access does not fit in the cached page`,
  [CHECK.GPC_INACTIVE]: () => `the pfn cache is not active`,
  [CHECK.GPC_NO_PAGE]: () => `no writable RAM backs the cached address now`,
  [CHECK.GMEM_FLAGS]: (c) => `guest_memfd flags ${h(c.flags)} are not supported by this VM (GUEST_MEMFD_FLAG_MMAP, INIT_SHARED without private memory)`,
  [CHECK.GMEM_SIZE]: (c) => `guest_memfd size ${h(c.size)} is not positive (as s64) or not page aligned`,
  [CHECK.FD_TABLE_FULL]: () => `no free file descriptor`,
  [CHECK.GMEM_NOMEM]: () => `no memory for the guest_memfd or its pages`,
  [CHECK.GMEM_BIND_VM]: (c) => `guest_memfd ${c.guest_memfd} was created by another VM`,
  [CHECK.GMEM_BIND_RANGE]: (c) => `guest_memfd_offset ${h(c.guest_memfd_offset)} + memory_size ${h(c.memory_size)} does not fit the file (s64)`,
  [CHECK.GMEM_BIND_OVERLAP]: (c) => `guest_memfd ${c.guest_memfd} pages at offset ${h(c.guest_memfd_offset)} are already bound to another slot`,
  [CHECK.NOT_GMEM]: (c) => `fd ${c.fd} is not a guest_memfd`,
  [CHECK.FALLOC_MODE]: (c) => `fallocate mode ${h(c.mode)} is not supported (KEEP_SIZE, optionally with PUNCH_HOLE)`,
  [CHECK.FALLOC_ARGS]: (c) => `fallocate offset ${h(c.offset)} / len ${h(c.len)} is negative, empty or not page aligned`,
  [CHECK.FALLOC_FBIG]: (c) => `fallocate offset ${h(c.offset)} + len ${h(c.len)} overflows the file offset range`,
  [CHECK.FALLOC_RANGE]: (c) => `allocation of ${h(c.offset)}+${h(c.len)} runs past the end of the file`,
  [CHECK.GMEM_NO_MMAP]: () => `the guest_memfd was not created with GUEST_MEMFD_FLAG_MMAP`,
  [CHECK.GMEM_MMAP_SHARED]: () => `a guest_memfd can only be mapped MAP_SHARED`,
  [CHECK.GMEM_SETATTR]: () => `the size of a guest_memfd cannot change`,
  [CHECK.FILE_RW]: () => `the file has no read/write operations`,
  [CHECK.GMEM_SIGBUS]: (c) => `hva ${h(c.hva)}: guest_memfd page past the end of the file or file not INIT_SHARED (SIGBUS)`,
  [CHECK.ATTR_FLAGS]: (c) => `memory attributes flags ${h(c.flags)} must be 0`,
  [CHECK.ATTR_UNSUPPORTED]: (c) => `attributes ${h(c.attributes)} are not supported by this VM`,
  [CHECK.ATTR_RANGE]: (c) => `address ${h(c.address)} + size ${h(c.size)} is empty or wraps`,
  [CHECK.ATTR_ALIGN]: (c) => `address ${h(c.address)} or size ${h(c.size)} is not page aligned`,
  [CHECK.ATTR_NOMEM]: () => `no memory for the attribute ranges`,
  [CHECK.RUN_VM_CLOSED]: () => `the vCPU's VM was closed during this KVM_RUN (by host code the run called); the run stopped at an instruction boundary`,
  [CHECK.NOMEM]: () => `no memory for the core's metadata`,
  [CHECK.RUN_FETCH_NO_SLOT]: (c) => `the guest fetched an instruction at pc ${h(c.pc)} from a gpa without usable RAM (RISC-V KVM emulates MMIO only for loads and stores)`,
  [CHECK.RUN_MMIO_INSN]: (c) => `the guest's MMIO or read-only-slot access at pc ${h(c.pc)} is by an instruction the MMIO emulation cannot decode (LR, SC or an AMO)`,
  [CHECK.PRE_FAULT_FLAGS]: (c) => `flags ${h(c.flags)} must be 0`,
  [CHECK.PRE_FAULT_RANGE]: (c) => `gpa ${h(c.gpa)} / size ${h(c.size)} is not page aligned, empty or wraps`,
  [CHECK.PRE_FAULT_VM]: () => `this VM type does not allow pre-faulting (yet)`,
  [CHECK.PRE_FAULT_MAP]: (c) => `gpa ${h(c.gpa)} could not be mapped (no memslot, unusable backing, or its slot is being updated)`,
  [CHECK.PRE_FAULT_TDP]: () => `the host has no two-dimensional paging (KVM_CAP_PRE_FAULT_MEMORY is 0; config.preFaultMemory)`,
  [CHECK.REG_LIST_E2BIG]: (c) => `kvm_reg_list.n${c.n === undefined ? "" : ` ${c.n}`} is smaller than the vCPU's register count (written back to n)`,
  [CHECK.REG_LIST_FAULT]: () => `kvm_reg_list.reg[] (the caller's bytes after n) cannot hold every register id`,
  [CHECK.GPC_OWN_INVALIDATION]: () => `the pfn cache was refreshed from inside an MMU-notifier invalidation this thread is running (a reader hook): the refresh waits for invalidations to end, and this one cannot end first`,
};

export class KvmError extends Error {
  readonly errno: number;
  readonly code: string;
  readonly check: number;

  constructor(errno: number, check: number, ctx: CheckContext = {}, what?: string) {
    const code = errnoName(errno);
    const message = (CHECK_MESSAGES as Record<number, ((c: CheckContext) => string) | undefined>)[check];
    const detail = (message ?? (() => (what ? `${what} failed` : "failed")))(ctx);
    super(`${code}: ${what && message ? `${what}: ` : ""}${detail}`);
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
