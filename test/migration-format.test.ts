// The migration layer's byte formats: CRC-32, sections, page runs. Each rule
// of src/migration/{crc32,section,pages}.ts, and a randomized round trip of
// page runs against a plain model (a Map from page to bytes or zero).

import { describe, it, expect } from "vitest";
import { crc32 } from "../src/migration/crc32.js";
import { encodeSections, decodeSections, takeSection, sectionBytes, sectionHeaderBytes, frameSection, SectionError, type Section } from "../src/migration/section.js";
import { PageWriter, decodePageRuns, isZeroPage, PAGE_BYTES } from "../src/migration/pages.js";
import { Rng } from "./rng.js";

const enc = new TextEncoder();
const P = BigInt(PAGE_BYTES);

describe("crc32", () => {
  it("crc32: the IEEE check value of \"123456789\" is 0xcbf43926", () => {
    expect(crc32(enc.encode("123456789"))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
  });
  it("crc32: sixteen bytes a step agrees with the bit-at-a-time definition, every length and alignment", () => {
    const bitwise = (b: Uint8Array) => {
      let c = 0xffffffff;
      for (const x of b) { c ^= x; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; }
      return ~c >>> 0;
    };
    const rng = new Rng(7);
    const buf = Uint8Array.from({ length: 300 }, () => rng.int(256));
    for (let start = 0; start < 9; start++) for (let len = 0; len < 40; len++) {
      const b = buf.subarray(start, start + len);
      expect(crc32(b)).toBe(bitwise(b));
    }
    expect(crc32(buf)).toBe(bitwise(buf));
  });
  it("crc32: continues across pieces", () => {
    const b = enc.encode("the quick brown fox jumps over the lazy dog");
    for (const k of [0, 1, 10, b.length]) expect(crc32(b.subarray(k), crc32(b.subarray(0, k)))).toBe(crc32(b));
  });
});

const sample = (): Section[] => [
  { name: "machine", version: 1, payload: enc.encode("{\"vcpus\":2}") },
  { name: "vcpu.0", version: 3, payload: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]) },
  { name: "empty", version: 0, payload: new Uint8Array(0) },
];

describe("sections", () => {
  it("section: encode / decode round-trips name, version and payload", () => {
    const bytes = encodeSections(sample());
    expect(bytes.length).toBe(sample().reduce((n, s) => n + sectionBytes(s), 0));
    const back = decodeSections(bytes);
    expect(back.map((s) => [s.name, s.version, [...s.payload]])).toEqual(sample().map((s) => [s.name, s.version, [...s.payload]]));
  });

  it("section: frameSection frames a payload written after its header's room, byte for byte as encodeSections", () => {
    const payload = Uint8Array.from({ length: 300 }, (_, i) => (i * 7) & 0xff);
    const room = sectionHeaderBytes("pages");
    const bytes = new Uint8Array(room + payload.length);
    bytes.set(payload, room);
    expect(frameSection(bytes, "pages", 1)).toEqual(encodeSections([{ name: "pages", version: 1, payload }]));
    expect(() => frameSection(new Uint8Array(room - 1), "pages", 1)).toThrow(RangeError);
  });

  it("section: a damaged payload is refused naming its section", () => {
    const bytes = encodeSections(sample());
    const damaged = bytes.slice();
    // a payload byte of vcpu.0, past the first section and vcpu.0's own header
    const off = sectionBytes(sample()[0]) + 2 + "vcpu.0".length + 16 + 3;
    damaged[off] ^= 0x40;
    expect(() => decodeSections(damaged)).toThrow(/section "vcpu.0": checksum mismatch/);
  });

  it("section: every truncation is refused, never misread", () => {
    const bytes = encodeSections(sample());
    const ends = new Set<number>([0]);
    let sum = 0;
    for (const s of sample()) ends.add((sum += sectionBytes(s)));
    for (let n = 1; n < bytes.length; n++) {
      if (ends.has(n)) expect(decodeSections(bytes.subarray(0, n)).length).toBeGreaterThan(0);
      else expect(() => decodeSections(bytes.subarray(0, n))).toThrow(SectionError);
    }
  });

  it("section: every single-bit flip is detected (refused or changes no payload byte)", () => {
    const bytes = encodeSections(sample());
    const want = sample();
    for (let i = 0; i < bytes.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const d = bytes.slice();
        d[i] ^= 1 << bit;
        let got: Section[] | null = null;
        try { got = decodeSections(d); } catch (e) { expect(e).toBeInstanceOf(SectionError); continue; }
        // A flip in a name or version decodes: the reader's takeSection then refuses what it does not expect.
        const same = got.length === want.length && got.every((s, k) => s.name === want[k].name && s.version === want[k].version);
        expect(same).toBe(false);
        expect(got.map((s) => [...s.payload])).toEqual(want.map((s) => [...s.payload]));
      }
    }
  });

  it("section: takeSection refuses missing, duplicated and other-version sections by name", () => {
    const s = sample();
    expect(takeSection(s, "vcpu.0", 3).payload.length).toBe(8);
    expect(() => takeSection(s, "devices", 1)).toThrow(/section "devices": missing/);
    expect(() => takeSection([...s, s[0]], "machine", 1)).toThrow(/section "machine": present 2 times/);
    expect(() => takeSection(s, "machine", 2)).toThrow(/section "machine": version 1, this reader knows 2/);
  });

  it("section: an empty name or a bad version cannot be written", () => {
    expect(() => encodeSections([{ name: "", version: 1, payload: new Uint8Array() }])).toThrow(RangeError);
    expect(() => encodeSections([{ name: "x", version: -1, payload: new Uint8Array() }])).toThrow(RangeError);
  });
});

