// What a run of the smp guest (guests/smp) must leave, however its harts were
// scheduled: the reference line, a successful shutdown, each partition holding
// its hart's stream, and every secondary stopped (it stops itself twice: the
// guest restarts each once).
import { expect } from "vitest";
import type { Machine, RunResult } from "../src/index.js";
// @ts-expect-error plain JS module without types
import { smpLine, smpHartData, smpDataGpa, SMP_DATA_BYTES } from "../guests/smp/reference.mjs";

export function expectSmpReference(m: Machine, r: RunResult, n: number): void {
  expect(m.output).toBe(smpLine(n));
  expect([r.stop, r.reason]).toEqual(["shutdown", 0]);
  for (let h = 0; h < n; h++) {
    const mem = m.vm.readGuest(smpDataGpa(h), SMP_DATA_BYTES);
    expect(Buffer.from(mem).equals(Buffer.from(smpHartData(h))), `hart ${h}`).toBe(true);
  }
  for (let h = 1; h < n; h++) expect(m.hartState(h)).toBe("stopped");
}
