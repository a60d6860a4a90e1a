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

// The hot path for fixed-layout _IOW structs (KVM_SET_USER_MEMORY_REGION is
// called thousands of times a second by VMMs that remap): the caller writes
// every byte of the struct straight into the core's ioctl buffer through one
// cached DataView, and the error context is only built when the call fails.
let viewCore: CoreExports | undefined;
let viewBuffer: ArrayBuffer | undefined;
let view: DataView | undefined;

/** The core's ioctl buffer; the caller must write all `len` bytes it passes to ioctlIn. */
export function ioctlArgView(core: CoreExports): DataView {
  // memory.grow detaches the old buffer (its byteLength drops to 0): only then is a new view needed.
  if (core !== viewCore || !view || viewBuffer!.byteLength === 0) {
    viewBuffer = core.memory.buffer;
    view = new DataView(viewBuffer, core.ioctlBuffer(), core.ioctlBufferSize());
    viewCore = core;
  }
  return view;
}

/** Issues an _IOW ioctl whose `len` argument bytes are already in the buffer: 0 / value / -errno. */
export function ioctlIn(core: CoreExports, fd: number, nr: number, len: number): number {
  return core.ioctl(fd, nr >>> 0, len, 0n) as number;
}
