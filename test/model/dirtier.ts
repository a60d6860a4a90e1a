// A plain TypeScript reference model of the dirtier guest (guests/dirtier):
// from the config and each hart's op count it replays the xorshift stream and
// says what the region, the checksum table, the running checksums and the
// stream states must hold, so the host can check a guest's memory
// independently of the guest's own verify. The stream and checksum functions
// are guests/dirtier/reference.mjs's (the contract); this file only replays.
//
// A hart stopped between two instructions may be inside op n+1 while its
// status says n ops: that op's page may hold any mix of its words before and
// after it, and its table entry, running checksum and stream state either
// value. check() allows exactly that and nothing more.
import {
  PAGE_SIZE, PAGE_WORDS, DIRTIER_TABLE, DIRTIER_FLAG_PAGE, DIRTIER_FLAG_FILL, xorshift64, hartSeed, mix, partition, pickPage,
  readDirtierStatus,
// @ts-expect-error plain JS module without types
} from "../../guests/dirtier/reference.mjs";

const MASK64 = (1n << 64n) - 1n;

export interface DirtierConfig {
  seed: bigint;
  base: bigint;
  pages: number;
  /** Ops per second of guest time per hart (0 = unlimited). */
  rate?: bigint;
  /** Whole-page writes (else one u64 per op). */
  page?: boolean;
  /** The first ops rewrite every page of the partition once, in order. */
  fill?: boolean;
  harts?: number;
  limit?: bigint;
  flags?: bigint;
}

/** What the host can read: a Vm, or anything with readGuest. */
export interface GuestReader {
  readGuest(gpa: bigint, len: number): Uint8Array;
}

/** One op's effect: the page it wrote and that page's words and table entry after it. */
interface Op {
  page: number;
  words: BigUint64Array;
  table: bigint;
  x: bigint;
}

interface HartModel {
  first: number;
  count: number;
  ops: bigint;
  x: bigint;
  running: bigint;
  /** The region page of each op so far (op n at index n - 1). */
  pages: number[];
}

export interface DirtierMismatch {
  /** Region pages whose memory disagrees with the model. */
  pages: number[];
  /** Region pages whose table entry disagrees with the model. */
  table: number[];
  /** Harts whose running checksum or stream state (status slot) disagrees with the model. */
  harts: number[];
}

export class DirtierModel {
  readonly harts: number;
  readonly wholePage: boolean;
  readonly fill: boolean;
  private readonly words = new Map<number, BigUint64Array>();
  private readonly tableEntries = new Map<number, bigint>();
  private readonly hart: HartModel[];

  constructor(readonly cfg: DirtierConfig) {
    this.harts = cfg.harts ?? 1;
    this.wholePage = cfg.page === true || ((cfg.flags ?? 0n) & DIRTIER_FLAG_PAGE) !== 0n;
    this.fill = cfg.fill === true || ((cfg.flags ?? 0n) & DIRTIER_FLAG_FILL) !== 0n;
    this.hart = Array.from({ length: this.harts }, (_, h) => {
      const { first, count } = partition(cfg.pages, this.harts, h) as { first: number; count: number };
      return { first, count, ops: 0n, x: hartSeed(cfg.seed, h) as bigint, running: 0n, pages: [] };
    });
  }

  /** The words of region page p (all zero if never written). */
  pageWords(p: number): BigUint64Array {
    return this.words.get(p) ?? new BigUint64Array(PAGE_WORDS);
  }

  tableEntry(p: number): bigint {
    return this.tableEntries.get(p) ?? 0n;
  }

  /** Hart h's op count, running checksum and stream state as replayed so far. */
  hartState(h: number): { ops: bigint; running: bigint; x: bigint; first: number; count: number } {
    const { ops, running, x, first, count } = this.hart[h];
    return { ops, running, x, first, count };
  }

