// Page frames for host memory: 4 KiB, page aligned, zeroed on allocation.
// Carved from 1 MiB memory.grow chunks that the TLSF heap never sees, so guest
// RAM and metadata do not fragment each other. Freed frames go on a stack.
// The stack and the chunk cursor live in the process block (threads.ts) and
// change under its heap lock: both this and the heap grow the one memory.

import { PAGE_SIZE } from "../layout";
import { injected, INJECT_FRAME } from "../debug/inject";
import { P, heapLock, heapUnlock } from "../threads";

const CHUNK_PAGES: i32 = 16; // wasm pages (64 KiB) per grow, at least: 1 MiB
// At most (64 MiB): an eighth of the memory per grow in between. Each grow
// costs the embedder a new buffer object spanning the whole memory (V8 counts
// it as external memory and soon collects garbage), so filling 256 MiB of
// guest RAM 1 MiB at a time paid a full collection per MiB. Grown pages cost
// the host nothing until a frame in them is first written.
const MAX_CHUNK_PAGES: i32 = 1024;

export function framesInUse(): u32 { return P.framesInUse; }

/** A zeroed frame's linear address, or 0 when memory is exhausted. */
export function allocFrame(): usize {
  if (injected(INJECT_FRAME) != 0) return 0;
  let f: usize;
  heapLock();
  if (P.freeTop != 0) {
    f = P.freeTop;
    P.freeTop = load<usize>(f);
    P.framesInUse++;
    heapUnlock();
    memory.fill(f, 0, PAGE_SIZE);
    return f;
  }
  if (P.chunkNext == P.chunkEnd) {
    let pages = max(CHUNK_PAGES, min(memory.size() >> 3, MAX_CHUNK_PAGES));
    let before = memory.grow(pages);
    if (before < 0 && pages > CHUNK_PAGES) before = memory.grow(pages = CHUNK_PAGES); // near the maximum: what fits
    if (before < 0) { heapUnlock(); return 0; }
    P.chunkNext = <usize>before << 16;
    P.chunkEnd = P.chunkNext + (<usize>pages << 16);
    P.framesTotal += <u32>(pages * 16);
  }
  f = P.chunkNext; // fresh memory.grow pages are already zero
  P.chunkNext += PAGE_SIZE;
  P.framesInUse++;
  heapUnlock();
  return f;
}

export function freeFrame(f: usize): void {
  heapLock();
  store<usize>(f, P.freeTop);
  P.freeTop = f;
  P.framesInUse--;
  heapUnlock();
}
