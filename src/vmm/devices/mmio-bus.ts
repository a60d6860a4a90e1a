// MMIO devices by guest-physical address range: the host answers KVM_EXIT_MMIO
// by dispatching to the device that claims the address.

import { fromLe, toLe } from "../../u64.js";

export interface MmioDevice {
  /** A load of `len` bytes at `offset` into the device's range. */
  read(offset: bigint, len: number): bigint;
  /** A store of the low `len` bytes of `value` at `offset`. */
  write(offset: bigint, len: number, value: bigint): void;
}

export interface MmioRange { base: bigint; size: bigint; device: MmioDevice; name: string }

export class MmioBus {
  private readonly ranges: MmioRange[] = [];

  /** Claims [base, base + size) for a device; ranges may not overlap. */
  register(name: string, base: bigint, size: bigint, device: MmioDevice): void {
    if (size <= 0n) throw new RangeError(`${name}: empty range`);
    for (const r of this.ranges) {
      if (base < r.base + r.size && r.base < base + size) throw new RangeError(`${name} overlaps ${r.name}`);
    }
    this.ranges.push({ base, size, device, name });
    this.ranges.sort((a, b) => (a.base < b.base ? -1 : 1));
  }

  find(gpa: bigint): MmioRange | undefined {
    return this.ranges.find((r) => gpa >= r.base && gpa < r.base + r.size);
  }

  /** Handles one MMIO access; false when no device claims the address. */
  access(gpa: bigint, len: number, isWrite: boolean, data: Uint8Array): boolean {
    const r = this.find(gpa);
    if (!r) return false;
    const off = gpa - r.base;
    if (isWrite) r.device.write(off, len, fromLe(data, len));
    else toLe(r.device.read(off, len), data, len);
    return true;
  }
}
