// The debug and test surface of a VM (vm.debug): lookups through a chosen
// cache path, hva routing, fault injection at the core's allocation and
// prepare steps, and the VM's counters (struct kvm_vm_stat and friends).

import type { CoreExports } from "./core.js";
import { VM_STAT, LOOKUP, INJECT } from "./abi.gen.js";
import { lookupSlot, type Memslot } from "./memslot.js";
import { type U64, toU64, asU64 } from "./u64.js";

export const INJECT_POINTS = {
  alloc_slot: INJECT.ALLOC_SLOT, alloc_invalid_slot: INJECT.ALLOC_INVALID_SLOT, alloc_bitmap: INJECT.ALLOC_BITMAP,
  arch_prepare: INJECT.ARCH_PREPARE, frame: INJECT.FRAME, run_abort: INJECT.RUN_ABORT,
} as const;
export type InjectPoint = keyof typeof INJECT_POINTS;

/** The debug facet of VM fd. */
export function vmDebug(core: CoreExports, fd: number) {
  return {
    /** search_memslots (no cache) or __gfn_to_memslot (the set's last_used_slot). */
    lookup: (gfn: U64, opts: { asId?: number; cached?: boolean } = {}): Memslot | null =>
      lookupSlot(core, fd, opts.asId ?? 0, toU64(gfn, "gfn"), opts.cached ? LOOKUP.VM : LOOKUP.SEARCH),
    /** Ids of the slots whose host range meets [start, end) (MMU-notifier routing). */
    hvaToSlots: (start: U64, end: U64, asId = 0): number[] => {
      const n = core.hvaToSlots(fd, asId, toU64(start, "start"), toU64(end, "end"));
      return Array.from(new Uint32Array(core.memory.buffer, core.ioBuffer(), Math.min(n, core.ioBufferSize() / 4)));
    },
    /** Makes the next allocation or prepare step at `point` fail with errno (after `skip` passes). */
    injectFault: (point: InjectPoint, errno: number, skip = 0) => core.injectFault(INJECT_POINTS[point], errno, skip),
    inactiveGeneration: (asId = 0): bigint => asU64(BigInt(core.inactiveGeneration(fd, asId))),
    /** Stored memory-attribute ranges (equal neighbours are merged). */
    attributeRanges: (): number => core.vmMemoryAttributeRanges(fd) >>> 0,
    stats: () => ({
      nrMemslotPages: asU64(core.vmStat(fd, VM_STAT.NR_MEMSLOT_PAGES)),
      nrMemslotsDirtyLogging: Number(core.vmStat(fd, VM_STAT.NR_DIRTY_LOGGING)),
      nMaxMmuPages: asU64(core.vmStat(fd, VM_STAT.N_MAX_MMU_PAGES)),
      mmuInvalidateSeq: asU64(core.vmStat(fd, VM_STAT.MMU_INVALIDATE_SEQ)),
      mnActiveInvalidateCount: Number(core.vmStat(fd, VM_STAT.MN_ACTIVE)),
      manualDirtyLogProtect: Number(core.vmStat(fd, VM_STAT.MANUAL_PROTECT)),
    }),
  };
}

/** What vm.debug returns. */
export type VmDebug = ReturnType<typeof vmDebug>;
