// rwlock_t for the threads build: any number of readers, or one writer.
//
// Built like threads.ts's mutex: atomic words in shared memory, a short spin,
// then a sleep in the host (webkvm_futex_wait), never memory.atomic.wait in the
// core. A lock is four consecutive i32 words at w:
//   state    readers count (bits 0..28) | PENDING | WRITER
//   seq      the futex word sleepers wait on; bumped by every unlock that wakes
//   sleepers threads between deciding to sleep and waking up
//   writer   the thread holding it for write (threadId), 0 otherwise: lockdep's owner
// A waiting writer sets PENDING, which holds back new readers, so a steady
// stream of readers cannot starve it (the kernel's queued rwlock is fair too).

import { futexWait, futexWake, SPINS, threadId } from "./threads";

export const RWLOCK_BYTES: usize = 16;
const SEQ: usize = 4;
const SLEEPERS: usize = 8;
const WRITER_ID: usize = 12;
const WRITER: i32 = 1 << 30;
const PENDING: i32 = 1 << 29;

function tryRead(w: usize): bool {
  const s = atomic.load<i32>(w);
  return (s & (WRITER | PENDING)) == 0 && atomic.cmpxchg<i32>(w, s, s + 1) == s;
}

function tryWrite(w: usize): bool {
  const s = atomic.load<i32>(w);
  if ((s & ~PENDING) == 0) return atomic.cmpxchg<i32>(w, s, WRITER) == s;
  if ((s & PENDING) == 0) atomic.or<i32>(w, PENDING);
  return false;
}

/**
 * Spins, then sleeps until try succeeds. A sleeper counts itself before it
 * re-checks the lock and reads seq before that, so an unlock either is seen by
 * the re-check or sees the sleeper and bumps seq (the wait then returns at once).
 */
function acquireSlow(w: usize, write: bool, sleeps: usize): void {
  while (true) {
    for (let i = 0; i < SPINS; i++) if (write ? tryWrite(w) : tryRead(w)) return;
    atomic.add<i32>(w + SLEEPERS, 1);
    const seq = atomic.load<i32>(w + SEQ);
    if (write ? tryWrite(w) : tryRead(w)) { atomic.sub<i32>(w + SLEEPERS, 1); return; }
    atomic.add<u32>(sleeps, 1);
    futexWait(w + SEQ, seq);
    atomic.sub<i32>(w + SLEEPERS, 1);
  }
}

/** Wakes every sleeper (readers and writers alike re-check: few of them, and rarely). */
function wakeAll(w: usize): void {
  const n = atomic.load<i32>(w + SLEEPERS);
  if (n == 0) return;
  atomic.add<i32>(w + SEQ, 1);
  for (let i = 0; i < n; i++) futexWake(w + SEQ, 1);
}

/** read_lock: sleeps count the slow path's sleeps. */
export function readLock(w: usize, sleeps: usize): void {
  if (!tryRead(w)) acquireSlow(w, false, sleeps);
}

/** read_unlock: the last reader out wakes a waiting writer. */
export function readUnlock(w: usize): void {
  const was = atomic.sub<i32>(w, 1);
  if (((was - 1) & ~PENDING) == 0) wakeAll(w);
}

/** write_lock */
export function writeLock(w: usize, sleeps: usize): void {
  if (!tryWrite(w)) acquireSlow(w, true, sleeps);
  atomic.store<i32>(w + WRITER_ID, threadId);
}

/** write_unlock */
export function writeUnlock(w: usize): void {
  atomic.store<i32>(w + WRITER_ID, 0);
  atomic.sub<i32>(w, WRITER);
  wakeAll(w);
}

/** This thread holds the lock for write (lockdep_assert_held_write). */
export function heldForWrite(w: usize): bool {
  return atomic.load<i32>(w + WRITER_ID) == threadId;
}
