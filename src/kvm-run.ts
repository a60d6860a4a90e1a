// A view of a vCPU's struct kvm_run in the core's linear memory, with the
// kernel's layout (include/uapi/linux/kvm.h), at the offsets the core writes (KVM_RUN_* of
// assembly/layout.ts). The DataView is rebuilt only when the memory's buffer
// changed (memory.grow detaches the old one): a boot's console makes thousands
// of exits, each reading and writing several fields.

import type { CoreExports } from "./core.js";
import { KVM_RUN_LAYOUT as R } from "./abi.gen.js";

export const KVM_EXIT = {
  UNKNOWN: 0, HLT: 5, MMIO: 6, SHUTDOWN: 8, INTR: 10, INTERNAL_ERROR: 17, SYSTEM_EVENT: 24,
  DIRTY_RING_FULL: 31, RISCV_SBI: 35, MEMORY_FAULT: 39,
} as const;

export const EXIT_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(KVM_EXIT).map(([k, v]) => [v, k.toLowerCase()]));

export class KvmRun {
  /** @internal */
  constructor(private readonly core: CoreExports, readonly ptr: number) {}

  private view: DataView | null = null;

  private get dv(): DataView {
    const buf = this.core.memory.buffer;
    if (this.view === null || this.view.buffer !== buf) this.view = new DataView(buf, this.ptr, R.BYTES);
    return this.view;
  }

  get immediateExit(): number { return this.dv.getUint8(R.IMMEDIATE_EXIT); }
  set immediateExit(v: number) { this.dv.setUint8(R.IMMEDIATE_EXIT, v); }
  get exitReason(): number { return this.dv.getUint32(R.EXIT_REASON, true); }

  /** KVM_EXIT_MMIO: phys_addr, data[8], len, is_write. Fill `data` before the next run to answer a read. */
  get mmio() {
    const dv = this.dv;
    const core = this.core, ptr = this.ptr;
    return {
      physAddr: dv.getBigUint64(R.MMIO_PHYS_ADDR, true),
      data: new Uint8Array(core.memory.buffer, ptr + R.MMIO_DATA, 8),
      len: dv.getUint32(R.MMIO_LEN, true),
      isWrite: dv.getUint8(R.MMIO_IS_WRITE) !== 0,
    };
  }

  /** KVM_EXIT_MEMORY_FAULT: flags, gpa, size. */
  get memoryFault() {
    const dv = this.dv;
    return { flags: dv.getBigUint64(R.MEMORY_FAULT_FLAGS, true), gpa: dv.getBigUint64(R.MEMORY_FAULT_GPA, true),
      size: dv.getBigUint64(R.MEMORY_FAULT_SIZE, true) };
  }

  /** KVM_EXIT_RISCV_SBI: extension_id, function_id, args[6]; write ret[0..1] before the next run. */
  get riscvSbi() {
    const dv = this.dv;
    const args: bigint[] = [];
    for (let i = 0; i < 6; i++) args.push(dv.getBigUint64(R.SBI_ARGS + i * 8, true));
    return { extensionId: dv.getBigUint64(R.SBI_EXTENSION, true), functionId: dv.getBigUint64(R.SBI_FUNCTION, true), args };
  }

  setSbiReturn(error: bigint, value: bigint): void {
    const dv = this.dv;
    dv.setBigUint64(R.SBI_RET, BigInt.asUintN(64, error), true);
    dv.setBigUint64(R.SBI_RET + 8, BigInt.asUintN(64, value), true);
  }
}
