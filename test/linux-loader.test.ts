// The Linux loader (src/vmm/linux.ts, Machine.loadLinux): a RISC-V Image or an
// ELF vmlinux at RAM base + text offset, the initrd and the device tree high
// in RAM, and the boot hart's entry state (Documentation/riscv/boot.rst).
import { describe, it, expect } from "vitest";
import { Machine, riscv, parseImageHeader } from "../src/index.js";
import { openKvm } from "./helpers.js";
import { readFdt, fdtNode, propCells, propString } from "./fdt-reader.js";
import * as A from "./cpu/asm.js";
import { REG } from "./cpu/asm.js";

const RAM = 0x80000000n, MEM = 16n << 20n;
/** Where the test kernels record what they were entered with. */
const OUT = 0x80100000n;

function bytes(words: Uint32Array): Uint8Array {
  return new Uint8Array(words.buffer, words.byteOffset, words.byteLength);
}

/** The code after the header: stores a0, a1, satp and the DTB's first word at OUT, then SRST shutdown. */
function body(at: bigint): Uint32Array {
  const p = new A.Program(at);
  p.li(REG.t0, OUT).emit(A.sd(REG.a0, REG.t0, 0), A.sd(REG.a1, REG.t0, 8), A.csrrs(REG.t1, A.CSR.satp, 0), A.sd(REG.t1, REG.t0, 16),
    A.lwu(REG.t2, REG.a1, 0), A.sd(REG.t2, REG.t0, 24));
  p.li(REG.a7, riscv.SBI_EXT_SRST).li(REG.a6, 0).li(REG.a0, 0).li(REG.a1, 0).emit(A.ecall());
  return p.finish();
}

/** An Image: the 64-byte boot header (code0 jumps over it), then body(). */
function image(opts: { textOffset?: bigint; imageSize?: bigint; magic2?: number } = {}): Uint8Array {
  const textOffset = opts.textOffset ?? 0x200000n;
  const code = body(RAM + textOffset + 64n);
  const b = new Uint8Array(64 + code.byteLength), dv = new DataView(b.buffer);
  dv.setUint32(0, A.jal(0, 64), true);
  dv.setBigUint64(8, textOffset, true);
  dv.setBigUint64(16, opts.imageSize ?? BigInt(b.length), true);
  dv.setUint32(32, 2, true); // header version 0.2
  dv.setBigUint64(48, 0x5643534952n, true); // "RISCV\0\0\0"
  dv.setUint32(56, opts.magic2 ?? 0x05435352, true); // "RSC\x05"
  b.set(bytes(code), 64);
  return b;
}

async function machine(vcpus = 1) {
  return Machine.create({ kvm: await openKvm(), memSize: MEM, vcpus });
}

function recorded(m: Machine): bigint[] {
  const dv = new DataView(m.vm.readGuest(OUT, 32).buffer);
  return [0, 8, 16, 24].map((o) => dv.getBigUint64(o, true));
}

