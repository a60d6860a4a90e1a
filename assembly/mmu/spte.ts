// Shadow page table entries. Each vCPU has one direct-mapped table per access
// mode (bare, U, S, S with SUM; MXR folds into the key), indexed by the
// guest virtual page. An entry shadows one guest page: a tag per access kind
// (read / write / fetch) holding `page | key` when that access may use the
// entry, and the addend that turns the guest address into the linear address of
// the host frame. A guest access is one compare and one add:
//
//   entry = table + ((va >> 12) & 4095) * 64
//   hit   = entry.readTag == (va & ~0xfff | key)      host = u32(va + entry.addend)
//
//    0 readTag   8 writeTag   16 fetchTag   24 addend   32 gfn
//   40 rmapPrev  44 rmapNext  48 owner (SlotArch, 0 = none)  52 flags  56 mmioGen
//   60 level (u8: the level of the guest's leaf PTE, 0 = 4 KiB; see mmu.ts dropOwnPage)
//
// Present entries are linked into their slot's rmap (rmap.ts) so that a slot or
// a gfn range can be zapped without flushing everything. MMIO entries belong to
// no slot: they carry the low 19 bits of the memslot generation instead, and
// their tags never match, so every access to them takes the fault path.

export const SPT_BITS: i32 = 12;
export const SPT_ENTRIES: i32 = 1 << SPT_BITS;
export const SPT_INDEX_MASK: u64 = <u64>(SPT_ENTRIES - 1);
export const SPTE_SHIFT: i32 = 6;
export const SPTE_BYTES: i32 = 1 << SPTE_SHIFT;
export const SPT_TABLE_BYTES: usize = <usize>SPT_ENTRIES << SPTE_SHIFT;
export const SPT_MODES: i32 = 4; // by the low two bits of the mode key: bare, U, S, S+SUM
export const SPT_VCPU_BYTES: usize = SPT_TABLE_BYTES * <usize>SPT_MODES;
/**
 * After a vCPU's tables: one bit per entry that may be non-empty (mmu.ts
 * markSpteUsed), so dropping them all walks the entries the vCPU used, not
 * its 16,384 (a zap of all, with vCPUs running, scanned 1 MiB each).
 */
export const SPT_USED_BYTES: usize = SPT_VCPU_BYTES >> SPTE_SHIFT >> 3;

/** A tag no page-aligned address ORed with a key (< 8) can equal. */
export const NO_TAG: u64 = 0xfff;

export const SPTE_READ_TAG: usize = 0;
export const SPTE_WRITE_TAG: usize = 8;
export const SPTE_FETCH_TAG: usize = 16;
export const SPTE_ADDEND: usize = 24;
export const SPTE_GFN: usize = 32;
export const SPTE_RMAP_PREV: usize = 40;
export const SPTE_RMAP_NEXT: usize = 44;
export const SPTE_OWNER: usize = 48;
export const SPTE_FLAGS: usize = 52;
export const SPTE_MMIO_GEN: usize = 56;
export const SPTE_LEVEL: usize = 60;

export const SPTE_F_PRESENT: u32 = 1;
export const SPTE_F_MMIO: u32 = 2;

export const MMIO_SPTE_GEN_MASK: u64 = 0x7ffff;

/** The entry for va in a table. */
// @ts-ignore: decorator
@inline export function spteFor(table: usize, va: u64): usize {
  return table + (<usize>((va >> 12) & SPT_INDEX_MASK) << SPTE_SHIFT);
}

/** Marks every entry of `bytes` worth of tables empty. */
export function clearTables(tables: usize, bytes: usize): void {
  for (let e = tables; e < tables + bytes; e += SPTE_BYTES) {
    store<u64>(e + SPTE_READ_TAG, NO_TAG);
    store<u64>(e + SPTE_WRITE_TAG, NO_TAG);
    store<u64>(e + SPTE_FETCH_TAG, NO_TAG);
    store<u32>(e + SPTE_FLAGS, 0);
    store<u32>(e + SPTE_OWNER, 0);
  }
}
