// The selector arguments of index.ts's introspection exports (which counter
// vmStat / mmuStat / jitStat / gmemFileStat return, which cache path lookupGfn
// takes, what debugCorruptForTest damages). The host names them through src/abi.gen.ts (scripts/gen-abi.mjs).

// vmStat(fd, which)
export const VM_STAT_NR_MEMSLOT_PAGES: i32 = 0;
export const VM_STAT_NR_DIRTY_LOGGING: i32 = 1;
export const VM_STAT_N_MAX_MMU_PAGES: i32 = 2;
export const VM_STAT_MMU_INVALIDATE_SEQ: i32 = 3;
export const VM_STAT_MN_ACTIVE: i32 = 4;
export const VM_STAT_MANUAL_PROTECT: i32 = 5;

// mmuStat(which): the process's shadow-MMU counters (mmu/stats.ts)
export const MMU_STAT_FAULTS: i32 = 0;
export const MMU_STAT_MMIO_SPTE_HITS: i32 = 1;
export const MMU_STAT_MMIO_SPTE_INSTALLS: i32 = 2;
export const MMU_STAT_FAULT_RETRIES: i32 = 3;
export const MMU_STAT_ZAP_ALL: i32 = 4;
export const MMU_STAT_SLOT_ZAPS: i32 = 5;
export const MMU_STAT_SPTES_ZAPPED: i32 = 6;
export const MMU_STAT_FLUSHES: i32 = 7;
export const MMU_STAT_REMOTE_FLUSHES: i32 = 8;
/** How many MMU_STAT_* there are. */
export const MMU_STATS: i32 = 9;

// vcpuStat(fd, which): a vCPU's counters
export const VCPU_STAT_MEMSLOT_LOOKUPS: i32 = 0;    // kvm_vcpu_gfn_to_memslot calls
export const VCPU_STAT_MEMSLOT_CACHE_HITS: i32 = 1; // of them, answered by the vCPU's last-used slot

// jitStat(which): the translation tier
export const JIT_STAT_COMPILED: i32 = 0;
export const JIT_STAT_STALE: i32 = 1;
export const JIT_STAT_FAILED: i32 = 2;
/** Instructions retired by translated code (the rest were interpreted), modulo 2^32. */
export const JIT_STAT_RETIRED: i32 = 3;
/** Times a region went on to its successor's translation itself (chained), modulo 2^32. */
export const JIT_STAT_CHAINED: i32 = 4;

// gmemFileStat(fd, which): a guest_memfd file
export const GMEM_STAT_SIZE: i32 = 0;
export const GMEM_STAT_FLAGS: i32 = 1;
export const GMEM_STAT_PAGES: i32 = 2;
export const GMEM_STAT_BINDINGS: i32 = 3;
export const GMEM_STAT_REFS: i32 = 4;

// debugCorruptForTest(fd, what): damage the invariant checks must catch
export const CORRUPT_GFN_ORDER: i32 = 1;      // swap the keys of two slots in the gfn order
export const CORRUPT_LAST_USED_SLOT: i32 = 2; // point last_used_slot outside the set

// lookupGfn(fd, asId, gfn, mode)
export const LOOKUP_SEARCH: i32 = 0;   // search_memslots
export const LOOKUP_VM: i32 = 1;       // __gfn_to_memslot (VM-wide last_used_slot)
export const LOOKUP_VCPU: i32 = 2;     // kvm_vcpu_gfn_to_memslot (a vCPU fd)
