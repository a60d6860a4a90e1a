// A migration transport over a MessagePort (a MessageChannel's end, in Node's
// worker_threads or a browser): each message is posted whole, its buffer
// transferred when the message spans it. A port has no flow control of its
// own, so the receiver acknowledges what it took and the sender waits while a
// window of bytes is unacknowledged. The sender announces a clean close; a
// port that closes without one (the peer's thread ended) is a lost connection.

import { Inbox, SendWindow, TransportError, type Transport } from "./transport.js";

/** What this transport uses of a MessagePort (Node's and the DOM's both have it). */
export interface MessagePortLike {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  addEventListener(type: "message", fn: (e: { data: unknown }) => void): void;
  addEventListener(type: "close" | "messageerror", fn: () => void): void;
  start?(): void;
  close(): void;
}

/** Port messages: a migration message, an acknowledgement of bytes taken, the clean-close announcement. */
type Wire = { m: Uint8Array } | { ack: number } | { bye: true };

export interface PortTransportOptions {
  /** Unacknowledged bytes before send() waits (default 16 MiB). */
  window?: number;
}

export class PortTransport implements Transport {
  private readonly inbox: Inbox;
  private readonly window: SendWindow;
  private closedHere = false;

  constructor(private readonly port: MessagePortLike, opts: PortTransportOptions = {}) {
    this.window = new SendWindow(opts.window ?? 16 << 20);
    this.inbox = new Inbox((m) => { if (!this.closedHere) this.post({ ack: m.length }); });
    port.addEventListener("message", (e) => this.arrived(e.data as Wire));
    port.addEventListener("messageerror", () => this.lost("a message could not be deserialized"));
    port.addEventListener("close", () => this.lost("the port closed without a clean close"));
    port.start?.();
  }

  private arrived(w: Wire): void {
    if (w && "m" in w && w.m instanceof Uint8Array) this.inbox.push(w.m);
    else if (w && "ack" in w && typeof w.ack === "number") this.window.acknowledged(w.ack);
    else if (w && "bye" in w) {
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
    const whole = message.byteOffset === 0 && message.byteLength === message.buffer.byteLength && message.buffer instanceof ArrayBuffer;
    const bytes = message.length; // a transferred buffer is detached: count it first
    this.post({ m: message }, whole ? [message.buffer as ArrayBuffer] : []);
    return this.window.sent(bytes);
  }

  receive(): Promise<Uint8Array | null> {
    return this.inbox.receive();
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
