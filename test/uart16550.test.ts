// The 16550's interrupt output (src/vmm/devices/uart16550.ts), as Linux's 8250
// driver uses it: IER enables received-data and THR-empty interrupts, IIR names
// the highest-priority one, and reading IIR acknowledges THR-empty.
import { describe, it, expect } from "vitest";
import { Uart16550 } from "../src/index.js";

describe("16550 interrupt (IER / IIR)", () => {
  function uart() {
    const out: number[] = [];
    const irq: boolean[] = [];
    const u = new Uart16550((b) => out.push(b), (h) => irq.push(h));
    const w = (reg: number, v: number) => u.write(BigInt(reg), 1, BigInt(v));
    const r = (reg: number) => Number(u.read(BigInt(reg), 1));
    return { u, out, irq, w, r };
  }

  it("IIR reads 'no interrupt' (bit 0) with FIFOs enabled (0xc1) while nothing is pending", () => {
    const { r } = uart();
    expect(r(2)).toBe(0xc1);
  });

  it("setting IER.ETBEI while THR is empty raises the THR-empty interrupt; reading IIR (0xc2) acknowledges it", () => {
    const { u, irq, r, w } = uart();
    w(1, 0x02);
    expect([u.irq, irq]).toEqual([true, [true]]);
    expect(r(2)).toBe(0xc2);
    expect(u.irq).toBe(false);
    expect(r(2)).toBe(0xc1);
  });

  it("every transmitted byte raises THR-empty again while ETBEI is set; clearing ETBEI lowers the output", () => {
    const { u, out, r, w } = uart();
    w(1, 0x02); r(2);
    w(0, 0x41);
    expect([out, u.irq]).toEqual([[0x41], true]);
    w(1, 0);
    expect(u.irq).toBe(false);
  });

  it("received data raises the interrupt while IER.ERBFI is set (IIR 0xc4, before THR-empty) until RBR is drained", () => {
    const { u, r, w } = uart();
    u.feed("ab");
    expect(u.irq).toBe(false);
    w(1, 0x03);
    expect([u.irq, r(2)]).toEqual([true, 0xc4]);
    expect(r(5) & 1).toBe(1);
    expect([r(0), r(0)]).toEqual([0x61, 0x62]);
    expect(r(2)).toBe(0xc2); // THR-empty is next
    expect([u.irq, r(5) & 1]).toEqual([false, 0]);
  });

  it("FCR bit 1 clears the receive FIFO", () => {
    const { u, w } = uart();
    u.feed("xyz");
    w(2, 0x03);
    expect(u.rxPending).toBe(0);
  });
});
