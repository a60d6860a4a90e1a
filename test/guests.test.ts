// The RISC-V guests (guests/) run on the debug core, every access through the
// shadow page tables; their results are checked against host computations.
import { describe, it, expect } from "vitest";
import { readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { Machine } from "../src/vmm/machine.js";
import { openKvm } from "./helpers.js";
// @ts-expect-error plain JS module without types
import { mipsChecksum } from "../guests/mips/reference.mjs";
// @ts-expect-error plain JS module without types
import { fnv1a64, memtestPattern, MEMTEST_BASE } from "../guests/memtest/reference.mjs";

/** guests/NAME/NAME.bin, or a variant's image in the same directory ("mips/mips-rvc"). */
const image = (name: string) => {
  const [dir, file = dir] = name.split("/");
  return new Uint8Array(readFileSync(new URL(`../guests/${dir}/${file}.bin`, import.meta.url)));
};
const elf = (name: string) => new Uint8Array(readFileSync(new URL(`../guests/${name}/${name}.elf`, import.meta.url)));

async function boot(name: string, arg: bigint | number = 0, memSize = 16n << 20n, useElf = false) {
  const m = await Machine.create({ kvm: await openKvm(), memSize });
  m.load(useElf ? elf(name) : image(name), arg);
  return { m, result: m.run({ maxInstructions: 2_000_000_000n }) };
}

describe("guests", () => {
  it("hello prints on the UART and shuts down with success", async () => {
    const { m, result } = await boot("hello");
    expect(m.output).toBe("Hello from webkvm!\n");
    expect([result.stop, result.reason]).toEqual(["shutdown", 0]);
  });

  it("hello also boots from its ELF", async () => {
    const { m, result } = await boot("hello", 0, 16n << 20n, true);
    expect(m.output).toBe("Hello from webkvm!\n");
    expect(result.stop).toBe("shutdown");
  });

  it("memtest's checksum matches the host's FNV-1a over the same guest memory and the reference pattern", async () => {
    const size = 256 * 1024;
    const { m, result } = await boot("memtest", size);
    expect([result.stop, result.reason]).toEqual(["shutdown", 0]);
    const printed = /memtest ok checksum=0x([0-9a-f]{16})/.exec(m.output);
    expect(printed, m.output).not.toBeNull();
    const mem = m.vm.readGuest(BigInt(MEMTEST_BASE), size);
    expect(fnv1a64(mem)).toBe(BigInt("0x" + printed![1]));
    expect(Buffer.from(mem).equals(Buffer.from(memtestPattern(size)))).toBe(true);
  });

  it("paging enables Sv39, maps pages, takes its own page faults and passes", async () => {
    const { m, result } = await boot("paging");
    expect(m.output).toContain("paging ok");
    expect([result.stop, result.reason]).toEqual(["shutdown", 0]);
  });

  it("the mips workload's checksum matches the JS reference (and a native build when cc exists)", async () => {
    const iters = 20000;
    const { m, result } = await boot("mips", iters);
    expect([result.stop, result.reason]).toEqual(["shutdown", 0]);
    const got = /mips iters=(\d+) checksum=0x([0-9a-f]{16})/.exec(m.output);
    expect(got, m.output).not.toBeNull();
    expect(Number(got![1])).toBe(iters);
    expect(BigInt("0x" + got![2])).toBe(mipsChecksum(iters));
    let native: string | null = null;
    try {
      native = execFileSync("bash", [new URL("../guests/mips/native-check.sh", import.meta.url).pathname, String(iters)],
        { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    } catch { /* no C compiler on this machine: the JS reference stands */ }
    if (native) expect(native).toContain(got![2]);
    // ~19.5 instructions per iteration plus set-up: every one went through the spte fast path or a fault.
    expect(result.instructions > BigInt(iters) * 19n).toBe(true);
  });

  it("the mips workload built with the C extension (mostly compressed code) prints the same checksum", async () => {
    const iters = 20000;
    const { m, result } = await boot("mips/mips-rvc", iters);
    expect([result.stop, result.reason]).toEqual(["shutdown", 0]);
    expect(m.output.trim()).toBe(`mips iters=${iters} checksum=0x${mipsChecksum(iters).toString(16).padStart(16, "0")}`);
  });
});
