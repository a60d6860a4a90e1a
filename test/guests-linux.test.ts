// The committed Linux guest (guests/linux): what can be checked without
// booting it. The kernel Image's header as Documentation/riscv/boot-image-header.rst
// lays it out, the initramfs as the newc cpio format the kernel unpacks
// (init/initramfs.c), /init as an ELF this CPU runs (no C, no float ABI), and
// the sha256 of each output as guests/linux/SOURCE.md records it.
import { describe, it, expect } from "vitest";
import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { linuxFile, readNewc } from "./helpers.js";

const ascii = (b: Uint8Array) => String.fromCharCode(...b);

/** The kernel loads at RAM base + text_offset; RV64 kernels with an MMU say 2 MiB. */
const RV64_TEXT_OFFSET = 0x200000n;

/** Everything wrong with a RISC-V Image header (empty when it is valid for this CPU). */
function imageHeaderProblems(img: Uint8Array): string[] {
  if (img.length < 64) return [`${img.length} bytes, shorter than the 64-byte header`];
  const v = new DataView(img.buffer, img.byteOffset, img.byteLength);
  const problems: string[] = [];
  if (ascii(img.subarray(48, 56)) !== "RISCV\0\0\0") problems.push("magic is not \"RISCV\\0\\0\\0\"");
  if (ascii(img.subarray(56, 60)) !== "RSC\x05") problems.push("magic2 is not \"RSC\\x05\"");
  const code0 = v.getUint32(0, true);
  // The CPU has no C: the entry instruction must be a 32-bit one (low bits 11).
  if ((code0 & 3) !== 3) problems.push(`code0 0x${code0.toString(16)} is a compressed instruction`);
  const textOffset = v.getBigUint64(8, true);
  if (textOffset !== RV64_TEXT_OFFSET) problems.push(`text_offset 0x${textOffset.toString(16)}, not 2 MiB`);
  const imageSize = v.getBigUint64(16, true);
  if (imageSize < BigInt(img.length)) problems.push(`image_size ${imageSize} is less than the file's ${img.length} bytes`);
  const flags = v.getBigUint64(24, true);
  if ((flags & 1n) !== 0n) problems.push("flags bit 0 says big-endian");
  const version = v.getUint32(32, true);
  if (version < 2) problems.push(`header version 0x${version.toString(16)} is older than 0.2 (no image_size)`);
  return problems;
}

/** The sha256 SOURCE.md records for an output. */
function recordedSha256(name: string): string | undefined {
  const md = readFileSync(new URL("../guests/linux/SOURCE.md", import.meta.url), "utf8");
  return new RegExp("`([0-9a-f]{64})`\\s*\\|\\s*`" + name.replace(".", "\\.") + "`").exec(md)?.[1];
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

describe("guests/linux: the committed kernel Image", () => {
  const img = linuxFile("Image");

  it("has a RISC-V Image header: both magics, 2 MiB text_offset, image_size covering the file, little-endian flags, a 32-bit first instruction", () => {
    expect(imageHeaderProblems(img)).toEqual([]);
  });

  it("the header check rejects a copy with a corrupted byte in each field it reads", () => {
    const corrupt = (at: number, xor: number) => {
      const copy = img.slice(0, 4096);
      copy[at] ^= xor;
      return imageHeaderProblems(copy);
    };
    expect(corrupt(48, 0x20)).toEqual(["magic is not \"RISCV\\0\\0\\0\""]);
    expect(corrupt(59, 0x01)).toEqual(["magic2 is not \"RSC\\x05\""]);
    expect(corrupt(0, 0x01)).toEqual([expect.stringMatching(/compressed instruction/)]);
    expect(corrupt(10, 0x01)).toEqual([expect.stringMatching(/^text_offset 0x210000/)]);
    expect(corrupt(24, 0x01)).toEqual(["flags bit 0 says big-endian"]);
    expect(corrupt(32, 0x02)).toEqual([expect.stringMatching(/^header version 0x0 /)]);
    expect(imageHeaderProblems(img.slice(0, 63))).toEqual(["63 bytes, shorter than the 64-byte header"]);
    // image_size smaller than the file: shrink it below the committed file's length.
    const small = img.slice();
    new DataView(small.buffer).setBigUint64(16, 4096n, true);
    expect(imageHeaderProblems(small)).toEqual([expect.stringMatching(/^image_size 4096 is less than/)]);
  });

  it("is the build SOURCE.md records (sha256)", () => {
    expect(sha256(img)).toBe(recordedSha256("Image"));
  });
});

describe("guests/linux: the committed initramfs", () => {
  const cpio = linuxFile("initramfs.cpio");

  it("is a newc cpio with /dev, /dev/console (char 5:1) and an executable /init, every mtime 0", () => {
    const entries = readNewc(cpio);
    expect(entries.map((e) => e.name)).toEqual(["dev", "dev/console", "init"]);
    const [dev, consoleNode, init] = entries;
    expect(dev.mode & 0o170000).toBe(0o040000);
    expect([consoleNode.mode & 0o170000, consoleNode.rdev]).toEqual([0o020000, [5, 1]]);
    expect([init.mode & 0o170000, init.mode & 0o111]).toEqual([0o100000, 0o111]);
    expect(entries.map((e) => e.mtime)).toEqual([0, 0, 0]);
  });

  it("its /init is a static RV64 ELF executable without C or a float ABI (e_flags 0)", () => {
    const init = readNewc(cpio).find((e) => e.name === "init")!.data;
    const v = new DataView(init.buffer, init.byteOffset, init.byteLength);
    expect(ascii(init.subarray(0, 4))).toBe("\x7fELF");
    expect([init[4], init[5]]).toEqual([2, 1]); // ELFCLASS64, little-endian
    expect(v.getUint16(16, true)).toBe(2); // ET_EXEC
    expect(v.getUint16(18, true)).toBe(243); // EM_RISCV
    expect(v.getUint32(48, true)).toBe(0); // no EF_RISCV_RVC, float ABI soft
    const phoff = Number(v.getBigUint64(32, true)), phentsize = v.getUint16(54, true), phnum = v.getUint16(56, true);
    const types = Array.from({ length: phnum }, (_, i) => v.getUint32(phoff + i * phentsize, true));
    expect(types).not.toContain(3); // no PT_INTERP: static
  });

  it("the cpio reader rejects a copy with a corrupted magic and one cut short", () => {
    const bad = cpio.slice();
    bad[5] = 0x32; // "070702": the checksummed variant, not newc
    expect(() => readNewc(bad)).toThrow(/bad magic "070702" at 0/);
    expect(() => readNewc(cpio.subarray(0, cpio.length >> 1))).toThrow(/init: data runs past the end/);
  });

  it("is the build SOURCE.md records (sha256)", () => {
    expect(sha256(cpio)).toBe(recordedSha256("initramfs.cpio"));
  });
});
