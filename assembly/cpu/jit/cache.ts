// The translation tier's region cache: a direct-mapped table keyed by guest
// pc, each entry naming the translated function for that pc (a slot of the
// core's function table, 0 for none). tier.ts fills and drops entries;
// translated code reads them to chain to a successor region (translate.ts),
// so an entry dropped is never entered again by either way.

// 16 K entries: with 4 K, a Linux boot's hot regions evicted each other (a pc
// colliding with a translated one drops it), 20% fewer of its instructions ran
// translated and regions were translated again and again.
export const CACHE_BITS: i32 = 14;
export const CACHE_ENTRY_SHIFT: i32 = 5;
const CACHE_ENTRY: i32 = 1 << CACHE_ENTRY_SHIFT;
// +0 pc  +8 table index (0: none)  +12 region length  +16 offers counted
export const CACHE: usize = memory.data((1 << CACHE_BITS) * CACHE_ENTRY, 16);
export const E_FN: usize = 8;
export const E_LEN: usize = 12;
export const E_HITS: usize = 16;

// @ts-ignore: decorator
@inline export function entryFor(pc: u64): usize {
  // pc / 2: regions start at any 2-aligned pc (the C extension).
  return CACHE + (<usize>((pc >> 1) & ((1 << CACHE_BITS) - 1)) << CACHE_ENTRY_SHIFT);
}
