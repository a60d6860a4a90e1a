// The host buffer a script's getlog and clearlog hand KVM as `dirty_bitmap`.
// It costs what the kernel touches, not what the arguments could name. KVM
// reads ALIGN(num_pages, 64) / 8 bytes only once num_pages <= npages -
// first_page (kvm_clear_dirty_log_protect), so a clearlog that fails before
// writes nothing, and one that passes writes from its lowest to its highest
// set bit, whole bytes by fill. KVM_GET_DIRTY_LOG leaves the untouched
// destination page of zero words untouched, so getlog reads back only the
// pages the copy-out made resident (any other page reads as zeros).

import type { HostMemory } from "../host-memory.js";
import type { BitRun } from "./parser.js";
import { PAGE_SIZE } from "../uapi.js";
import { bitmapBytes, setBits } from "../bitmap.js";

const PAGE = PAGE_SIZE;
/** Resident pages read back, and bitmap bytes written, in one call at most (bounds the JS copies). */
const READ_CHUNK = 256 * PAGE;
const WRITE_CHUNK = 256 * PAGE;

/** Runs clipped to [0, bits), sorted, overlapping and adjacent ones merged. */
function mergeRuns(runs: BitRun[], bits: number): BitRun[] {
  const out: BitRun[] = [];
  const sorted = runs.map((r) => ({ lo: r.lo, hi: Math.min(r.hi, bits - 1) })).filter((r) => r.lo <= r.hi)
    .sort((a, b) => a.lo - b.lo);
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.lo <= last.hi + 1) last.hi = Math.max(last.hi, r.hi);
    else out.push(r);
  }
  return out;
}

/** Appends the set bits of `words` (bit 0 of words[0] is index `base`) to runs, below `limit`. */
function scanWords(words: Uint32Array, base: number, limit: number, runs: BitRun[]): void {
  for (let k = 0; k < words.length; k++) {
    let w = words[k];
    if (w === 0) continue;
    const at = base + k * 32;
    const last = runs[runs.length - 1];
    if (w === 0xffffffff && at + 32 <= limit) {
      if (last && last.hi === at - 1) last.hi = at + 31;
      else runs.push({ lo: at, hi: at + 31 });
      continue;
    }
    while (w !== 0) {
      const i = at + 31 - Math.clz32(w & -w);
      if (i >= limit) return;
      const tail = runs[runs.length - 1];
      if (tail && tail.hi === i - 1) tail.hi = i;
      else runs.push({ lo: i, hi: i });
      w &= w - 1;
    }
  }
}

/**
 * One scratch mapping, grown as needed. Each call gets it untouched (its
 * frames from the previous call are dropped), so what a call costs on the
 * host side is what that call writes or the kernel copies out.
 */
export class BitmapBuffer {
  private hva = 0n;
  private size = 0n;
  /** Whether the previous call may have left frames behind. */
  private used = false;
  private readonly chunk = new Uint8Array(WRITE_CHUNK);

  constructor(private readonly memory: HostMemory) {}

  /** The buffer's hva: at least `bytes` bytes, every page untouched (reads as zeros). */
  at(bytes: number): bigint {
    if (this.size === 0n || this.size < BigInt(bytes)) {
      const size = BigInt(Math.max(PAGE, Math.ceil(bytes / PAGE) * PAGE));
      if (this.size !== 0n) this.memory.munmap(this.hva, this.size);
      this.hva = this.memory.mmap(size);
      this.size = size;
    } else if (this.used) {
      this.memory.mmap(this.size, { addr: this.hva }); // MAP_FIXED over it: fresh zero pages
    }
    this.used = true;
    return this.hva;
  }

  /**
   * A bitmap of `bits` bits holding `runs` (null: all of them); returns its hva.
   * Only the bytes from the lowest to the highest set bit are written, a
   * chunk at a time (a 2^31-bit bitmap never exists whole in JS).
   */
  write(bits: number, runs: BitRun[] | null): bigint {
    const hva = this.at(bitmapBytes(bits));
    const set = mergeRuns(runs ?? [{ lo: 0, hi: bits - 1 }], bits);
    if (set.length === 0) return hva;
    const from = Math.floor(set[0].lo / 8), to = Math.floor(set[set.length - 1].hi / 8) + 1; // bytes [from, to)
    let first = 0; // the first run not wholly below the current chunk
    for (let at = from; at < to; at += WRITE_CHUNK) {
      const end = Math.min(to, at + WRITE_CHUNK);
      const c = this.chunk.subarray(0, end - at).fill(0);
      while (set[first].hi < at * 8) first++;
      for (let i = first; i < set.length && set[i].lo < end * 8; i++) {
        setBits(c, Math.max(set[i].lo, at * 8) - at * 8, Math.min(set[i].hi, end * 8 - 1) - at * 8);
      }
      this.memory.write(hva + BigInt(at), c);
    }
    return hva;
  }

  /** Unmaps the buffer. */
  release(): void {
    if (this.size !== 0n) this.memory.munmap(this.hva, this.size);
    this.size = 0n;
    this.used = false;
  }

  /** The set bits among the buffer's first `bits` bits, as runs; only resident pages are read. */
  read(bits: number): BitRun[] {
    const bytes = bitmapBytes(bits);
    const runs: BitRun[] = [];
    for (let off = 0; off < bytes;) {
      if (!this.memory.resident(this.hva + BigInt(off))) { off += PAGE; continue; }
      let end = off + PAGE; // a run of resident pages, read as one
      while (end < bytes && end - off < READ_CHUNK && this.memory.resident(this.hva + BigInt(end))) end += PAGE;
      const chunk = this.memory.read(this.hva + BigInt(off), Math.min(end, bytes) - off);
      scanWords(new Uint32Array(chunk.buffer, chunk.byteOffset, chunk.length >> 2), off * 8, bits, runs);
      off = end;
    }
    return runs;
  }
}
