// The shadow MMU's counters (index.ts mmuStat, selectors.ts MMU_STAT_*). They
// live in the process block, not in the instance: a test reads on its thread
// what vCPUs counted on theirs.

import { P } from "../threads";

export function mmuStatAdd(which: i32, n: u32): void {
  const a = P.mmuStats + (<usize>which << 2);
  if (WEBKVM_THREADS) atomic.add<u32>(a, n);
  else store<u32>(a, load<u32>(a) + n);
}

export function mmuStatOf(which: i32): u32 {
  return WEBKVM_THREADS ? atomic.load<u32>(P.mmuStats + (<usize>which << 2)) : load<u32>(P.mmuStats + (<usize>which << 2));
}
