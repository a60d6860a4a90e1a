// The checks on vcpu-thread.mjs's results, made by the Node test
// (test/threads-vcpu-thread.test.ts) and the Chromium one (test/browser/threads-chromium.test.ts) alike.
import { expect } from "vitest";

type Held = { locks: number[]; vcpus: number[][] };

/** Every lock word of the VM and the process is free, no SRCU reader is left, no vCPU is in guest mode or an ioctl. */
export function expectNothingHeld(h: Held): void {
  expect(h.locks).toEqual(h.locks.map(() => 0));
  for (const v of h.vcpus) expect(v).toEqual([0, 0, 0]);
}

/** Two vCPUs at once: each pass verified by the guest (a0 = 0 at its ecall), the last page holds the pass count, nothing held. */
export function expectTwoAtOnce(o: { passes: number; threadIds: number[]; exits: { reason: number; a0: string }[][];
  lastPage: number[]; held: Held; SBI: number }): void {
  expect(new Set(o.threadIds).size).toBe(2);
  for (const seen of o.exits) {
    expect(seen.length).toBe(o.passes);
    for (const e of seen) expect(e).toEqual({ reason: o.SBI, a0: "0" });
  }
  expect(o.lastPage).toEqual([o.passes, o.passes]);
  expectNothingHeld(o.held);
}

/** A vCPU Worker terminated mid-run leaves nothing held: the next memslot update completes, the vCPU runs again (MMIO now). */
export function expectTerminatedMidRun(o: { runError: string; held: Held; afterReason: number; MMIO: number }): void {
  expect(o.runError).toMatch(/terminated/);
  expectNothingHeld(o.held);
  expect(o.afterReason).toBe(o.MMIO);
}
