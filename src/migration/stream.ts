// The migration stream's messages (QEMU's savevm commands and RAM sections):
// every message is a list of sections (section.ts, each with its CRC-32), the
// first naming what the message is. Source to destination: "hello" (protocol
// version, what the memory is, then the machine's state sections as they are at
// the start, for the destination to build the VM at once and rehearse the
// switch-over on), "pages" (page runs, pages.ts), "complete"
// (pre-copy's switch-over: the memory digest, then the machine's state
// sections), "postcopy" (post-copy's switch-over: the pages the destination must
// not take from pre-copy, then the state), "abort". Destination to source:
// "accept", "error" (the reason), "resumed" (when the guest ran again), and
// post-copy's "request" (pages a vCPU faulted on) and "done" (every page is in).

import { encodeSections, decodeSections, frameSection, sectionHeaderBytes, SectionError, type Section } from "./section.js";
import { TransportError, type Transport } from "./transport.js";

/** The stream's protocol version: a destination refuses any other. */
export const PROTOCOL_VERSION = 1;

export type MessageKind = "hello" | "accept" | "error" | "pages" | "complete" | "postcopy" | "resumed" | "request" | "done" | "abort";
const KINDS: readonly MessageKind[] = ["hello", "accept", "error", "pages", "complete", "postcopy", "resumed", "request", "done", "abort"];

/** A region of guest memory as the hello describes it. */
export interface RegionInfo {
  asId: number;
  slot: number;
  gpa: bigint;
  size: bigint;
}

export interface Hello {
  protocol: number;
  pageSize: number;
  regions: RegionInfo[];
  /** The source will switch to post-copy (the destination must be able to). */
  postcopy: boolean;
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder("utf-8", { fatal: true });

/** A section of JSON (bigints as decimal strings, tagged "n:"). */
export function jsonSection(name: string, value: unknown): Section {
  return { name, version: 1, payload: utf8.encode(JSON.stringify(value, (_, x) => (typeof x === "bigint" ? `n:${x}` : x))) };
}

export function readJson<T>(s: Section): T {
  try {
    return JSON.parse(fromUtf8.decode(s.payload), (_, x) => (typeof x === "string" && /^n:\d+$/.test(x) ? BigInt(x.slice(2)) : x)) as T;
  } catch (e) {
    throw new SectionError(s.name, `not JSON: ${(e as Error).message}`);
  }
}

/** A decoded message: its kind and its sections (the first is the kind's own). */
export interface Message {
  kind: MessageKind;
  sections: Section[];
  /** The bytes it was decoded from (a Mailbox's messages), for Transport.recycle once read. */
  bytes?: Uint8Array;
}

export function encodeMessage(kind: MessageKind, head: Section | null, rest: readonly Section[] = []): Uint8Array {
  return encodeSections([head ?? { name: kind, version: 1, payload: new Uint8Array(0) }, ...rest]);
}

/** Bytes before a "pages" message's payload: the room its PageWriter reserves. */
export const PAGES_HEADER_BYTES = sectionHeaderBytes("pages");

/**
 * A "pages" message (the same bytes as encodeMessage("pages", ...)) around
 * runs a PageWriter encoded after PAGES_HEADER_BYTES of room (its finish()),
 * framed in place.
 */
export const pagesMessage = (bytes: Uint8Array): Uint8Array => frameSection(bytes, "pages", 1);

/** Decodes a message, refusing damage (SectionError naming the section) and unknown kinds. */
export function decodeMessage(bytes: Uint8Array): Message {
  const sections = decodeSections(bytes, "message");
  if (sections.length === 0) throw new SectionError("message", "empty");
  const kind = sections[0].name as MessageKind;
  if (!KINDS.includes(kind)) throw new SectionError(sections[0].name, "not a migration message");
  if (sections[0].version !== 1) throw new SectionError(kind, `version ${sections[0].version}, this reader knows 1`);
  return { kind, sections };
}

export const errorMessage = (message: string): Uint8Array => encodeMessage("error", jsonSection("error", { message }));

/** The regions of a hello, checked: whole pages, no wraps, no overlap within an address space. */
export function checkHello(h: Hello): void {
  const fail = (d: string): never => { throw new SectionError("hello", d); };
  if (typeof h !== "object" || h === null) fail("not an object");
  if (h.protocol !== PROTOCOL_VERSION) fail(`protocol version ${String(h.protocol)}, this destination speaks ${PROTOCOL_VERSION}`);
  if (h.pageSize !== 4096) fail(`page size ${String(h.pageSize)}, this destination has 4096`);
  if (!Array.isArray(h.regions) || h.regions.length === 0) fail("no memory regions");
  for (const r of h.regions) {
    if (!Number.isInteger(r?.asId) || r.asId < 0 || r.asId > 1 || !Number.isInteger(r.slot) || r.slot < 0 ||
        typeof r.gpa !== "bigint" || typeof r.size !== "bigint" || r.size <= 0n || r.gpa % 4096n !== 0n ||
        r.size % 4096n !== 0n || r.gpa + r.size > 1n << 64n) fail(`region ${JSON.stringify(r, (_, x) => (typeof x === "bigint" ? String(x) : x))} is malformed`);
  }
  const sorted = [...h.regions].sort((a, b) => a.asId - b.asId || (a.gpa < b.gpa ? -1 : 1));
  sorted.forEach((r, i) => {
    const p = sorted[i - 1];
    if (p && p.asId === r.asId && p.gpa + p.size > r.gpa) fail(`regions of slots ${p.slot} and ${r.slot} overlap`);
  });
}

/** A migration that did not complete; `side` says which end gave up. */
export class MigrationError extends Error {
  constructor(message: string, readonly side: "source" | "destination", options?: { cause?: unknown }) {
    super(message, options);
    this.name = "MigrationError";
  }
}

/**
 * The peer's messages as they come, read in the background so an error it
 * sends (or a lost connection) is seen at once, between two run slices.
 */
export class Mailbox {
  private readonly queue: Message[] = [];
  private waiter: (() => void) | null = null;
  /** Why the destination can no longer be talked to. */
  failure: MigrationError | null = null;

