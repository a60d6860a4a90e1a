// The Worker behind VcpuRunner (vcpu-runner.ts): issues KVM_RUN for whichever
// vCPU the parent names, in whichever threads-core process it belongs to
// (joined at its first run there), and answers through a shared signal block
// the parent is blocked on: the parent cannot take a message while it waits.

import { Kvm, type KvmShare } from "./kvm.js";
import { KVM_RUN } from "./uapi.js";
import { rawIoctl } from "./ioctl.js";
import { workerPort } from "./worker-port.js";
import { SIG, STATUS, TEXT_OFFSET, type ToRunner, type FromRunner } from "./vcpu-runner.js";

/** Processes joined, most recently used last; the oldest is dropped past this many. */
const MAX_PROCESSES = 8;

const p = await workerPort<ToRunner, FromRunner>();
const procs = new Map<number, Kvm>();
let sig: Int32Array | null = null;

function answer(seq: number, status: number, r = 0, check = 0, text = ""): void {
  const s = sig!;
  const bytes = new TextEncoder().encode(text);
  const room = s.byteLength - TEXT_OFFSET;
  const n = Math.min(bytes.length, room);
  new Uint8Array(s.buffer, TEXT_OFFSET, n).set(bytes.subarray(0, n));
  s[SIG.R] = r;
  s[SIG.CHECK] = check;
  s[SIG.STATUS] = status;
  s[SIG.TEXT_LEN] = n;
  Atomics.store(s, SIG.SEQ, seq); // publishes the fields above
  Atomics.notify(s, SIG.SEQ);
}

function describe(e: unknown): string {
  return String((e as Error)?.stack ?? e);
}

p.listen(async (m) => {
  if ("signal" in m) {
    sig = new Int32Array(m.signal);
    p.post({ ready: true });
    return;
  }
  if ("join" in m) {
    try {
      const k = await Kvm.join(m.join.share as KvmShare);
      procs.set(m.join.id, k);
      if (procs.size > MAX_PROCESSES) procs.delete(procs.keys().next().value!);
      answer(m.seq, STATUS.OK);
    } catch (e) {
      answer(m.seq, STATUS.THREW, 0, 0, describe(e));
    }
    return;
  }
  const k = procs.get(m.run.id);
  if (!k) { answer(m.seq, STATUS.UNKNOWN_PROCESS); return; }
  procs.delete(m.run.id); // most recently used last
  procs.set(m.run.id, k);
  try {
    const r = rawIoctl(k.core, m.run.vcpuFd, KVM_RUN);
    answer(m.seq, STATUS.OK, r, r < 0 ? k.core.lastFailedCheck() : 0);
  } catch (e) {
    // A trap inside KVM_RUN: this thread is gone for that process, as a
    // terminated one is (its locks and read section released); the next run
    // there joins afresh.
    k.core.threadGone(k.core.threadIdOf());
    procs.delete(m.run.id);
    answer(m.seq, e instanceof WebAssembly.RuntimeError ? STATUS.TRAPPED : STATUS.THREW, 0, 0,
      e instanceof Error ? e.message : describe(e));
  }
});
