// The linear-memory map. Core metadata (slots, sets, page tables) comes from the
// TLSF heap; guest RAM comes from page frames carved out of memory.grow chunks
// (hostmm/frames.ts). The regions below are static and the host reads their
// addresses through the exports in index.ts to build its views.

export const PAGE_SHIFT: i32 = 12;
export const PAGE_SIZE: i32 = 1 << PAGE_SHIFT;
export const PAGE_MASK: u64 = <u64>PAGE_SIZE - 1;

/** ioctl argument buffer: the host copies the user's struct here (copy_from_user). */
export const IOCTL_BUF_SIZE: i32 = 4096;
const IOCTL_BUF: usize = memory.data(IOCTL_BUF_SIZE, 16);

/** Bulk transfer buffer for readGuest / writeGuest / peek / poke. */
export const IO_BUF_SIZE: i32 = 65536;
const IO_BUF: usize = memory.data(IO_BUF_SIZE, 16);

/** Small per-call records (memslots/packed.ts's staged record, mmu/mmu.ts's mask word). */
export const SMALL_SCRATCH_SIZE: i32 = 64;
const STAGED_REC: usize = memory.data(SMALL_SCRATCH_SIZE, 16);
const MASK_WORD: usize = memory.data(8, 8);

// The per-call scratch above is one copy in the default builds (one thread).
// In the threads build every instance (thread) has its own block, allocated
// when it sets up or attaches to the process (threads.ts), so ioctls may run
// on several threads at once. The accessors fold to the constants in the
// default builds: no extra load on any path there.
const SCRATCH_IOCTL: usize = 0;
const SCRATCH_IO: usize = SCRATCH_IOCTL + <usize>IOCTL_BUF_SIZE;
const SCRATCH_STAGED: usize = SCRATCH_IO + <usize>IO_BUF_SIZE;
const SCRATCH_MASK: usize = SCRATCH_STAGED + <usize>SMALL_SCRATCH_SIZE;
// The vCPU a thread runs: its interpreter state block and decode cache
// (cpu/state.ts, cpu/decode.ts), so several threads may be in KVM_RUN at once.
/** cpu/state.ts's block: CPU_STATE_SIZE there must equal it. */
export const CPU_BLOCK_BYTES: i32 = 832;
/** cpu/decode.ts's table: DCACHE_ENTRIES * DCACHE_ENTRY_SIZE there must equal it. */
export const DCACHE_BYTES: i32 = 32768 * 16;
const SCRATCH_CPU: usize = (SCRATCH_MASK + 16 + 63) & ~63;
const SCRATCH_DCACHE: usize = SCRATCH_CPU + <usize>CPU_BLOCK_BYTES;
/** mmu/access.ts's debug access log: per thread too (a shared one is written by every thread's every access). */
export const ACCESS_LOG_BYTES: i32 = 64 * 16;
const SCRATCH_LOG: usize = SCRATCH_DCACHE + <usize>DCACHE_BYTES;
export const THREAD_SCRATCH_BYTES: usize = SCRATCH_LOG + <usize>ACCESS_LOG_BYTES;
/** The static copies of the default builds (one thread). */
const CPU_BLOCK: usize = memory.data(CPU_BLOCK_BYTES, 64);
const DCACHE: usize = memory.data(DCACHE_BYTES, 64);
const ACCESS_LOG: usize = memory.data(ACCESS_LOG_BYTES, 64);
/** Threads build: this instance's scratch block (per instance: a wasm global). */
let threadScratch: usize = 0;
export function setThreadScratch(p: usize): void { threadScratch = p; }

// @ts-ignore: decorator
@inline export function ioctlBuf(): usize { return WEBKVM_THREADS ? threadScratch + SCRATCH_IOCTL : IOCTL_BUF; }
// @ts-ignore: decorator
@inline export function ioBuf(): usize { return WEBKVM_THREADS ? threadScratch + SCRATCH_IO : IO_BUF; }
// @ts-ignore: decorator
@inline export function stagedRecord(): usize { return WEBKVM_THREADS ? threadScratch + SCRATCH_STAGED : STAGED_REC; }
// @ts-ignore: decorator
@inline export function maskWord(): usize { return WEBKVM_THREADS ? threadScratch + SCRATCH_MASK : MASK_WORD; }
// @ts-ignore: decorator
@inline export function cpuBlock(): usize { return WEBKVM_THREADS ? threadScratch + SCRATCH_CPU : CPU_BLOCK; }
// @ts-ignore: decorator
@inline export function dcacheBase(): usize { return WEBKVM_THREADS ? threadScratch + SCRATCH_DCACHE : DCACHE; }
// @ts-ignore: decorator
@inline export function accessLogBase(): usize { return WEBKVM_THREADS ? threadScratch + SCRATCH_LOG : ACCESS_LOG; }

