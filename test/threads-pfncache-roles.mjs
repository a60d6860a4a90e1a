// The threads of test/threads-pfncache.test.ts, on raw core exports (each
// thread's own instance of the threads core, so its own IO buffer). Shared by
// the Workers and the main thread.
//
// The host page H backs the cached gpa; the decoy page D is elsewhere. Every
// remap round k unmaps D and H (H's old frame goes back to the frame
// allocator's free stack, on top), publishes epoch k (round k - 1's H is gone),
// maps D again and fills it with DECOY (so D takes H's old frame), then maps H
// again and fills it with tag(k). A user that reads through the cache after
// reading epoch e must see only zeros (a fresh page), its own WRITE_MARK, or
// tag(j) with j >= e: an older tag, DECOY or anything else means it read a
// frame that a munmap which had already returned freed. A write through a
// stale cache lands in D's frame: the next round finds D no longer all DECOY.
// Checked byte by byte: the engine copies shared memory without promising
// whole words, so a read that races the fill of H legitimately mixes bytes of
// 0 and tag(k). A tag byte is 0x80 | (k mod 128); a read between epochs e and
// e2 may see tag(j) for e <= j <= e2 only, which mod 128 is unambiguous while
// e2 - e < 100 (a read that spans more, its thread preempted meanwhile, is
// counted and not checked).

const PROT_RW = 1 | 2;
const MAP_PRIVATE_FIXED = 2 | 16;
export const PAGE = 4096;
export const DECOY = 0x3c;
export const WRITE_MARK = 0x5a;
export const WRITE_BYTES = 64;
export const tag = (k) => 0x80 | (k & 0x7f);
const tagBetween = (x, e, span) => (x & 0x80) !== 0 && (((x & 0x7f) - e) & 0x7f) <= span;

// Shared words (Int32Array over a SharedArrayBuffer).
export const GO = 0, READY = 1, EPOCH = 2, REMAP_DONE = 3;

function bytes(core, len) { return new Uint8Array(core.memory.buffer, core.ioBuffer(), len); }

function fill(core, hva, value) {
  bytes(core, PAGE).fill(value);
  return core.hostAccess(hva, PAGE, true);
}

/** The VMM's address-space churn: `rounds` remap rounds of H and D; failures found in D. */
export function remapper(core, sig, H, D, rounds) {
  const failures = [];
  let corrupted = 0;
  for (let k = 1; k <= rounds; k++) {
    if (k > 1) {
      if (core.hostAccess(D, PAGE, false) !== 0) failures.push(`round ${k}: D unreadable`);
      const b = bytes(core, PAGE);
      const bad = b.findIndex((x) => x !== DECOY);
      if (bad >= 0) { corrupted++; if (failures.length < 8) failures.push(`round ${k}: a write through a stale cache reached the freed frame (D[${bad}] = 0x${b[bad].toString(16)})`); }
    }
    if (core.munmap(D, BigInt(PAGE)) !== 0 || core.munmap(H, BigInt(PAGE)) !== 0) failures.push(`round ${k}: munmap failed`);
    // H's content of round k - 1 is gone once munmap returned.
    Atomics.store(sig, EPOCH, k);
    if (core.mmap(D, BigInt(PAGE), PROT_RW, MAP_PRIVATE_FIXED) !== D || fill(core, D, DECOY) !== 0) failures.push(`round ${k}: D remap failed`);
    if (core.mmap(H, BigInt(PAGE), PROT_RW, MAP_PRIVATE_FIXED) !== H || fill(core, H, tag(k)) !== 0) failures.push(`round ${k}: H remap failed`);
  }
  Atomics.store(sig, REMAP_DONE, 1);
  return { failures, corrupted };
}

/**
 * xen_shinfo_test's racing thread: deactivates, re-activates and refreshes the
 * cache until the remapper is done (at most `toggles` times), staying inactive
 * for a varying while (a VMM doing other work) so that munmaps land there too.
 */
export function toggler(core, gpc, gpa, toggles, sig) {
  const done = { activated: 0, refreshed: 0, failed: 0 };
  let x = 0x9e3779b9;
  for (let i = 0; i < toggles && Atomics.load(sig, REMAP_DONE) === 0; i++) {
    core.gpcStop(gpc);
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    for (let n = (x >>> 0) % 16; n > 0; n--) Atomics.load(sig, EPOCH);
    if (core.gpcActivateGpa(gpc, gpa, BigInt(PAGE)) === 0) done.activated++; else done.failed++;
    if (i % 3 === 0 && core.gpcDoRefresh(gpc, BigInt(PAGE)) === 0) done.refreshed++;
  }
  // Leave it active for the user's last reads.
  core.gpcActivateGpa(gpc, gpa, BigInt(PAGE));
  return done;
}

/**
 * The cache's user (a vCPU publishing through it): reads the whole page and
 * writes its first WRITE_BYTES through the cache until the remapper is done
 * and it has read once (at most maxIters accesses); refreshes a stale cache,
 * as the kernel's users do, and takes a failed refresh (inactive, unmapped) as
 * "not now".
 */
export function user(core, sig, gpc, maxIters) {
  const seen = { reads: 0, writes: 0, stale: 0, refreshFailed: 0, unchecked: 0 };
  const failures = [];
  for (let i = 0; i < maxIters && (Atomics.load(sig, REMAP_DONE) === 0 || seen.reads === 0); i++) {
    const write = (i & 7) === 7;
    const e = Atomics.load(sig, EPOCH);
    if (write) bytes(core, WRITE_BYTES).fill(WRITE_MARK);
    const len = write ? WRITE_BYTES : PAGE;
    if (core.gpcAccessIo(gpc, BigInt(len), write) === 0) {
      seen.stale++;
      if (core.gpcDoRefresh(gpc, BigInt(PAGE)) !== 0) seen.refreshFailed++;
      continue;
    }
    if (write) { seen.writes++; continue; }
    seen.reads++;
    const span = Atomics.load(sig, EPOCH) - e;
    if (span >= 100) { seen.unchecked++; continue; }
    const b = bytes(core, PAGE), w = new Uint32Array(b.buffer, b.byteOffset, PAGE / 4);
    const ok = (x, j) => x === 0 || (x === WRITE_MARK && j < WRITE_BYTES) || tagBetween(x, e, span);
    for (let j = 0; j < PAGE; j++) {
      // A whole word of one good byte at once (the common case), else byte by byte.
      if ((j & 3) === 0 && w[j >> 2] === Math.imul(b[j], 0x01010101) >>> 0 && ok(b[j], j)) { j += 3; continue; }
      const x = b[j];
      if (ok(x, j)) continue;
      const what = x === DECOY ? "the decoy: H's freed frame, reused" : (x & 0x80) !== 0 ? "an older round's page, unmapped" : "a freed frame";
      if (failures.length < 8) failures.push(`read ${seen.reads}: byte ${j} = 0x${x.toString(16)} after epoch ${e} (${what})`);
      break;
    }
  }
  return { seen, failures };
}
