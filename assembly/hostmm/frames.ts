// Page frames for host memory: 4 KiB, page aligned, zeroed on allocation.
// Carved from 1 MiB memory.grow chunks that the TLSF heap never sees, so guest
// RAM and metadata do not fragment each other. Freed frames go on a stack.
// The stack and the chunk cursor live in the process block (threads.ts) and
// change under its heap lock: both this and the heap grow the one memory.

import { PAGE_SIZE } from "../layout";
import { injected, INJECT_FRAME } from "../debug/inject";
import { P, heapLock, heapUnlock } from "../threads";

const CHUNK_PAGES: i32 = 16; // wasm pages (64 KiB) per grow: 1 MiB

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
    const before = memory.grow(CHUNK_PAGES);
    if (before < 0) { heapUnlock(); return 0; }
    P.chunkNext = <usize>before << 16;
    P.chunkEnd = P.chunkNext + (<usize>CHUNK_PAGES << 16);
    P.framesTotal += <u32>(CHUNK_PAGES * 16);
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
