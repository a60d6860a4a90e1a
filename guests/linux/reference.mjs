// Host models of guests/linux: the result line its /init prints (init.c) and
// the lines of the userland's memtouch and dirty (userland/memtouch.c, dirty.c).
import { LCG_SEED, lcgBytes, fnv1a64, hex16, wordBytes } from '../common/pattern.mjs';

export const INIT_PAGES = 256;
export const INIT_FIRST_LINE_PREFIX = 'webkvm-init: hello from Linux ';
/** The line /init prints when user mode read time, cycle and instret without a trap. */
export const INIT_COUNTERS_LINE = 'webkvm-init: user-mode counters readable (time, cycle, instret)\n';

/** What the parent leaves in its mapping and what the child hashes after complementing every byte. */
export function initSums(pages = INIT_PAGES) {
  const region = lcgBytes(LCG_SEED, (pages * 4096) / 8);
  const parent = fnv1a64(region);
  const child = fnv1a64(region.map((b) => b ^ 0xff));
  return { parent, child };
}

/** The init's result line: FNV-1a 64 over the two sums, each 8 little-endian bytes. */
export function initResultLine(pages = INIT_PAGES) {
  const { parent, child } = initSums(pages);
  return `webkvm-init: ok pages=${pages} checksum=0x${hex16(fnv1a64(wordBytes([parent, child])))}\n`;
}

/** memtouch MIB's line: the same stream and hash as the init's parent mapping, over MIB MiB. */
export function memtouchLine(mib) {
  const pages = mib * 256;
  return `memtouch mib=${mib} pages=${pages} checksum=0x${hex16(initSums(pages).parent)}\n`;
}

/** dirty PAGES ROUNDS STRIDE's line: FNV-1a 64 of each written page's first word (ROUNDS << 32 | page). */
export function dirtyLine(pages, rounds, stride = 1) {
  const words = [];
  for (let i = 0; i < pages; i += stride) words.push((BigInt(rounds) << 32n) | BigInt(i));
  return `dirty pages=${pages} stride=${stride} rounds=${rounds} written=${words.length} ` +
    `checksum=0x${hex16(fnv1a64(wordBytes(words)))}\n`;
}

// node guests/linux/reference.mjs
if (import.meta.url === `file://${process.argv[1]}`) {
  process.stdout.write(initResultLine());
}
