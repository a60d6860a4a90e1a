// The CPU side of a load or store: misaligned accesses are performed, not
// trapped, and one that crosses a page boundary becomes two memory-layer
// calls split at the boundary, lower address first. Each part is translated
// and permission-checked on its own, so the memory layer can fault, exit or
// complete each page independently. If the upper part of a store fails, the
// lower part has already been written; the ISA allows that for misaligned
// accesses, which are not atomic.

import { memLoad, memStore, ACC_READ } from "../mmu/access";
import { accessStatus, ACCESS_OK } from "../mmu/access_state";
import { RV_PAGE_SIZE } from "./state";

const PAGE_OFF_MASK: u32 = <u32>RV_PAGE_SIZE - 1;

/** Does [va, va + size) cross a page boundary? size is a constant at every call site. */
// @ts-ignore: decorator
@inline function crosses(va: u64, size: i32): bool {
  return size > 1 && (<u32>va & PAGE_OFF_MASK) > <u32>(RV_PAGE_SIZE - size);
}

// @ts-ignore: decorator
@inline export function loadData(va: u64, size: i32): u64 {
  if (crosses(va, size)) return loadSplit(va, size);
  return memLoad(va, size, ACC_READ);
}

// @ts-ignore: decorator
@inline export function storeData(va: u64, value: u64, size: i32): void {
  if (crosses(va, size)) storeSplit(va, value, size);
  else memStore(va, value, size);
}

function loadSplit(va: u64, size: i32): u64 {
  const low = RV_PAGE_SIZE - <i32>(<u32>va & PAGE_OFF_MASK);
  const lo = memLoad(va, low, ACC_READ);
  if (accessStatus != ACCESS_OK) return 0;
  const hi = memLoad(va + <u64>low, size - low, ACC_READ);
  return lo | (hi << <u64>(low << 3));
}

function storeSplit(va: u64, value: u64, size: i32): void {
  const low = RV_PAGE_SIZE - <i32>(<u32>va & PAGE_OFF_MASK);
  memStore(va, value, low);
  if (accessStatus != ACCESS_OK) return;
  memStore(va + <u64>low, value >> <u64>(low << 3), size - low);
}
