// The raw ioctl path shared by Kvm, Vm and Vcpu: the caller's struct bytes go
// to the core's ioctl buffer (copy_from_user), the result is 0 / value /
// -errno, and _IOR structs are copied back (copy_to_user).

import { type CoreExports, bytesAt } from "./core.js";
import { throwIfFailed, type CheckContext } from "./errors.js";
import { ioctlSize } from "./uapi.js";

export function rawIoctl(core: CoreExports, fd: number, nr: number, arg?: Uint8Array | number | bigint): number {
  if (!Number.isInteger(nr) || nr < 0 || nr > 0xffffffff) throw new RangeError(`ioctl number ${nr} is not a u32`);
  if (arg instanceof Uint8Array) {
    const cap = core.ioctlBufferSize();
    const len = Math.min(arg.length, cap);
    const buf = core.ioctlBuffer();
    bytesAt(core, buf, cap).fill(0);
    bytesAt(core, buf, len).set(arg.subarray(0, len));
    const r = core.ioctl(fd, nr >>> 0, len, 0n);
    if ((nr >>> 30) & 2) arg.set(bytesAt(core, buf, Math.min(len, ioctlSize(nr))));
    return r;
  }
  let scalar = 0n;
  if (arg !== undefined) {
    if (typeof arg === "number" && !Number.isSafeInteger(arg)) throw new RangeError(`ioctl argument ${arg} is not an integer`);
    const v = BigInt(arg);
    if (v < -(1n << 63n) || v >= 1n << 64n) throw new RangeError(`ioctl argument ${arg} does not fit in an unsigned long`);
    scalar = BigInt.asUintN(64, v);
  }
  return core.ioctl(fd, nr >>> 0, -1, BigInt.asIntN(64, scalar));
}

/** A typed call: throws KvmError naming the failed check, else returns the value. */
export function checkedIoctl(core: CoreExports, fd: number, nr: number, what: string,
                             arg: Uint8Array | number | bigint | undefined, ctx: CheckContext): number {
  const r = rawIoctl(core, fd, nr, arg);
  throwIfFailed(core, r, what, { ...ctx, ioctl: what, nr });
  return r;
}
