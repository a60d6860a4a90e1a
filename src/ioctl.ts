// The raw ioctl path shared by Kvm, Vm and Vcpu: the caller's struct bytes go
// to the core's ioctl buffer (copy_from_user), the result is 0 / value /
// -errno, and _IOR structs are copied back (copy_to_user).

import { type CoreExports } from "./core.js";
import { throwIfFailed, type CheckContext } from "./errors.js";
import { ioctlCopyOutSize } from "./uapi.js";

export function rawIoctl(core: CoreExports, fd: number, nr: number, arg?: Uint8Array | number | bigint): number {
  if (!Number.isInteger(nr) || nr < 0 || nr > 0xffffffff) throw new RangeError(`ioctl number ${nr} is not a u32`);
  if (arg instanceof Uint8Array) {
    const buf = ioctlBuf(core), bytes = buf.bytes;
    const len = Math.min(arg.length, bytes.length);
    // Past the caller's struct the core sees zeros: only bytes an earlier call
    // may have left there need clearing, not the whole 4 KiB every time.
    if (buf.used > len) bytes.fill(0, len, buf.used);
    bytes.set(len === arg.length ? arg : arg.subarray(0, len));
    buf.used = len; // the core writes only within the argLen bytes it is given
    const r = core.ioctl(fd, nr >>> 0, len, 0n);
    // The call may have grown memory (detaching the views): fetch them again.
    if ((nr >>> 30) & 2) arg.set(ioctlBuf(core).bytes.subarray(0, ioctlCopyOutSize(nr, len)));
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
// every field of the struct straight into the core's ioctl buffer, and the
// error context is only built when the call fails.

/** Field writes into the core's ioctl buffer, little-endian as the core reads them (offsets naturally aligned). */
export interface IoctlArgs {
  u32(offset: number, value: number): void;
  u64(offset: number, value: bigint): void;
}

// On little-endian hosts typed arrays store the core's byte order, several
// times faster than DataView's bigint setters; big-endian hosts take the DataView.
class TypedArgs implements IoctlArgs {
  constructor(private readonly w32: Uint32Array, private readonly w64: BigUint64Array) {}
  u32(offset: number, value: number): void { this.w32[offset >>> 2] = value; }
  u64(offset: number, value: bigint): void { this.w64[offset >>> 3] = value; }
}

class ViewArgs implements IoctlArgs {
  constructor(private readonly dv: DataView) {}
  u32(offset: number, value: number): void { this.dv.setUint32(offset, value, true); }
  u64(offset: number, value: bigint): void { this.dv.setBigUint64(offset, value, true); }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Views of one core's ioctl buffer; bytes at and past `used` are zero (as far as this host wrote them). */
interface IoctlBuf { core: CoreExports; buffer: ArrayBuffer; bytes: Uint8Array; args: IoctlArgs; used: number }
let cached: IoctlBuf | undefined;

function ioctlBuf(core: CoreExports): IoctlBuf {
  // memory.grow detaches the old buffer (its byteLength drops to 0): only then are new views needed.
  if (cached === undefined || cached.core !== core || cached.buffer.byteLength === 0) {
    const buffer = core.memory.buffer, at = core.ioctlBuffer(), size = core.ioctlBufferSize();
    const args = LITTLE_ENDIAN ? new TypedArgs(new Uint32Array(buffer, at, size >>> 2), new BigUint64Array(buffer, at, size >>> 3))
      : new ViewArgs(new DataView(buffer, at, size));
    // A core met anew (or after a grow) may hold anything: the first raw call clears it all.
    const used = cached !== undefined && cached.core === core ? cached.used : size;
    cached = { core, buffer, bytes: new Uint8Array(buffer, at, size), args, used };
  }
  return cached;
}

/** The core's ioctl buffer as struct fields; the caller must write all `len` bytes it passes to ioctlIn. */
export function ioctlArgs(core: CoreExports): IoctlArgs {
  return ioctlBuf(core).args;
}

/** Issues an _IOW ioctl whose `len` argument bytes are already in the buffer: 0 / value / -errno. */
export function ioctlIn(core: CoreExports, fd: number, nr: number, len: number): number {
  const buf = ioctlBuf(core);
  buf.used = Math.max(buf.used, len);
  return core.ioctl(fd, nr >>> 0, len, 0n) as number;
}
