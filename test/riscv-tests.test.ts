// riscv-tests' ISA tests (guests/riscv-tests: rv64ui, um, ua, uc, uf, ud and
// the rv64si tests a KVM guest can run), built with webkvm's own S-mode
// environment, each run as a guest through the Machine. A test passes when the
// guest prints "rvtest: pass" and shuts down with SRST reason 0; a failure
// names the test case (TESTNUM, the guest's gp). The list is SOURCE.md's.
import { describe, it, expect } from "vitest";
import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { Machine, GUEST_ISA, KVM_EXIT, riscv } from "../src/index.js";
import { openKvm } from "./helpers.js";

const DIR = new URL("../guests/riscv-tests/", import.meta.url);
const image = (name: string) => new Uint8Array(readFileSync(new URL(`bin/${name}.bin`, DIR)));

/** SOURCE.md's "<sha256>  <name>.bin" lines, in build order. */
const listed = [...readFileSync(new URL("SOURCE.md", DIR), "utf8").matchAll(/^([0-9a-f]{64}) {2}(\S+)\.bin$/gm)]
  .map(([, sha256, name]) => ({ name, sha256 }));

/** The single-letter extensions of GUEST_ISA (the ISA the vCPU implements and the device tree names); G is IMAFD. */
const letters = /^rv64([a-z]*)/.exec(GUEST_ISA)![1].replace("g", "imafd");
/** What a suite needs beyond RV64IMAC, checked against the vCPU's ISA. */
const needs: Record<string, string> = { rv64uf: "f", rv64ud: "fd" };
const missing = (name: string) => [...(needs[name.split("-p-")[0]] ?? "")].filter((x) => !letters.includes(x));

/** Generous: the longest test (rv64ua-p-lrsc) retires about 6,400 instructions. */
const BUDGET = 1_000_000n;
const PASS = "rvtest: pass\n";

async function load(name: string) {
  const m = await Machine.create({ kvm: await openKvm(), memSize: 2n << 20n });
  m.load(image(name));
  return m;
}

/** RVTEST_CODE_BEGIN's five instructions come first; the body follows them. */
const BODY = 0x80000014n;
/** In rv64ui-p-add: test 2 ("li gp, 2" at BODY) computes 0 + 0, its expected value is "li t2, 0" here. */
const ADD_T2_OPERAND = 0x80000018n, ADD_T2_EXPECTED = 0x80000024n;
const LI_T2_0 = 0x00000393, LI_T2_1 = 0x00100393;
const word = (m: Machine, gpa: bigint) => new DataView(m.vm.readGuest(gpa, 4).buffer).getUint32(0, true);
const setWord = (m: Machine, gpa: bigint, w: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, w, true);
  m.vm.writeGuest(gpa, b);
};

describe("riscv-tests' S-mode environment (guests/riscv-tests/env)", () => {
  async function toBody(name: string) {
    const m = await load(name);
    for (let i = 0; i < 200 && m.vcpu.pc !== BODY; i++) {
      m.vcpu.setBudget(1);
      expect(m.vcpu.run().reason).toBe(KVM_EXIT.INTR);
    }
    expect(m.vcpu.pc).toBe(BODY);
    return m;
  }

  it("enters a user-level test's body in U-mode with x1..x31 zero, as upstream's p environment", async () => {
    const m = await toBody("rv64ui-p-add");
    expect(m.vcpu.getOneReg(riscv.REG_MODE)).toBe(riscv.RISCV_MODE_U);
    for (let r = 1; r < 32; r++) expect(m.vcpu.getReg(r), `x${r}`).toBe(0n);
  });

  it("enters an rv64si test's body in S-mode", async () => {
    const m = await toBody("rv64si-p-ma_fetch");
    expect(m.vcpu.getOneReg(riscv.REG_MODE)).toBe(riscv.RISCV_MODE_S);
  });

  it("a failing check ends the run with SRST reason 1 and its TESTNUM, printed and in gp", async () => {
    const m = await load("rv64ui-p-add");
    expect(word(m, ADD_T2_EXPECTED)).toBe(LI_T2_0);
    setWord(m, ADD_T2_EXPECTED, LI_T2_1);
    const r = m.run({ maxInstructions: BUDGET });
    expect([r.stop, r.reason, m.output, m.vcpu.getReg(3)]).toEqual(["shutdown", 1, "rvtest: FAIL test 2\n", 2n]);
  });

  it("a trap the test did not arrange for is described, then fails the test it happened in", async () => {
    const m = await load("rv64ui-p-add");
    setWord(m, ADD_T2_OPERAND, 0); // an illegal instruction
    const r = m.run({ maxInstructions: BUDGET });
    expect([r.stop, r.reason, m.vcpu.getReg(3)]).toEqual(["shutdown", 1, 2n]);
    expect(m.output).toBe("rvtest: unexpected trap scause=0x0000000000000002 sepc=0x0000000080000018 " +
      "stval=0x0000000000000000\nrvtest: FAIL test 2\n");
  });
});

describe("riscv-tests", () => {
  it("SOURCE.md lists every suite's tests and the images are the ones it hashed", () => {
    const suites = new Set(listed.map((t) => t.name.split("-p-")[0]));
    expect([...suites]).toEqual(["rv64ui", "rv64um", "rv64ua", "rv64uc", "rv64uf", "rv64ud", "rv64si"]);
    for (const t of listed) expect(createHash("sha256").update(image(t.name)).digest("hex"), t.name).toBe(t.sha256);
  });

  for (const { name } of listed) {
    it(name, async (ctx) => {
      const lacking = missing(name);
      ctx.skip(lacking.length > 0, `the vCPU (GUEST_ISA ${GUEST_ISA}) has no ${lacking.join(", ").toUpperCase()}`);
      const m = await load(name);
      const r = m.run({ maxInstructions: BUDGET });
      const testnum = m.vcpu.getReg(3);
      expect({ stop: r.stop, reason: r.reason, output: m.output },
        `${name} failed at TESTNUM ${testnum} (${r.stop}, ${r.instructions} instructions)`)
        .toEqual({ stop: "shutdown", reason: 0, output: PASS });
    });
  }
});
