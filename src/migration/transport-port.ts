// A migration transport over a MessagePort (a MessageChannel's end, in Node's
// worker_threads or a browser): each message is posted whole. A port has no
// flow control of its own, so the receiver acknowledges what it took and the
// sender waits while a window of bytes is unacknowledged. The sender
// announces a clean close; a port that closes without one (the peer's thread
// ended) is a lost connection.
//
// Bulk messages do not allocate: a sender that asks for a buffer (reuse) gets
// a slot of a pool of shared memory, posted to the peer once; a message
// written in a slot travels as the slot's number, and the receiver frees the
// slot (recycle) once it has read the message, for the sender to write again.
// Without SharedArrayBuffer (a browser page not cross-origin isolated) a
// message that begins at its buffer's first byte moves that buffer (transfer)
// and a recycled one is transferred back. A message's bytes are the
// receiver's until it recycles them, never written meanwhile.

import { Inbox, SendWindow, TransportError, type Transport } from "./transport.js";

/** What this transport uses of a MessagePort (Node's and the DOM's both have it). */
export interface MessagePortLike {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  addEventListener(type: "message", fn: (e: { data: unknown }) => void): void;
  addEventListener(type: "close" | "messageerror", fn: () => void): void;
  start?(): void;
  close(): void;
}

/**
 * Port messages: a migration message (its bytes, or a slot of the pool and
 * its length), an acknowledgement of bytes taken, the sender's pool of slots,
 * a slot freed, a buffer going back, the clean-close announcement.
 */
type Wire = { m: Uint8Array } | { s: number; n: number } | { ack: number } | { pool: SharedArrayBuffer; slotBytes: number }
  | { free: number } | { back: ArrayBuffer } | { bye: true };

/** Buffers given back that a sender keeps for reuse (more would only hold memory). */
const SPARE_BUFFERS = 32;
/** Slots of the pool beyond the window's worth: messages taken by the receiver and not yet recycled. */
const EXTRA_SLOTS = 4;

