// The checks on dirtylog.mjs's results, made by the Node test
// (test/threads-dirtylog.test.ts) and the Chromium one (test/browser/threads-chromium.test.ts) alike.
import { expect } from "vitest";

type Outcome = {
  mode: "bitmap" | "ring"; iterations: number; errors: string[]; ringFull: number; steps: number[];
  stats: { checks: number; reported: number }; violations: { rule: string; page: number; value: string; iteration: string }[];
};

/** Every page that changed was reported (in this collection or, if it changed during it, the next); no page exceeds the iteration. */
export function expectDirtyLogKept(o: Outcome): void {
  expect(o.errors).toEqual([]);
  expect(o.violations.slice(0, 5)).toEqual([]);
  expect(o.stats.checks).toBe(o.iterations + 1);
  expect(o.stats.reported).toBeGreaterThan(o.iterations * 50);
  expect(o.steps.every((s) => s > 1000)).toBe(true);
  if (o.mode === "ring") expect(o.ringFull).toBeGreaterThan(0);
}

/** A collector that loses one reported page per collection is caught. */
export function expectLossCaught(o: Outcome): void {
  expect(o.errors).toEqual([]);
  expect(o.violations.length).toBeGreaterThan(0);
}
