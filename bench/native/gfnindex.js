// The core's own gfn search in native C (gfnindex.c) over a copy of the
// core's own records and bucket index: read the copy out of the core, run
// the C over it, read back its answers. Used by bench/lookup.js (timing and
// a key-by-key check) and test/native-gfn-index.test.ts (the check alone).
import { readFileSync } from "node:fs";
import * as native from "./native.js";

/**
 * The active set's image (assembly/debug/introspect.ts gfnIndexImage, through
 * the harness export benchGfnIndexImage) as u64 words; the core's copy is freed.
 */
export function gfnIndexImage(core, vmFd, asId = 0) {
  const img = core.benchGfnIndexImage(vmFd, asId);
  if (img === 0) throw new Error("benchGfnIndexImage: out of memory");
  const [, , , buckets, positions] = new BigUint64Array(core.memory.buffer, img, 6);
  // 6-word header, 32-byte records, then u32 index[buckets + 1] padded to 8 bytes
  const words = 6 + Number(positions) * 4 + (buckets === 0n ? 0 : Math.ceil((Number(buckets) + 1) / 2));
  const image = Array.from(new BigUint64Array(core.memory.buffer, img, words));
  core.kmfree(img);
  return image;
}

/**
 * Runs gfnindex.c over an image: times `batch` (MIN_MS, ROUNDS as for the
 * other native baselines) and answers every gfn of `checks`. Its parsed
 * output ({ checksum_random, random_ns, raw }) plus hvas (BigUint64Array, one
 * per check gfn, 0 for a miss), or { skipped }.
 */
export function runGfnIndex(name, image, batch, checks, minMs, rounds) {
  const file = native.writeU64(`${name}.bin`, [...image, batch.length, ...batch, checks.length, ...checks]);
  const r = native.run("gfnindex", [file, minMs, rounds, `${file}.out`]);
  if (r.skipped) return r;
  // A Buffer may be a view into a larger shared pool (Node 24 reads small files into one): copy its own bytes.
  const out = readFileSync(`${file}.out`);
  return { ...r, hvas: new BigUint64Array(out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength)) };
}
