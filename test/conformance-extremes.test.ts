// The conformance runner on the largest values its lines can carry
// (conformance/extremes): every line answers what Linux 6.18 answers, and a
// line whose ioctl fails its checks before touching user memory costs the
// runner no page frames either (the host side of an op is bounded by what the
// kernel touches for it). Timing these lines is bench/conformance.js's job.
import { describe, it, expect, beforeAll, afterAll, vi } from "vitest";
import type { Kvm } from "../src/kvm.js";
import { readFileSync } from "node:fs";
import { ScriptRunner } from "../src/conformance/index.js";
import { tokensOf } from "../src/conformance/parser.js";
import { openKvm } from "./helpers.js";

const dir = new URL("../conformance/extremes/", import.meta.url);
const outs = readFileSync(new URL("extremes.out", dir), "utf8").split("\n").filter((l) => l !== "");

/** The script's operations in order, each with what Linux answers and the rule (its comment) that decides it. */
const LINES = readFileSync(new URL("extremes.txt", dir), "utf8").split("\n")
  .filter((l) => tokensOf(l).length > 0)
  .map((l, i) => {
    const rule = l.slice(l.indexOf("#") + 1).trim();
    return { line: l.slice(0, l.indexOf("#")).trim(), out: outs[i], rule: rule.replace(" [no frames]", ""),
      noFrames: rule.endsWith("[no frames]") };
  });

describe("conformance runner: extreme lines answer as Linux does, at the kernel's cost", () => {
  let kvm: Kvm, r: ScriptRunner;
  /** Bytes the runner copied into and out of host memory during the current line. */
  let copied = 0;
  beforeAll(async () => {
    kvm = await openKvm();
    r = new ScriptRunner(kvm);
    const { read, write } = kvm.memory;
    vi.spyOn(kvm.memory, "read").mockImplementation((hva, len) => { copied += len; return read.call(kvm.memory, hva, len); });
    vi.spyOn(kvm.memory, "write").mockImplementation((hva, b) => { copied += b.length; write.call(kvm.memory, hva, b); });
  });
  afterAll(() => r.close());

  it("every operation has its expected line", () => {
    expect(LINES.length).toBe(outs.length);
    expect(LINES.every((l) => l.rule !== "" && l.line !== "")).toBe(true);
  });
  for (const { line, out, rule, noFrames } of LINES) {
    it(`${rule}: ${line} → ${out}${noFrames ? " (no page frames)" : ""}`, () => {
      const before = kvm.memory.framesInUse;
      copied = 0;
      expect(r.line(line)).toBe(out);
      if (!noFrames) return;
      expect(copied).toBe(0); // no bitmap written or read back for a call that never reaches it
      expect(kvm.memory.framesInUse - before).toBeLessThanOrEqual(0); // (the previous call's bitmap may go)
    });
  }
});
