// Page runs: guest memory as a snapshot stores it and a migration sends it.
// Contiguous pages of one address space travel as a run: either their bytes or,
// for pages that are all zero, a marker alone (QEMU's RAM_SAVE_FLAG_ZERO), so a
// mostly empty guest costs headers, not 4 KiB a page.
//
// One run, little endian: u8 kind (1 data, 2 zero) | u8 as_id | u16 0 | u32 pages | u64 gpa | data (pages * 4096, kind 1 only)

import { SectionError } from "./section.js";

export const PAGE_BYTES = 4096;
const PAGE = BigInt(PAGE_BYTES);
const HEADER = 16;
export const RUN_DATA = 1;
export const RUN_ZERO = 2;

/** A run of pages: `data` holds count * 4096 bytes, or is null for zero pages. */
export interface PageRun {
  asId: number;
  gpa: bigint;
  count: number;
  data: Uint8Array | null;
}

/** Whether the 4 KiB page at `offset` of bytes is all zero. */
export function isZeroPage(bytes: Uint8Array, offset = 0): boolean {
  const at = bytes.byteOffset + offset;
  if (at % 8 === 0) {
    const words = new BigUint64Array(bytes.buffer, at, PAGE_BYTES / 8);
    for (let i = 0; i < words.length; i++) if (words[i] !== 0n) return false;
    return true;
  }
  for (let i = offset; i < offset + PAGE_BYTES; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** Collects pages into runs (zero pages become markers) and encodes them. */
export class PageWriter {
  private runs: { asId: number; gpa: bigint; count: number; zero: boolean }[] = [];
  private parts: Uint8Array[][] = [];
  /** Pages added as data, and as zero markers, since the last take(). */
  dataPages = 0;
  zeroPages = 0;

  /** Encoded bytes take() would return. */
  get byteLength(): number {
    return this.runs.length * HEADER + this.dataPages * PAGE_BYTES;
  }

  get pages(): number {
    return this.dataPages + this.zeroPages;
  }

  /** Adds whole pages at gpa from bytes (a multiple of 4096 long): the zero ones as markers. */
  add(asId: number, gpa: bigint, bytes: Uint8Array): void {
    if (bytes.length % PAGE_BYTES !== 0) throw new RangeError(`${bytes.length} bytes is not whole pages`);
    for (let off = 0; off < bytes.length; off += PAGE_BYTES) {
      const g = gpa + BigInt(off / PAGE_BYTES) * PAGE;
      if (isZeroPage(bytes, off)) this.addZero(asId, g, 1);
      else this.append(asId, g, 1, bytes.subarray(off, off + PAGE_BYTES));
    }
  }

  /** Adds `count` zero pages at gpa (pages known to be zero without reading them, such as ones never written). */
  addZero(asId: number, gpa: bigint, count: number): void {
    if (count > 0) this.append(asId, gpa, count, null);
  }

  private append(asId: number, gpa: bigint, count: number, data: Uint8Array | null): void {
    if (!Number.isInteger(asId) || asId < 0 || asId > 0xff) throw new RangeError(`as_id ${asId}`);
    if (gpa % PAGE !== 0n || gpa < 0n || gpa + BigInt(count) * PAGE > 1n << 64n) throw new RangeError(`gpa 0x${gpa.toString(16)}`);
    const last = this.runs[this.runs.length - 1];
    if (last && last.asId === asId && last.zero === (data === null) && last.count < 0xffffffff - count
        && last.gpa + BigInt(last.count) * PAGE === gpa) {
      last.count += count;
      if (data) this.parts[this.parts.length - 1].push(data);
    } else {
      this.runs.push({ asId, gpa, count, zero: data === null });
      this.parts.push(data ? [data] : []);
    }
    if (data) this.dataPages += count;
    else this.zeroPages += count;
  }

  /** The encoded runs; the writer starts over empty. */
  take(): Uint8Array {
    const out = new Uint8Array(this.byteLength);
    const dv = new DataView(out.buffer);
    let at = 0;
    this.runs.forEach((r, i) => {
      dv.setUint8(at, r.zero ? RUN_ZERO : RUN_DATA);
      dv.setUint8(at + 1, r.asId);
      dv.setUint32(at + 4, r.count, true);
      dv.setBigUint64(at + 8, r.gpa, true);
      at += HEADER;
      for (const p of this.parts[i]) {
        out.set(p, at);
        at += p.length;
      }
    });
    this.runs = [];
    this.parts = [];
    this.dataPages = this.zeroPages = 0;
    return out;
  }
}

/**
 * The runs of an encoded payload, every field checked; errors name `section`.
 * Data runs' bytes are views into payload.
 */
export function decodePageRuns(payload: Uint8Array, section: string): PageRun[] {
  const dv = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const out: PageRun[] = [];
  for (let at = 0; at < payload.length;) {
    const where = `page run ${out.length} (byte ${at})`;
    if (payload.length - at < HEADER) throw new SectionError(section, `truncated: ${where} header cut off`);
    const kind = dv.getUint8(at);
    const asId = dv.getUint8(at + 1);
    const count = dv.getUint32(at + 4, true);
    const gpa = dv.getBigUint64(at + 8, true);
    if (kind !== RUN_DATA && kind !== RUN_ZERO) throw new SectionError(section, `${where}: unknown kind ${kind}`);
    if (dv.getUint16(at + 2, true) !== 0) throw new SectionError(section, `${where}: reserved bits set`);
    if (count === 0) throw new SectionError(section, `${where}: no pages`);
    if (gpa % PAGE !== 0n) throw new SectionError(section, `${where}: gpa 0x${gpa.toString(16)} not page aligned`);
    if (gpa + BigInt(count) * PAGE > 1n << 64n) throw new SectionError(section, `${where}: gpa range wraps`);
    at += HEADER;
    let data: Uint8Array | null = null;
    if (kind === RUN_DATA) {
      const len = count * PAGE_BYTES;
      if (payload.length - at < len) throw new SectionError(section, `truncated: ${where} has ${payload.length - at} of ${len} data bytes`);
      data = payload.subarray(at, at + len);
      at += len;
    }
    out.push({ asId, gpa, count, data });
  }
  return out;
}
