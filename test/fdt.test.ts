// The flattened device tree writer (src/vmm/fdt.ts) and the machine's device
// tree (src/vmm/device-tree.ts), read back with test/fdt-reader.ts and, where
// it is installed, by dtc.
import { describe, it, expect } from "vitest";
import { spawnSync } from "node:child_process";
import { FdtWriter, buildDeviceTree, GUEST_ISA, riscv, type DeviceTreeConfig } from "../src/index.js";
import { readFdt, fdtNode, propString, propCells } from "./fdt-reader.js";

const u32 = (b: Uint8Array, off: number) => new DataView(b.buffer, b.byteOffset).getUint32(off);

describe("FdtWriter", () => {
  it("writes a version 17 blob (last compatible 16) with the boot hart id that reads back node by node", () => {
    const w = new FdtWriter();
    w.beginNode("").prop("compatible", "a,b").prop("list", ["x", "yz"]).prop("empty", null)
      .beginNode("child@10").prop("reg", [0x10, 0x20]).prop("big", [0x1122334455667788n]).prop("raw", Uint8Array.of(1, 2, 3, 4, 5))
      .beginNode("grandchild").prop("after-raw", [7]).endNode()
      .endNode()
      .beginNode("other").endNode()
      .endNode();
    const fdt = readFdt(w.finish(3));
    expect([fdt.version, fdt.lastCompVersion, fdt.bootCpuidPhys]).toEqual([17, 16, 3]);
    const r = fdt.root;
    expect(r.name).toBe("");
    expect(r.children.map((c) => c.name)).toEqual(["child@10", "other"]);
    expect(propString(r.props.get("compatible"))).toBe("a,b");
    expect([...r.props.get("list")!]).toEqual([...new TextEncoder().encode("x\0yz\0")]);
    expect(r.props.get("empty")!.length).toBe(0);
    const c = fdtNode(r, "/child@10")!;
    expect(propCells(c.props.get("reg"))).toEqual([0x10, 0x20]);
    expect(propCells(c.props.get("big"))).toEqual([0x11223344, 0x55667788]);
    expect([...c.props.get("raw")!]).toEqual([1, 2, 3, 4, 5]); // padded to 4 in the block, 5 bytes long
    expect(propCells(fdtNode(r, "/child@10/grandchild")!.props.get("after-raw"))).toEqual([7]);
  });

  it("stores each property name once in the strings block", () => {
    const w = new FdtWriter();
    w.beginNode("").prop("reg", [1]);
    for (let i = 0; i < 5; i++) w.beginNode(`n${i}`).prop("reg", [i]).prop("status", "okay").endNode();
    const b = w.endNode().finish();
    expect(u32(b, 32)).toBe("reg\0status\0".length); // size_dt_strings
    expect(readFdt(b).root.children.map((n) => propCells(n.props.get("reg"))![0])).toEqual([0, 1, 2, 3, 4]);
  });

  it("puts the reservation block 8-byte aligned, its entries then a zero pair, before the structure block", () => {
    const b = new FdtWriter().reserve(0x80000000n, 0x1000n).reserve(0x90000000n, 0x20n).beginNode("").endNode().finish();
    const offRsv = u32(b, 16), offStruct = u32(b, 8), offStrings = u32(b, 12);
    expect(offRsv % 8).toBe(0);
    expect(offStruct).toBe(offRsv + 3 * 16);
    expect(offStrings).toBe(offStruct + u32(b, 36));
    expect(readFdt(b).reservations).toEqual([{ address: 0x80000000n, size: 0x1000n }, { address: 0x90000000n, size: 0x20n }]);
  });

  it("refuses what the format cannot hold: unbalanced nodes, a property outside a node, bad names, cells too wide", () => {
    expect(() => new FdtWriter().beginNode("").finish()).toThrow(/still open/);
    expect(() => new FdtWriter().endNode()).toThrow(/without a node/);
    expect(() => new FdtWriter().prop("x", [1])).toThrow(/outside a node/);
    expect(() => new FdtWriter().beginNode("root")).toThrow(/root/);
    expect(() => new FdtWriter().beginNode("").beginNode("a/b")).toThrow(/bad node name/);
    expect(() => new FdtWriter().beginNode("").prop("x", [2 ** 32])).toThrow(RangeError);
    expect(() => new FdtWriter().beginNode("").prop("x", [1n << 64n])).toThrow(RangeError);
    const w = new FdtWriter().beginNode("").endNode();
    w.finish();
    expect(() => w.finish()).toThrow(/already finished/);
  });
});

const CONFIG: DeviceTreeConfig = {
  harts: 2, memory: [{ base: 0x80000000n, size: 64n << 20n }], timebaseHz: 10_000_000,
  uart: { base: riscv.UART_BASE, size: riscv.UART_SIZE, clockHz: riscv.UART_CLOCK_HZ }, bootargs: "console=hvc0 earlycon=sbi",
};

