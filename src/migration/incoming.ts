// The destination of a live migration (QEMU's -incoming): it checks the hello
// and maps room for every region at once (a guest it cannot hold is refused
// before a page is sent), builds the VM, memslots and vCPUs from the layout
// the hello carries (as QEMU creates the machine before the stream starts)
// over that room (post-copy: over memory missing until placed), rehearses the
// switch-over's decode and apply on the hello's state, keeps the pages of each round as they come, and at
// the switch-over sets the machine's state, moves in what the VM could not
// take over, checks the memory digest against the source's and only then
// resumes: the downtime holds the last pages, the state and the resume. Anything damaged or wrong is refused with an "error" message the
// source sees at once; the source then runs on.

import { Kvm } from "../kvm.js";
import { Machine, type PreparedMachine, type RunResult } from "../vmm/machine.js";
import { decodePageRuns } from "./pages.js";
import { GuestImage, memoryDigest, machineRegions } from "./ram.js";
import { decodeLayout, decodeState } from "./vmstate.js";
import type { Section } from "./section.js";
import { Meter, Timeline, quickestMs, wallClock, type Progress } from "./progress.js";
import type { Transport } from "./transport.js";
import {
  MigrationError, checkHello, decodeMessage, encodeMessage, errorMessage, jsonSection, readJson, type Hello,
} from "./stream.js";
import { receivePostcopy } from "./postcopy.js";

/** How often (ms) pre-copy's destination rehearses the switch-over on the hello's state, keeping its code warm. */
const REHEARSE_MS = 100;

export interface ReceiveOptions {
  /** The destination's instance (default: a new Kvm). */
  kvm?: Kvm;
  onConsole?: (text: string) => void;
  /** The most guest memory this destination takes (bytes); a larger guest is refused at the hello. */
  maxMemory?: bigint;
  /** Post-copy: guest instructions run between two placements of arriving pages (default 50,000). */
  sliceInstructions?: bigint;
  onProgress?: (p: Progress) => void;
}

export interface Incoming {
  /** The restored machine, resumed: run it on. */
  machine: Machine;
  /** Wall-clock time the guest was resumed (comparable with the source's). */
  resumedAt: number;
  pagesReceived: number;
  zeroPages: number;
  bytes: number;
  postcopy: boolean;
  /** Post-copy: the run() that ended the guest, if it ended while pages were still coming; run it no more. */
  guestStop?: RunResult | null;
}

/**
 * Receives a migration from the source at the other end of transport and
 * returns the resumed machine. Throws MigrationError (having told the source)
 * when it refuses or the connection is lost.
 */
