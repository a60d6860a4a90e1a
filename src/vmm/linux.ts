// Loading a Linux kernel the way kvmtool does on RISC-V KVM: the kernel
// (an `Image` with its boot header, or an ELF vmlinux) at the RAM base plus
// its text offset (2 MiB), the device tree in the last page-aligned bytes of
// RAM, an initramfs page-aligned right below it, and the boot hart entered at
// the kernel with a0 = hart id, a1 = the device tree's address, in S-mode with
// satp = 0 (Documentation/riscv/boot.rst).

import { isElf, parseImage } from "./elf.js";

/** "RSC\x05", the boot header's magic2 (offset 56), and the older "RISCV\0\0\0" (offset 48). */
const IMAGE_MAGIC2 = 0x05435352;
const IMAGE_MAGIC = 0x5643534952n;
const IMAGE_HEADER_BYTES = 64;
/** Where RV64 kernels expect to sit above the RAM base (a PMD boundary) when a header says nothing else. */
export const KERNEL_TEXT_OFFSET = 0x200000n;
const PAGE = 4096n;

export interface RiscvImageHeader {
  textOffset: bigint;
  /** Bytes the kernel occupies once running (bss included); at least the file's length. */
  imageSize: bigint;
  flags: bigint;
  version: number;
}

/** The RISC-V Image boot header, or an Error naming what is wrong with it. */
export function parseImageHeader(b: Uint8Array): RiscvImageHeader {
  if (b.length < IMAGE_HEADER_BYTES) throw new Error(`Image: ${b.length} bytes, shorter than the 64-byte boot header`);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (dv.getUint32(56, true) !== IMAGE_MAGIC2 && dv.getBigUint64(48, true) !== IMAGE_MAGIC) {
    throw new Error("Image: no RISC-V boot header magic (\"RSC\\x05\" at offset 56 or \"RISCV\" at 48): not a RISC-V kernel Image");
  }
  const textOffset = dv.getBigUint64(8, true);
  if (textOffset % PAGE !== 0n) throw new Error(`Image: text_offset 0x${textOffset.toString(16)} is not page aligned`);
  const size = dv.getBigUint64(16, true);
  return { textOffset, imageSize: size > BigInt(b.length) ? size : BigInt(b.length), flags: dv.getBigUint64(24, true), version: dv.getUint32(32, true) };
}

/** A kernel ready to copy: its pieces at guest-physical addresses, its entry and the RAM it occupies. */
export interface KernelLayout {
  entry: bigint;
  start: bigint;
  end: bigint;
  pieces: { gpa: bigint; bytes: Uint8Array }[];
}

/**
 * Where a kernel goes in RAM at ramBase: an Image at ramBase + text_offset;
 * an ELF vmlinux with its lowest segment at ramBase + 2 MiB (its link
 * addresses are virtual), the others and the entry moved with it.
 */
export function placeKernel(kernel: Uint8Array, ramBase: bigint): KernelLayout {
  if (isElf(kernel)) {
    const img = parseImage(kernel, ramBase);
    if (img.segments.length === 0) throw new Error("ELF: no PT_LOAD segment");
    const low = img.segments.reduce((m, s) => (s.gpa < m ? s.gpa : m), img.segments[0].gpa);
    const high = img.segments.reduce((m, s) => (s.gpa + s.memSize > m ? s.gpa + s.memSize : m), 0n);
    const start = ramBase + KERNEL_TEXT_OFFSET;
    const move = (a: bigint) => BigInt.asUintN(64, a - low + start);
    if (img.entry < low || img.entry >= high) throw new Error("ELF: the entry point is outside the loaded segments");
    return { entry: move(img.entry), start, end: start + (high - low), pieces: img.segments.map((s) => ({ gpa: move(s.gpa), bytes: s.bytes })) };
  }
  const h = parseImageHeader(kernel);
  const start = ramBase + h.textOffset;
  return { entry: start, start, end: start + h.imageSize, pieces: [{ gpa: start, bytes: kernel }] };
}

export interface BootLayout {
  kernel: KernelLayout;
  /** The device tree's address (page aligned). */
  dtb: bigint;
  initrd?: { start: bigint; end: bigint };
}

const alignDown = (x: bigint, a: bigint) => x - (x % a);

/**
 * The boot layout in RAM [ramBase, ramBase + ramSize): the device tree in the
 * last page-aligned bytes that hold it, the initrd page-aligned below it, and
 * neither over the kernel (bss included). A RangeError says what does not fit.
 */
export function planBoot(kernel: KernelLayout, ramBase: bigint, ramSize: bigint, dtbSize: number, initrdSize?: number): BootLayout {
  const ramEnd = ramBase + ramSize;
  if (kernel.start < ramBase || kernel.end > ramEnd) {
    throw new RangeError(`Linux: the kernel [0x${kernel.start.toString(16)}, 0x${kernel.end.toString(16)}) does not fit in RAM of ${ramSize >> 20n} MiB`);
  }
  const dtb = alignDown(ramEnd - BigInt(dtbSize), PAGE);
  let low = dtb;
  let initrd: BootLayout["initrd"];
  if (initrdSize !== undefined) {
    const start = alignDown(dtb - BigInt(initrdSize), PAGE);
    initrd = { start, end: start + BigInt(initrdSize) };
    low = start;
  }
  if (low < kernel.end) {
    throw new RangeError(`Linux: the ${initrd ? "initrd and " : ""}device tree (from 0x${low.toString(16)}) overlap the kernel (up to 0x${kernel.end.toString(16)}): more RAM needed`);
  }
  return { kernel, dtb, initrd };
}
