// SBI v2.0 in the host (src/vmm/sbi.ts with Machine's hooks), call by call as
// the SBI spec and arch/riscv/kvm/vcpu_sbi_{base,replace,v01,pmu}.c answer them:
// BASE, TIME, IPI, RFENCE, DBCN, PMU and the legacy console. Guest programs make
// the calls on hart 0; harts share this thread round-robin.
import { describe, it, expect } from "vitest";
import { Machine, handleSbi, hartMask, riscv } from "../src/index.js";
import { openKvm } from "./helpers.js";
import * as A from "./cpu/asm.js";
import { RAM, OUT, SECONDARY, bytes, emitCalls, shutdown, loadRemap, remapResult, loadIpiWake, ipiWakeResult, VA, type Call } from "./sbi-programs.js";

const { SBI_EXT_BASE, SBI_EXT_TIME, SBI_EXT_IPI, SBI_EXT_RFENCE, SBI_EXT_HSM, SBI_EXT_SRST, SBI_EXT_DBCN, SBI_SUCCESS,
  SBI_ERR_NOT_SUPPORTED, SBI_ERR_INVALID_PARAM } = riscv;
const ALL = (1n << 64n) - 1n; // hart_mask_base -1: every hart
const SSIP = 2n;

async function machine(vcpus = 1) {
  return Machine.create({ kvm: await openKvm(), memSize: 16n << 20n, vcpus, turn: 5000 });
}

/** Hart 0 makes the calls (after `before`), then shuts down; returns each [error, value]. */
async function sbiCalls(calls: Call[], opts: { vcpus?: number; setup?: (m: Machine) => void; before?: (p: A.Program) => void } = {}) {
  const m = await machine(opts.vcpus ?? 1);
  const p = new A.Program(RAM);
  opts.before?.(p);
  m.load(bytes(shutdown(emitCalls(p, calls)).finish()));
  opts.setup?.(m);
  const r = m.run({ maxInstructions: 10_000_000n });
  const dv = new DataView(m.vm.readGuest(OUT, 16 * calls.length).buffer);
  const results = calls.map((_, i) => [BigInt.asIntN(64, dv.getBigUint64(16 * i, true)), dv.getBigUint64(16 * i + 8, true)]);
  return { results, m, r };
}

/** hart_start of each hart at a spinning loop, so they run (and stay STARTED) while hart 0 calls. */
function startSpinners(harts: number[]): (p: A.Program) => void {
  return (p) => emitCalls(p, harts.map((h) => [SBI_EXT_HSM, riscv.SBI_HSM_HART_START, BigInt(h), SECONDARY, 0n] as Call));
}
const spinAt = (m: Machine) => m.vm.writeGuest(SECONDARY, bytes(Uint32Array.of(A.jal(0, 0))));

