// gfn_to_pfn_cache for host devices (virt/kvm/pfncache.c): a device keeps a
// mapping of one guest page and writes through it only after check() says the
// memslot generation and the host page are still the ones it resolved; else it
// refreshes. It never writes through a stale cache: in the threads core, the
// check and the access run in one core call under the cache's read lock.

import type { VmFile } from "./instance.js";
import { KvmError, throwIfFailed, ERRNO, CHECK } from "./errors.js";
import { bytesAt } from "./core.js";
import { type U64, toU64 } from "./u64.js";
import { PAGE_SIZE } from "./uapi.js";

export class GfnToPfnCache {
  private ptr: number;

  /** kvm_gpc_init */
  constructor(readonly vm: VmFile) {
    this.ptr = vm.kvm.core.gpcCreate(vm.fd);
    if (this.ptr === 0) throw new KvmError(ERRNO.ENOMEM, CHECK.NOMEM, {}, "kvm_gpc_init");
  }

  private get core() { return this.vm.kvm.core; }

  /** kvm_gpc_activate: fixes gpa (one page; len must fit from its offset). */
  activate(gpa: U64, len: number): void {
    throwIfFailed(this.core, this.core.gpcActivateGpa(this.ptr, toU64(gpa, "gpa"), BigInt(len)), "kvm_gpc_activate");
  }

  /** kvm_gpc_activate_hva: a cache of a host address, immune to memslot changes. */
  activateHva(hva: U64, len: number): void {
    throwIfFailed(this.core, this.core.gpcActivateUhva(this.ptr, toU64(hva, "hva"), BigInt(len)), "kvm_gpc_activate_hva");
  }

  /** kvm_gpc_check */
  check(len: number): boolean {
    return this.core.gpcIsValid(this.ptr, BigInt(len)) !== 0;
  }

  /** kvm_gpc_refresh (EFAULT when the gpa has no writable RAM now). */
  refresh(len: number): void {
    throwIfFailed(this.core, this.core.gpcDoRefresh(this.ptr, BigInt(len)), "kvm_gpc_refresh");
  }

  /** kvm_gpc_deactivate */
  deactivate(): void {
    this.core.gpcStop(this.ptr);
  }

  get active(): boolean { return (this.core.gpcFlags(this.ptr) & 1) !== 0; }
  get valid(): boolean { return (this.core.gpcFlags(this.ptr) & 2) !== 0; }

  /**
   * Writes bytes at the cached address and marks the page dirty. The check and
   * the copy are one core call under the cache's read lock (a concurrent
   * invalidation waits for it); a stale cache is refreshed and tried again.
   */
  write(bytes: Uint8Array): void {
    const len = bytes.length;
    if (len > PAGE_SIZE) this.refresh(len); // EINVAL: no cache holds more than a page
    while (true) {
      bytesAt(this.core, this.core.ioBuffer(), len).set(bytes);
      if (this.core.gpcAccessIo(this.ptr, BigInt(len), true) !== 0) return;
      this.refresh(len);
    }
  }

  /** Reads len bytes at the cached address (refreshing while stale), as write() does. */
  read(len: number): Uint8Array {
    if (len > PAGE_SIZE) this.refresh(len);
    while (true) {
      if (this.core.gpcAccessIo(this.ptr, BigInt(len), false) !== 0) return bytesAt(this.core, this.core.ioBuffer(), len).slice();
      this.refresh(len);
    }
  }

  destroy(): void {
    if (this.ptr !== 0) this.core.gpcFree(this.ptr);
    this.ptr = 0;
  }
}
