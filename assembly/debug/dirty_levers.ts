// Debug levers of the threads build's dirty log (test/threads-dirty.test.ts):
// each takes one of the dirty log's atomic operations away (it becomes a plain
// load/store sequence) so the concurrency tests can show they catch its
// absence. Read where those operations are (dirty/bitmap.ts, dirty/log.ts,
// dirty/ring.ts), hence in the base layer.

// The levers, one bit each, pulled for every thread of a process at once.
/** bitmap.ts: a page's bit (and its summary bit) set with load, OR, store. */
export const DIRTY_LEVER_MARK: i32 = 1;
/** log.ts: GET_DIRTY_LOG takes a word (and a summary word) with load, then store of 0. */
export const DIRTY_LEVER_GET: i32 = 2;
/** log.ts: CLEAR_DIRTY_LOG clears with load, AND-NOT, store. */
export const DIRTY_LEVER_CLEAR: i32 = 4;
/**
 * ring.ts: an entry's flags are published before its slot and offset are
 * written: the order a plain flags store permits on a weakly ordered host
 * (x86 never reorders the stores themselves, so the lever writes them so).
 */
export const DIRTY_LEVER_RING: i32 = 8;

// One word every instance of a process sees: a static region, which the
// threads build gives no data segment (a joining thread does not reset it).
// The default builds have no levers and no region.
const LEVERS: usize = WEBKVM_THREADS ? memory.data(4, 4) : 0;

/** Lever `which` is pulled (the debug threads build; the others fold this to false). */
// @ts-ignore: decorator
@inline export function dirtyAtomicOff(which: i32): bool {
  return WEBKVM_THREADS != 0 && WEBKVM_DEBUG != 0 && (atomic.load<i32>(LEVERS) & which) != 0;
}

/** Debug levers: pulls the DIRTY_LEVER_* bits of `mask` (0 releases all) for every thread of the process (threads build; elsewhere nothing). */
export function debugDirtyAtomicOff(mask: i32): void {
  if (WEBKVM_THREADS) atomic.store<i32>(LEVERS, mask);
}