  constructor(private readonly transport: Transport, private readonly peer: "source" | "destination", private readonly phase: () => string) {
    void this.pump();
  }

  private async pump(): Promise<void> {
    try {
      for (;;) {
        const bytes = await this.transport.receive();
        if (bytes === null) throw new TransportError(`the ${this.peer} closed the connection`);
        const m = decodeMessage(bytes);
        if (m.kind === "error") {
          throw new MigrationError(`the ${this.peer} failed: ${readJson<{ message: string }>(m.sections[0]).message}`, this.peer);
        }
        m.bytes = bytes;
        this.queue.push(m);
        this.wake();
      }
    } catch (e) {
      this.failure = e instanceof MigrationError ? e
        : new MigrationError(`${this.phase()}: ${(e as Error).message}`, this.peer === "source" ? "destination" : "source", { cause: e });
      this.wake();
    }
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /** Throws the failure, if there is one. */
  check(): void {
    if (this.failure) throw this.failure;
  }

  /** Messages of a kind that arrived, taken out of the queue. */
  takeAll(kind: Message["kind"]): Message[] {
    const out = this.queue.filter((m) => m.kind === kind);
    for (const m of out) this.queue.splice(this.queue.indexOf(m), 1);
    return out;
  }

  /** The next message of a kind (or the failure). */
  async next(kind: Message["kind"]): Promise<Message> {
    for (;;) {
      const [m] = this.takeAll(kind);
      if (m) return m;
      this.check();
      await new Promise<void>((r) => { this.waiter = r; });
    }
  }

  /** Resolves when anything arrives (or the failure). */
  arrival(): Promise<void> {
    if (this.queue.length > 0 || this.failure) return Promise.resolve();
    return new Promise<void>((r) => { this.waiter = r; });
  }
}

