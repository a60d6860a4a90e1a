// The device tree of this VMM's machine, generated from its configuration as
// kvmtool does for RISC-V KVM guests: the root (2 address and 2 size cells),
// /chosen (boot arguments, the console, the initrd), one memory node per RAM
// slot, /cpus with the timebase and one cpu@N per hart (each with its local
// interrupt controller), and the PLIC and the UART (its source 1) under a simple-bus.

import { FdtWriter } from "./fdt.js";

/**
 * What the guest CPU implements, in the ISA string's order: RV64IMAFDC (F and
 * D: assembly/cpu/fpu/, C: assembly/cpu/rvc.ts); Zicsr;
 * Zifencei (fence.i is exact: the decode cache and the translation tier
 * compare instruction words, assembly/cpu/decode.ts); Zicntr (cycle, time,
 * instret); Zihpm (hpmcounter3..31, counting nothing); Zihintpause (pause is a
 * FENCE, executed as one); Sstc (stimecmp, assembly/cpu/timer.ts); Svade (a
 * clear A or D bit faults, assembly/mmu/paging.ts).
 */
export const GUEST_ISA = "rv64imafdc_zicsr_zifencei_zicntr_zihpm_zihintpause_sstc_svade";

export interface DeviceTreeConfig {
  /** Hart ids 0..harts-1. */
  harts: number;
  /** RAM slots, guest-physical. */
  memory: { base: bigint; size: bigint }[];
  /** The `time` CSR's frequency (KVM_REG_RISCV_TIMER frequency). */
  timebaseHz: number;
  /** The 16550 (byte registers at stride 1, byte accesses only). */
  uart: { base: bigint; size: bigint; clockHz: number; irq?: number };
  /** The PLIC (one S-mode context per hart, in hart order); without it the UART has no interrupt and is polled. */
  plic?: { base: bigint; size: bigint; ndev: number };
  bootargs?: string;
  /** The initramfs in guest-physical memory: [start, end). */
  initrd?: { start: bigint; end: bigint };
  /** Defaults to GUEST_ISA. */
  isa?: string;
  model?: string;
}

const hex = (x: bigint) => x.toString(16);

/** Two 32-bit cells per 64-bit value, as #address-cells = #size-cells = 2 reads them. */
function cells64(...v: bigint[]): number[] {
  return v.flatMap((x) => [Number(x >> 32n), Number(x & 0xffffffffn)]);
}

export function buildDeviceTree(c: DeviceTreeConfig): Uint8Array {
  if (!Number.isInteger(c.harts) || c.harts < 1) throw new RangeError(`device tree: harts ${c.harts}`);
  const w = new FdtWriter();
  const uartNode = `serial@${hex(c.uart.base)}`;
  w.beginNode("")
    .prop("#address-cells", [2]).prop("#size-cells", [2])
    .prop("compatible", "linux,dummy-virt")
    .prop("model", c.model ?? "webkvm");

  w.beginNode("chosen");
  w.prop("bootargs", c.bootargs ?? "");
  w.prop("stdout-path", `/soc/${uartNode}`);
  if (c.initrd) {
    w.prop("linux,initrd-start", [c.initrd.start]);
    w.prop("linux,initrd-end", [c.initrd.end]);
  }
  w.endNode();

  for (const m of c.memory) {
    w.beginNode(`memory@${hex(m.base)}`).prop("device_type", "memory").prop("reg", cells64(m.base, m.size)).endNode();
  }

  const intc: number[] = [];
  w.beginNode("cpus").prop("#address-cells", [1]).prop("#size-cells", [0]).prop("timebase-frequency", [c.timebaseHz]);
  for (let h = 0; h < c.harts; h++) {
    w.beginNode(`cpu@${h}`)
      .prop("device_type", "cpu").prop("reg", [h]).prop("status", "okay")
      .prop("compatible", "riscv").prop("riscv,isa", c.isa ?? GUEST_ISA).prop("mmu-type", "riscv,sv39");
    w.beginNode("interrupt-controller")
      .prop("#interrupt-cells", [1]).prop("interrupt-controller", null)
      .prop("compatible", "riscv,cpu-intc").prop("phandle", [intc[h] = w.phandle()])
      .endNode();
    w.endNode();
  }
  w.endNode();

  w.beginNode("soc").prop("#address-cells", [2]).prop("#size-cells", [2]).prop("compatible", "simple-bus").prop("ranges", null);
  let plic = 0;
  if (c.plic) {
    // Context N is hart N's S-mode external interrupt (9 in its cpu-intc), as irq-sifive-plic maps them.
    w.beginNode(`plic@${hex(c.plic.base)}`)
      .prop("compatible", "sifive,plic-1.0.0\0riscv,plic0").prop("reg", cells64(c.plic.base, c.plic.size))
      .prop("interrupts-extended", intc.flatMap((p) => [p, 9]))
      .prop("riscv,ndev", [c.plic.ndev]).prop("#interrupt-cells", [1]).prop("#address-cells", [0])
      .prop("interrupt-controller", null).prop("phandle", [plic = w.phandle()])
      .endNode();
  }
  w.beginNode(uartNode)
    .prop("compatible", "ns16550a").prop("reg", cells64(c.uart.base, c.uart.size))
    .prop("clock-frequency", [c.uart.clockHz]).prop("reg-shift", [0]).prop("reg-io-width", [1]);
  // Without an interrupt Linux's 8250 driver polls the UART.
  if (plic !== 0 && c.uart.irq !== undefined) w.prop("interrupt-parent", [plic]).prop("interrupts", [c.uart.irq]);
  w.endNode();
  w.endNode();

  w.endNode();
  return w.finish(0);
}
