// A 16550-style UART: byte registers at stride 1. Enough of the chip for a
// polled console (THR / RBR, LSR, divisor latch, scratch); no interrupts.

import type { MmioDevice } from "./mmio-bus.js";

const LSR_DR = 0x01, LSR_THRE = 0x20, LSR_TEMT = 0x40;
const LCR_DLAB = 0x80;

export class Uart16550 implements MmioDevice {
  private readonly input: number[] = [];
  private ier = 0; private lcr = 0; private mcr = 0; private scr = 0; private dll = 0; private dlm = 0;

  /** @param onOutput called with every byte the guest transmits */
  constructor(private readonly onOutput: (byte: number) => void) {}

  /** Queues bytes for the guest to receive. */
  feed(bytes: Uint8Array | string): void {
    const b = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
    for (const x of b) this.input.push(x);
  }

  read(offset: bigint, len: number): bigint {
    if (len !== 1) return 0n;
    const dlab = (this.lcr & LCR_DLAB) !== 0;
    switch (Number(offset)) {
      case 0: return BigInt(dlab ? this.dll : (this.input.shift() ?? 0));
      case 1: return BigInt(dlab ? this.dlm : this.ier);
      case 2: return 0xc1n; // FIFOs enabled, no interrupt pending
      case 3: return BigInt(this.lcr);
      case 4: return BigInt(this.mcr);
      case 5: return BigInt(LSR_THRE | LSR_TEMT | (this.input.length > 0 ? LSR_DR : 0));
      case 6: return 0xb0n; // DCD, DSR, CTS
      case 7: return BigInt(this.scr);
    }
    return 0n;
  }

  write(offset: bigint, len: number, value: bigint): void {
    if (len !== 1) return;
    const v = Number(value & 0xffn);
    const dlab = (this.lcr & LCR_DLAB) !== 0;
    switch (Number(offset)) {
      case 0: if (dlab) this.dll = v; else this.onOutput(v); break;
      case 1: if (dlab) this.dlm = v; else this.ier = v & 0x0f; break;
      case 3: this.lcr = v; break;
      case 4: this.mcr = v & 0x1f; break;
      case 7: this.scr = v; break;
    }
  }
}