const page = (fill: (i: number) => number) => Uint8Array.from({ length: PAGE_BYTES }, (_, i) => fill(i));

describe("page runs", () => {
  it("pages: zero pages travel as markers, contiguous pages coalesce into one run", () => {
    const w = new PageWriter();
    const data = new Uint8Array(4 * PAGE_BYTES);
    data[5] = 1; // page 0 data
    data[PAGE_BYTES + 9] = 2; // page 1 data; pages 2, 3 zero
    w.add(0, 0x80000000n, data);
    w.addZero(0, 0x80004000n, 3); // continues the zero run
    expect([w.dataPages, w.zeroPages]).toEqual([2, 5]);
    const bytes = w.take();
    expect(bytes.length).toBe(2 * 16 + 2 * PAGE_BYTES);
    const runs = decodePageRuns(bytes, "memory");
    expect(runs.map((r) => [r.gpa, r.count, r.data === null])).toEqual([[0x80000000n, 2, false], [0x80002000n, 5, true]]);
    expect(runs[0].data![5]).toBe(1);
    expect(w.take().length).toBe(0); // take() resets
  });

  it("pages: read(skipZero) leaves zero pages out and moves the data pages after them up; finish() hands over the reserve", () => {
    const w = new PageWriter({ reserve: 5 });
    const bytes = new Uint8Array(5 * PAGE_BYTES);
    for (const p of [1, 2, 4]) bytes[p * PAGE_BYTES + 7] = p; // pages 0 and 3 zero
    w.read(0, 0x10000n, 5, (into) => into.set(bytes), true);
    expect([w.dataPages, w.zeroPages]).toEqual([3, 0]);
    const out = w.finish();
    expect(out.byteOffset).toBe(0);
    const runs = decodePageRuns(out.subarray(5), "m");
    expect(runs.map((r) => [r.gpa, r.count, r.data && [...r.data].filter((b) => b !== 0)])).toEqual([
      [0x11000n, 2, [1, 2]], [0x14000n, 1, [4]]]);
    expect(w.finish().length).toBe(5); // starts over: the reserve alone
  });

  it("pages: isZeroPage looks at every byte, aligned or not", () => {
    const buf = new Uint8Array(PAGE_BYTES + 1);
    expect(isZeroPage(buf, 0)).toBe(true);
    expect(isZeroPage(buf.subarray(1), 0)).toBe(true);
    for (const i of [0, 7, 8, 2047, PAGE_BYTES - 1]) {
      buf[i + 1] = 9;
      expect(isZeroPage(buf, 1)).toBe(false);
      buf[i + 1] = 0;
      buf[i] = 9;
      expect(isZeroPage(buf, 0)).toBe(false);
      buf[i] = 0;
    }
  });

  it("pages: malformed runs are refused naming the section", () => {
    const w = new PageWriter();
    w.add(1, 0x1000n, page((i) => i & 0xff));
    const good = w.take();
    const bad = (patch: (d: DataView, b: Uint8Array) => void) => {
      const b = good.slice();
      patch(new DataView(b.buffer), b);
      return b;
    };
    expect(decodePageRuns(good, "m")[0].asId).toBe(1);
    expect(() => decodePageRuns(bad((d) => d.setUint8(0, 7)), "mem")).toThrow(/section "mem": page run 0 \(byte 0\): unknown kind 7/);
    expect(() => decodePageRuns(bad((d) => d.setUint16(2, 1, true)), "mem")).toThrow(/reserved bits/);
    expect(() => decodePageRuns(bad((d) => d.setUint32(4, 0, true)), "mem")).toThrow(/no pages/);
    expect(() => decodePageRuns(bad((d) => d.setBigUint64(8, 0x1001n, true)), "mem")).toThrow(/not page aligned/);
    expect(() => decodePageRuns(bad((d) => { d.setBigUint64(8, 0xfffffffffffff000n, true); d.setUint32(4, 2, true); }), "mem")).toThrow(/wraps/);
    expect(() => decodePageRuns(bad((d) => d.setUint32(4, 2, true)), "mem")).toThrow(/truncated/);
    expect(() => decodePageRuns(good.subarray(0, 10), "mem")).toThrow(/truncated: page run 0 \(byte 0\) header/);
  });

  it("pages: bad input to the writer is a RangeError", () => {
    const w = new PageWriter();
    expect(() => w.add(0, 0n, new Uint8Array(100))).toThrow(RangeError);
    expect(() => w.addZero(0, 0x10n, 1)).toThrow(RangeError);
    expect(() => w.addZero(256, 0n, 1)).toThrow(RangeError);
    expect(() => w.addZero(0, 0xfffffffffffff000n, 2)).toThrow(RangeError);
  });

  it("pages: random page sets round-trip against a model, added or read in place (zero pages moved out), any reserve", () => {
    for (let seed = 1; seed <= 40; seed++) {
      const rng = new Rng(seed);
      // Each page as its CRC-32 (or null for zero): comparing maps of 4 KiB arrays took seconds.
      const model = new Map<string, number | null>();
      const reserve = rng.int(30);
      // A small first buffer: read() grows it before the pages land, add() as it goes.
      const w = new PageWriter({ reserve, capacity: reserve + rng.range(1, 3) * PAGE_BYTES });
      let gpa = BigInt(rng.int(64)) * P;
      for (let k = 0; k < 30; k++) {
        const asId = rng.int(2);
        const n = rng.range(1, 4);
        const bytes = new Uint8Array(n * PAGE_BYTES);
        for (let p = 0; p < n; p++) if (rng.chance(0.6)) bytes[p * PAGE_BYTES + rng.int(PAGE_BYTES)] = rng.range(1, 255);
        if (rng.chance(0.5)) w.add(asId, gpa, bytes);
        else w.read(asId, gpa, n, (into) => into.set(bytes));
        for (let p = 0; p < n; p++) {
          const pg = bytes.subarray(p * PAGE_BYTES, (p + 1) * PAGE_BYTES);
          model.set(`${asId}:${gpa + BigInt(p) * P}`, isZeroPage(pg) ? null : crc32(pg));
        }
        gpa += BigInt(n + (rng.chance(0.5) ? 0 : rng.int(8))) * P;
      }
      const got = new Map<string, number | null>();
      const bytes = seed % 2 ? w.take() : w.finish().subarray(reserve);
      for (const r of decodePageRuns(bytes, "memory")) {
        for (let p = 0; p < r.count; p++) {
          got.set(`${r.asId}:${r.gpa + BigInt(p) * P}`, r.data ? crc32(r.data.subarray(p * PAGE_BYTES, (p + 1) * PAGE_BYTES)) : null);
        }
      }
      expect(got, `seed ${seed}`).toEqual(model);
    }
  });
});
