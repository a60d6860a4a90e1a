// The snapshot file: a fixed header, then sections (section.ts). A full
// snapshot holds a machine's whole state and its non-zero RAM pages; an
// incremental one holds the whole state again and only the pages written since
// its parent, which it names by id, so a chain is checked link by link before
// anything is restored (as Firecracker's diff snapshots layer over a base).
//
// Header, 48 bytes, little endian:
//   0  magic "WKVMSNAP"
//   8  u16 format version | u16 flags (bit 0: incremental)
//   12 u32 section count
//   16 u64 snapshot id (random, never 0)
//   24 u64 parent id (0 for a full snapshot)
//   32 u64 total bytes (header included)
//   40 u32 sequence (0 for a full snapshot, n for the n-th incremental after it)
//   44 u32 crc32 of bytes 0..44

import { crc32 } from "./crc32.js";
import { decodeSections, encodeSections, SectionError, type Section } from "./section.js";
import { decodePageRuns } from "./pages.js";

export const SNAPSHOT_MAGIC = "WKVMSNAP";
export const SNAPSHOT_VERSION = 1;
export const SNAPSHOT_HEADER_BYTES = 48;
/** The header flag of an incremental snapshot. */
export const SNAPSHOT_INCREMENTAL = 1;
/** The section holding the RAM pages (page runs, pages.ts). */
export const MEMORY_SECTION = "memory";
export const MEMORY_VERSION = 1;

const MAGIC = new TextEncoder().encode(SNAPSHOT_MAGIC);

export interface SnapshotHeader {
  version: number;
  incremental: boolean;
  id: bigint;
  /** 0n for a full snapshot. */
  parent: bigint;
  /** 0 for a full snapshot; n for the n-th incremental of its chain. */
  sequence: number;
  totalBytes: number;
  sections: number;
}

/**
 * A snapshot (or one of a chain) refused: `section` names the header or the
 * section at fault, `index` the snapshot's place in the chain given.
 */
export class SnapshotError extends SectionError {
  constructor(readonly index: number, section: string, detail: string) {
    super(section, detail);
    this.name = "SnapshotError";
    this.message = `snapshot ${index}: ${this.message}`;
  }

