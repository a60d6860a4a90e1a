// VcpuRunner: KVM_RUN on a Worker while the calling thread waits for it, so
// code written for one thread (vcpu.run() returns the exit) runs its guests on
// another thread as it is: Kvm.open({ vcpuWorkers: true }). One Worker per
// calling thread serves every threads-core process that asks (it joins a
// process at its first run there); a vCPU's runs may so come from different
// threads over its life, which Linux allows (kvm_vcpu_ioctl updates
// vcpu->pid). The caller blocks in Atomics.wait: Node, or a Worker; never a
// browser's main thread. Reader hooks and page-track callbacks run on the
// thread that set them, so a VM using them runs its vCPUs there (vcpu.ts).

import { spawnWorker, type WorkerHandle } from "./worker-port.js";

/** The signal block's words: the Worker writes the answer, then SEQ (the parent waits on it). */
export const SIG = { SEQ: 0, R: 1, CHECK: 2, STATUS: 3, TEXT_LEN: 4 } as const;
/** Where an error's text starts in the signal block (bytes), up to its end. */
export const TEXT_OFFSET = 32;
const SIG_BYTES = 4096;
export const STATUS = { OK: 0, THREW: 1, TRAPPED: 2, UNKNOWN_PROCESS: 3 } as const;

/**
 * Messages to the Worker: the signal block once, then joins (`share` is what
 * kvm.share() gave, passed through) and runs, each with the sequence number it answers.
 */
export type ToRunner = { signal: SharedArrayBuffer }
  | { join: { id: number; share: object }; seq: number }
  | { run: { id: number; vcpuFd: number }; seq: number };
/** The one message from the Worker: it has the signal block (everything after goes through the block). */
export type FromRunner = { ready: true };

/** Whether this thread may block in Atomics.wait (a browser's main thread may not). */
export function canBlock(): boolean {
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
    return true;
  } catch {
    return false;
  }
}

const runners = new Map<string, Promise<VcpuRunner>>();
const processIds = new WeakMap<WebAssembly.Memory, number>();
let nextProcessId = 1;

export class VcpuRunner {
  private seq = 0;
  private readonly sig = new Int32Array(new SharedArrayBuffer(SIG_BYTES));
  /** Processes the Worker has joined (it may drop one: it then says so and is asked to join again). */
  private readonly joined = new Set<number>();
  /** KVM_RUNs this runner has issued on its Worker. */
  runs = 0;

  private broken: string | null = null;

  private constructor(private readonly worker: WorkerHandle<ToRunner, FromRunner>, private readonly key: string,
                      private readonly waitLimitMs: number) {}

  /**
   * This thread's runner with the Worker script at url (started at the first
   * call). A call that waits longer than waitLimitMs for the Worker's answer
   * throws, and the runner is replaced: a test that deadlocks fails instead of
   * hanging its thread, which no test timeout can interrupt while it waits.
   */
  static get(url: URL, waitLimitMs = Infinity): Promise<VcpuRunner> {
    const key = `${url.href} ${waitLimitMs}`;
    let r = runners.get(key);
    if (!r) {
      r = VcpuRunner.start(url, key, waitLimitMs);
      runners.set(key, r);
      r.catch(() => runners.delete(key));
    }
    return r;
  }

  private static async start(url: URL, key: string, waitLimitMs: number): Promise<VcpuRunner> {
    if (!canBlock()) throw new Error("webkvm: vcpuWorkers needs a thread that may block (Atomics.wait), not a browser's main thread");
    const w = await spawnWorker<ToRunner, FromRunner>(url);
    const runner = new VcpuRunner(w, key, waitLimitMs);
    // The handshake is a message: a Worker that fails to start reports it here
    // rather than leave a blocked caller waiting.
    await new Promise<void>((resolve, reject) => {
      w.onMessage((m) => {
        if ("error" in m) reject(new Error(`webkvm: vCPU runner worker: ${m.error}`));
        else resolve();
      });
      w.post({ signal: runner.sig.buffer as SharedArrayBuffer });
    });
    w.hold(false); // an idle runner does not keep the process alive
    return runner;
  }

  /**
   * KVM_RUN of vCPU fd vcpuFd on the Worker, in the process whose shared memory
   * is mem (share() says how to join it): its result and failed check.
   */
  run(mem: WebAssembly.Memory, share: () => object, vcpuFd: number): { r: number; check: number } {
    let id = processIds.get(mem);
    if (id === undefined) processIds.set(mem, id = nextProcessId++);
    for (;;) {
      if (!this.joined.has(id)) {
        this.call({ join: { id, share: share() }, seq: 0 });
        this.joined.add(id);
      }
      const status = this.call({ run: { id, vcpuFd }, seq: 0 });
      if (status === STATUS.UNKNOWN_PROCESS) {
        this.joined.delete(id);
        continue;
      }
      this.runs++;
      return { r: this.sig[SIG.R], check: this.sig[SIG.CHECK] };
    }
  }

  /** Posts m and blocks until the Worker answers it; throws what the Worker threw. */
  private call(m: Exclude<ToRunner, { signal: SharedArrayBuffer }>): number {
    if (this.broken) throw new Error(this.broken);
    const seq = m.seq = ++this.seq;
    this.worker.post(m);
    const deadline = performance.now() + this.waitLimitMs;
    for (let cur = Atomics.load(this.sig, SIG.SEQ); cur !== seq; cur = Atomics.load(this.sig, SIG.SEQ)) {
      const left = deadline - performance.now();
      if (left <= 0) {
        this.broken = `webkvm: the vCPU runner's Worker did not answer within ${this.waitLimitMs} ms (a deadlock?); it is stopped`;
        runners.delete(this.key);
        void this.worker.terminate();
        throw new Error(this.broken);
      }
      Atomics.wait(this.sig, SIG.SEQ, cur, left);
    }
    const status = this.sig[SIG.STATUS];
    if (status === STATUS.THREW || status === STATUS.TRAPPED) {
      if ("run" in m) this.joined.delete(m.run.id); // the Worker left that process
      const text = new TextDecoder().decode(new Uint8Array(this.sig.buffer, TEXT_OFFSET, this.sig[SIG.TEXT_LEN]).slice());
      throw status === STATUS.TRAPPED ? new WebAssembly.RuntimeError(text) : new Error(`webkvm: vCPU runner worker: ${text}`);
    }
    return status;
  }
}
