// The host memory a VM passes its dirty-log ioctls as dirty_bitmap: one
// mapping in the VMM's address space, grown page-wise to the largest bitmap
// asked for, unmapped when the VM closes.

import type { HostMemory } from "./host-memory.js";
import { PAGE_SIZE } from "./uapi.js";

export class BitmapScratch {
  private buf: { hva: bigint; size: bigint } | null = null;

  constructor(private readonly memory: HostMemory) {}

  /** An hva with at least `bytes` bytes mapped (a whole number of pages, at least one). */
  hva(bytes: bigint): bigint {
    if (!this.buf || this.buf.size < bytes) {
      const page = BigInt(PAGE_SIZE);
      const size = bytes < page ? page : (bytes + page - 1n) & ~(page - 1n);
      if (this.buf) this.memory.munmap(this.buf.hva, this.buf.size);
      this.buf = { hva: this.memory.mmap(size), size };
    }
    return this.buf.hva;
  }

  release(): void {
    if (this.buf) this.memory.munmap(this.buf.hva, this.buf.size);
    this.buf = null;
  }
}
