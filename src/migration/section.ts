// Sections: the unit a snapshot file and a migration's state message are made
// of (QEMU's vmstate sections, Firecracker's snapshot parts). Each is named,
// versioned and carries the CRC-32 of its payload, so a reader refuses a
// truncated or damaged one naming which, before anything is applied.
//
// One encoded section, little endian:
//   u16 name length | name (UTF-8) | u32 version | u64 payload length | u32 crc32(payload) | payload

import { crc32 } from "./crc32.js";

export interface Section {
  name: string;
  version: number;
  payload: Uint8Array;
}

/** A section (or the container around it, "header") that is malformed, damaged or not what the reader expects. */
export class SectionError extends Error {
  constructor(readonly section: string, detail: string) {
    super(`section "${section}": ${detail}`);
    this.name = "SectionError";
  }
}

const FIXED = 2 + 4 + 8 + 4;
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder("utf-8", { fatal: true });

/** Bytes of one encoded section. */
export function sectionBytes(s: Section): number {
  return sectionHeaderBytes(s.name) + s.payload.length;
}

/**
 * Encodes sections one after another, after `headroom` zero bytes left for
 * the caller's own header (a snapshot's), so the sections, RAM and all, are
 * written once into the buffer that is kept.
 */
export function encodeSections(sections: readonly Section[], headroom = 0): Uint8Array {
  const heads = sections.map((s) => sectionHeaderBytes(s.name));
  const total = sections.reduce((n, s, i) => n + heads[i] + s.payload.length, headroom);
  const out = new Uint8Array(total);
  let at = headroom;
  sections.forEach((s, i) => {
    const end = at + heads[i] + s.payload.length;
    out.set(s.payload, at + heads[i]);
    frameSection(out.subarray(at, end), s.name, s.version);
    at = end;
  });
  return out;
}

/** Bytes of a section's header, before its payload. */
export function sectionHeaderBytes(name: string): number {
  return FIXED + utf8.encode(name).length;
}

/**
 * One section framed in place: `bytes` is sectionHeaderBytes(name) bytes of
 * room, then the payload already written there; the header goes into the room
 * (checksum included) and `bytes` is the encoded section, as encodeSections
 * would write it, without a copy of the payload.
 */
export function frameSection(bytes: Uint8Array, name: string, version: number): Uint8Array {
  const n = utf8.encode(name);
  const at = 2 + n.length;
  if (n.length === 0 || n.length > 0xffff) throw new RangeError(`section name "${name}"`);
  if (!Number.isInteger(version) || version < 0 || version > 0xffffffff) throw new RangeError(`section "${name}" version ${version}`);
  if (bytes.length < at + 16) throw new RangeError(`${bytes.length} bytes leave no room for section "${name}"'s header`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  dv.setUint16(0, n.length, true);
  bytes.set(n, 2);
  dv.setUint32(at, version, true);
  dv.setBigUint64(at + 4, BigInt(bytes.length - at - 16), true);
  dv.setUint32(at + 12, crc32(bytes.subarray(at + 16)), true);
  return bytes;
}

/**
 * Decodes what encodeSections wrote, checking every length and checksum;
 * `where` names the container in errors about its framing. The payloads are
 * views into `bytes`.
 */
export function decodeSections(bytes: Uint8Array, where = "header"): Section[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Section[] = [];
  let at = 0;
  while (at < bytes.length) {
    const seen = out.length === 0 ? where : `${where} after "${out[out.length - 1].name}"`;
    if (bytes.length - at < 2) throw new SectionError(seen, "truncated: a section name length is cut off");
    const nameLen = dv.getUint16(at, true);
    if (nameLen === 0) throw new SectionError(seen, "a section with an empty name");
    if (bytes.length - at < FIXED + nameLen) throw new SectionError(seen, "truncated: a section header is cut off");
    let name: string;
    try {
      name = fromUtf8.decode(bytes.subarray(at + 2, at + 2 + nameLen));
    } catch {
      throw new SectionError(seen, "a section name is not UTF-8");
    }
    at += 2 + nameLen;
    const version = dv.getUint32(at, true);
    const length = dv.getBigUint64(at + 4, true);
    const sum = dv.getUint32(at + 12, true);
    at += 16;
    if (length > BigInt(bytes.length - at)) {
      throw new SectionError(name, `truncated: ${length} payload bytes declared, ${bytes.length - at} present`);
    }
    const payload = bytes.subarray(at, at + Number(length));
    if (crc32(payload) !== sum) throw new SectionError(name, "checksum mismatch: the payload is damaged");
    out.push({ name, version, payload });
    at += payload.length;
  }
  return out;
}

/**
 * The one section named `name` of a decoded list, checked for its version:
 * missing, duplicated or of another version is refused naming it.
 */
export function takeSection(sections: readonly Section[], name: string, version: number): Section {
  const found = sections.filter((s) => s.name === name);
  if (found.length === 0) throw new SectionError(name, "missing");
  if (found.length > 1) throw new SectionError(name, `present ${found.length} times`);
  if (found[0].version !== version) throw new SectionError(name, `version ${found[0].version}, this reader knows ${version}`);
  return found[0];
}