const canShare = typeof SharedArrayBuffer === "function" && (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated !== false;

export interface PortTransportOptions {
  /** Unacknowledged bytes before send() waits (default 16 MiB). */
  window?: number;
  /** Hand out slots of shared memory from reuse() where SharedArrayBuffer exists (default true). */
  shared?: boolean;
}

/** A pool of equal slots in one SharedArrayBuffer. */
interface Pool { sab: SharedArrayBuffer; slotBytes: number }

export class PortTransport implements Transport {
  private readonly inbox: Inbox;
  private readonly window: SendWindow;
  private closedHere = false;
  private readonly shared: boolean;
  /** The sender's pool (made at the first reuse()) and its free slots. */
  private pool: Pool | null = null;
  private readonly freeSlots: number[] = [];
  /** The peer's pool, for the slots its messages come in. */
  private peerPool: Pool | null = null;
  /** Buffers the peer transferred back, for reuse(). */
  private readonly spare: ArrayBuffer[] = [];

  constructor(private readonly port: MessagePortLike, opts: PortTransportOptions = {}) {
    this.window = new SendWindow(opts.window ?? 16 << 20);
    this.shared = (opts.shared ?? true) && canShare;
    this.inbox = new Inbox((m) => { if (!this.closedHere) this.post({ ack: m.length }); });
    port.addEventListener("message", (e) => this.arrived(e.data as Wire));
    port.addEventListener("messageerror", () => this.lost("a message could not be deserialized"));
    port.addEventListener("close", () => this.lost("the port closed without a clean close"));
    port.start?.();
  }

  private arrived(w: Wire): void {
    if (typeof w !== "object" || w === null) this.lost("an unknown port message arrived");
    else if ("m" in w && w.m instanceof Uint8Array) this.inbox.push(w.m);
    else if ("s" in w && this.peerPool && Number.isInteger(w.s) && Number.isInteger(w.n) && w.s >= 0 && w.n >= 0 && w.n <= this.peerPool.slotBytes &&
             (w.s + 1) * this.peerPool.slotBytes <= this.peerPool.sab.byteLength) {
      this.inbox.push(new Uint8Array(this.peerPool.sab, w.s * this.peerPool.slotBytes, w.n));
    } else if ("ack" in w && typeof w.ack === "number") this.window.acknowledged(w.ack);
    else if ("pool" in w && w.pool instanceof SharedArrayBuffer && Number.isInteger(w.slotBytes) && w.slotBytes > 0) this.peerPool = { sab: w.pool, slotBytes: w.slotBytes };
    else if ("free" in w && this.pool && Number.isInteger(w.free) && w.free >= 0 && !this.freeSlots.includes(w.free) &&
             (w.free + 1) * this.pool.slotBytes <= this.pool.sab.byteLength) this.freeSlots.push(w.free);
    else if ("back" in w && w.back instanceof ArrayBuffer) {
      if (this.spare.length < SPARE_BUFFERS) this.spare.push(w.back);
    } else if ("bye" in w) {
      this.inbox.end(null);
      this.window.fail(new TransportError("connection closed by the peer"));
    } else this.lost("an unknown port message arrived");
  }

  private lost(why: string): void {
    if (this.closedHere) return;
    const e = new TransportError(`connection lost: ${why}`);
    this.inbox.end(e);
    this.window.fail(e);
  }

  private post(w: Wire, transfer: Transferable[] = []): void {
    try {
      this.port.postMessage(w, transfer);
    } catch (e) {
      this.lost(`postMessage failed: ${(e as Error).message}`);
    }
  }

  send(message: Uint8Array): Promise<void> {
    if (this.closedHere) return Promise.reject(new TransportError("send after close"));
    if (this.window.error) return Promise.reject(this.window.error);
    const bytes = message.length; // a transferred buffer is detached: count it first
    const slot = this.slotOf(this.pool, message);
    if (slot >= 0) this.post({ s: slot, n: bytes });
    else this.post({ m: message }, owns(message) ? [message.buffer as ArrayBuffer] : []);
    return this.window.sent(bytes);
  }

  unreceived(): number {
    return this.window.pending;
  }

  receive(): Promise<Uint8Array | null> {
    return this.inbox.receive();
  }

  recycle(message: Uint8Array): void {
    if (this.closedHere) return;
    const slot = this.slotOf(this.peerPool, message);
    if (slot >= 0) this.post({ free: slot });
    else if (owns(message) && message.buffer.byteLength > 0) this.post({ back: message.buffer as ArrayBuffer }, [message.buffer as ArrayBuffer]);
  }

  /** A free slot of the pool (made at the first call, sized for `bytes`), or a buffer transferred back; null when none is free. */
  reuse(bytes: number): Uint8Array | null {
    if (this.shared && !this.pool && !this.closedHere) {
      const slots = Math.ceil(this.window.limit / bytes) + EXTRA_SLOTS;
      this.pool = { sab: new SharedArrayBuffer(slots * bytes), slotBytes: bytes };
      for (let i = slots - 1; i >= 0; i--) this.freeSlots.push(i);
      this.post({ pool: this.pool.sab, slotBytes: bytes });
    }
    if (this.pool && this.pool.slotBytes >= bytes) {
      const s = this.freeSlots.pop();
      if (s !== undefined) return new Uint8Array(this.pool.sab, s * this.pool.slotBytes, this.pool.slotBytes);
    }
    for (let b = this.spare.pop(); b !== undefined; b = this.spare.pop()) if (b.byteLength >= bytes) return new Uint8Array(b);
    return null;
  }

  /** The slot of pool a message begins at the start of, or -1. */
  private slotOf(pool: Pool | null, m: Uint8Array): number {
    if (!pool || m.buffer !== pool.sab || m.byteOffset % pool.slotBytes !== 0) return -1;
    return m.byteOffset / pool.slotBytes;
  }

  close(): void {
    if (this.closedHere) return;
    this.post({ bye: true });
    this.closedHere = true;
    this.inbox.end(null);
    this.window.fail(new TransportError("send after close"));
    this.port.close();
  }
}

/** Whether a message carries its whole buffer (it begins at its first byte: Transport.send), which then moves with it. */
const owns = (m: Uint8Array): boolean => m.byteOffset === 0 && m.buffer instanceof ArrayBuffer;