export async function receiveMigration(transport: Transport, opts: ReceiveOptions = {}): Promise<Incoming> {
  const meter = new Meter(opts.onProgress);
  let image: GuestImage | null = null;
  /** The VM built at the hello from the layout it carried (pre-copy), over the image's memory. */
  let prepared: PreparedMachine | null = null;
  /** A destination that gives up leaves nothing: the prepared VM closed, every mapping gone. */
  const cleanup = () => {
    prepared?.release();
    image?.unadopt();
    image?.release();
  };
  /** The bytes of the message next() returned last (recycled once applied). */
  let last: Uint8Array = new Uint8Array(0);
  /** When it arrived (the switch-over's timing). */
  let lastAt = 0;
  const refuse = async (why: string, cause?: unknown): Promise<never> => {
    try {
      await transport.send(errorMessage(why));
    } catch {
      // the source is gone: it cannot be told
    }
    cleanup();
    transport.close();
    throw new MigrationError(why, "destination", { cause });
  };
  const next = async (phase: string) => {
    let bytes: Uint8Array | null;
    try {
      bytes = await transport.receive();
    } catch (e) {
      cleanup();
      transport.close();
      throw new MigrationError(`${phase}: ${(e as Error).message}`, "destination", { cause: e });
    }
    if (bytes === null) {
      cleanup();
      throw new MigrationError(`${phase}: the source closed the connection`, "destination");
    }
    meter.bytes += bytes.length;
    last = bytes;
    lastAt = wallClock();
    try {
      return decodeMessage(bytes);
    } catch (e) {
      return refuse(`refused a damaged message: ${(e as Error).message}`, e);
    }
  };

  const first = await next("handshake");
  if (first.kind !== "hello") return refuse(`the stream begins with "${first.kind}", not a hello`);
  let hello: Hello;
  try {
    hello = readJson<Hello>(first.sections[0]);
    checkHello(hello);
  } catch (e) {
    return refuse(`refused the hello: ${(e as Error).message}`, e);
  }
  const total = hello.regions.reduce((n, r) => n + r.size, 0n);
  if (opts.maxMemory !== undefined && total > opts.maxMemory) {
    return refuse(`destination out of memory: the guest has ${total} bytes, this destination takes ${opts.maxMemory}`);
  }
  const kvm = opts.kvm ?? (await Kvm.open());
  try {
    image = new GuestImage(kvm.memory, hello.regions);
  } catch (e) {
    return refuse(`destination out of memory: mapping ${total} bytes of guest memory failed: ${(e as Error).message}`, e);
  }
  /** The switch-over's own work here, rehearsed on the hello's state: decode and apply (Progress.switchoverMs). */
  let switchoverMs = 0;
  /** The hello's state, if it carried one whole, and when it was last rehearsed. */
  let rehearsal: { sections: Section[]; at: number } | null = null;
  /** The switch-over's decode and apply, on the hello's state (the machine stays prepared). */
  const rehearse = (r: { sections: Section[]; at: number }): void => {
    prepared?.stage(decodeState(r.sections));
    r.at = performance.now();
  };
  if (first.sections.length > 1) {
    const sections = first.sections.slice(1);
    // a hello with the layout alone is as good, only not rehearsed
    if (sections.some((s) => s.name === "vcpu.0")) rehearsal = { sections, at: performance.now() };
    // The VM, memslots and vCPUs now: the switch-over only sets the state. Pre-copy's run over the image's
    // mappings (adopt); post-copy's over memory missing until placed (a post-copy source that completes by
    // pre-copy after all gets a machine restored then).
    try {
      prepared = await Machine.prepare(decodeLayout(sections), { kvm, onConsole: opts.onConsole,
        ...(hello.postcopy ? { memory: "missing" as const } : { adopt: (slot) => image!.adopt(slot) }) });
    } catch (e) {
      return refuse(`refused the machine's layout: ${(e as Error).message}`, e);
    }
    try {
      const r = rehearsal;
      if (r) switchoverMs = quickestMs(3, () => rehearse(r));
    } catch (e) {
      return refuse(`refused the machine's state: ${(e as Error).message}`, e);
    }
  }
  await transport.send(encodeMessage("accept", jsonSection("accept", { switchoverMs })));
  meter.report("precopy", 0);

  for (;;) {
    const m = await next("pre-copy: connection lost");
    try {
      if (m.kind === "pages") {
        const runs = decodePageRuns(m.sections[0].payload, "pages");
        image.apply(runs, "pages");
        for (const r of runs) {
          if (r.data) meter.pagesSent += r.count;
          else meter.zeroPages += r.count;
        }
        transport.recycle?.(last); // its pages are in the image: the buffer may carry the next message
        // Again now and then: V8 drops the bytecode of functions left unused across garbage collections, and a
        // pre-copy of much memory makes many; the switch-over's decode and apply then ran cold (~1 ms more).
        if (rehearsal && performance.now() - rehearsal.at > REHEARSE_MS) rehearse(rehearsal);

        meter.report("precopy", 0);
        continue;
      }
      if (m.kind === "abort") {
        cleanup();
        transport.close();
        throw new MigrationError("the source aborted the migration", "destination");
      }
      if (m.kind === "postcopy") {
        if (!hello.postcopy) return refuse("a post-copy switch-over after a hello that announced none");
        // Once applied the machine is receivePostcopy's (cleanup's release() is then a no-op).
        const got = await receivePostcopy({ transport, kvm, hello, image, meter, message: m, arrivedAt: lastAt, prepared, opts });
        return { ...got, pagesReceived: meter.pagesSent, zeroPages: meter.zeroPages, bytes: meter.bytes, postcopy: true };
      }
      if (m.kind !== "complete") return refuse(`unexpected "${m.kind}" message during pre-copy`);
    } catch (e) {
      if (e instanceof MigrationError) throw e;
      return refuse(`pre-copy: ${(e as Error).message}`, e);
    }
    // The switch-over: restore, move the memory in, check it, resume.
    let machine: Machine | null = null;
    const tl = new Timeline(); // a few clock reads: kept always, sent when the source asks
    tl.marks.push({ step: "destination: complete message in", at: lastAt });
    let head: { digest: number | null; timing?: boolean };
    try {
      head = readJson<{ digest: number | null; timing?: boolean }>(m.sections[0]);
      const state = decodeState(m.sections.slice(1));
      tl.mark("destination: decode state");
      // The pages came into the image's mappings: the machine runs on them (adopt), nothing is copied in the downtime.
      if (hello.postcopy) { // prepared for a post-copy, over missing memory: this switch-over wants the image's
        prepared?.release();
        prepared = null;
      }
      machine = prepared ? prepared.apply(state)
        : await Machine.restore(state, { kvm, onConsole: opts.onConsole, adopt: (slot) => image!.adopt(slot) });
      prepared = null; // applied: the machine owns it
      tl.mark("destination: apply state");
      const regions = machineRegions(machine, hello.regions);
      image.copyInto(regions); // regions the machine could not adopt (slots sharing host memory)
      tl.mark("destination: regions, copy-in");
      if (head.digest !== null) {
        const digest = memoryDigest(kvm.memory, regions);
        if (digest !== head.digest) {
          throw new Error(`memory digest 0x${digest.toString(16)} is not the source's 0x${(head.digest >>> 0).toString(16)}: ` +
            "pages were lost or damaged on the way");
        }
      }
    } catch (e) {
      machine?.close();
      return refuse(`switch-over refused: ${(e as Error).message}`, e); // its cleanup() unmaps the image, adopted or not
    }
    image.release();
    tl.mark("destination: release image");
    const resumedAt = wallClock();
    tl.marks.push({ step: "destination: resume", at: resumedAt });
    await transport.send(encodeMessage("resumed", jsonSection("resumed", head.timing ? { at: resumedAt, marks: tl.marks } : { at: resumedAt })));
    transport.close();
    meter.report("completed", 0);
    return { machine, resumedAt, pagesReceived: meter.pagesSent, zeroPages: meter.zeroPages, bytes: meter.bytes, postcopy: false };
  }
}
