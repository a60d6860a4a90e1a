// A flattened device tree (DTB) writer: the blob a kernel finds in a1 at
// boot. Version 17 (last compatible 16), big-endian throughout: a 40-byte
// header, the memory reservation block (8-byte aligned, (address, size) pairs
// ending with a zero pair), the structure block (4-byte aligned tokens) and
// the strings block (property names, each stored once). Hand-written: the
// format is small and a dependency would not shorten it.

export const FDT_MAGIC = 0xd00dfeed;
export const FDT_BEGIN_NODE = 1, FDT_END_NODE = 2, FDT_PROP = 3, FDT_NOP = 4, FDT_END = 9;
export const FDT_VERSION = 17, FDT_LAST_COMP_VERSION = 16;
const HEADER_BYTES = 40;

/** A property value: raw bytes, a string, a string list, or 32-bit cells (numbers) / 64-bit cells (bigints). */
export type FdtValue = Uint8Array | string | string[] | number[] | bigint[] | null;

const enc = new TextEncoder();
const align = (n: number, a: number) => (n + a - 1) & -a;

/** The bytes of a property value (null: an empty, boolean property). */
export function fdtValueBytes(v: FdtValue): Uint8Array {
  if (v === null) return new Uint8Array(0);
  if (v instanceof Uint8Array) return v;
  if (typeof v === "string") return enc.encode(v + "\0");
  if (v.length > 0 && typeof v[0] === "string") return enc.encode((v as string[]).map((s) => s + "\0").join(""));
  if (v.length > 0 && typeof v[0] === "bigint") {
    const b = new Uint8Array(v.length * 8), dv = new DataView(b.buffer);
    (v as bigint[]).forEach((x, i) => {
      if (x < 0n || x >= 1n << 64n) throw new RangeError(`fdt: cell ${x} does not fit 64 bits`);
      dv.setBigUint64(i * 8, x);
    });
    return b;
  }
  const b = new Uint8Array(v.length * 4), dv = new DataView(b.buffer);
  (v as number[]).forEach((x, i) => {
    if (!Number.isInteger(x) || x < 0 || x > 0xffffffff) throw new RangeError(`fdt: cell ${x} does not fit 32 bits`);
    dv.setUint32(i * 4, x);
  });
  return b;
}

/**
 * Builds a DTB by walking the tree in order: beginNode / prop / endNode, then
 * finish(). Node names are checked for what the format cannot hold (a NUL, a
 * '/'); the root's name is the empty string.
 */
export class FdtWriter {
  private struct: number[] = [];
  private readonly strings: number[] = [];
  private readonly stringOffsets = new Map<string, number>();
  private depth = 0;
  private done = false;
  private readonly reservations: { address: bigint; size: bigint }[] = [];
  private nextPhandle = 1;

  /** A memory reservation block entry (memory the kernel must not use). */
  reserve(address: bigint, size: bigint): this {
    this.reservations.push({ address, size });
    return this;
  }

  /** A fresh phandle value (1, 2, ...) for a node that others reference. */
  phandle(): number {
    return this.nextPhandle++;
  }

  beginNode(name: string): this {
    this.open();
    if (this.depth === 0 && name !== "") throw new Error("fdt: the root node's name is empty");
    if (this.depth > 0 && (name === "" || name.includes("/") || name.includes("\0"))) throw new Error(`fdt: bad node name ${JSON.stringify(name)}`);
    this.token(FDT_BEGIN_NODE);
    this.bytes(enc.encode(name + "\0"));
    this.depth++;
    return this;
  }

  prop(name: string, value: FdtValue): this {
    this.open();
    if (this.depth === 0) throw new Error(`fdt: property ${name} outside a node`);
    if (name === "" || name.includes("\0")) throw new Error(`fdt: bad property name ${JSON.stringify(name)}`);
    const v = fdtValueBytes(value);
    this.token(FDT_PROP);
    this.token(v.length);
    this.token(this.stringOffset(name));
    this.bytes(v);
    return this;
  }

  endNode(): this {
    this.open();
    if (this.depth === 0) throw new Error("fdt: endNode without a node");
    this.token(FDT_END_NODE);
    this.depth--;
    return this;
  }

  /** The blob; boot_cpuid_phys is the boot hart's id. */
  finish(bootCpuidPhys = 0): Uint8Array {
    this.open();
    if (this.depth !== 0) throw new Error(`fdt: ${this.depth} node(s) still open`);
    this.token(FDT_END);
    this.done = true;
    const rsvOff = align(HEADER_BYTES, 8);
    const structOff = rsvOff + (this.reservations.length + 1) * 16;
    const stringsOff = structOff + this.struct.length;
    const total = stringsOff + this.strings.length;
    const out = new Uint8Array(total), dv = new DataView(out.buffer);
    const header = [FDT_MAGIC, total, structOff, stringsOff, rsvOff, FDT_VERSION, FDT_LAST_COMP_VERSION, bootCpuidPhys,
      this.strings.length, this.struct.length];
    header.forEach((x, i) => dv.setUint32(i * 4, x));
    this.reservations.forEach((r, i) => {
      dv.setBigUint64(rsvOff + i * 16, r.address);
      dv.setBigUint64(rsvOff + i * 16 + 8, r.size);
    });
    out.set(this.struct, structOff);
    out.set(this.strings, stringsOff);
    return out;
  }

  private open(): void {
    if (this.done) throw new Error("fdt: already finished");
  }

  private token(x: number): void {
    this.struct.push(x >>> 24, (x >>> 16) & 0xff, (x >>> 8) & 0xff, x & 0xff);
  }

  /** Bytes, then zeros up to the next 4-byte boundary (tokens are 4-aligned). */
  private bytes(b: Uint8Array): void {
    for (const x of b) this.struct.push(x);
    while (this.struct.length % 4 !== 0) this.struct.push(0);
  }

  private stringOffset(name: string): number {
    let off = this.stringOffsets.get(name);
    if (off === undefined) {
      off = this.strings.length;
      for (const x of enc.encode(name + "\0")) this.strings.push(x);
      this.stringOffsets.set(name, off);
    }
    return off;
  }
}
