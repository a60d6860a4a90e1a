// The values the commands' flags take: sizes, counts, TCP endpoints. Each
// parser returns undefined for a malformed value, so the command can answer
// with its usage line (status 2).

/** Bytes, with an optional K, M or G suffix. */
export function parseSize(s: string | undefined): bigint | undefined {
  const m = /^(\d+)([KMG]?)$/i.exec(s ?? "");
  if (!m) return undefined;
  const mult = { "": 1n, K: 1n << 10n, M: 1n << 20n, G: 1n << 30n }[m[2].toUpperCase() as "" | "K" | "M" | "G"];
  return BigInt(m[1]) * mult;
}

/** A whole number, decimal or 0x hex. */
export function parseCount(s: string | undefined): bigint | undefined {
  return s !== undefined && /^(\d+|0x[0-9a-f]+)$/i.test(s) ? BigInt(s) : undefined;
}

export interface Endpoint {
  host: string;
  port: number;
}

/** HOST:PORT, or [HOST:]PORT with a default host; an IPv6 host in brackets ([::1]:4444). */
export function parseEndpoint(s: string | undefined, defaultHost?: string): Endpoint | undefined {
  const m = /^(?:(\[[^\]]+\]|[^:]+):)?(\d{1,5})$/.exec(s ?? "");
  const host = m?.[1]?.replace(/^\[(.*)\]$/, "$1") ?? defaultHost;
  if (!m || host === undefined || Number(m[2]) > 65535) return undefined;
  return { host, port: Number(m[2]) };
}

/** HOST:PORT as written back (an IPv6 host in brackets). */
export const formatEndpoint = (e: Endpoint): string => (e.host.includes(":") ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`);
