// The committed Linux guest (guests/linux) with its console on the 16550
// (console=ttyS0): the 8250 driver takes the UART's interrupt through the PLIC
// (Machine: source 1, context N = hart N's sip.SEIP through KVM_INTERRUPT) and
// drains its transmit buffer from the THR-empty interrupt, so /init's lines
// appear whole before the guest powers off; bytes typed at the UART reach its
// receive register and raise its interrupt.
import { describe, it, expect } from "vitest";
import { linuxMachine } from "./helpers.js";
// @ts-expect-error: a plain ES module without types
import { initResultLine, INIT_FIRST_LINE_PREFIX } from "../guests/linux/reference.mjs";

describe("Linux on webkvm with console=ttyS0 (16550 + PLIC)", () => {
  it("boots to its init, whose two lines come out of the UART complete, and powers off", async () => {
    const { m } = await linuxMachine("console=ttyS0 webkvm.run=poweroff");
    // A bound, not a speed.
    const r = m.run({ maxInstructions: 400_000_000n });
    const out = m.output.replace(/\r\n/g, "\n");
    expect(out).toContain("ttyS0");
    expect(out).toContain(`${INIT_FIRST_LINE_PREFIX}6.1.192\n`);
    expect(out).toContain(initResultLine());
    expect([r.stop, r.reason]).toEqual(["shutdown", 0]);
  });

  it("bytes typed at the UART once /init runs reach the guest: the 8250 driver reads them all and the tty echoes them", async () => {
    const { m } = await linuxMachine("console=ttyS0 webkvm.run=poweroff");
    let runs = 0;
    while (!m.output.includes("Run /init") && runs++ < 400) m.run({ maxInstructions: 1_000_000n });
    m.uart.feed("typed\n");
    expect(m.uart.rxPending).toBe(6);
    const r = m.run({ maxInstructions: 400_000_000n });
    expect(m.uart.rxPending).toBe(0);
    expect(m.output.replace(/\r\n/g, "\n")).toMatch(/Run \/init[^]*typed\n/);
    expect(r.stop).toBe("shutdown");
  });
});