describe("SBI BASE", () => {
  it("get_spec_version is 2.0, get_impl_id / get_impl_version this host's, mvendorid / marchid / mimpid 0", async () => {
    const { results } = await sbiCalls([0n, 1n, 2n, 4n, 5n, 6n].map((f) => [SBI_EXT_BASE, f] as Call));
    expect(results).toEqual([[0n, 0x2000000n], [0n, riscv.SBI_IMPL_ID], [0n, riscv.SBI_IMPL_VERSION], [0n, 0n], [0n, 0n], [0n, 0n]]);
  });

  it("probe_extension answers 1 for every extension a Machine implements", async () => {
    const exts = [SBI_EXT_BASE, SBI_EXT_TIME, SBI_EXT_IPI, SBI_EXT_RFENCE, SBI_EXT_HSM, SBI_EXT_SRST, SBI_EXT_DBCN,
      riscv.SBI_EXT_PMU, riscv.SBI_EXT_0_1_SET_TIMER, riscv.SBI_EXT_0_1_CONSOLE_PUTCHAR, riscv.SBI_EXT_0_1_CONSOLE_GETCHAR, riscv.SBI_EXT_0_1_SHUTDOWN];
    const { results } = await sbiCalls(exts.map((e) => [SBI_EXT_BASE, 3n, e] as Call));
    expect(results).toEqual(exts.map(() => [SBI_SUCCESS, 1n]));
  });

  it("probe_extension answers 0 for what is not implemented: SUSP, CPPC, the legacy IPI / fence calls, unknown ids", async () => {
    const exts = [0x53555350n, 0x43505043n, 3n, 4n, 5n, 6n, 7n, 0x12345678n];
    const { results } = await sbiCalls(exts.map((e) => [SBI_EXT_BASE, 3n, e] as Call));
    expect(results).toEqual(exts.map(() => [SBI_SUCCESS, 0n]));
  });

  it("probe_extension answers 0 for IPI, RFENCE and DBCN on a host without their hooks, and their calls are SBI_ERR_NOT_SUPPORTED", () => {
    const host = { putchar() {}, getchar: () => -1, setTimer() {}, reset() {} };
    const call = (extensionId: bigint, functionId: bigint, ...a: bigint[]) => handleSbi(host, { extensionId, functionId, args: [...a, 0n, 0n, 0n, 0n, 0n, 0n] });
    expect([SBI_EXT_IPI, SBI_EXT_RFENCE, SBI_EXT_DBCN].map((e) => call(SBI_EXT_BASE, 3n, e))).toEqual([[0n, 0n], [0n, 0n], [0n, 0n]]);
    expect([call(SBI_EXT_IPI, 0n, 1n, 0n), call(SBI_EXT_RFENCE, 0n, 1n, 0n), call(SBI_EXT_DBCN, 2n, 65n)])
      .toEqual([[SBI_ERR_NOT_SUPPORTED, 0n], [SBI_ERR_NOT_SUPPORTED, 0n], [SBI_ERR_NOT_SUPPORTED, 0n]]);
  });

  it("a BASE function id the spec does not define: SBI_ERR_NOT_SUPPORTED", async () => {
    const { results } = await sbiCalls([[SBI_EXT_BASE, 7n], [SBI_EXT_BASE, 0x100n]]);
    expect(results.map((r) => r[0])).toEqual([SBI_ERR_NOT_SUPPORTED, SBI_ERR_NOT_SUPPORTED]);
  });
});

describe("SBI TIME", () => {
  it("set_timer programs the caller's timer deadline; another function id is SBI_ERR_NOT_SUPPORTED", async () => {
    const { results, m } = await sbiCalls([[SBI_EXT_TIME, 0n, 0x123456789n], [SBI_EXT_TIME, 1n, 5n]]);
    expect(results.map((r) => r[0])).toEqual([SBI_SUCCESS, SBI_ERR_NOT_SUPPORTED]);
    expect(m.vcpu.getOneReg(riscv.REG_TIMER_COMPARE)).toBe(0x123456789n);
  });
});

describe("hart masks (hartMask)", () => {
  it("base -1 names every hart whatever the mask", () => {
    expect(hartMask(3, 0n, ALL)).toEqual({ harts: [0, 1, 2], bad: false });
  });
  it("bit i names hart base + i; a bit past the last hart is bad, the others still named", () => {
    expect(hartMask(4, 0b101n, 1n)).toEqual({ harts: [1, 3], bad: false });
    expect(hartMask(2, 0b111n, 0n)).toEqual({ harts: [0, 1], bad: true });
    expect(hartMask(2, 1n, 2n)).toEqual({ harts: [], bad: true });
    expect(hartMask(2, 0n, 5n)).toEqual({ harts: [], bad: false });
  });
});

