// Vcpu: a vCPU fd. So far the memory-subsystem view: its generation-tagged
// last-used memslot cache (kvm_vcpu_gfn_to_memslot).

import type { Vm, Memslot } from "./vm.js";
import { decodeSnap } from "./vm.js";
import { viewAt } from "./core.js";
import { type U64, toU64 } from "./u64.js";

export class Vcpu {
  /** @internal */
  constructor(readonly vm: Vm, readonly fd: number, readonly id: number) {}

  /** kvm_vcpu_gfn_to_memslot: the slot through this vCPU's last-used cache. */
  gfnToMemslot(gfn: U64): Memslot | null {
    const core = this.vm.kvm.core;
    return core.lookupGfn(this.fd, 0, toU64(gfn, "gfn"), 2) ? decodeSnap(viewAt(core, core.ioBuffer(), 48)) : null;
  }
}
