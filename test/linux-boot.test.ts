// The committed Linux guest (guests/linux: Linux 6.1 built for rv64gc, its
// initramfs /init) booted as kvmtool boots a kernel on RISC-V KVM
// (Machine.loadLinux: Image at RAM + 2 MiB, a generated device tree, SBI v2 in
// the host): the init's lines appear, computed on the host by the guest's
// reference model, and the guest powers off through SRST. Every guest access
// goes through the memslots and the shadow MMU.
import { describe, it, expect } from "vitest";
import { MMU_STAT } from "../src/abi.gen.js";
import { linuxMachine } from "./helpers.js";
// @ts-expect-error: a plain ES module without types
import { initResultLine, INIT_FIRST_LINE_PREFIX, INIT_COUNTERS_LINE } from "../guests/linux/reference.mjs";

describe("Linux on webkvm (guests/linux)", () => {
  it("boots to its init, which checks fork / copy-on-write / munmap and powers off", async () => {
    // webkvm.run=poweroff: the shell (if the vCPU can run it) powers off at once; init does if not.
    const { kvm, m } = await linuxMachine("earlycon=sbi console=hvc0 webkvm.run=poweroff");
    const faults0 = kvm.core.mmuStat(MMU_STAT.FAULTS);
    // A bound, not a speed: the boot takes about 36 M instructions.
    const r = m.run({ maxInstructions: 400_000_000n });
    const out = m.output.replace(/\r\n/g, "\n"); // the tty's ONLCR
    expect(out).toContain(`${INIT_FIRST_LINE_PREFIX}6.1.192\n`);
    expect(out).toContain(initResultLine());
    expect([r.stop, r.reason]).toEqual(["shutdown", 0]);
    // A kernel that maps and unmaps (about 5,000 faults: its sfence.vma with an address drops one page's entries).
    expect(kvm.core.mmuStat(MMU_STAT.FAULTS) - faults0).toBeGreaterThan(1_000);
  });

  it("finds the SBI PMU extension, whose driver opens cycle, time and instret to user mode (scounteren 7): /init reads them", async () => {
    const { m } = await linuxMachine("earlycon=sbi console=hvc0 webkvm.run=poweroff");
    const r = m.run({ maxInstructions: 400_000_000n });
    const out = m.output.replace(/\r\n/g, "\n");
    expect(out).toContain("riscv-pmu-sbi: SBI PMU extension is available\n");
    expect(out).toContain("riscv-pmu-sbi: 0 firmware and 2 hardware counters\n");
    expect(out).toContain(INIT_COUNTERS_LINE);
    expect(m.vcpus[0].getCsr("scounteren")).toBe(7n);
    expect([r.stop, r.reason]).toEqual(["shutdown", 0]);
  });
});