describe("SBI IPI", () => {
  it("send_ipi makes sip.SSIP pending on exactly the harts the mask names", async () => {
    const { results, m } = await sbiCalls([[SBI_EXT_IPI, 0n, 0b1010n, 0n]], { vcpus: 4, before: startSpinners([1, 2, 3]), setup: spinAt });
    expect(results[0]).toEqual([SBI_SUCCESS, 0n]);
    expect(m.vcpus.map((v) => v.getCsr("sip") & SSIP)).toEqual([0n, SSIP, 0n, SSIP]);
  });

  it("send_ipi with hart_mask_base -1 reaches every hart, the caller included", async () => {
    const { results, m } = await sbiCalls([[SBI_EXT_IPI, 0n, 0n, ALL]], { vcpus: 3, before: startSpinners([1, 2]), setup: spinAt });
    expect(results[0]).toEqual([SBI_SUCCESS, 0n]);
    expect(m.vcpus.map((v) => v.getCsr("sip") & SSIP)).toEqual([SSIP, SSIP, SSIP]);
  });

  it("a mask bit naming a hart the machine lacks: SBI_ERR_INVALID_PARAM, the harts that exist still get theirs", async () => {
    const { results, m } = await sbiCalls([[SBI_EXT_IPI, 0n, 0b110n, 0n], [SBI_EXT_IPI, 0n, 1n, 7n]],
      { vcpus: 2, before: startSpinners([1]), setup: spinAt });
    expect(results).toEqual([[SBI_ERR_INVALID_PARAM, 0n], [SBI_ERR_INVALID_PARAM, 0n]]);
    expect(m.vcpus.map((v) => v.getCsr("sip") & SSIP)).toEqual([0n, SSIP]);
  });

  it("an IPI wakes a hart halted in wfi, which takes it and goes on", async () => {
    const m = await machine(2);
    loadIpiWake(m);
    const r = m.run({ maxInstructions: 1_000_000n });
    expect(r.stop).toBe("harts-stopped");
    expect(ipiWakeResult(m)).toBe(SSIP); // past its wfi, with SSIP pending
  });

  it("an IPI function id other than send_ipi: SBI_ERR_NOT_SUPPORTED", async () => {
    const { results } = await sbiCalls([[SBI_EXT_IPI, 1n, 1n, 0n]]);
    expect(results[0][0]).toBe(SBI_ERR_NOT_SUPPORTED);
  });

  it("a hart started by HSM begins without the IPIs sent to it while it was STOPPED (the reset clears them)", async () => {
    const { m } = await sbiCalls([[SBI_EXT_IPI, 0n, 0b10n, 0n], [SBI_EXT_HSM, riscv.SBI_HSM_HART_START, 1n, SECONDARY, 0n]],
      { vcpus: 2, setup: spinAt });
    expect(m.vcpus[1].getCsr("sip") & SSIP).toBe(0n);
  });
});

describe("SBI RFENCE", () => {
  async function remap(fence: Call | null) {
    const m = await machine(2);
    loadRemap(m, fence);
    const r = m.run({ maxInstructions: 2_000_000n });
    return { stop: r.stop, ...remapResult(m) };
  }

  it("without a fence the other hart keeps its cached translation (what the fence is for)", async () => {
    expect(await remap(null)).toMatchObject({ stop: "harts-stopped", before: 111n, after: 111n });
  });

  it("remote_sfence_vma: the named hart's translations are dropped before it runs again", async () => {
    expect(await remap([SBI_EXT_RFENCE, riscv.SBI_RFENCE_SFENCE_VMA, 0b10n, 0n, VA, 0x1000n]))
      .toEqual({ stop: "harts-stopped", before: 111n, after: 222n, err: SBI_SUCCESS });
  });

  it("remote_sfence_vma_asid: the same, for any ASID (a full flush serves every ASID)", async () => {
    expect(await remap([SBI_EXT_RFENCE, riscv.SBI_RFENCE_SFENCE_VMA_ASID, 1n, 1n, 0n, ALL, 0n]))
      .toEqual({ stop: "harts-stopped", before: 111n, after: 222n, err: SBI_SUCCESS });
  });

  it("remote_sfence_vma with hart_mask_base -1 reaches every hart", async () => {
    expect(await remap([SBI_EXT_RFENCE, riscv.SBI_RFENCE_SFENCE_VMA, 0n, ALL, 0n, ALL]))
      .toEqual({ stop: "harts-stopped", before: 111n, after: 222n, err: SBI_SUCCESS });
  });

  it("a remote sfence that names only other harts leaves the target untouched (mask bit for hart 0 only)", async () => {
    expect(await remap([SBI_EXT_RFENCE, riscv.SBI_RFENCE_SFENCE_VMA, 1n, 0n, 0n, ALL]))
      .toEqual({ stop: "harts-stopped", before: 111n, after: 111n, err: SBI_SUCCESS });
  });

  it("remote_fence_i succeeds (instruction fetches are always coherent here); a bad hart mask is SBI_ERR_INVALID_PARAM", async () => {
    const { results } = await sbiCalls([[SBI_EXT_RFENCE, riscv.SBI_RFENCE_FENCE_I, 1n, 0n], [SBI_EXT_RFENCE, riscv.SBI_RFENCE_FENCE_I, 0b11n, 0n],
      [SBI_EXT_RFENCE, riscv.SBI_RFENCE_SFENCE_VMA, 1n, 3n, 0n, ALL]]);
    expect(results.map((r) => r[0])).toEqual([SBI_SUCCESS, SBI_ERR_INVALID_PARAM, SBI_ERR_INVALID_PARAM]);
  });

  it("the hypervisor fences (function ids 3..6) and undefined ids: SBI_ERR_NOT_SUPPORTED", async () => {
    const { results } = await sbiCalls([3n, 4n, 5n, 6n, 7n].map((f) => [SBI_EXT_RFENCE, f, 1n, 0n] as Call));
    expect(results.map((r) => r[0])).toEqual(Array(5).fill(SBI_ERR_NOT_SUPPORTED));
  });
});

