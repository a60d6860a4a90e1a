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

/** Run header bytes before a run's data. */
export const RUN_HEADER_BYTES = HEADER;
const MAX_RUN = 0xffffffff;

/**
 * Whether the 4 KiB page at `offset` of bytes is all zero. `words` may be an
 * Int32Array over the whole of bytes.buffer from its first byte (a writer
 * keeps one per buffer, so checking a page allocates nothing); the bytes
 * before the first word boundary and after the last are looked at one by one.
 */
export function isZeroPage(bytes: Uint8Array, offset = 0, words?: Int32Array): boolean {
  const at = bytes.byteOffset + offset;
  const head = (4 - (at & 3)) & 3;
  const n = (PAGE_BYTES - head) >>> 2;
  for (let i = offset; i < offset + head; i++) if (bytes[i] !== 0) return false;
  for (let i = offset + head + n * 4; i < offset + PAGE_BYTES; i++) if (bytes[i] !== 0) return false;
  const w = words ?? new Int32Array(bytes.buffer, 0, bytes.buffer.byteLength >>> 2);
  // OR a block of words, then test: a branch per word costs more than the loads.
  for (let j = (at + head) >>> 2, end = j + n; j < end; j += 64) {
    let x = 0;
    for (let k = j, e = Math.min(end, j + 64); k < e; k++) x |= w[k];
    if (x !== 0) return false;
  }
  return true;
}

function checkRange(asId: number, gpa: bigint, count: number): void {
  if (!Number.isInteger(asId) || asId < 0 || asId > 0xff) throw new RangeError(`as_id ${asId}`);
  if (gpa % PAGE !== 0n || gpa < 0n || gpa + BigInt(count) * PAGE > 1n << 64n) throw new RangeError(`gpa 0x${gpa.toString(16)}`);
}

export interface PageWriterOptions {
  /**
   * Bytes left free at the start of every buffer for the caller's framing
   * (a "pages" message's section header): finish() hands them over with the
   * runs, take() leaves them out.
   */
  reserve?: number;
  /** Where each buffer comes from (a transport's reuse(): room no message in flight uses); default new ones. */
  buffer?: (bytes: number) => Uint8Array | null;
  /** Bytes of a buffer taken at a time (default 64 KiB; a full one grows). */
  capacity?: number;
}

/**
 * Collects pages into runs (zero pages become markers), encoding them as
 * they come into one buffer: read() has host memory read pages straight into
 * it and checks each for zero there, so a page is copied once on its way
 * into a message. Run positions are kept as page numbers (a gpa's gfn fits a
 * double), so adding a page allocates nothing.
 */
export class PageWriter {
  private readonly reserve: number;
  private readonly capacity: number;
  private readonly source: (bytes: number) => Uint8Array | null;
  private buf: Uint8Array<ArrayBufferLike> = new Uint8Array(0);
  private dv = new DataView(this.buf.buffer);
  private words: Int32Array<ArrayBufferLike> = new Int32Array(0);
  /** Bytes written, the reserve included. */
  private end = 0;
  /** The open run: its header's offset (-1: none), address space, kind, pages, and the gfn after it. */
  private run = -1;
  private runAsId = 0;
  private runZero = false;
  private runCount = 0;
  private runNext = 0;
  /** Pages added as data, and as zero markers, since the last take() / finish(). */
  dataPages = 0;
  zeroPages = 0;

  constructor(opts: PageWriterOptions = {}) {
    this.reserve = opts.reserve ?? 0;
    this.capacity = opts.capacity ?? 64 << 10;
    this.source = opts.buffer ?? (() => null);
    this.end = this.reserve;
  }

  /** Encoded bytes of the runs so far (the reserve not counted). */
  get byteLength(): number {
    return this.end - this.reserve;
  }

  get pages(): number {
    return this.dataPages + this.zeroPages;
  }

  /** Pages that fit in the buffer without growing it, were each a data run of its own. */
  get room(): number {
    const free = (this.buf.length || this.capacity) - this.end;
    return Math.max(0, Math.floor(free / (PAGE_BYTES + HEADER)));
  }

  /** Adds whole pages at gpa from bytes (a multiple of 4096 long): the zero ones as markers. */
  add(asId: number, gpa: bigint, bytes: Uint8Array): void {
    if (bytes.length % PAGE_BYTES !== 0) throw new RangeError(`${bytes.length} bytes is not whole pages`);
    const count = bytes.length / PAGE_BYTES;
    checkRange(asId, gpa, count);
    const gfn = Number(gpa / PAGE);
    const words = new Int32Array(bytes.buffer, 0, bytes.buffer.byteLength >>> 2); // one view for every page's check
    for (let p = 0; p < count; p++) {
      const off = p * PAGE_BYTES;
      if (isZeroPage(bytes, off, words)) this.append(asId, gfn + p, true, 1);
      else {
        const at = this.append(asId, gfn + p, false, 1); // first: it may move the buffer
        this.buf.set(bytes.subarray(off, off + PAGE_BYTES), at);
      }
    }
  }

