// A migration transport over a byte stream: a Node net.Socket, or any duplex
// with write / on("data") / end (a WebSocket adapter, a TLS socket). Each
// message is framed with its length (transport.ts) and a clean close is a
// close frame before the stream's end, so a peer that dies (a FIN or a reset
// with no close frame) reads as a lost connection. The socket object is passed
// in: this module imports nothing of Node and loads in browsers.

import { FrameReader, Inbox, TransportError, closeFrame, frameHeader, type Transport } from "./transport.js";

/** What this transport uses of a stream (net.Socket has it). */
export interface ByteStreamLike {
  /** Queues bytes; false when the stream's buffer is full ("drain" follows). */
  write(chunk: Uint8Array): boolean;
  end(): void;
  on(event: "data", fn: (chunk: Uint8Array) => void): unknown;
  on(event: "error", fn: (e: Error) => void): unknown;
  on(event: "drain" | "end" | "close", fn: () => void): unknown;
  destroy?(): void;
  /** Stop / restart "data" events: the receiver's own backpressure (without them, it buffers without bound). */
  pause?(): unknown;
  resume?(): unknown;
}

export interface SocketTransportOptions {
  /** Bytes of whole received messages the transport holds before it pauses the stream until receive() takes some (default 16 MiB). */
  highWater?: number;
}

export class SocketTransport implements Transport {
  private readonly inbox: Inbox;
  private readonly reader = new FrameReader();
  private readonly highWater: number;
  private paused = false;
  private lostError: TransportError | null = null;
  private closedHere = false;
  private drainWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];

  constructor(private readonly stream: ByteStreamLike, opts: SocketTransportOptions = {}) {
    this.highWater = opts.highWater ?? 16 << 20;
    this.inbox = new Inbox(() => {
      if (this.paused && this.inbox.queued < this.highWater) {
        this.paused = false;
        stream.resume?.();
      }
    });
    stream.on("data", (chunk) => this.data(chunk));
    stream.on("drain", () => { for (const w of this.drainWaiters.splice(0)) w.resolve(); });
    stream.on("error", (e) => this.lost(`stream error: ${e.message}`));
    stream.on("end", () => this.ended());
    stream.on("close", () => this.ended());
  }

  private data(chunk: Uint8Array): void {
    if (this.inbox.closed) return;
    try {
      for (const m of this.reader.push(chunk)) this.inbox.push(m);
      if (this.reader.closed) this.inbox.end(null);
      else if (!this.paused && this.inbox.queued >= this.highWater && this.stream.pause) {
        this.paused = true;
        this.stream.pause();
      }
    } catch (e) {
      this.lost((e as Error).message);
      this.stream.destroy?.();
    }
  }

  private ended(): void {
    if (this.reader.closed) return;
    const partial = this.reader.partial;
    this.lost(partial > 0 ? `the stream ended ${partial} bytes into a message` : "the stream ended without a close frame");
  }

  private lost(why: string): void {
    if (this.closedHere && this.reader.closed) return;
    const e = this.lostError ??= new TransportError(`connection lost: ${why}`);
    this.inbox.end(e);
    for (const w of this.drainWaiters.splice(0)) w.reject(e);
  }

  send(message: Uint8Array): Promise<void> {
    if (this.closedHere) return Promise.reject(new TransportError("send after close"));
    if (this.lostError) return Promise.reject(this.lostError);
    let ok: boolean;
    try {
      this.stream.write(frameHeader(message.length));
      ok = this.stream.write(message);
    } catch (e) {
      this.lost(`write failed: ${(e as Error).message}`);
      return Promise.reject(this.lostError);
    }
    if (ok) return Promise.resolve();
    return new Promise((resolve, reject) => this.drainWaiters.push({ resolve, reject }));
  }

  receive(): Promise<Uint8Array | null> {
    return this.inbox.receive();
  }

  close(): void {
    if (this.closedHere) return;
    this.closedHere = true;
    if (!this.lostError) {
      try {
        this.stream.write(closeFrame());
        this.stream.end();
      } catch {
        // the stream is gone already: nothing more to tell the peer
      }
    }
    this.inbox.end(null);
  }
}