describe("SBI DBCN", () => {
  const MSG = 0x80300000n;
  const put = (text: string) => (m: Machine) => m.vm.writeGuest(MSG, new TextEncoder().encode(text));

  it("console_write prints num_bytes from guest-physical memory and returns the count", async () => {
    const { results, m } = await sbiCalls([[SBI_EXT_DBCN, riscv.SBI_DBCN_WRITE, 5n, MSG, 0n]], { setup: put("hello, world") });
    expect([results[0], m.output]).toEqual([[SBI_SUCCESS, 5n], "hello"]);
  });

  it("console_write moves at most SBI_DBCN_MAX_BYTES per call and says how many", async () => {
    const { results, m } = await sbiCalls([[SBI_EXT_DBCN, riscv.SBI_DBCN_WRITE, 100_000n, MSG, 0n]], { setup: put("x".repeat(5000)) });
    expect(results[0]).toEqual([SBI_SUCCESS, BigInt(riscv.SBI_DBCN_MAX_BYTES)]);
    expect(m.output.length).toBe(riscv.SBI_DBCN_MAX_BYTES);
  });

  it("console_write of memory no RAM backs (or a nonzero base_addr_hi): SBI_ERR_INVALID_PARAM, nothing printed", async () => {
    const { results, m } = await sbiCalls([
      [SBI_EXT_DBCN, riscv.SBI_DBCN_WRITE, 4n, 0x1000n, 0n],
      [SBI_EXT_DBCN, riscv.SBI_DBCN_WRITE, 4n, RAM + (16n << 20n) - 2n, 0n], // runs past the end of RAM
      [SBI_EXT_DBCN, riscv.SBI_DBCN_WRITE, 4n, MSG, 1n],
    ], { setup: put("abcd") });
    expect(results).toEqual([[SBI_ERR_INVALID_PARAM, 0n], [SBI_ERR_INVALID_PARAM, 0n], [SBI_ERR_INVALID_PARAM, 0n]]);
    expect(m.output).toBe("");
  });

  it("console_write_byte prints the low byte of its argument", async () => {
    const { results, m } = await sbiCalls([[SBI_EXT_DBCN, riscv.SBI_DBCN_WRITE_BYTE, 0x1241n]]);
    expect([results[0], m.output]).toEqual([[SBI_SUCCESS, 0n], "A"]);
  });

  it("console_read stores the queued input into guest memory and returns the count; 0 when there is none", async () => {
    const { results, m } = await sbiCalls([[SBI_EXT_DBCN, riscv.SBI_DBCN_READ, 16n, MSG, 0n], [SBI_EXT_DBCN, riscv.SBI_DBCN_READ, 16n, MSG + 0x100n, 0n]],
      { setup: (m) => m.feedConsole("ls\n") });
    expect(results).toEqual([[SBI_SUCCESS, 3n], [SBI_SUCCESS, 0n]]);
    expect(new TextDecoder().decode(m.vm.readGuest(MSG, 3))).toBe("ls\n");
  });

  it("console_read into memory no RAM backs: SBI_ERR_INVALID_PARAM, and the input stays queued", async () => {
    const { results } = await sbiCalls([[SBI_EXT_DBCN, riscv.SBI_DBCN_READ, 4n, 0x1000n, 0n], [SBI_EXT_DBCN, riscv.SBI_DBCN_READ, 4n, MSG, 0n]],
      { setup: (m) => m.feedConsole("ok") });
    expect(results).toEqual([[SBI_ERR_INVALID_PARAM, 0n], [SBI_SUCCESS, 2n]]);
  });

  it("a DBCN function id the spec does not define: SBI_ERR_NOT_SUPPORTED", async () => {
    const { results } = await sbiCalls([[SBI_EXT_DBCN, 3n, 0n]]);
    expect(results[0][0]).toBe(SBI_ERR_NOT_SUPPORTED);
  });
});

