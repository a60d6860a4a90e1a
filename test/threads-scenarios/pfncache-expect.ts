// The checks on pfncache.mjs's race, made by the Node test
// (test/threads-pfncache.test.ts) and the Chromium one (test/browser/threads-chromium.test.ts) alike.
import { expect } from "vitest";

type Role = { error?: string; failures?: string[]; seen?: { reads: number; stale: number } };
type Race = { hung: boolean; remapper?: Role; toggler?: Role; users?: Role[]; invariants?: number; readAfter?: number };

/** No access reaches a freed frame, invariants hold, nothing hangs. */
export function expectRaceKept(o: Race): void {
  expect(o.hung, "every thread finished before the deadline").toBe(false);
  const [r, t, u1, u2] = [o.remapper!, o.toggler!, ...o.users!];
  expect([r, t, u1, u2].map((x) => x.error ?? "ok")).toEqual(["ok", "ok", "ok", "ok"]);
  expect([...u1.failures!, ...u2.failures!, ...r.failures!]).toEqual([]);
  // The race was run: the users read through the cache, and found it stale many times.
  expect(u1.seen!.reads > 0 && u2.seen!.reads > 0).toBe(true);
  expect(u1.seen!.stale + u2.seen!.stale).toBeGreaterThan(0);
  expect(o.invariants).toBe(1);
  expect(o.readAfter).toBe(4);
}