describe("the machine's device tree (buildDeviceTree)", () => {
  it("root: #address-cells = #size-cells = 2, compatible, model", () => {
    const r = readFdt(buildDeviceTree(CONFIG)).root;
    expect([propCells(r.props.get("#address-cells")), propCells(r.props.get("#size-cells"))]).toEqual([[2], [2]]);
    expect(propString(r.props.get("compatible"))).toBe("linux,dummy-virt");
    expect(propString(r.props.get("model"))).toBe("webkvm");
  });

  it("chosen: bootargs and stdout-path naming the UART node; initrd start/end only with an initrd", () => {
    const r = readFdt(buildDeviceTree(CONFIG)).root;
    const chosen = fdtNode(r, "/chosen")!;
    expect(propString(chosen.props.get("bootargs"))).toBe("console=hvc0 earlycon=sbi");
    const stdout = propString(chosen.props.get("stdout-path"))!;
    expect(stdout).toBe("/soc/serial@10000000");
    expect(fdtNode(r, stdout)).toBeDefined();
    expect(chosen.props.has("linux,initrd-start")).toBe(false);
    const withInitrd = fdtNode(readFdt(buildDeviceTree({ ...CONFIG, initrd: { start: 0x83000000n, end: 0x83123456n } })).root, "/chosen")!;
    expect(propCells(withInitrd.props.get("linux,initrd-start"))).toEqual([0, 0x83000000]);
    expect(propCells(withInitrd.props.get("linux,initrd-end"))).toEqual([0, 0x83123456]);
  });

  it("memory@80000000: device_type memory, reg = base and size in two cells each", () => {
    const m = fdtNode(readFdt(buildDeviceTree({ ...CONFIG, memory: [{ base: 0x80000000n, size: 0x140000000n }] })).root, "/memory@80000000")!;
    expect(propString(m.props.get("device_type"))).toBe("memory");
    expect(propCells(m.props.get("reg"))).toEqual([0, 0x80000000, 1, 0x40000000]);
  });

  it("cpus: timebase-frequency, one cpu@N per hart with the exact ISA and Sv39, each with its own riscv,cpu-intc", () => {
    const r = readFdt(buildDeviceTree({ ...CONFIG, harts: 3 })).root;
    const cpus = fdtNode(r, "/cpus")!;
    expect(propCells(cpus.props.get("timebase-frequency"))).toEqual([10_000_000]);
    expect([propCells(cpus.props.get("#address-cells")), propCells(cpus.props.get("#size-cells"))]).toEqual([[1], [0]]);
    expect(cpus.children.map((c) => c.name)).toEqual(["cpu@0", "cpu@1", "cpu@2"]);
    const phandles = new Set<number>();
    cpus.children.forEach((c, h) => {
      expect([propString(c.props.get("device_type")), propCells(c.props.get("reg")), propString(c.props.get("status")),
        propString(c.props.get("compatible")), propString(c.props.get("riscv,isa")), propString(c.props.get("mmu-type"))])
        .toEqual(["cpu", [h], "okay", "riscv", GUEST_ISA, "riscv,sv39"]);
      const intc = fdtNode(c, "interrupt-controller")!;
      expect([propString(intc.props.get("compatible")), propCells(intc.props.get("#interrupt-cells")), intc.props.get("interrupt-controller")?.length])
        .toEqual(["riscv,cpu-intc", [1], 0]);
      phandles.add(propCells(intc.props.get("phandle"))![0]);
    });
    expect(phandles.size).toBe(3);
    expect(phandles.has(0)).toBe(false);
  });

  it("the ISA string claims RV64IMAFDC (the interpreter implements F and D, assembly/cpu/fpu/)", () => {
    expect(GUEST_ISA.split("_")[0]).toBe("rv64imafdc");
  });

  it("the UART: ns16550a at its address, clock-frequency, byte registers at stride 1, no interrupts (no PLIC)", () => {
    const u = fdtNode(readFdt(buildDeviceTree(CONFIG)).root, "/soc/serial@10000000")!;
    expect([propString(u.props.get("compatible")), propCells(u.props.get("reg")), propCells(u.props.get("clock-frequency")),
      propCells(u.props.get("reg-shift")), propCells(u.props.get("reg-io-width"))])
      .toEqual(["ns16550a", [0, 0x10000000, 0, 0x100], [riscv.UART_CLOCK_HZ], [0], [1]]);
    expect(u.props.has("interrupts")).toBe(false);
  });

  it("dtc -I dtb -O dts accepts the blob and shows the expected nodes", (ctx) => {
    const probe = spawnSync("dtc", ["--version"]);
    if (probe.error) {
      console.log("dtc not installed (apt-get install device-tree-compiler): skipped");
      ctx.skip();
      return;
    }
    const r = spawnSync("dtc", ["-I", "dtb", "-O", "dts", "-"], { input: buildDeviceTree({ ...CONFIG, initrd: { start: 0x83000000n, end: 0x83100000n } }) });
    expect(r.status, r.stderr.toString()).toBe(0);
    const dts = r.stdout.toString();
    for (const s of ["/dts-v1/;", "chosen {", "memory@80000000 {", "cpus {", "cpu@0 {", "cpu@1 {", "interrupt-controller {",
      "serial@10000000 {", `riscv,isa = "${GUEST_ISA}";`, 'compatible = "riscv,cpu-intc";', "timebase-frequency = <0x989680>;",
      "linux,initrd-start = <0x00 0x83000000>;", 'bootargs = "console=hvc0 earlycon=sbi";']) {
      expect(dts).toContain(s);
    }
  });
});
