// Linux errno values (asm-generic/errno-base.h, errno.h) and the "which check
// failed" codes the host turns into KvmError messages. Every failing path sets
// the check code with fail() so the host can name the rule, not just the errno.

export const EPERM: i32 = 1;
export const ENOENT: i32 = 2;
export const EINTR: i32 = 4;
export const EIO: i32 = 5;
export const ENXIO: i32 = 6;
export const E2BIG: i32 = 7;
export const EBADF: i32 = 9;
export const EAGAIN: i32 = 11;
export const ENOMEM: i32 = 12;
export const EFAULT: i32 = 14;
export const EBUSY: i32 = 16;
export const EEXIST: i32 = 17;
export const ENODEV: i32 = 19;
export const EINVAL: i32 = 22;
export const EMFILE: i32 = 24;
export const ENOTTY: i32 = 25;
export const EFBIG: i32 = 27;
export const ENOSPC: i32 = 28;
export const ERANGE: i32 = 34;       // named for the host (errnoName); the core does not return it
export const EOPNOTSUPP: i32 = 95;
export const EHWPOISON: i32 = 133;   // named for the host (errnoName); the core does not return it

// Check codes. The numbering is ABI: the host gets these names through
// src/abi.gen.ts (scripts/gen-abi.mjs), and src/errors.ts keys a message to each.
export const CHECK_NONE: i32 = 0;
export const CHECK_COPY_FROM_USER: i32 = 1;      // struct shorter than the ioctl's size
export const CHECK_V1_FLAGS: i32 = 2;            // v1 ioctl: flag beyond LOG_DIRTY|READONLY
export const CHECK_USER_SLOT_ID: i32 = 3;        // (slot & 0xffff) >= KVM_USER_MEM_SLOTS
export const CHECK_FLAGS: i32 = 4;               // check_memory_region_flags
export const CHECK_SIZE_ALIGN: i32 = 5;
export const CHECK_GPA_ALIGN: i32 = 6;
export const CHECK_HVA_ALIGN: i32 = 7;
export const CHECK_HVA_RANGE: i32 = 8;           // access_ok
export const CHECK_GMEM_OFFSET: i32 = 9;
export const CHECK_AS_ID: i32 = 10;
export const CHECK_GPA_WRAP: i32 = 11;
export const CHECK_MAX_PAGES: i32 = 12;
export const CHECK_DELETE_ABSENT: i32 = 13;
export const CHECK_NR_PAGES_UNDERFLOW: i32 = 14;
export const CHECK_MODIFY_GMEM: i32 = 15;
export const CHECK_MODIFY_IMMUTABLE: i32 = 16;
export const CHECK_OVERLAP: i32 = 17;
export const CHECK_ALLOC_SLOT: i32 = 18;
export const CHECK_GMEM_BIND_FD: i32 = 19;       // fd is not open
export const CHECK_GMEM_BIND_KIND: i32 = 20;     // fd is not a guest_memfd
export const CHECK_ALLOC_INVALID_SLOT: i32 = 21;
export const CHECK_ALLOC_BITMAP: i32 = 22;
export const CHECK_ARCH_PREPARE: i32 = 23;       // injected arch metadata allocation failure
export const CHECK_MAX_GFN: i32 = 24;
export const CHECK_MOVE_WITH_TRACKER: i32 = 25;
export const CHECK_UNKNOWN_IOCTL: i32 = 26;
export const CHECK_VM_TYPE: i32 = 27;
export const CHECK_BAD_FD: i32 = 28;
export const CHECK_VCPU_ID: i32 = 29;
export const CHECK_VCPU_EXISTS: i32 = 30;
export const CHECK_VCPU_LIMIT: i32 = 31;
export const CHECK_INTERNAL_SLOT_ID: i32 = 32;
export const CHECK_INTERNAL_EXISTS: i32 = 33;
export const CHECK_MMAP_ARGS: i32 = 34;
export const CHECK_MMAP_RANGE: i32 = 35;
export const CHECK_MMAP_NOMEM: i32 = 36;
export const CHECK_MPROTECT_UNMAPPED: i32 = 37;
export const CHECK_HVA_FAULT: i32 = 38;          // touching an hva with no usable mapping
export const CHECK_GUEST_NO_SLOT: i32 = 39;      // kvm_read/write_guest: no slot
export const CHECK_GUEST_INVALID_SLOT: i32 = 40; // kvm_read/write_guest: INVALID slot
export const CHECK_GUEST_READONLY: i32 = 41;     // kvm_write_guest: READONLY slot
export const CHECK_ENABLE_CAP: i32 = 42;         // KVM_ENABLE_CAP of a cap this VM does not take
export const CHECK_UPDATE_IN_READER: i32 = 43;   // memslot update from inside a reader hook
export const CHECK_INJECTED: i32 = 44;           // fault injection fired at a point without its own code
export const CHECK_ONE_REG: i32 = 45;            // KVM_GET/SET_ONE_REG: unknown register or bad value
export const CHECK_VCPU_RUN: i32 = 46;           // KVM_RUN interrupted (budget, signal, immediate_exit)
export const CHECK_DIRTY_NO_BITMAPS: i32 = 47;   // GET/CLEAR_DIRTY_LOG with a dirty ring
export const CHECK_DIRTY_SLOT_ID: i32 = 48;      // as_id >= nr_as or id >= 32764
export const CHECK_DIRTY_NO_SLOT: i32 = 49;      // slot absent or not logged
export const CHECK_DIRTY_COPY: i32 = 50;         // the user bitmap cannot be written / read
export const CHECK_CLEAR_FIRST_ALIGN: i32 = 51;
export const CHECK_CLEAR_FIRST_RANGE: i32 = 52;
export const CHECK_CLEAR_NUM_RANGE: i32 = 53;
export const CHECK_CLEAR_NUM_ALIGN: i32 = 54;
export const CHECK_RING_NOT_ENABLED: i32 = 55;
export const CHECK_TRACK_NO_SLOT: i32 = 56;      // write tracking of a gfn without a slot
export const CHECK_GPC_INVALID_GPA: i32 = 57;    // pfn cache: INVALID_GPA / bad hva range
export const CHECK_GPC_LEN: i32 = 58;            // pfn cache: access does not fit the page
export const CHECK_GPC_INACTIVE: i32 = 59;       // pfn cache: not active
export const CHECK_GPC_NO_PAGE: i32 = 60;        // pfn cache: no writable hva / page
export const CHECK_GMEM_FLAGS: i32 = 61;         // KVM_CREATE_GUEST_MEMFD: unsupported flag
export const CHECK_GMEM_SIZE: i32 = 62;          // KVM_CREATE_GUEST_MEMFD: size <= 0 (s64) or unaligned
export const CHECK_FD_TABLE_FULL: i32 = 63;      // no free fd (EMFILE)
export const CHECK_GMEM_NOMEM: i32 = 64;         // guest_memfd state or page allocation failed
export const CHECK_GMEM_BIND_VM: i32 = 65;       // guest_memfd of another VM
export const CHECK_GMEM_BIND_RANGE: i32 = 66;    // offset < 0 or offset + size > file size (s64)
export const CHECK_GMEM_BIND_OVERLAP: i32 = 67;  // page range already bound to another slot
export const CHECK_NOT_GMEM: i32 = 68;           // a file operation on an fd that is not a guest_memfd
export const CHECK_FALLOC_MODE: i32 = 69;        // fallocate mode not KEEP_SIZE[|PUNCH_HOLE]
export const CHECK_FALLOC_ARGS: i32 = 70;        // fallocate offset/len negative or unaligned
export const CHECK_FALLOC_FBIG: i32 = 71;        // fallocate offset + len overflows loff_t
export const CHECK_FALLOC_RANGE: i32 = 72;       // allocation past the end of the file
export const CHECK_GMEM_NO_MMAP: i32 = 73;       // mmap of a guest_memfd without GUEST_MEMFD_FLAG_MMAP
export const CHECK_GMEM_MMAP_SHARED: i32 = 74;   // mmap of a guest_memfd that is not MAP_SHARED
export const CHECK_GMEM_SETATTR: i32 = 75;       // ftruncate / setattr of a guest_memfd
export const CHECK_FILE_RW: i32 = 76;            // read / write of a file without those operations
export const CHECK_GMEM_SIGBUS: i32 = 77;        // host access past the file end or without INIT_SHARED
export const CHECK_ATTR_FLAGS: i32 = 78;         // KVM_SET_MEMORY_ATTRIBUTES: flags != 0
export const CHECK_ATTR_UNSUPPORTED: i32 = 79;   // attribute bits the VM does not support
export const CHECK_ATTR_RANGE: i32 = 80;         // size == 0 or address + size wraps
export const CHECK_ATTR_ALIGN: i32 = 81;         // address or size not page aligned
export const CHECK_ATTR_NOMEM: i32 = 82;         // attribute storage could not be reserved
export const CHECK_RUN_FETCH_NO_SLOT: i32 = 83;  // KVM_RUN: instruction fetch from a gpa without usable RAM (EOPNOTSUPP)
export const CHECK_RUN_MMIO_INSN: i32 = 84;      // KVM_RUN: MMIO / read-only-slot access by an instruction MMIO emulation cannot decode
export const CHECK_PRE_FAULT_FLAGS: i32 = 85;    // KVM_PRE_FAULT_MEMORY: flags != 0
export const CHECK_PRE_FAULT_RANGE: i32 = 86;    // KVM_PRE_FAULT_MEMORY: gpa/size unaligned, size 0 or gpa + size wraps
export const CHECK_PRE_FAULT_VM: i32 = 87;       // KVM_PRE_FAULT_MEMORY: not allowed for this VM type (yet)
export const CHECK_PRE_FAULT_MAP: i32 = 88;      // KVM_PRE_FAULT_MEMORY: the first page could not be mapped
export const CHECK_PRE_FAULT_TDP: i32 = 89;      // KVM_PRE_FAULT_MEMORY: the host has no two-dimensional paging
export const CHECK_GPC_OWN_INVALIDATION: i32 = 92; // pfn cache refresh inside an invalidation this thread has in progress (a reader hook)

export const CHECK_RUN_VM_CLOSED: i32 = 98;      // KVM_RUN: the VM was closed by host code during the run
export const CHECK_NOMEM: i32 = 99;              // core metadata other than a slot's could not be allocated
export const CHECK_REG_LIST_E2BIG: i32 = 110;    // KVM_GET_REG_LIST: n is smaller than the register count (written back)
export const CHECK_REG_LIST_FAULT: i32 = 111;    // KVM_GET_REG_LIST: the caller's reg[] cannot hold every id

export let failedCheck: i32 = CHECK_NONE;

/** Records which check failed and returns -errno, for `return fail(...)`. */
export function fail(check: i32, errno: i32): i32 {
  failedCheck = check;
  return -errno;
}

export function clearFailedCheck(): void {
  failedCheck = CHECK_NONE;
}
