// The migration stream's transport: whole messages in order between a source
// and a destination (QEMU's QEMUFile over a channel). A transport over a byte
// stream frames each message with its length; one over a MessagePort posts
// messages as they are. Either way a lost connection is an error, told apart
// from a clean close, so a migration can say which side stopped and why.

/** The connection went away (or was refused) before a clean close. */
export class TransportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TransportError";
  }
}

export interface Transport {
  /**
   * Sends one whole message; the transport owns its bytes from then on (a
   * MessagePort may transfer their buffer), and a message that begins at its
   * buffer's first byte hands over the whole buffer (the rest is spare room a
   * MessagePort transfers with it), as does one written in room reuse() gave. Resolves once the transport can take
   * more (backpressure: a sender awaiting every send holds a bounded amount
   * in flight); rejects with TransportError once the connection is lost.
   */
  send(message: Uint8Array): Promise<void>;
  /** The next message, or null after the peer closed cleanly; rejects with TransportError when the connection was lost. */
  receive(): Promise<Uint8Array | null>;
  /**
   * The receiver is done with a message receive() gave: its bytes are not
   * read again, and its buffer may go back to the sender (a MessagePort
   * transfers it back: the message is detached here). Optional.
   */
  recycle?(message: Uint8Array): void;
  /**
   * Room for the sender's next message, at least `bytes` long, that no one
   * uses (a message written at its start and sent travels without a copy:
   * a MessagePort's slot of shared memory, or a buffer the peer recycled);
   * null when none is free. Optional.
   */
  reuse?(bytes: number): Uint8Array | null;
  /**
   * Bytes sent that the receiver has not taken yet (its backlog: a message
   * sent now waits behind them). Optional: a transport that cannot tell
   * leaves it out.
   */
  unreceived?(): number;
  /** A clean close: the peer receives what was sent, then null. */
  close(): void;
}

/**
 * The receive side every transport shares: messages queue until receive()
 * takes them; the end (clean or lost) is told once the queue is empty.
 * `taken` sees each message as receive() hands it out (acknowledgements).
 */
export class Inbox {
  private readonly queue: Uint8Array[] = [];
  private readonly waiting: { resolve: (m: Uint8Array | null) => void; reject: (e: Error) => void }[] = [];
  private ended: { error: TransportError | null } | null = null;
  /** Bytes of the messages waiting in the queue. */
  queued = 0;

  constructor(private readonly taken?: (message: Uint8Array) => void) {}

  /** Whether the end (clean or not) was seen. */
  get closed(): boolean {
    return this.ended !== null;
  }

  push(message: Uint8Array): void {
    if (this.ended) return;
    const w = this.waiting.shift();
    if (w) {
      this.taken?.(message);
      w.resolve(message);
    } else {
      this.queue.push(message);
      this.queued += message.length;
    }
  }

  /** The stream ended: cleanly (null) or with a lost connection. The first end counts. */
  end(error: TransportError | null): void {
    if (this.ended) return;
    this.ended = { error };
    for (const w of this.waiting.splice(0)) error ? w.reject(error) : w.resolve(null);
  }

  receive(): Promise<Uint8Array | null> {
    const m = this.queue.shift();
    if (m) {
      this.queued -= m.length;
      this.taken?.(m);
      return Promise.resolve(m);
    }
    if (this.ended) return this.ended.error ? Promise.reject(this.ended.error) : Promise.resolve(null);
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }
}

/**
 * Bytes in flight a sender may have before send() waits: the peer
 * acknowledges what its receive() took (credit flow control, for transports
 * without their own, such as a MessagePort).
 */
export class SendWindow {
  private inFlight = 0;
  private readonly waiting: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private lost: TransportError | null = null;

  constructor(readonly limit: number) {
    if (!Number.isSafeInteger(limit) || limit <= 0) throw new RangeError(`window ${limit}`);
  }

