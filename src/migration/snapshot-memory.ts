// A snapshot's RAM: the pages of every memslot read from host memory into page
// runs (pages.ts), and written back into a restored machine's fresh host
// memory. A full snapshot stores the pages that hold data: a page without a
// frame, or all zero, is zero on a fresh target and costs nothing. An
// incremental one stores the pages the dirty log reported since its parent
// (dirty-tracker.ts) as a migration round sends them (ram.ts's addPages), a
// page that became zero as a zero marker.

import type { HostMemory } from "../host-memory.js";
import type { MemoryRegionInfo } from "../vmm/machine-state.js";
import { SectionError } from "./section.js";
import { PageWriter, PAGE_BYTES, type PageRun } from "./pages.js";
import { residentRuns, writeRun, READ_PAGES } from "./ram.js";

const PAGE = BigInt(PAGE_BYTES);

/** A memslot's RAM as machine.memoryRegions() lists it. */
export type RamRegion = MemoryRegionInfo;

/** Called after each chunk of pages: pages done so far of `total`, and the page data bytes among them. */
export type PagesDone = (pages: number, total: number, bytes: number) => void;

const totalPages = (regions: readonly RamRegion[]): number => regions.reduce((n, r) => n + Number(r.size / PAGE), 0);

/**
 * Full snapshot: the non-zero pages of every region. Pages without a frame
 * are not read (reading would not allocate one, but costs a copy).
 */
export function writeAllPages(memory: HostMemory, regions: readonly RamRegion[], out: PageWriter, done?: PagesDone): void {
  const total = totalPages(regions);
  let seen = 0;
  for (const r of regions) {
    const npages = Number(r.size / PAGE);
    for (const run of residentRuns(memory, r.hva, 0, npages, READ_PAGES)) {
      const at = BigInt(run.first) * PAGE;
      // Read straight into the writer, each page checked for zero once there (zero ones left out).
      if (run.resident) out.read(r.asId, r.gpa + at, run.count, (into) => memory.readInto(r.hva + at, into), true);
      done?.(seen + run.first + run.count, total, out.dataPages * PAGE_BYTES);
    }
    seen += npages;
  }
}

/** The region of `regions` holding the whole run, or undefined. */
function regionOf(regions: readonly RamRegion[], run: PageRun): RamRegion | undefined {
  const end = run.gpa + BigInt(run.count) * PAGE;
  return regions.find((r) => r.asId === run.asId && run.gpa >= r.gpa && end <= r.gpa + r.size);
}

/** Checks that every run lies inside one region of its address space; errors name `section`. */
export function checkRuns(runs: readonly PageRun[], regions: readonly RamRegion[], section: string): void {
  runs.forEach((run, i) => {
    if (!regionOf(regions, run)) {
      throw new SectionError(section, `page run ${i}: ${run.count} pages at 0x${run.gpa.toString(16)} of address space ${run.asId}` +
        " are not inside one memslot of the snapshot's layout");
    }
  });
}

/**
 * Writes runs (checked by checkRuns) into the regions' host memory; a zero
 * run clears only the pages that have a frame (the others read as zero).
 */
export function applyRuns(memory: HostMemory, regions: readonly RamRegion[], runs: readonly PageRun[], done?: PagesDone): void {
  const total = runs.reduce((n, r) => n + r.count, 0);
  let pages = 0, bytes = 0;
  for (const run of runs) {
    const r = regionOf(regions, run) as RamRegion;
    writeRun(memory, r.hva + (run.gpa - r.gpa), run);
    pages += run.count;
    if (run.data) bytes += run.data.length;
    done?.(pages, total, bytes);
  }
}
