// The migration transports (src/migration/transport*.ts): whole messages in
// order over a MessagePort and over a byte stream however the stream cuts or
// joins them, large messages, a clean close (null) told apart from a lost
// connection (TransportError), and backpressure.
import { describe, it, expect } from "vitest";
import { MessageChannel } from "node:worker_threads";
import { createServer, connect, type Socket } from "node:net";
import { PassThrough } from "node:stream";
import { FrameReader, frameHeader, closeFrame, TransportError, type Transport } from "../src/migration/transport.js";
import { PortTransport } from "../src/migration/transport-port.js";
import { SocketTransport } from "../src/migration/transport-socket.js";
import { Rng } from "./rng.js";

function message(r: Rng, len: number): Uint8Array {
  const m = new Uint8Array(len);
  for (let i = 0; i < len; i++) m[i] = r.u32() & 0xff;
  return m;
}

async function tcpPair(): Promise<{ a: Socket; b: Socket; close: () => void }> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  const accepted = new Promise<Socket>((r) => server.once("connection", r));
  const a = connect(port, "127.0.0.1");
  await new Promise<void>((r) => a.once("connect", () => r()));
  const b = await accepted;
  return { a, b, close: () => { a.destroy(); b.destroy(); server.close(); } };
}

type Pair = { a: Transport; b: Transport; drop: () => void; done: () => void };
const PAIRS: Record<string, () => Promise<Pair>> = {
  MessagePort: async () => {
    const { port1, port2 } = new MessageChannel();
    return { a: new PortTransport(port1), b: new PortTransport(port2), drop: () => port1.close(), done: () => {} };
  },
  TCP: async () => {
    const t = await tcpPair();
    return { a: new SocketTransport(t.a), b: new SocketTransport(t.b), drop: () => t.a.destroy(), done: t.close };
  },
};

describe("framing of a byte stream", () => {
  it("messages split and merged arbitrarily by the stream come out whole and in order", () => {
    const r = new Rng(7);
    for (let trial = 0; trial < 50; trial++) {
      const msgs = Array.from({ length: 1 + r.int(8) }, () => message(r, r.chance(0.3) ? 0 : r.int(5000)));
      const stream = new Uint8Array(msgs.reduce((n, m) => n + 4 + m.length, 0));
      let at = 0;
      for (const m of msgs) {
        stream.set(frameHeader(m.length), at);
        stream.set(m, at + 4);
        at += 4 + m.length;
      }
      const reader = new FrameReader();
      const out: Uint8Array[] = [];
      for (let i = 0; i < stream.length;) {
        const n = Math.min(stream.length - i, r.chance(0.3) ? 1 : 1 + r.int(7000));
        out.push(...reader.push(stream.subarray(i, i + n)));
        i += n;
      }
      expect(out).toEqual(msgs);
      expect(reader.partial).toBe(0);
    }
  });

  it("a length prefix over the frame limit is refused as a damaged stream", () => {
    const reader = new FrameReader();
    expect(() => reader.push(new Uint8Array([0, 0, 0, 0x7f]))).toThrow(/over the .* limit: the stream is damaged/);
  });

  it("bytes after the close frame are refused", () => {
    const reader = new FrameReader();
    const bytes = new Uint8Array([...closeFrame(), 1]);
    expect(() => reader.push(bytes)).toThrow(TransportError);
  });

  it("a stream that ends inside a message is a lost connection naming where", async () => {
    const s = new PassThrough();
    const t = new SocketTransport(s);
    s.write(frameHeader(100));
    s.write(new Uint8Array(10));
    s.end();
    await expect(t.receive()).rejects.toThrow(/connection lost: the stream ended 14 bytes into a message/);
  });
});