  /** Adds `count` zero pages at gpa (pages known to be zero without reading them, such as ones never written). */
  addZero(asId: number, gpa: bigint, count: number): void {
    checkRange(asId, gpa, count);
    if (count > 0) this.append(asId, Number(gpa / PAGE), true, count);
  }

  /**
   * Adds `count` pages at gpa that `fill` reads straight into the buffer
   * (host memory's readInto): each is checked for zero where it landed, a
   * zero one becomes a marker (or, with skipZero, is left out: a full
   * snapshot stores data pages only) and the data pages after it move up.
   */
  read(asId: number, gpa: bigint, count: number, fill: (into: Uint8Array) => void, skipZero = false): void {
    checkRange(asId, gpa, count);
    if (count <= 0) return;
    const gfn = Number(gpa / PAGE);
    const len = count * PAGE_BYTES;
    this.ensure(HEADER + len);
    // Where the first page's data goes: after the open run, or after a new run's header.
    const joins = this.joins(asId, gfn, false, count);
    let src = joins ? this.end : this.end + HEADER;
    fill(this.buf.subarray(src, src + len));
    // A page's data never lands past where it was read (a new header needs a zero page before it), so
    // moving one up never overwrites a page not yet looked at, and the buffer needs no more room.
    for (let p = 0; p < count; p++, src += PAGE_BYTES) {
      if (isZeroPage(this.buf, src, this.words)) {
        if (!skipZero) this.append(asId, gfn + p, true, 1);
        continue;
      }
      const at = this.append(asId, gfn + p, false, 1);
      if (at !== src) this.buf.copyWithin(at, src, src + PAGE_BYTES);
    }
  }

  /** Whether pages at gfn would continue the open run. */
  private joins(asId: number, gfn: number, zero: boolean, count: number): boolean {
    return this.run >= 0 && this.runAsId === asId && this.runZero === zero && this.runNext === gfn && this.runCount <= MAX_RUN - count;
  }

  /** Counts pages into the open run or a new one; returns where their data goes (data runs). */
  private append(asId: number, gfn: number, zero: boolean, count: number): number {
    const joins = this.joins(asId, gfn, zero, count);
    this.ensure((joins ? 0 : HEADER) + (zero ? 0 : count * PAGE_BYTES));
    if (joins) {
      this.runCount += count;
      this.dv.setUint32(this.run + 4, this.runCount, true);
    } else {
      const at = this.end;
      this.dv.setUint32(at, zero ? RUN_ZERO : RUN_DATA, true); // kind, as_id (below), reserved 0
      this.dv.setUint8(at + 1, asId);
      this.dv.setUint32(at + 4, count, true);
      this.dv.setBigUint64(at + 8, BigInt(gfn) * PAGE, true);
      this.end += HEADER;
      this.run = at;
      this.runAsId = asId;
      this.runZero = zero;
      this.runCount = count;
    }
    this.runNext = gfn + count;
    const data = this.end;
    if (zero) this.zeroPages += count;
    else {
      this.dataPages += count;
      this.end += count * PAGE_BYTES;
    }
    return data;
  }

  /** Room for n more bytes: a first buffer from the source, or a larger one holding everything so far. */
  private ensure(n: number): void {
    if (this.end + n <= this.buf.length) return;
    const old = this.buf;
    const want = Math.max(this.end + n, old.length === 0 ? this.capacity : old.length * 2);
    const given = old.length === 0 ? this.source(want) : null;
    this.buf = given && given.length >= want ? given : new Uint8Array(want);
    this.buf.set(old); // all of it: read() may have pages past `end` not yet looked at
    this.dv = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);
    this.words = new Int32Array(this.buf.buffer, 0, this.buf.buffer.byteLength >>> 2);
  }

  /** Starts over empty on a new buffer, handing out [from, end) of the old one. */
  private reset(from: number): Uint8Array {
    const out = this.buf.subarray(from, this.end);
    this.buf = new Uint8Array(0);
    this.end = this.reserve;
    this.run = -1;
    this.dataPages = this.zeroPages = 0;
    return out;
  }

  /** The encoded runs; the writer starts over empty. */
  take(): Uint8Array {
    return this.reset(this.reserve);
  }

  /**
   * The reserve followed by the encoded runs, for the caller to frame in
   * place (it begins where the buffer the writer was given begins: a
   * transport takes that room over whole); the writer starts over empty on a
   * new buffer.
   */
  finish(): Uint8Array {
    if (this.buf.length === 0) this.ensure(0);
    return this.reset(0);
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
