// Guest RAM on both ends of a migration (QEMU's ram.c): the source reads the
// pages a round found dirty into page runs — a page no frame backs (never
// written: kvm.memory.resident is false) becomes a zero marker without being
// read, a page of zeros too — and the destination keeps what arrives in host
// memory of its own until the machine it restores can take it. Both sides
// digest the whole memory the same way to compare at the switch-over.

import type { HostMemory } from "../host-memory.js";
import { crc32 } from "./crc32.js";
import { PAGE_BYTES, PageWriter, type PageRun } from "./pages.js";
import { SectionError } from "./section.js";
import type { Machine } from "../vmm/machine.js";
import { setBits } from "../bitmap.js";
import { MigrationError, type RegionInfo } from "./stream.js";

const PAGE = BigInt(PAGE_BYTES);
const ZERO_PAGE = new Uint8Array(PAGE_BYTES);
/** Pages read from host memory at once where a whole region is walked. */
export const READ_PAGES = 256;

/** A region and where its bytes are in a host memory. */
export interface MappedRegion extends RegionInfo {
  hva: bigint;
}

/**
 * Runs of pages [first, first + count) of the host memory at hva that a frame
 * backs, or that none does (never written: zero without being read), each at
 * most `max` pages long.
 */
export function* residentRuns(mem: HostMemory, hva: bigint, first: number, count: number, max = Infinity):
    Generator<{ first: number; count: number; resident: boolean }> {
  const end = first + count;
  for (let i = first; i < end;) {
    const resident = mem.resident(hva + BigInt(i) * PAGE);
    let j = i + 1;
    while (j < end && j - i < max && mem.resident(hva + BigInt(j) * PAGE) === resident) j++;
    yield { first: i, count: j - i, resident };
    i = j;
  }
}

/** Pages [first, first + count) of region r into writer: unbacked ones as zero markers, unread. */
export function addPages(mem: HostMemory, writer: PageWriter, r: Pick<MappedRegion, "asId" | "gpa" | "hva">, first: number,
                         count: number): void {
  for (const run of residentRuns(mem, r.hva, first, count)) {
    const gpa = r.gpa + BigInt(run.first) * PAGE;
    if (run.resident) writer.read(r.asId, gpa, run.count, (into) => mem.readInto(r.hva + BigInt(run.first) * PAGE, into));
    else writer.addZero(r.asId, gpa, run.count);
  }
}

/** Writes a run's pages at hva: its bytes, or for a zero run zeros over the pages a frame backs (the others read as zero). */
export function writeRun(mem: HostMemory, hva: bigint, run: PageRun): void {
  if (run.data) {
    mem.write(hva, run.data);
    return;
  }
  for (let i = 0; i < run.count; i++) {
    const p = hva + BigInt(i) * PAGE;
    if (mem.resident(p)) mem.write(p, ZERO_PAGE);
  }
}

/**
 * crc32(4096 zero bytes, c) without the 4096 steps: the CRC register after a
 * fixed input is an affine function of the register before it (zlib's
 * crc32_combine rests on the same fact), so it is f(0) xor the images of c's
 * set bits, each found once by running the zero page from that one bit.
 */
const zeroPageCrc = (() => {
  const base = crc32(ZERO_PAGE, 0);
  const images = Array.from({ length: 32 }, (_, i) => (crc32(ZERO_PAGE, (1 << i) >>> 0) ^ base) >>> 0);
  return (c: number): number => {
    let out = base;
    for (let i = 0; c !== 0; i++, c >>>= 1) if (c & 1) out ^= images[i];
    return out >>> 0;
  };
})();

/** CRC-32 over every page of the regions in order (an unbacked page reads as zeros). */
export function memoryDigest(mem: HostMemory, regions: readonly MappedRegion[]): number {
  let c = 0;
  for (const r of regions) {
    for (const run of residentRuns(mem, r.hva, 0, Number(r.size / PAGE), READ_PAGES)) {
      if (run.resident) c = crc32(mem.read(r.hva + BigInt(run.first) * PAGE, run.count * PAGE_BYTES), c);
      else for (let i = 0; i < run.count; i++) c = zeroPageCrc(c);
    }
  }
  return c;
}

