// What a VM and the files made under it (guest_memfd, pfn caches, page
// tracking) reach of the instance that made them: the core, the VMM's address
// space, the deferred callback error, and the fd table entry to drop on close.
// Declared here, below kvm.ts and vm.ts, so that neither imports the other back
// (the kernel's struct kvm knows nothing of /dev/kvm either).

import type { CoreExports } from "./core.js";
import type { HostMemory } from "./host-memory.js";

/** The side of a Kvm a VM uses: Kvm implements it. */
export interface KvmInstance {
  readonly core: CoreExports;
  readonly memory: HostMemory;
  /** @internal After a core call that may run callbacks: throws the first exception one of them raised. */
  rethrowCallbackError(): void;
  /**
   * @internal KVM_RUN of a vCPU fd on the vCPU runner's Worker (OpenOptions.vcpuWorkers):
   * its result and failed check, or null where runs stay on this thread (no runner, or a reader hook set).
   */
  runOnWorker(vcpuFd: number): { r: number; check: number } | null;
  /** @internal The VM of this fd is closed: drop it from the instance's table. */
  forget(fd: number): void;
}

/** A VM as the objects bound to it see it (its instance and fd): Vm implements it. */
export interface VmFile {
  readonly kvm: KvmInstance;
  readonly fd: number;
}