describe("Machine.loadLinux", () => {
  it("an Image runs at RAM base + text_offset in S-mode with a0 = 0, a1 = the device tree, satp = 0", async () => {
    const m = await machine();
    m.vcpu.setCsr("satp", (8n << 60n) | 0x80300n); // whatever was there before: the boot clears it
    const l = m.loadLinux({ kernel: image(), cmdline: "console=hvc0" });
    expect([m.vcpu.pc, m.vcpu.getRegs().mode, m.vcpu.getCsr("satp")]).toEqual([RAM + 0x200000n, riscv.RISCV_MODE_S, 0n]);
    const r = m.run({ maxInstructions: 100_000n });
    expect(r.stop).toBe("shutdown");
    expect(recorded(m)).toEqual([0n, l.dtb, 0n, 0xedfe0dd0n]); // the DTB's magic, read little-endian
    m.close();
  });

  it("text_offset comes from the header", async () => {
    const m = await machine();
    const l = m.loadLinux({ kernel: image({ textOffset: 0x400000n }) });
    expect([l.kernel.entry, m.vcpu.pc]).toEqual([RAM + 0x400000n, RAM + 0x400000n]);
    expect(m.run({ maxInstructions: 100_000n }).stop).toBe("shutdown");
    m.close();
  });

  it("the device tree sits page-aligned at the top of RAM and describes this machine, with the bootargs", async () => {
    const m = await machine(2);
    const l = m.loadLinux({ kernel: image(), cmdline: "console=hvc0 earlycon=sbi" });
    expect(l.dtb % 4096n).toBe(0n);
    expect(l.dtb + BigInt(l.deviceTree.length)).toBeLessThanOrEqual(RAM + MEM);
    expect(RAM + MEM - l.dtb).toBeLessThan(BigInt(l.deviceTree.length) + 4096n);
    const root = readFdt(m.vm.readGuest(l.dtb, l.deviceTree.length)).root;
    expect(propString(fdtNode(root, "/chosen")!.props.get("bootargs"))).toBe("console=hvc0 earlycon=sbi");
    expect(propCells(fdtNode(root, "/memory@80000000")!.props.get("reg"))).toEqual([0, 0x80000000, 0, Number(MEM)]);
    expect(fdtNode(root, "/cpus")!.children.map((c) => c.name)).toEqual(["cpu@0", "cpu@1"]);
    expect(propCells(fdtNode(root, "/cpus")!.props.get("timebase-frequency"))).toEqual([Number(m.vcpu.getOneReg(riscv.REG_TIMER_FREQUENCY))]);
    m.close();
  });

  it("the initrd sits page-aligned right below the device tree, and /chosen names its bytes", async () => {
    const m = await machine();
    const initrd = new Uint8Array(20_001).map((_, i) => (i * 7) & 0xff);
    const l = m.loadLinux({ kernel: image(), initrd });
    expect(l.initrd!.start % 4096n).toBe(0n);
    expect(l.initrd!.end).toBe(l.initrd!.start + BigInt(initrd.length));
    expect(l.initrd!.end).toBeLessThanOrEqual(l.dtb);
    expect(l.dtb - l.initrd!.end).toBeLessThan(4096n);
    expect(m.vm.readGuest(l.initrd!.start, initrd.length)).toEqual(initrd);
    const chosen = fdtNode(readFdt(l.deviceTree).root, "/chosen")!;
    const cell64 = (v: number[]) => (BigInt(v[0]) << 32n) | BigInt(v[1]);
    expect([cell64(propCells(chosen.props.get("linux,initrd-start"))!), cell64(propCells(chosen.props.get("linux,initrd-end"))!)])
      .toEqual([l.initrd!.start, l.initrd!.end]);
    m.close();
  });

  it("the other harts stay STOPPED until SBI HSM starts them", async () => {
    const m = await machine(3);
    m.loadLinux({ kernel: image() });
    expect([0, 1, 2].map((h) => m.hartState(h))).toEqual(["started", "stopped", "stopped"]);
    m.close();
  });

  it("a kernel whose image_size (bss included) leaves no room for the initrd and device tree: RangeError, nothing loaded", async () => {
    const m = await machine();
    expect(() => m.loadLinux({ kernel: image({ imageSize: MEM - 0x200000n - 4096n }), initrd: new Uint8Array(8192) })).toThrow(/overlap the kernel/);
    expect(() => m.loadLinux({ kernel: image({ imageSize: MEM }) })).toThrow(/does not fit in RAM/);
    expect(m.vm.readGuest(RAM + 0x200000n, 4)).toEqual(new Uint8Array(4));
    m.close();
  });

  it("an ELF vmlinux linked at a virtual address: its lowest segment at RAM + 2 MiB, the entry moved with it", async () => {
    const VA = 0xffffffff80000000n;
    const code = bytes(body(RAM + 0x200000n + 0x40n));
    const elf = new Uint8Array(0x1000 + 0x40 + code.length), dv = new DataView(elf.buffer);
    elf.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
    dv.setUint16(16, 2, true); dv.setUint16(18, 243, true); dv.setUint32(20, 1, true);
    dv.setBigUint64(24, VA + 0x40n, true); // e_entry
    dv.setBigUint64(32, 64n, true); // e_phoff
    dv.setUint16(52, 64, true); dv.setUint16(54, 56, true); dv.setUint16(56, 1, true);
    dv.setUint32(64, 1, true); dv.setUint32(68, 7, true);
    dv.setBigUint64(72, 0x1000n, true); dv.setBigUint64(80, VA, true); dv.setBigUint64(88, VA, true);
    dv.setBigUint64(96, BigInt(0x40 + code.length), true); dv.setBigUint64(104, 0x10000n, true);
    elf.set(code, 0x1040);
    const m = await machine();
    const l = m.loadLinux({ kernel: elf });
    expect([l.kernel.start, l.kernel.entry, l.kernel.end]).toEqual([RAM + 0x200000n, RAM + 0x200040n, RAM + 0x210000n]);
    expect(m.run({ maxInstructions: 100_000n }).stop).toBe("shutdown");
    expect(recorded(m)[1]).toBe(l.dtb);
    m.close();
  });
});

describe("parseImageHeader refuses what is not a RISC-V Image", () => {
  it("no magic: an Error naming the missing boot header magic", () => {
    const b = image();
    b.fill(0, 48, 64);
    expect(() => parseImageHeader(b)).toThrow(/no RISC-V boot header magic/);
  });
  it("either magic alone is enough (magic2 of header 0.2, or the older RISCV)", () => {
    const b = image();
    b.fill(0, 48, 56);
    expect(parseImageHeader(b).textOffset).toBe(0x200000n);
    expect(parseImageHeader(image({ magic2: 0 })).textOffset).toBe(0x200000n);
  });
  it("shorter than the header: an Error", () => {
    expect(() => parseImageHeader(new Uint8Array(63))).toThrow(/shorter than the 64-byte boot header/);
  });
  it("a text_offset that is not page aligned: an Error", () => {
    expect(() => parseImageHeader(image({ textOffset: 0x200010n }))).toThrow(/not page aligned/);
  });
  it("image_size below the file's length counts the file", () => {
    const b = image({ imageSize: 16n });
    expect(parseImageHeader(b).imageSize).toBe(BigInt(b.length));
  });
});
