// A view of a vCPU's struct kvm_run in the core's linear memory, with the
// kernel's layout (uapi.md §2). Every access builds its DataView afresh:
// memory.grow detaches old buffers.

import type { CoreExports } from "./core.js";

export const KVM_EXIT = {
  UNKNOWN: 0, HLT: 5, MMIO: 6, SHUTDOWN: 8, INTR: 10, INTERNAL_ERROR: 17, SYSTEM_EVENT: 24,
  DIRTY_RING_FULL: 31, RISCV_SBI: 35, MEMORY_FAULT: 39,
} as const;

export const EXIT_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(KVM_EXIT).map(([k, v]) => [v, k.toLowerCase()]));

export class KvmRun {
  /** @internal */
  constructor(private readonly core: CoreExports, readonly ptr: number) {}

  private get dv(): DataView {
    return new DataView(this.core.memory.buffer, this.ptr, 2352);
  }

  get immediateExit(): number { return this.dv.getUint8(1); }
  set immediateExit(v: number) { this.dv.setUint8(1, v); }
  get exitReason(): number { return this.dv.getUint32(8, true); }

  /** KVM_EXIT_MMIO: phys_addr, data[8], len, is_write. Fill `data` before the next run to answer a read. */
  get mmio() {
    const dv = this.dv;
    const core = this.core, ptr = this.ptr;
    return {
      physAddr: dv.getBigUint64(32, true),
      data: new Uint8Array(core.memory.buffer, ptr + 40, 8),
      len: dv.getUint32(48, true),
      isWrite: dv.getUint8(52) !== 0,
    };
  }

  /** KVM_EXIT_MEMORY_FAULT: flags, gpa, size. */
  get memoryFault() {
    const dv = this.dv;
    return { flags: dv.getBigUint64(32, true), gpa: dv.getBigUint64(40, true), size: dv.getBigUint64(48, true) };
  }

  /** KVM_EXIT_RISCV_SBI: extension_id, function_id, args[6]; write ret[0..1] before the next run. */
  get riscvSbi() {
    const dv = this.dv;
    const args: bigint[] = [];
    for (let i = 0; i < 6; i++) args.push(dv.getBigUint64(48 + i * 8, true));
    return { extensionId: dv.getBigUint64(32, true), functionId: dv.getBigUint64(40, true), args };
  }

  setSbiReturn(error: bigint, value: bigint): void {
    const dv = this.dv;
    dv.setBigUint64(96, BigInt.asUintN(64, error), true);
    dv.setBigUint64(104, BigInt.asUintN(64, value), true);
  }
}