describe("SBI PMU", () => {
  const PMU = riscv.SBI_EXT_PMU;
  const { SBI_PMU_NUM_COUNTERS: NUM, SBI_PMU_COUNTER_GET_INFO: INFO, SBI_PMU_COUNTER_CFG_MATCH: MATCH,
    SBI_PMU_COUNTER_START: START, SBI_PMU_COUNTER_STOP: STOP } = riscv;
  const EVENT_CYCLES = 1n, EVENT_INSTRUCTIONS = 2n; // SBI_PMU_HW_CPU_CYCLES / SBI_PMU_HW_INSTRUCTIONS (type 0)

  it("num_counters is 3: cycle, time and instret", async () => {
    const { results } = await sbiCalls([[PMU, NUM]]);
    expect(results).toEqual([[SBI_SUCCESS, 3n]]);
  });

  it("counter_get_info: cycle and instret are 64-bit hardware counters at CSRs 0xc00 and 0xc02", async () => {
    const { results } = await sbiCalls([[PMU, INFO, 0n], [PMU, INFO, 2n]]);
    expect(results).toEqual([[SBI_SUCCESS, 0xc00n | (63n << 12n)], [SBI_SUCCESS, 0xc02n | (63n << 12n)]]);
    expect(results[0][1]).toBe(riscv.pmuCounterInfo(0xc00n, 64n));
  });

  it("counter_get_info of the time counter (index 1) or past the last counter: SBI_ERR_INVALID_PARAM", async () => {
    const { results } = await sbiCalls([[PMU, INFO, 1n], [PMU, INFO, 3n], [PMU, INFO, 64n], [PMU, INFO, ALL]]);
    expect(results).toEqual(results.map(() => [SBI_ERR_INVALID_PARAM, 0n]));
  });

  it("a counter mask naming no counter, or one past the last: SBI_ERR_INVALID_PARAM for config_matching, start and stop", async () => {
    const masks: [bigint, bigint][] = [[0n, 0n], [3n, 1n], [1n, 0b100n], [0n, 0b1000n], [ALL, 1n]];
    const calls = masks.flatMap(([b, m]) => [[PMU, MATCH, b, m, 0n, EVENT_CYCLES, 0n], [PMU, START, b, m, 0n, 0n], [PMU, STOP, b, m, 0n]] as Call[]);
    const { results } = await sbiCalls(calls);
    expect(results).toEqual(calls.map(() => [SBI_ERR_INVALID_PARAM, 0n]));
  });

  it("counter_config_matching: no event can be counted (the counters cannot be preset or stopped): SBI_ERR_NOT_SUPPORTED", async () => {
    // hardware cycles and instructions, a cache event, a raw event, a firmware event
    const events = [EVENT_CYCLES, EVENT_INSTRUCTIONS, 0x10000n, 0x20000n, 0xf0000n];
    const { results } = await sbiCalls(events.map((e) => [PMU, MATCH, 0n, 0b111n, 0n, e, 0n] as Call));
    expect(results).toEqual(events.map(() => [SBI_ERR_NOT_SUPPORTED, 0n]));
  });

  it("counter_config_matching with SKIP_MATCH on a counter no event configured: SBI_ERR_FAILED", async () => {
    const { results } = await sbiCalls([[PMU, MATCH, 0n, 1n, riscv.SBI_PMU_CFG_FLAG_SKIP_MATCH, EVENT_CYCLES, 0n]]);
    expect(results).toEqual([[riscv.SBI_ERR_FAILED, 0n]]);
  });

  it("counter_start / counter_stop pass over counters no event configured: success (Linux stops them all at boot)", async () => {
    const { results } = await sbiCalls([[PMU, STOP, 0n, 0b111n, riscv.SBI_PMU_STOP_FLAG_RESET], [PMU, STOP, 2n, 1n, 0n],
      [PMU, START, 0n, 0b101n, riscv.SBI_PMU_START_FLAG_SET_INIT_VALUE, 42n], [PMU, START, 0n, 1n, 0n, 0n]]);
    expect(results).toEqual(results.map(() => [SBI_SUCCESS, 0n]));
  });

  it("counter_start / counter_stop with a snapshot flag and no snapshot memory: SBI_ERR_NO_SHMEM", async () => {
    const { results } = await sbiCalls([[PMU, START, 0n, 1n, riscv.SBI_PMU_START_FLAG_INIT_SNAPSHOT, 0n],
      [PMU, STOP, 0n, 1n, riscv.SBI_PMU_STOP_FLAG_TAKE_SNAPSHOT]]);
    expect(results).toEqual([[riscv.SBI_ERR_NO_SHMEM, 0n], [riscv.SBI_ERR_NO_SHMEM, 0n]]);
  });

  it("counter_fw_read: there is no firmware counter, so SBI_ERR_INVALID_PARAM; counter_fw_read_hi is 0 on RV64", async () => {
    const fwRead = [0n, 1n, 2n, 3n].map((i) => [PMU, riscv.SBI_PMU_COUNTER_FW_READ, i] as Call);
    const { results } = await sbiCalls([...fwRead, [PMU, riscv.SBI_PMU_COUNTER_FW_READ_HI, 0n]]);
    expect(results).toEqual([...fwRead.map(() => [SBI_ERR_INVALID_PARAM, 0n]), [SBI_SUCCESS, 0n]]);
  });

  it("snapshot_set_shmem (no snapshot memory here) and undefined function ids: SBI_ERR_NOT_SUPPORTED", async () => {
    const { results } = await sbiCalls([[PMU, riscv.SBI_PMU_SNAPSHOT_SET_SHMEM, RAM, 0n, 0n], [PMU, 8n], [PMU, 0x100n]]);
    expect(results).toEqual(results.map(() => [SBI_ERR_NOT_SUPPORTED, 0n]));
  });
});

describe("legacy console (SBI v0.1)", () => {
  it("console_getchar returns -1 without input, then the fed bytes in order; console_putchar prints", async () => {
    const g = riscv.SBI_EXT_0_1_CONSOLE_GETCHAR;
    const { results, m } = await sbiCalls([[g, 0n], [riscv.SBI_EXT_0_1_CONSOLE_PUTCHAR, 0n, 0x5an]], {});
    expect([results[0][0], m.output]).toEqual([-1n, "Z"]);
    const fed = await sbiCalls([[g, 0n], [g, 0n], [g, 0n]], { setup: (m) => m.feedConsole("hi") });
    expect(fed.results.map((r) => r[0])).toEqual([0x68n, 0x69n, -1n]);
  });
});
