// Loading guest images: a flat binary (at the RAM base) or an ELF64 RISC-V
// executable (its PT_LOAD segments at their physical addresses).

export interface Segment { gpa: bigint; bytes: Uint8Array; memSize: bigint }
export interface Image { entry: bigint; segments: Segment[] }

const PT_LOAD = 1;
const EM_RISCV = 243;

export function isElf(b: Uint8Array): boolean {
  return b.length >= 4 && b[0] === 0x7f && b[1] === 0x45 && b[2] === 0x4c && b[3] === 0x46;
}

export function parseImage(b: Uint8Array, ramBase: bigint): Image {
  if (!isElf(b)) return { entry: ramBase, segments: [{ gpa: ramBase, bytes: b, memSize: BigInt(b.length) }] };
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b[4] !== 2 || b[5] !== 1) throw new Error("ELF: not a little-endian ELF64 file");
  if (dv.getUint16(18, true) !== EM_RISCV) throw new Error("ELF: not a RISC-V executable");
  const entry = dv.getBigUint64(24, true);
  const phoff = Number(dv.getBigUint64(32, true));
  const phentsize = dv.getUint16(54, true), phnum = dv.getUint16(56, true);
  const segments: Segment[] = [];
  for (let i = 0; i < phnum; i++) {
    const p = phoff + i * phentsize;
    if (p + 56 > b.length) throw new Error("ELF: program header out of range");
    if (dv.getUint32(p, true) !== PT_LOAD) continue;
    const off = Number(dv.getBigUint64(p + 8, true));
    const paddr = dv.getBigUint64(p + 24, true);
    const filesz = Number(dv.getBigUint64(p + 32, true));
    const memsz = dv.getBigUint64(p + 40, true);
    if (off + filesz > b.length) throw new Error("ELF: segment out of range");
    segments.push({ gpa: paddr, bytes: b.subarray(off, off + filesz), memSize: memsz });
  }
  return { entry, segments };
}
