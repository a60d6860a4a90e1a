// The bundled Linux's userland (static glibc programs built for rv64gc:
// guests/linux/init.c and userland/) on webkvm: /init hands the console
// to /bin/sh, which runs the commands of webkvm.run= on the kernel command line
// or a session typed at the console (fed as the CLI feeds its stdin: the SBI
// console's getchar for hvc0, the 16550's receive FIFO for ttyS0).
//
// glibc's startup saves the FP registers, so without F and D every one of
// these programs dies of SIGILL, /init first: one test boots with a riscv,isa
// that leaves f and d out and checks that the kernel panics.
import { describe, it, expect } from "vitest";
import { readFileSync } from "node:fs";
import { GUEST_ISA, type Machine } from "../src/index.js";
import { linuxMachine } from "./helpers.js";
// @ts-expect-error: a plain ES module without types
import { initResultLine, memtouchLine, dirtyLine, INIT_FIRST_LINE_PREFIX } from "../guests/linux/reference.mjs";
// @ts-expect-error: a plain ES module without types
import { mipsLine } from "../guests/mips/reference.mjs";

/** GUEST_ISA with f and d (and the g that would imply them) left out of its base. */
const ISA_WITHOUT_FD = GUEST_ISA.replace(/^rv64[a-z]+/, (b) => b.replace(/[fdg]/g, ""));

const text = (m: Machine) => m.output.replace(/\r\n/g, "\n"); // the tty's ONLCR

/** Boots with cmdline and runs to the end: the console and how it stopped. A bound, not a speed. */
async function boot(cmdline: string, maxInstructions = 1_500_000_000n, isa?: string) {
  const { m } = await linuxMachine(cmdline, isa);
  const r = m.run({ maxInstructions });
  return { out: text(m), stop: [r.stop, r.reason] };
}

/** Runs m in slices until the console since `from` matches pred; false if budget instructions pass first. */
function runUntil(m: Machine, from: number, pred: (out: string) => boolean, budget = 600_000_000n): boolean {
  for (let spent = 0n; spent < budget;) {
    if (pred(text(m).slice(from))) return true;
    const r = m.run({ maxInstructions: 2_000_000n });
    if (r.stop !== "limit") return pred(text(m).slice(from));
    spent += r.instructions;
  }
  return pred(text(m).slice(from));
}

describe("Linux userland told there is no F and D", () => {
  it("with riscv,isa without f and d the kernel leaves sstatus.FS Off: the glibc /init dies of SIGILL before its first line and the kernel panics (panic=-1: and reboots)", async () => {
    expect(ISA_WITHOUT_FD).toMatch(/^rv64imac_/);
    const { out, stop } = await boot("earlycon=sbi console=hvc0 panic=-1 webkvm.run=echo,unreached", undefined, ISA_WITHOUT_FD);
    expect(out).toContain("Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000004\n");
    expect(out).not.toContain(INIT_FIRST_LINE_PREFIX);
    expect(out.slice(out.indexOf("Run /init"))).not.toContain("unreached"); // the command line is in the kernel's log
    expect(stop[0]).toBe("reboot");
  });
});

