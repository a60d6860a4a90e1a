// The committed Linux guest (guests/linux): what can be checked without
// booting it. The kernel Image's header as Documentation/riscv/boot-image-header.rst
// lays it out, the initramfs as the newc cpio format the kernel unpacks
// (init/initramfs.c), /init and /bin as static rv64gc ELF executables, and
// the sha256 of each output as guests/linux/SOURCE.md records it.
import { describe, it, expect } from "vitest";
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
  // A kernel with the EFI stub (EFI=y, which PORTABLE selects) starts with "MZ" (c.li s4,-13: harmless
  // when entered directly) and keeps its PE header's offset in the last header word.
  if (ascii(img.subarray(0, 2)) === "MZ") {
    const pe = v.getUint32(60, true);
    if (pe + 4 > img.length || ascii(img.subarray(pe, pe + 4)) !== "PE\0\0") problems.push(`no PE header at 0x${pe.toString(16)}`);
  }
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

  it("has a RISC-V Image header: both magics, 2 MiB text_offset, image_size covering the file, little-endian flags, the EFI stub's PE header", () => {
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
    expect(corrupt(60, 0x08)).toEqual([expect.stringMatching(/^no PE header at 0x/)]);
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

/** The names box.c answers to, in the order build.sh links them. */
const BOX_NAMES = ["sh", "ls", "cat", "free", "uname", "memtouch", "dirty", "mips"];

/** An ELF header's e_flags (RISC-V: bit 0 RVC, bits 1-2 the float ABI) and whether it is a static RV64 executable. */
function elfKind(elf: Uint8Array): { staticRv64Exec: boolean; flags: number } {
  const v = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  const phoff = Number(v.getBigUint64(32, true)), phentsize = v.getUint16(54, true), phnum = v.getUint16(56, true);
  const types = Array.from({ length: phnum }, (_, i) => v.getUint32(phoff + i * phentsize, true));
  const staticRv64Exec = ascii(elf.subarray(0, 4)) === "\x7fELF" && elf[4] === 2 && elf[5] === 1 && // ELFCLASS64, LE
    v.getUint16(16, true) === 2 && v.getUint16(18, true) === 243 && !types.includes(3); // ET_EXEC, EM_RISCV, no PT_INTERP
  return { staticRv64Exec, flags: v.getUint32(48, true) };
}

describe("guests/linux: the committed initramfs", () => {
  const cpio = linuxFile("initramfs.cpio");

  it("is a newc cpio: /dev/console (char 5:1), the directories /init mounts on and /tmp, /init and /bin's programs, every mtime 0", () => {
    const entries = readNewc(cpio);
    expect(entries.map((e) => e.name)).toEqual(["bin", "dev", "dev/console", "proc", "sys", "tmp", "init",
      ...BOX_NAMES.map((n) => `bin/${n}`), "bin/fptest", "bin/hello"]);
    const byName = new Map(entries.map((e) => [e.name, e]));
    for (const d of ["bin", "dev", "proc", "sys", "tmp"]) expect(byName.get(d)!.mode & 0o170000).toBe(0o040000);
    expect(byName.get("tmp")!.mode & 0o1777).toBe(0o1777);
    const consoleNode = byName.get("dev/console")!;
    expect([consoleNode.mode & 0o170000, consoleNode.rdev]).toEqual([0o020000, [5, 1]]);
    for (const e of entries.filter((x) => x.name === "init" || x.name.startsWith("bin/")))
      expect([e.name, e.mode & 0o170000, e.mode & 0o111]).toEqual([e.name, 0o100000, 0o111]);
    expect(new Set(entries.map((e) => e.mtime))).toEqual(new Set([0]));
  });

  it("/bin/sh and the tools are one program, hard-linked: one inode, its data stored once", () => {
    const box = readNewc(cpio).filter((e) => BOX_NAMES.includes(e.name.slice(4)) && e.name.startsWith("bin/"));
    expect(box.map((e) => e.name.slice(4))).toEqual(BOX_NAMES);
    expect(new Set(box.map((e) => e.ino)).size).toBe(1);
    expect(box.map((e) => e.nlink)).toEqual(BOX_NAMES.map(() => BOX_NAMES.length));
    expect(box.filter((e) => e.data.length > 0)).toHaveLength(1);
  });

  it("its /init is an ordinary static program, like /bin's: an RV64 ELF executable for rv64gc (e_flags 5)", () => {
    const init = readNewc(cpio).find((e) => e.name === "init")!.data;
    expect(elfKind(init)).toEqual({ staticRv64Exec: true, flags: 5 });
  });

  it("/bin's programs are static RV64 ELF executables for rv64gc: RVC and the double-float ABI (e_flags 5)", () => {
    const programs = readNewc(cpio).filter((e) => e.name.startsWith("bin/") && e.data.length > 0);
    // The hard-linked program's data comes with its last name.
    expect(programs.map((e) => e.name)).toEqual(["bin/mips", "bin/fptest", "bin/hello"]);
    for (const p of programs) expect([p.name, elfKind(p.data)]).toEqual([p.name, { staticRv64Exec: true, flags: 5 }]);
  });

  it("the cpio reader rejects a copy with a corrupted magic and one cut short", () => {
    const bad = cpio.slice();
    bad[5] = 0x32; // "070702": the checksummed variant, not newc
    expect(() => readNewc(bad)).toThrow(/bad magic "070702" at 0/);
    expect(() => readNewc(cpio.subarray(0, cpio.length >> 1))).toThrow(/bin\/mips: data runs past the end/);
  });

  it("is the build SOURCE.md records (sha256)", () => {
    expect(sha256(cpio)).toBe(recordedSha256("initramfs.cpio"));
  });
});

// fptest.expected is what QEMU's user-mode emulator printed when build.sh ran
// the binary; rerunning the committed binary must still give it, byte for byte.
const QEMU_USER = "qemu-riscv64-static";
const qemuUser = spawnSync(QEMU_USER, ["--version"], { encoding: "utf8" });
const NO_QEMU = qemuUser.error ? `${QEMU_USER} not found (apt-get install qemu-user-static)` : "";

describe.skipIf(NO_QEMU !== "")(`guests/linux: userland/fptest.expected${NO_QEMU ? ` (skipped: ${NO_QEMU})` : ""}`, () => {
  it("is what qemu-riscv64-static prints running the committed /bin/fptest", () => {
    const fptest = readNewc(linuxFile("initramfs.cpio")).find((e) => e.name === "bin/fptest")!.data;
    const dir = mkdtempSync(join(tmpdir(), "webkvm-fptest-"));
    try {
      writeFileSync(join(dir, "fptest"), fptest, { mode: 0o755 });
      const r = spawnSync(QEMU_USER, [join(dir, "fptest")], { encoding: "utf8", timeout: 120_000, maxBuffer: 16 << 20 });
      expect([r.status, r.stderr]).toEqual([0, ""]);
      expect(r.stdout).toBe(readFileSync(new URL("../guests/linux/userland/fptest.expected", import.meta.url), "utf8"));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
