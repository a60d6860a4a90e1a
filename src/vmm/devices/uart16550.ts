// A 16550-style UART: byte registers at stride 1 (THR / RBR, IER, IIR / FCR,
// LCR, MCR, LSR, MSR, scratch, the divisor latch). Transmission is instant, so
// THR is always empty. Its interrupt output (`onIrq`, a PLIC source) follows
// IER and IIR as a 16550 has them: received data available while RBR holds a
// byte and IER.ERBFI is set; THR empty when IER.ETBEI is set, raised by
// setting ETBEI while THR is empty and after every transmitted byte, and
// cleared by reading IIR while it reports it, or by writing THR.

import type { MmioDevice } from "./mmio-bus.js";

const LSR_DR = 0x01, LSR_THRE = 0x20, LSR_TEMT = 0x40;
const LCR_DLAB = 0x80;
const IER_ERBFI = 0x01, IER_ETBEI = 0x02;
/** IIR: bit 0 set = no interrupt; the identification of the highest-priority one otherwise. */
const IIR_NONE = 0x01, IIR_THRE = 0x02, IIR_RDA = 0x04, IIR_FIFOS = 0xc0;
const FCR_ENABLE = 0x01, FCR_CLEAR_RX = 0x02;

/** Everything a Uart16550 holds (save / restore): its registers, the receive FIFO and the interrupt state. */
export interface UartState {
  ier: number; lcr: number; mcr: number; scr: number; dll: number; dlm: number; fcr: number;
  /** Bytes received and not yet read, oldest first. */
  rx: number[];
  thrEmptyPending: boolean;
  /** The interrupt output's level (the PLIC source's line is restored with the PLIC). */
  irq: boolean;
}

const UART_BYTE_REGS = ["ier", "lcr", "mcr", "scr", "dll", "dlm", "fcr"] as const;

/** Refuses what no Uart16550 can hold (RangeError naming the field). */
export function checkUartState(s: UartState): void {
  for (const r of UART_BYTE_REGS) if (!isByte(s[r])) throw new RangeError(`uart: ${r} ${String(s[r])} is not a byte`);
  if (!Array.isArray(s.rx) || !s.rx.every(isByte)) throw new RangeError("uart: rx is not a list of bytes");
  if (typeof s.thrEmptyPending !== "boolean" || typeof s.irq !== "boolean") throw new RangeError("uart: thrEmptyPending / irq are not booleans");
  const level = ((s.ier & IER_ERBFI) !== 0 && s.rx.length > 0) || ((s.ier & IER_ETBEI) !== 0 && s.thrEmptyPending);
  if (s.irq !== level) throw new RangeError(`uart: irq ${s.irq} contradicts IER ${s.ier} and the pending sources`);
}

const isByte = (v: unknown) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xff;

export class Uart16550 implements MmioDevice {
  private readonly input: number[] = [];
  private ier = 0; private lcr = 0; private mcr = 0; private scr = 0; private dll = 0; private dlm = 0; private fcr = FCR_ENABLE;
  /** A THR-empty interrupt waiting to be seen (the 16550's THRE interrupt source, before IER masks it). */
  private thrEmptyPending = false;
  private irqLevel = false;

  /**
   * @param onOutput called with every byte the guest transmits
   * @param onIrq called when the interrupt output changes level
   */
  constructor(private readonly onOutput: (byte: number) => void, private readonly onIrq: (high: boolean) => void = () => {}) {}

  /** Queues bytes for the guest to receive (raising the received-data interrupt if IER enables it). */
  feed(bytes: Uint8Array | string): void {
    const b = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
    for (const x of b) this.input.push(x);
    this.updateIrq();
  }

  /** Bytes fed and not yet read by the guest. */
  get rxPending(): number {
    return this.input.length;
  }

  /** The interrupt output's level. */
  get irq(): boolean {
    return this.irqLevel;
  }

  save(): UartState {
    return { ier: this.ier, lcr: this.lcr, mcr: this.mcr, scr: this.scr, dll: this.dll, dlm: this.dlm, fcr: this.fcr,
      rx: [...this.input], thrEmptyPending: this.thrEmptyPending, irq: this.irqLevel };
  }

  /** Takes over a saved state; the interrupt output is set without a call to onIrq (its line is the PLIC's state). */
  restore(s: UartState): void {
    checkUartState(s);
    ({ ier: this.ier, lcr: this.lcr, mcr: this.mcr, scr: this.scr, dll: this.dll, dlm: this.dlm, fcr: this.fcr } = s);
    this.input.length = 0;
    for (const b of s.rx) this.input.push(b);
    this.thrEmptyPending = s.thrEmptyPending;
    this.irqLevel = s.irq;
  }

  /** IIR's identification: received data first, then THR empty. */
  private iir(): number {
    if ((this.ier & IER_ERBFI) !== 0 && this.input.length > 0) return IIR_RDA;
    if ((this.ier & IER_ETBEI) !== 0 && this.thrEmptyPending) return IIR_THRE;
    return IIR_NONE;
  }

  private updateIrq(): void {
    const high = this.iir() !== IIR_NONE;
    if (high !== this.irqLevel) {
      this.irqLevel = high;
      this.onIrq(high);
    }
  }

  read(offset: bigint, len: number): bigint {
    if (len !== 1) return 0n;
    const dlab = (this.lcr & LCR_DLAB) !== 0;
    switch (Number(offset)) {
      case 0: {
        if (dlab) return BigInt(this.dll);
        const b = this.input.shift() ?? 0;
        this.updateIrq();
        return BigInt(b);
      }
      case 1: return BigInt(dlab ? this.dlm : this.ier);
      case 2: {
        const id = this.iir();
        if (id === IIR_THRE) { this.thrEmptyPending = false; this.updateIrq(); } // reading IIR acknowledges THRE
        return BigInt(id | ((this.fcr & FCR_ENABLE) !== 0 ? IIR_FIFOS : 0));
      }
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
      case 0:
        if (dlab) { this.dll = v; break; }
        this.onOutput(v);
        this.thrEmptyPending = true; // sent at once: THR is empty again
        break;
      case 1:
        if (dlab) { this.dlm = v; break; }
        // Enabling the THRE interrupt while THR is empty raises it at once.
        if ((v & IER_ETBEI) !== 0 && (this.ier & IER_ETBEI) === 0) this.thrEmptyPending = true;
        this.ier = v & 0x0f;
        break;
      case 2:
        this.fcr = v & 0xc9;
        if ((v & FCR_CLEAR_RX) !== 0) this.input.length = 0;
        break;
      case 3: this.lcr = v; break;
      case 4: this.mcr = v & 0x1f; break;
      case 7: this.scr = v; break;
    }
    this.updateIrq();
  }
}
