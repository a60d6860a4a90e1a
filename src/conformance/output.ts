// The output vocabulary of the conformance-script language (conformance/README.md):
// lists with compressed runs, ring entries, values in hex.

import type { BitRun } from "./parser.js";

/** Runs of indices as a list: "0,5-7,63"; "none" when there are none. */
export function runsList(runs: BitRun[]): string {
  if (runs.length === 0) return "none";
  return runs.map((r) => (r.hi === r.lo ? `${r.lo}` : `${r.lo}-${r.hi}`)).join(",");
}

/** Sorted indices as a list: "0,5-7,63"; "none" when empty. */
export function listOf(xs: number[]): string {
  const runs: BitRun[] = [];
  for (const x of xs) {
    const last = runs[runs.length - 1];
    if (last && x === last.hi + 1) last.hi = x;
    else runs.push({ lo: x, hi: x });
  }
  return runsList(runs);
}

/** Ring entries in ring order, runs of one slot with offsets ascending by one compressed: "0:6-7,0:3". */
export function ringListOf(entries: { slot: number; offset: bigint }[]): string {
  if (entries.length === 0) return "none";
  const parts: string[] = [];
  for (let i = 0; i < entries.length;) {
    let j = i;
    while (j + 1 < entries.length && entries[j + 1].slot === entries[i].slot && entries[j + 1].offset === entries[j].offset + 1n) j++;
    parts.push(`${entries[i].slot}:${entries[i].offset}${j > i ? `-${entries[j].offset}` : ""}`);
    i = j + 1;
  }
  return parts.join(",");
}

/** A value as the vocabulary prints it: lower-case hex, `0x`, no leading zeros. */
export const hex = (v: bigint | number): string => `0x${v.toString(16)}`;

/** Bytes in memory order, two lower-case hex digits each (an mmio write's data). */
export const hexBytes = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