  /** Counts a message sent; resolves when the window has room again. */
  sent(bytes: number): Promise<void> {
    if (this.lost) return Promise.reject(this.lost);
    this.inFlight += bytes;
    if (this.inFlight < this.limit) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  /** Bytes sent and not acknowledged. */
  get pending(): number {
    return this.inFlight;
  }

  acknowledged(bytes: number): void {
    this.inFlight = Math.max(0, this.inFlight - bytes);
    if (this.inFlight < this.limit) for (const w of this.waiting.splice(0)) w.resolve();
  }

  /** The connection is gone: every waiting sender fails. */
  fail(error: TransportError): void {
    this.lost ??= error;
    for (const w of this.waiting.splice(0)) w.reject(error);
  }

  get error(): TransportError | null {
    return this.lost;
  }
}

/** A frame's length prefix (u32 little endian) that means "clean close", not a message. */
export const FRAME_CLOSE = 0xffffffff;
/** The largest message a framed stream carries (the rest of u32 would tie up memory on a damaged prefix). */
export const MAX_FRAME = 1 << 30;

/** The length prefix of a message for a byte stream. */
export function frameHeader(length: number): Uint8Array {
  if (!Number.isSafeInteger(length) || length < 0 || length > MAX_FRAME) throw new RangeError(`message of ${length} bytes`);
  const h = new Uint8Array(4);
  new DataView(h.buffer).setUint32(0, length, true);
  return h;
}

/** The close frame. */
export const closeFrame = (): Uint8Array => new Uint8Array([0xff, 0xff, 0xff, 0xff]);

/**
 * Splits a byte stream back into messages, however the stream cut or joined
 * them: push() each chunk as it comes, get the messages it completed.
 */
export class FrameReader {
  private readonly chunks: Uint8Array[] = [];
  private buffered = 0;
  /** The current frame's length once its prefix is in. */
  private need = -1;
  /** A close frame arrived. */
  closed = false;

  /** Bytes of a message begun but not complete (0 at a frame boundary). */
  get partial(): number {
    return this.need >= 0 ? this.buffered + 4 : this.buffered;
  }

  push(chunk: Uint8Array): Uint8Array[] {
    if (this.closed) throw new TransportError(`${chunk.length} bytes arrived after the close frame`);
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const out: Uint8Array[] = [];
    for (;;) {
      if (this.need < 0) {
        if (this.buffered < 4) break;
        const h = this.take(4);
        const n = new DataView(h.buffer, h.byteOffset, 4).getUint32(0, true);
        if (n === FRAME_CLOSE) {
          this.closed = true;
          if (this.buffered > 0) throw new TransportError(`${this.buffered} bytes arrived after the close frame`);
          break;
        }
        if (n > MAX_FRAME) throw new TransportError(`a frame of ${n} bytes is over the ${MAX_FRAME}-byte limit: the stream is damaged`);
        this.need = n;
      }
      if (this.buffered < this.need) break;
      out.push(this.take(this.need));
      this.need = -1;
    }
    return out;
  }

  /** The first n buffered bytes, as one array. */
  private take(n: number): Uint8Array {
    const first = this.chunks[0];
    if (first && first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return out;
    }
    const out = new Uint8Array(n);
    for (let at = 0; at < n;) {
      const c = this.chunks[0];
      const k = Math.min(c.length, n - at);
      out.set(c.subarray(0, k), at);
      at += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.buffered -= n;
    return out;
  }
}

let yieldChannel: MessageChannel | null = null;
const yieldWaiters: (() => void)[] = [];

/**
 * Lets the event loop run once (a macrotask turn: port messages, socket data
 * and close events are delivered; awaiting a resolved promise would not), so
 * a sender whose sends never block still learns of a lost connection between
 * two messages. Node: setImmediate, after the poll phase where a port's close
 * arrives (a MessageChannel turn can starve it for hundreds of turns);
 * browsers: a MessageChannel turn (a timer would cost a millisecond).
 */
export function yieldToEvents(): Promise<void> {
  const g = globalThis as { setImmediate?: (fn: () => void) => unknown };
  if (g.setImmediate) return new Promise((r) => g.setImmediate!(r));
  if (!yieldChannel) {
    yieldChannel = new MessageChannel();
    yieldChannel.port1.onmessage = () => yieldWaiters.shift()?.();
  }
  return new Promise((r) => {
    yieldWaiters.push(r);
    yieldChannel!.port2.postMessage(0);
  });
}
