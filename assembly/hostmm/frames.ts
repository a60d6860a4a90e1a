// Page frames for host memory: 4 KiB, page aligned, zeroed on allocation.
// Carved from 1 MiB memory.grow chunks that the TLSF heap never sees, so guest
// RAM and metadata do not fragment each other. Freed frames go on a stack.

import { PAGE_SIZE } from "../layout";
import { injected, INJECT_FRAME } from "../debug/inject";

const CHUNK_PAGES: i32 = 16; // wasm pages (64 KiB) per grow: 1 MiB

let freeTop: usize = 0;
let chunkNext: usize = 0;
let chunkEnd: usize = 0;

export let framesInUse: u32 = 0;
export let framesTotal: u32 = 0;

/** A zeroed frame's linear address, or 0 when memory is exhausted. */
export function allocFrame(): usize {
  if (injected(INJECT_FRAME) != 0) return 0;
  let f: usize;
  if (freeTop != 0) {
    f = freeTop;
    freeTop = load<usize>(f);
    memory.fill(f, 0, PAGE_SIZE);
  } else {
    if (chunkNext == chunkEnd) {
      const before = memory.grow(CHUNK_PAGES);
      if (before < 0) return 0;
      chunkNext = <usize>before << 16;
      chunkEnd = chunkNext + (<usize>CHUNK_PAGES << 16);
      framesTotal += <u32>(CHUNK_PAGES * 16);
    }
    f = chunkNext; // fresh memory.grow pages are already zero
    chunkNext += PAGE_SIZE;
  }
  framesInUse++;
  return f;
}

export function freeFrame(f: usize): void {
  store<usize>(f, freeTop);
  freeTop = f;
  framesInUse--;
}
