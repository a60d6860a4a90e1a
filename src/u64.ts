// u64 / u32 argument handling: every u64 field takes number | bigint, and a
// value that no field of that width can hold is a RangeError, never a wrap.

export type U64 = number | bigint;

export const U64_MAX = (1n << 64n) - 1n;

export function toU64(value: U64, name: string): bigint {
  // The common case in a few operations, small enough for the JIT to inline
  // into the hot ioctl paths (KVM_SET_USER_MEMORY_REGION takes three).
  if (typeof value === "bigint" && value >= 0n && value <= U64_MAX) return value;
  return toU64Checked(value, name);
}

function toU64Checked(value: U64, name: string): bigint {
  if (typeof value === "bigint") {
    if (value < 0n || value > U64_MAX) throw new RangeError(`${name} ${value} does not fit in a u64`);
    return value;
  }
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || !Number.isSafeInteger(value)) {
    throw new RangeError(`${name} ${value} is not a u64 (numbers must be safe non-negative integers; use a bigint)`);
  }
  return BigInt(value);
}

export function toU32(value: U64, name: string): number {
  // The common case, a number that is already a u32, needs no bigint.
  if (typeof value === "number" && value >>> 0 === value) return value >>> 0;
  const v = toU64(value, name);
  if (v > 0xffffffffn) throw new RangeError(`${name} ${value} does not fit in a u32`);
  return Number(v);
}

/** A core i64 result read back as the u64 it carries. */
export function asU64(v: bigint): bigint {
  return BigInt.asUintN(64, v);
}

/** The little-endian value of bytes[0..len). */
export function fromLe(bytes: Uint8Array, len: number): bigint {
  let v = 0n;
  for (let i = len - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]);
  return v;
}

/** Stores the low len bytes of v into out[0..len), little-endian. */
export function toLe(v: bigint, out: Uint8Array, len: number): Uint8Array {
  for (let i = 0; i < len; i++, v >>= 8n) out[i] = Number(v & 0xffn);
  return out;
}
