// mark_page_dirty_in_slot: record a write to gfn in the slot's dirty bitmap.
// (The dirty ring path joins here with dirty-ring support.)

import { Vm } from "../kvm/vm";
import { slotOf } from "../memslots/slot";

export function markPageDirtyInSlot(vm: Vm, slot: usize, gfn: u64): void {
  const s = slotOf(slot);
  if (s.dirtyBitmap == 0) return;
  const rel = gfn - s.baseGfn;
  const p = s.dirtyBitmap + <usize>(rel >> 3);
  store<u8>(p, load<u8>(p) | <u8>(<u32>1 << <u32>(rel & 7)));
}