  /** The effect of hart h's next op, without applying it. */
  private nextOp(h: number): Op {
    const m = this.hart[h];
    const filling = this.fill && m.ops < BigInt(m.count);
    const r = filling ? m.x : xorshift64(m.x) as bigint;
    const page = filling ? m.first + Number(m.ops) : pickPage(r, m.first, m.count) as number;
    const words = this.pageWords(page).slice();
    let x = r, table: bigint;
    if (filling || this.wholePage) {
      table = 0n;
      for (let k = 0; k < PAGE_WORDS; k++) {
        x = xorshift64(x) as bigint;
        words[k] = x;
        table += mix(k, x) as bigint;
      }
    } else {
      const k = Number(r & BigInt(PAGE_WORDS - 1));
      x = xorshift64(x) as bigint;
      table = this.tableEntry(page) - (mix(k, words[k]) as bigint) + (mix(k, x) as bigint);
      words[k] = x;
    }
    return { page, words, table: table & MASK64, x };
  }

  /** Replays hart h forward to `ops` ops (never backward). */
  advanceTo(h: number, ops: bigint): void {
    const m = this.hart[h];
    if (ops < m.ops) throw new RangeError(`hart ${h}: ${ops} ops after ${m.ops}`);
    for (; m.ops < ops; m.ops++) {
      const op = this.nextOp(h);
      m.running = (m.running + op.table - this.tableEntry(op.page)) & MASK64;
      this.words.set(op.page, op.words);
      this.tableEntries.set(op.page, op.table);
      m.x = op.x;
      m.pages.push(op.page);
    }
  }

  /** The region pages hart h's ops from+1..to wrote (replayed already). */
  pagesOf(h: number, from: bigint, to: bigint): Set<number> {
    return new Set(this.hart[h].pages.slice(Number(from), Number(to)));
  }

  /** Every region page the model has written so far. */
  writtenPages(): Set<number> {
    return new Set(this.words.keys());
  }

  /**
   * Replays every hart to the op count its status slot gives, then compares
   * the region, the table and the slots' running checksums and stream states
   * with the guest's memory, allowing each hart's op in flight (see above).
   */
  check(vm: GuestReader): DirtierMismatch {
    const status = readDirtierStatus(vm) as { harts: { ops: bigint; running: bigint; x: bigint }[] };
    const out: DirtierMismatch = { pages: [], table: [], harts: [] };
    const inFlight = new Map<number, Op>();
    for (let h = 0; h < this.harts; h++) {
      this.advanceTo(h, status.harts[h].ops);
      const m = this.hart[h], op = this.nextOp(h), slot = status.harts[h];
      inFlight.set(op.page, op);
      const running = (m.running + op.table - this.tableEntry(op.page)) & MASK64;
      if (![m.running, running].includes(slot.running) || ![m.x, op.x].includes(slot.x)) out.harts.push(h);
    }
    const { base, pages } = this.cfg;
    const tableBytes = vm.readGuest(DIRTIER_TABLE, pages * 8);
    const table = new DataView(tableBytes.buffer, tableBytes.byteOffset, tableBytes.byteLength);
    const chunk = 256; // pages read at once
    for (let p0 = 0; p0 < pages; p0 += chunk) {
      const n = Math.min(chunk, pages - p0);
      const bytes = vm.readGuest(base + BigInt(p0) * PAGE_SIZE, n * Number(PAGE_SIZE));
      const mem = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (let p = p0; p < p0 + n; p++) {
        const want = this.pageWords(p), op = inFlight.get(p), at = (p - p0) * Number(PAGE_SIZE);
        for (let k = 0; k < PAGE_WORDS; k++) {
          const got = mem.getBigUint64(at + 8 * k, true);
          if (got !== want[k] && (op === undefined || got !== op.words[k])) {
            out.pages.push(p);
            break;
          }
        }
        const entry = table.getBigUint64(8 * p, true);
        if (entry !== this.tableEntry(p) && (op === undefined || entry !== op.table)) out.table.push(p);
      }
    }
    return out;
  }
}
