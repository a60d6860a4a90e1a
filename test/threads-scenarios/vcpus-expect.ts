// The checks on test/threads-scenarios/vcpus.mjs's results, made by the Node
// test (test/threads-vcpus.test.ts) and the Chromium one
// (test/browser/threads-chromium.test.ts) alike.
import { expect } from "vitest";

type Counts = { runs: number[]; bad: number[]; window: number[]; other: number[]; seen: number[] };

/** Seed 003: once a slot's creation returned, no vCPU reads MMIO there again (update in-progress bit). */
export function expectMmioRace(r: Counts & { stale: number; invariants: number }): void {
  expect(r.invariants).toBe(1);
  expect(r.stale).toBe(0);
  expect(r.other).toEqual([0, 0]);
  expect(r.bad).toEqual([0, 0]);
  // The vCPUs did meet the window: MMIO exits while a creation or deletion was in flight.
  expect(r.window.every((n) => n > 0)).toBe(true);
}

/** Move while running: after the ioctl returns a vCPU never sees the old backing, MMIO only inside the window. */
export function expectMove(r: Counts & { moves: number }): void {
  expect(r.other).toEqual([0]);
  expect(r.bad).toEqual([0]);
  expect(r.seen[0]).toBeGreaterThanOrEqual(r.moves);
}

/** memslot_modification_stress: every pass verified, every run ended by the guest's own ecall. */
export function expectStress(r: Counts & { invariants: number }): void {
  expect(r.invariants).toBe(1);
  expect(r.other).toEqual([0, 0]);
  expect(r.bad).toEqual([0, 0]);
  expect(r.seen.every((n) => n > 0)).toBe(true);
}