describe("MessagePort: messages written in room reuse() gives travel without a copy", () => {
  it("a slot of shared memory is handed out again only once the receiver recycled the message in it", async () => {
    const { port1, port2 } = new MessageChannel();
    const a = new PortTransport(port1, { window: 4 * 4096 }), b = new PortTransport(port2);
    const slots = 4 + 4; // the window's worth, and the pool's spare
    const out: Uint8Array[] = [];
    for (let i = 0; i < slots; i++) {
      const room = a.reuse(4096)!;
      expect(room.buffer).toBeInstanceOf(SharedArrayBuffer);
      room.fill(i + 1);
      out.push(room);
      void a.send(room.subarray(0, 100 + i));
    }
    expect(a.reuse(4096)).toBeNull(); // every slot holds a message the receiver has not recycled
    const got: Uint8Array[] = [];
    for (let i = 0; i < slots; i++) got.push((await b.receive())!);
    got.forEach((m, i) => expect([m.length, m[0], m[m.length - 1]]).toEqual([100 + i, i + 1, i + 1]));
    expect(a.reuse(4096)).toBeNull(); // taken is not recycled: the receiver still reads them
    b.recycle(got[3]);
    await new Promise((r) => setTimeout(r, 20));
    const again = a.reuse(4096)!;
    expect(again.byteOffset).toBe(out[3].byteOffset);
    expect(a.reuse(4096)).toBeNull();
    a.close();
    b.close();
  });

  it("without shared memory: a message at its buffer's start moves it, and a recycled one moves back (detached at the receiver)", async () => {
    const { port1, port2 } = new MessageChannel();
    const a = new PortTransport(port1, { shared: false }), b = new PortTransport(port2, { shared: false });
    expect(a.reuse(64)).toBeNull();
    const buf = new Uint8Array(256).fill(9);
    await a.send(buf.subarray(0, 64));
    expect(buf.byteLength).toBe(0); // transferred: the sender no longer has it
    const m = (await b.receive())!;
    expect([m.length, m[63], m.buffer.byteLength]).toEqual([64, 9, 256]);
    b.recycle(m);
    expect(m.byteLength).toBe(0); // transferred back: the receiver reads it no more
    await new Promise((r) => setTimeout(r, 20));
    expect(a.reuse(300)).toBeNull(); // too small for what is asked
    await a.send(new Uint8Array(256).subarray(0, 8));
    b.recycle((await b.receive())!);
    await new Promise((r) => setTimeout(r, 20));
    expect(a.reuse(200)?.byteLength).toBe(256);
    a.close();
    b.close();
  });
});

for (const [name, make] of Object.entries(PAIRS)) {
  describe(`transport over ${name}`, () => {
    it("delivers messages whole and in order, large ones too, then null at a clean close", async () => {
      const { a, b, done } = await make();
      const r = new Rng(11);
      const sizes = [0, 1, 4096, 65537, 3 << 20, 17, 8 << 20];
      const msgs = sizes.map((n) => message(r, n));
      const copies = msgs.map((m) => m.slice());
      const sending = (async () => {
        for (const m of msgs) await a.send(m);
        a.close();
      })();
      const got: Uint8Array[] = [];
      for (let m = await b.receive(); m !== null; m = await b.receive()) got.push(m);
      await sending;
      expect(got.length).toBe(copies.length);
      got.forEach((m, i) => expect(Buffer.compare(Buffer.from(m), Buffer.from(copies[i]))).toBe(0));
      expect(await b.receive()).toBeNull();
      b.close();
      done();
    });

    it("a lost connection is a TransportError, not a clean close", async () => {
      const { a, b, drop, done } = await make();
      await a.send(new Uint8Array([1, 2, 3]));
      expect([...(await b.receive())!]).toEqual([1, 2, 3]);
      drop();
      await expect(b.receive()).rejects.toThrow(/connection lost/);
      await expect(b.send(new Uint8Array(8))).rejects.toThrow(TransportError);
      done();
    });

    it("backpressure: send() waits while the receiver takes nothing, and goes on when it does", async () => {
      const { a, b, done } = await make();
      let sent = 0;
      const sending = (async () => {
        for (let i = 0; i < 64; i++) {
          await a.send(new Uint8Array(1 << 20));
          sent++;
        }
        a.close();
      })();
      await new Promise((r) => setTimeout(r, 200));
      expect(sent).toBeLessThan(64); // 64 MiB is over any window or socket buffer: the sender is held back
      let n = 0;
      while ((await b.receive()) !== null) n++;
      await sending;
      expect(n).toBe(64);
      b.close();
      done();
    });
  });
}