/** Which region of a list holds a run of pages, or a SectionError naming `section`. */
export function regionOf<R extends RegionInfo>(regions: readonly R[], run: PageRun, section: string): { region: R; offset: bigint } {
  const end = run.gpa + BigInt(run.count) * PAGE;
  const r = regions.find((x) => x.asId === run.asId && run.gpa >= x.gpa && end <= x.gpa + x.size);
  if (!r) throw new SectionError(section, `pages 0x${run.gpa.toString(16)}..0x${end.toString(16)} of address space ${run.asId} are in no region of the hello`);
  return { region: r, offset: run.gpa - r.gpa };
}

/**
 * The destination's copy of guest memory while pre-copy runs: one mapping per
 * region of the hello (mapping it is where a destination that cannot hold the
 * guest finds out, before any page is sent), pages written as they arrive.
 */
export class GuestImage {
  readonly regions: MappedRegion[] = [];
  /** Per region, a bit per page that arrived (what post-copy need not ask for again). */
  readonly received: Uint8Array[] = [];
  /** Regions whose mapping a restored machine took over (adopt). */
  private readonly adopted = new Set<MappedRegion>();

  constructor(private readonly mem: HostMemory, regions: readonly RegionInfo[]) {
    try {
      for (const r of regions) {
        this.regions.push({ ...r, hva: mem.mmap(r.size) });
        this.received.push(new Uint8Array(Math.ceil(Number(r.size / PAGE) / 8)));
      }
    } catch (e) {
      this.release();
      throw e;
    }
  }

  /** Writes runs (data, or zeros over pages that hold something). */
  apply(runs: readonly PageRun[], section: string): void {
    for (const run of runs) {
      const { region, offset } = regionOf(this.regions, run, section);
      const hva = region.hva + offset;
      const first = Number(offset / PAGE);
      setBits(this.received[this.regions.indexOf(region)], first, first + run.count - 1);
      writeRun(this.mem, hva, run);
    }
  }

  /**
   * The mapping holding a region's pages, handed over to a restored machine
   * (Machine.restore's adopt): the machine owns it from then on, so neither
   * copyInto nor release touches it again. Null for a region not in the hello.
   */
  adopt(slot: { asId: number; slot: number; gpa: bigint; size: bigint }): bigint | null {
    const r = this.regions.find((x) => x.asId === slot.asId && x.slot === slot.slot && x.gpa === slot.gpa && x.size === slot.size);
    if (!r || this.adopted.has(r)) return null;
    this.adopted.add(r);
    return r.hva;
  }

  /** Forgets adoptions (a restore that took them failed: they are this image's again). */
  unadopt(): void {
    this.adopted.clear();
  }

  /**
   * Copies what arrived into `into` (the restored machine's regions, matched
   * by address space and slot): only pages that hold something, the rest of
   * the new memory is zero already.
   */
  copyInto(into: readonly MappedRegion[]): void {
    for (const r of this.regions) {
      if (this.adopted.has(r)) continue; // the machine runs on this very memory
      const to = into.find((x) => x.asId === r.asId && x.slot === r.slot && x.gpa === r.gpa && x.size === r.size);
      if (!to) throw new Error(`the restored machine has no slot ${r.slot} of address space ${r.asId} at 0x${r.gpa.toString(16)}`);
      for (const run of residentRuns(this.mem, r.hva, 0, Number(r.size / PAGE), READ_PAGES)) {
        const at = BigInt(run.first) * PAGE;
        if (run.resident) this.mem.write(to.hva + at, this.mem.read(r.hva + at, run.count * PAGE_BYTES));
      }
    }
  }

  release(): void {
    for (const r of this.regions.splice(0)) if (!this.adopted.has(r)) this.mem.munmap(r.hva, r.size);
  }
}

/** The regions of a machine in the order of the hello's. */
export function machineRegions(machine: Machine, hello: readonly RegionInfo[]): MappedRegion[] {
  const all = machine.memoryRegions();
  return hello.map((h) => {
    const r = all.find((x) => x.asId === h.asId && x.slot === h.slot && x.gpa === h.gpa && x.size === h.size);
    if (!r) throw new MigrationError(`the restored machine has no slot ${h.slot} of address space ${h.asId} as the hello said`, "destination");
    return { ...h, hva: r.hva };
  });
}

