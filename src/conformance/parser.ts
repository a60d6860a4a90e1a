// The lexical layer of the conformance-script language (conformance/README.md):
// lines to tokens, numbers, names, host addresses and BITS lists. Malformed
// input is a runner-level `error syntax`, never an exception of another kind.

/** A runner-level result (`error WHAT`): KVM was not asked. */
export class OpError extends Error {}

/** Ends the current operation with `error WHAT`. */
export const fail = (what: string): never => { throw new OpError(`error ${what}`); };

/** The tokens of one script line: the comment dropped, split on blanks. */
export const tokensOf = (line: string): string[] => line.replace(/#.*/, "").trim().split(/\s+/).filter(Boolean);

/** A name (`ID`): a letter, then letters, digits or `_`, 31 characters at most. */
export const isName = (t: string): boolean => /^[A-Za-z][A-Za-z0-9_]{0,30}$/.test(t);

/** A decimal or 0x integer; a leading `-` gives the 64-bit two's complement. */
export function parseNum(tok: string | undefined): bigint {
  if (tok === undefined) return fail("syntax");
  const m = /^(-)?(0x[0-9a-fA-F]+|[0-9]+)$/.exec(tok);
  if (!m) return fail("syntax");
  const v = BigInt(m[2]);
  if (v >= 1n << 64n) return fail("syntax");
  return BigInt.asUintN(64, m[1] ? -v : v);
}

/** `ID`, `ID+OFF` or `ID-OFF` split into its parts; null for anything else (a raw number). */
export function namedAddress(tok: string): { name: string; sign: "+" | "-" | null; off: string | null } | null {
  const m = /^([A-Za-z][A-Za-z0-9_]*)(?:([+-])(.+))?$/.exec(tok);
  if (!m) return null;
  if (!isName(m[1])) return fail("syntax");
  return { name: m[1], sign: (m[2] as "+" | "-" | undefined) ?? null, off: m[3] ?? null };
}

/** An inclusive run of bit indices. */
export interface BitRun { lo: number; hi: number }

/**
 * A clearlog BITS argument: `all` (null: every bit below NUM), `none`, or a
 * list `0,5-7,63`. Indices stay runs, so `0-4294967295` costs nothing here.
 */
export function parseBits(spec: string): BitRun[] | null {
  if (spec === "all") return null;
  if (spec === "none") return [];
  return spec.split(",").map((part) => {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) return fail("syntax");
    const lo = Number(m[1]), hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) return fail("syntax");
    return { lo, hi };
  });
}
