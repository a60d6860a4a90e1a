// The dirtier guest's contract on the host (guests/README.md, "dirtier"): its
// fixed addresses and fields, the config block's bytes, the status block read
// back, the mailbox, and the guest's stream and checksum. Plain JS so the
// benchmarks can drive the guest too; test/model/dirtier.ts replays it.
import { MASK64 } from '../common/pattern.mjs';

export const PAGE_SIZE = 4096n;
export const PAGE_WORDS = 512;
export const DIRTIER_MAX_HARTS = 16;
export const DIRTIER_CONTROL = 0x80200000n;
export const DIRTIER_STATUS = DIRTIER_CONTROL + 0x40n;
export const DIRTIER_HARTS = DIRTIER_CONTROL + 0x100n;
export const DIRTIER_HART_STRIDE = 0x80n;
export const DIRTIER_TABLE = DIRTIER_CONTROL + 0x1000n;
/** Where a region begins when the table (up to 523,776 pages, ~2 GiB of region) fits below it. */
export const DIRTIER_DEFAULT_BASE = 0x80400000n;
export const DIRTIER_MAGIC = 0x3152454954524944n; // "DIRTIER1"
export const DIRTIER_FLAG_PAGE = 1n;
export const DIRTIER_FLAG_FILL = 2n;
/** Mailbox requests: verify and go on dirtying; verify and shut down (SRST reason 0 ok, 1 bad). */
export const DIRTIER_VERIFY = 1n;
export const DIRTIER_VERIFY_EXIT = 2n;
export const DIRTIER_STATE_RUNNING = 1n;
export const DIRTIER_STATE_VERIFYING = 2n;
/** Verify result bits: a page disagrees with its table entry; the table's / the pages' sum disagrees with the running checksum. */
export const DIRTIER_BAD_PAGES = 1n;
export const DIRTIER_BAD_TABLE = 2n;
export const DIRTIER_BAD_MEMORY = 4n;

const CONFIG_FIELDS = ['magic', 'seed', 'base', 'pages', 'rate', 'flags', 'harts', 'limit'];
const STATUS_FIELDS = ['mailbox', 'state', 'verifies', 'result', 'bad', 'firstBad', 'checked', 'vround', 'harts'];
const HART_FIELDS = ['ops', 'running', 'x', 'idle', 't0', 'tLast', 'served', 'result', 'bad', 'firstBad', 'checked',
  'first', 'count'];
/** Byte offsets of the fields: config from DIRTIER_CONTROL, status from DIRTIER_CONTROL, a hart's from its slot. */
export const CONFIG_OFFSETS = Object.fromEntries(CONFIG_FIELDS.map((f, i) => [f, i * 8]));
export const STATUS_OFFSETS = Object.fromEntries(STATUS_FIELDS.map((f, i) => [f, 0x40 + i * 8]));
export const HART_OFFSETS = Object.fromEntries(HART_FIELDS.map((f, i) => [f, i * 8]));
export const dirtierHartGpa = (h) => DIRTIER_HARTS + DIRTIER_HART_STRIDE * BigInt(h);
export const dirtierTableGpa = (page) => DIRTIER_TABLE + 8n * BigInt(page);
export const MAILBOX_GPA = DIRTIER_CONTROL + BigInt(STATUS_OFFSETS.mailbox);

/** The first page-aligned gpa above a table of `pages` entries: the lowest base the guest accepts. */
export const dirtierTableEnd = (pages) => (DIRTIER_TABLE + 8n * BigInt(pages) + PAGE_SIZE - 1n) & ~(PAGE_SIZE - 1n);

/** "Most of RAM above the image": the region from DIRTIER_DEFAULT_BASE to the end of RAM (RAM at 0x80000000). */
export function dirtierRegionFor(memSize) {
  const pages = (0x80000000n + BigInt(memSize) - DIRTIER_DEFAULT_BASE) / PAGE_SIZE;
  if (pages <= 0n) throw new RangeError(`memSize ${memSize}: no RAM above ${DIRTIER_DEFAULT_BASE.toString(16)}`);
  return { base: DIRTIER_DEFAULT_BASE, pages: Number(pages) };
}

/**
 * The config block's 64 bytes, for DIRTIER_CONTROL. `cfg`: seed, base, pages,
 * rate (ops per second of guest time per hart, 0 = unlimited), page (whole-page
 * writes), fill (first rewrite every page once, in order), harts (default 1),
 * limit (hart 0's ops before it verifies and shuts down, 0 = never); or flags itself.
 */