describe("Linux userland on webkvm", () => {
  it("webkvm.run= runs its ';'-separated commands (',' for a space) through /bin/sh, then init powers off", async () => {
    const { out, stop } = await boot("earlycon=sbi console=hvc0 webkvm.run=echo,run-ok;uname,-a;ls,/bin;" +
      "echo,saved>/tmp/f;cat,/tmp/f;free;nothere;echo,status=$?");
    expect(out).toContain(initResultLine());
    const after = out.slice(out.indexOf(initResultLine()));
    expect(after).toContain("\nrun-ok\n");
    expect(after).toMatch(/\nLinux \S+ 6\.1\.192 #1 Thu Jan {2}1 00:00:00 UTC 1970 riscv64\n/);
    expect(after).toContain("\ncat\ndirty\nfptest\nfree\nhello\nls\nmemtouch\nmips\nsh\nuname\n");
    expect(after).toContain("\nsaved\n");
    expect(after).toMatch(/\nMem: +\d+ +\d+ +\d+/);
    expect(after).toContain("sh: nothere: not found\nstatus=127\n");
    expect(after).not.toContain("webkvm-init: /bin/sh");
    expect(stop).toEqual(["shutdown", 0]);
  });

  it("a value in double quotes is taken as it is: spaces, commas, a pipe", async () => {
    const { out, stop } = await boot('console=hvc0 webkvm.run="echo a,b  c | cat; echo done"');
    expect(out).toContain("\na,b c\ndone\n");
    expect(stop).toEqual(["shutdown", 0]);
  });

  it("an interactive session on hvc0: the prompt, echo and Backspace, a failing program's status, poweroff", async () => {
    const { m } = await linuxMachine("earlycon=sbi console=hvc0");
    expect(runUntil(m, 0, (o) => o.endsWith("\n# "))).toBe(true);
    let from = text(m).length;
    m.feedConsole("echo browser-okk\x7f\r");
    expect(runUntil(m, from, (o) => o.endsWith("\n# "))).toBe(true);
    expect(text(m).slice(from)).toBe("echo browser-okk\b \b\nbrowser-ok\n# ");
    from = text(m).length;
    m.feedConsole("ls /nonexistent\r");
    expect(runUntil(m, from, (o) => o.endsWith("\n# "))).toBe(true);
    expect(text(m).slice(from)).toBe("ls /nonexistent\nls: /nonexistent: No such file or directory\nsh: ls: exit 1\n# ");
    m.feedConsole("poweroff\r");
    const r = m.run({ maxInstructions: 200_000_000n });
    expect([r.stop, r.reason]).toEqual(["shutdown", 0]);
  });

  it("a session typed ahead on ttyS0 (the 16550's receive FIFO): the shell reads it once it starts", async () => {
    // Typed ahead at "Run /init" rather than at the prompt: a guest idling on ttyS0 (no SBI console polls,
    // the timer through Sstc) leaves KVM_RUN rarely, so waiting for the prompt costs ~200 M instructions.
    const { m } = await linuxMachine("console=ttyS0");
    expect(runUntil(m, 0, (o) => o.includes("Run /init"))).toBe(true);
    m.uart.feed("echo uart-ok\rpoweroff\r");
    const r = m.run({ maxInstructions: 1_500_000_000n });
    // The tty echoes the typed bytes as they arrive, in the middle of whatever init is printing then.
    const after = text(m).slice(text(m).indexOf("Run /init"));
    expect(after).toContain("\n# echo uart-ok\nuart-ok\n# poweroff\n");
    expect([r.stop, r.reason]).toEqual(["shutdown", 0]);
  });

  it("a stock static glibc program (printf of a double) runs", async () => {
    const { out, stop } = await boot("console=hvc0 webkvm.run=hello");
    expect(out).toContain("\nHello, world! 1/3 = 0.33333333333333331, sqrt-ish = 1.500000\n");
    expect(stop).toEqual(["shutdown", 0]);
  });

  it("memtouch, dirty and mips print what the host models compute", async () => {
    const { out, stop } = await boot("console=hvc0 webkvm.run=memtouch,4;dirty,64,3,2;mips,20000");
    expect(out).toContain(`\n${memtouchLine(4)}`);
    expect(out).toContain(`\n${dirtyLine(64, 3, 2)}`);
    expect(out).toContain(`\n${mipsLine(20000)}`);
    // rdinstret and the vDSO's clock_gettime, in user mode: the loop's instructions, a positive time.
    const [, instret, ns] = out.match(/\nmips instret=(\d+) ns=(\d+) mips=[\d.]+\n/) ?? [];
    expect(Number(instret)).toBeGreaterThan(20000);
    expect(Number(ns)).toBeGreaterThan(0);
    expect(stop).toEqual(["shutdown", 0]);
  });

  it("fptest's output is byte for byte what qemu-riscv64 printed (userland/fptest.expected)", async () => {
    const expected = readFileSync(new URL("../guests/linux/userland/fptest.expected", import.meta.url), "utf8");
    const { out, stop } = await boot("console=hvc0 webkvm.run=fptest", 3_000_000_000n);
    const start = out.indexOf("# one operand");
    const end = out.indexOf("fptest done\n");
    expect(start).toBeGreaterThan(0);
    expect(end).toBeGreaterThan(start);
    const got = out.slice(start, end + "fptest done\n".length);
    // The first differing line, not a 200 KB diff.
    const a = got.split("\n"), b = expected.split("\n");
    const i = a.findIndex((l, k) => l !== b[k]);
    expect(i === -1 ? null : { line: i + 1, webkvm: a[i], qemu: b[i] }).toBeNull();
    expect(got).toBe(expected);
    expect(stop).toEqual(["shutdown", 0]);
  });
});