  /** A SectionError from decoding snapshot `index`, as a SnapshotError naming the same section. */
  static from(index: number, e: unknown): unknown {
    if (e instanceof SnapshotError || !(e instanceof SectionError)) return e;
    return new SnapshotError(index, e.section, e.message.replace(/^section "[^"]*": /, ""));
  }
}

/** A fresh snapshot id: 64 random bits, never 0 (0 is "no parent"). */
export function newSnapshotId(): bigint {
  const w = new BigUint64Array(1);
  do crypto.getRandomValues(w); while (w[0] === 0n);
  return w[0];
}

/** The bytes of a snapshot: header and sections. */
export function encodeSnapshot(h: { id: bigint; parent: bigint; sequence: number }, sections: readonly Section[]): Uint8Array {
  const out = encodeSections(sections, SNAPSHOT_HEADER_BYTES);
  const dv = new DataView(out.buffer);
  out.set(MAGIC, 0);
  dv.setUint16(8, SNAPSHOT_VERSION, true);
  dv.setUint16(10, h.parent === 0n ? 0 : SNAPSHOT_INCREMENTAL, true);
  dv.setUint32(12, sections.length, true);
  dv.setBigUint64(16, h.id, true);
  dv.setBigUint64(24, h.parent, true);
  dv.setBigUint64(32, BigInt(out.length), true);
  dv.setUint32(40, h.sequence, true);
  dv.setUint32(44, crc32(out.subarray(0, 44)), true);
  return out;
}

/**
 * The header of the snapshot at the start of bytes, every field checked
 * (bytes may go on past it, a concatenated chain, or end before its total
 * size: decodeSnapshot says which section is cut); errors name "header".
 */
export function readSnapshotHeader(bytes: Uint8Array, index = 0): SnapshotHeader {
  const fail = (detail: string) => new SnapshotError(index, "header", detail);
  if (bytes.length < SNAPSHOT_HEADER_BYTES) throw fail(`truncated: ${bytes.length} of the header's ${SNAPSHOT_HEADER_BYTES} bytes`);
  if (MAGIC.some((b, i) => bytes[i] !== b)) throw fail(`not a webkvm snapshot (magic is not "${SNAPSHOT_MAGIC}")`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, SNAPSHOT_HEADER_BYTES);
  // The version before the checksum: another version may lay its header out otherwise.
  const version = dv.getUint16(8, true);
  if (version !== SNAPSHOT_VERSION) throw fail(`format version ${version}, this reader knows ${SNAPSHOT_VERSION}`);
  if (dv.getUint32(44, true) !== crc32(bytes.subarray(0, 44))) throw fail("checksum mismatch: the header is damaged");
  const flags = dv.getUint16(10, true);
  if ((flags & ~SNAPSHOT_INCREMENTAL) !== 0) throw fail(`unknown flags 0x${flags.toString(16)}`);
  const h: SnapshotHeader = {
    version, incremental: (flags & SNAPSHOT_INCREMENTAL) !== 0, sections: dv.getUint32(12, true),
    id: dv.getBigUint64(16, true), parent: dv.getBigUint64(24, true), totalBytes: 0, sequence: dv.getUint32(40, true),
  };
  const total = dv.getBigUint64(32, true);
  if (h.id === 0n) throw fail("snapshot id 0");
  if (h.incremental !== (h.parent !== 0n)) throw fail(h.incremental ? "an incremental snapshot without a parent id" : "a full snapshot with a parent id");
  if (h.incremental !== (h.sequence !== 0)) throw fail(`sequence ${h.sequence} for ${h.incremental ? "an incremental" : "a full"} snapshot`);
  if (total < BigInt(SNAPSHOT_HEADER_BYTES)) throw fail(`total size ${total} is less than the header`);
  if (total > BigInt(Number.MAX_SAFE_INTEGER)) throw fail(`total size ${total} is beyond any file`);
  h.totalBytes = Number(total);
  return h;
}

/** A snapshot's header and sections, every length and checksum checked; the payloads are views into bytes. */
export function decodeSnapshot(bytes: Uint8Array, index = 0): { header: SnapshotHeader; sections: Section[] } {
  const header = readSnapshotHeader(bytes, index);
  if (header.totalBytes < bytes.length) {
    throw new SnapshotError(index, "header", `${bytes.length - header.totalBytes} bytes after the snapshot's ${header.totalBytes}`);
  }
  let sections: Section[];
  try {
    sections = decodeSections(bytes.subarray(SNAPSHOT_HEADER_BYTES), "header");
  } catch (e) {
    // A cut file fails inside the section it cuts: say so with the sizes.
    const cut = header.totalBytes > bytes.length ? ` (${header.totalBytes} bytes declared, ${bytes.length} present)` : "";
    throw SnapshotError.from(index, e instanceof SectionError && cut ? new SectionError(e.section, e.message.replace(/^section "[^"]*": /, "") + cut) : e);
  }
  if (header.totalBytes > bytes.length) {
    const after = sections.length ? `after section "${sections[sections.length - 1].name}"` : "after the header";
    throw new SnapshotError(index, "header", `truncated ${after}: ${header.totalBytes} bytes declared, ${bytes.length} present`);
  }
  if (sections.length !== header.sections) {
    throw new SnapshotError(index, "header", `${header.sections} sections declared, ${sections.length} present`);
  }
  return { header, sections };
}

/** The snapshots of bytes holding one or several one after another (a chain saved as one file). */
export function splitSnapshots(bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0; at < bytes.length;) {
    const h = readSnapshotHeader(bytes.subarray(at), out.length);
    if (h.totalBytes > bytes.length - at) decodeSnapshot(bytes.subarray(at), out.length); // throws, naming the section cut
    out.push(bytes.subarray(at, at + h.totalBytes));
    at += h.totalBytes;
  }
  if (out.length === 0) throw new SnapshotError(0, "header", "truncated: no bytes");
  return out;
}

export interface SnapshotDescription extends SnapshotHeader {
  sectionList: { name: string; version: number; bytes: number }[];
  /** The memory section's pages: stored with their bytes, and as zero markers. */
  dataPages: number;
  zeroPages: number;
}

/** What a snapshot holds, checked as a restore checks its framing: for the CLI and debugging. */
export function describeSnapshot(bytes: Uint8Array): SnapshotDescription {
  const { header, sections } = decodeSnapshot(bytes);
  let dataPages = 0, zeroPages = 0;
  const memory = sections.find((s) => s.name === MEMORY_SECTION);
  if (memory) {
    for (const r of decodePageRuns(memory.payload, MEMORY_SECTION)) {
      if (r.data) dataPages += r.count;
      else zeroPages += r.count;
    }
  }
  return {
    ...header, dataPages, zeroPages,
    sectionList: sections.map((s) => ({ name: s.name, version: s.version, bytes: s.payload.length })),
  };
}

/** A chain (or one snapshot) as a Blob, the snapshots one after another: for a download or IndexedDB. */
export function snapshotToBlob(chain: Uint8Array | readonly Uint8Array[]): Blob {
  const parts = chain instanceof Uint8Array ? [chain] : [...chain];
  return new Blob(parts as BlobPart[], { type: "application/octet-stream" });
}

/** The snapshots of a Blob snapshotToBlob made (or a file the CLI wrote), split at their headers' sizes. */
export async function snapshotFromBlob(blob: Blob): Promise<Uint8Array[]> {
  return splitSnapshots(new Uint8Array(await blob.arrayBuffer()));
}
