// A guest_memfd's state (the kernel's struct gmem_inode / gmem_file): its size
// and flags, its page table root, its references and its bindings to memslots.
// The file's operations are file.ts, the bindings' bind.ts; both read this.

export const GUEST_MEMFD_FLAG_MMAP: u64 = 1 << 0;
export const GUEST_MEMFD_FLAG_INIT_SHARED: u64 = 1 << 1;

@unmanaged export class GmemFile {
  /** i_size: fixed at creation. */
  size: u64;
  flags: u64;
  /** Radix root and height (0: no node yet). */
  root: usize;
  height: u32;
  /** Frames the file holds. */
  nrPages: u32;
  /** Vm.serial of the creator: survives the VM (a file may outlive it). */
  vmSerial: u32;
  /** The fd and each VMA mapping the file. */
  refs: u32;
  /** Bindings (bind.ts): records of (slot, first index, end index). */
  binds: usize;
  nrBinds: u32;
  capBinds: u32;
  /** The fd while it is open (-1 after close). */
  fd: i32;
}

@inline export function fileOf(p: usize): GmemFile {
  return changetype<GmemFile>(p);
}