export function dirtierConfig(cfg) {
  const flags = (cfg.page ? DIRTIER_FLAG_PAGE : 0n) | (cfg.fill ? DIRTIER_FLAG_FILL : 0n);
  const c = { magic: DIRTIER_MAGIC, seed: 0n, rate: 0n, flags, harts: 1n, limit: 0n, ...cfg };
  const out = new Uint8Array(CONFIG_FIELDS.length * 8);
  const view = new DataView(out.buffer);
  CONFIG_FIELDS.forEach((f, i) => view.setBigUint64(i * 8, BigInt(c[f]) & MASK64, true));
  return out;
}

/** Writes the config block before the guest starts (vm: anything with writeGuest(gpa, bytes)). */
export function writeDirtierConfig(vm, cfg) {
  vm.writeGuest(DIRTIER_CONTROL, dirtierConfig(cfg));
}

const u64s = (bytes, fields, at) => {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Object.fromEntries(fields.map((f, i) => [f, view.getBigUint64(at + i * 8, true)]));
};

/** The status block and each running hart's slot (vm: anything with readGuest(gpa, len)). */
export function readDirtierStatus(vm) {
  const page = vm.readGuest(DIRTIER_CONTROL, Number(DIRTIER_TABLE - DIRTIER_CONTROL));
  const status = u64s(page, STATUS_FIELDS, 0x40);
  const n = Math.min(Number(status.harts), DIRTIER_MAX_HARTS);
  const harts = Array.from({ length: n }, (_, h) => u64s(page, HART_FIELDS, 0x100 + 0x80 * h));
  return { ...status, harts, ops: harts.reduce((s, h) => s + h.ops, 0n) };
}

/** Posts a verify request (exit: verify and shut down); refuses while one is pending. */
export function requestVerify(vm, exit = false) {
  if (verifyPending(vm)) throw new Error('dirtier: a verify request is already pending');
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, exit ? DIRTIER_VERIFY_EXIT : DIRTIER_VERIFY, true);
  vm.writeGuest(MAILBOX_GPA, b);
}

/** Whether the mailbox still holds a request the guest has not served. */
export function verifyPending(vm) {
  return new DataView(vm.readGuest(MAILBOX_GPA, 8).buffer).getBigUint64(0, true) !== 0n;
}

/** The line the guest prints for a verify's result. */
export function dirtierVerifyLine({ result, bad, firstBad, checked }) {
  return result === 0n ? `dirtier verify ok pages=${checked}\n`
    : `dirtier verify BAD pages=${bad} first=0x${firstBad.toString(16).padStart(16, '0')} result=${result}\n`;
}

// The guest's stream and checksum (main.c).
const MIX_MUL = 0xff51afd7ed558ccdn;
const MIX_POS = 0x9E3779B97F4A7C15n;

export const xorshift64 = (x) => {
  x ^= (x << 13n) & MASK64;
  x ^= x >> 7n;
  return x ^ ((x << 17n) & MASK64);
};

/** A hart's first xorshift state: splitmix64(seed + (hartid + 1) * MIX_POS), never 0. */
export function hartSeed(seed, hartid) {
  let z = (BigInt(seed) + BigInt(hartid + 1) * MIX_POS) & MASK64;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  z ^= z >> 31n;
  return z === 0n ? MIX_POS : z;
}

/** The checksum term of word w at word index k of a page. */
export function mix(k, w) {
  const h = (BigInt(w) * MIX_MUL) & MASK64;
  return ((h ^ (h >> 32n)) * ((BigInt(2 * k + 1) * MIX_POS) & MASK64)) & MASK64;
}

/** A page's table entry: the sum of its words' terms (a zero page sums to 0). */
export function pageSum(words) {
  let s = 0n;
  for (let k = 0; k < PAGE_WORDS; k++) if (words[k] !== 0n) s += mix(k, words[k]);
  return s & MASK64;
}

/** Hart h's partition of `pages` region pages among `harts`: [first, first + count). */
export function partition(pages, harts, h) {
  const P = BigInt(pages), H = BigInt(harts), first = (BigInt(h) * P) / H;
  return { first: Number(first), count: Number((BigInt(h + 1) * P) / H - first) };
}

/** The region page (index) an op's first draw r picks in a partition. */
export const pickPage = (r, first, count) => first + Number(((r >> 32n) * BigInt(count)) >> 32n);