/** The shared zero page: what an untouched anonymous page reads as. */
export const ZERO_PAGE: usize = memory.data(PAGE_SIZE, PAGE_SIZE);

// struct kvm_userspace_memory_region2 (include/uapi/linux/kvm.h); v1 is its first 32 bytes.
export const REGION_SLOT: i32 = 0;
export const REGION_FLAGS: i32 = 4;
export const REGION_GPA: i32 = 8;
export const REGION_SIZE: i32 = 16;
export const REGION_UADDR: i32 = 24;
export const REGION_GMEM_OFFSET: i32 = 32;
export const REGION_GMEM_FD: i32 = 40;
export const REGION_V1_BYTES: i32 = 32;
export const REGION_V2_BYTES: i32 = 160;

// Memslot snapshots (snapshotMemslots: a u32 count, then records from
// SNAP_HEADER_BYTES; lookupGfn: one record), read by src/vm.ts.
export const SNAP_HEADER_BYTES: i32 = 16;
export const SNAP_BASE_GFN: i32 = 0;
export const SNAP_NPAGES: i32 = 8;
export const SNAP_UADDR: i32 = 16;
export const SNAP_GMEM_PGOFF: i32 = 24;
export const SNAP_FLAGS: i32 = 32;
export const SNAP_ID: i32 = 36;
export const SNAP_AS_ID: i32 = 40;
export const SNAP_HAS_BITMAP: i32 = 44;
export const SNAP_BYTES: i32 = 48;

// A host mapping record written by mappingAt (read by src/host-memory.ts).
export const MAPPING_START: i32 = 0;
export const MAPPING_END: i32 = 8;
export const MAPPING_PROT: i32 = 16;
export const MAPPING_FLAGS: i32 = 20;
export const MAPPING_BYTES: i32 = 24;

// struct kvm_run (include/uapi/linux/kvm.h; the generic layout, exit union at 32). One per vCPU.
export const KVM_RUN_BYTES: i32 = 4096;
export const KVM_RUN_IMMEDIATE_EXIT: i32 = 1;
export const KVM_RUN_EXIT_REASON: i32 = 8;
export const KVM_RUN_FLAGS: i32 = 14;
export const KVM_RUN_MMIO_PHYS_ADDR: i32 = 32;
export const KVM_RUN_MMIO_DATA: i32 = 40;
export const KVM_RUN_MMIO_LEN: i32 = 48;
export const KVM_RUN_MMIO_IS_WRITE: i32 = 52;
export const KVM_RUN_MEMORY_FAULT_FLAGS: i32 = 32;
export const KVM_RUN_MEMORY_FAULT_GPA: i32 = 40;
export const KVM_RUN_MEMORY_FAULT_SIZE: i32 = 48;
// riscv_sbi: extension_id, function_id, args[6], ret[2] (unsigned long each)
export const KVM_RUN_SBI_EXTENSION: i32 = 32;
export const KVM_RUN_SBI_FUNCTION: i32 = 40;
export const KVM_RUN_SBI_ARGS: i32 = 48;
export const KVM_RUN_SBI_RET: i32 = 96;

export const KVM_EXIT_UNKNOWN: u32 = 0;
export const KVM_EXIT_HLT: u32 = 5;
export const KVM_EXIT_MMIO: u32 = 6;
export const KVM_EXIT_INTR: u32 = 10;
export const KVM_EXIT_INTERNAL_ERROR: u32 = 17;
export const KVM_EXIT_DIRTY_RING_FULL: u32 = 31;
export const KVM_EXIT_RISCV_SBI: u32 = 35;
export const KVM_EXIT_MEMORY_FAULT: u32 = 39;
