// The linear-memory map. Core metadata (slots, sets, page tables) comes from the
// TLSF heap; guest RAM comes from page frames carved out of memory.grow chunks
// (hostmm/frames.ts). The regions below are static and the host reads their
// addresses through the exports in index.ts to build its views.

export const PAGE_SHIFT: i32 = 12;
export const PAGE_SIZE: i32 = 1 << PAGE_SHIFT;
export const PAGE_MASK: u64 = <u64>PAGE_SIZE - 1;

/** ioctl argument buffer: the host copies the user's struct here (copy_from_user). */
export const IOCTL_BUF_SIZE: i32 = 4096;
export const IOCTL_BUF: usize = memory.data(IOCTL_BUF_SIZE, 16);

/** Bulk transfer buffer for readGuest / writeGuest / peek / poke. */
export const IO_BUF_SIZE: i32 = 65536;
export const IO_BUF: usize = memory.data(IO_BUF_SIZE, 16);

/** The shared zero page: what an untouched anonymous page reads as. */
export const ZERO_PAGE: usize = memory.data(PAGE_SIZE, PAGE_SIZE);

// struct kvm_userspace_memory_region2 (uapi.md §2); v1 is its first 32 bytes.
export const REGION_SLOT: i32 = 0;
export const REGION_FLAGS: i32 = 4;
export const REGION_GPA: i32 = 8;
export const REGION_SIZE: i32 = 16;
export const REGION_UADDR: i32 = 24;
export const REGION_GMEM_OFFSET: i32 = 32;
export const REGION_GMEM_FD: i32 = 40;
export const REGION_V1_BYTES: i32 = 32;
export const REGION_V2_BYTES: i32 = 160;

// Memslot snapshot record written by snapshotMemslots (read by src/vm.ts).
export const SNAP_BASE_GFN: i32 = 0;
export const SNAP_NPAGES: i32 = 8;
export const SNAP_UADDR: i32 = 16;
export const SNAP_GMEM_PGOFF: i32 = 24;
export const SNAP_FLAGS: i32 = 32;
export const SNAP_ID: i32 = 36;
export const SNAP_AS_ID: i32 = 40;
export const SNAP_HAS_BITMAP: i32 = 44;
export const SNAP_BYTES: i32 = 48;
