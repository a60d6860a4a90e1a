// VcpuThread: a vCPU whose KVM_RUN executes on a Worker of its own (threads
// core). The thread that owns the VM keeps handling the exits: `run()` resolves
// with the exit when the Worker's KVM_RUN returns, and kvm_run is read and
// written in place (it is in the shared memory). Several VcpuThreads run their
// guests at once; `kick()` ends a run from here; `terminate()` stops the Worker
// even in the middle of a run and releases whatever it held.

import type { Vcpu, Exit } from "./vcpu.js";
import type { Kvm } from "./kvm.js";
import type { FromWorker, ToWorker } from "./vcpu-thread-worker.js";
import { spawnWorker, type WorkerHandle } from "./worker-port.js";

/** How long terminate() waits, in a browser, for a kicked run to return. */
const STOP_WAIT_MS = 5000;

export class VcpuThread {
  private seq = 0;
  private pending: { resolve: (e: Exit) => void; reject: (e: unknown) => void } | null = null;
  private failure: string | null = null;
  private gone = false;
  /** Set while terminate() waits for the run in flight to end (browsers). */
  private stopping: (() => void) | null = null;

  private constructor(readonly vcpu: Vcpu, private readonly worker: WorkerHandle<ToWorker, FromWorker>, readonly threadId: number) {
    worker.onMessage((m) => this.message(m));
    worker.hold(false); // an idle vCPU thread does not keep the process alive; a run in flight does
  }

  /**
   * Starts a Worker for vcpu, a vCPU of a VM of kvm (which must run the threads
   * core). `workerUrl` overrides where the Worker's script is (the built
   * `vcpu-thread-worker.js` next to this module), for bundlers and tests.
   */
  static async start(kvm: Kvm, vcpu: Vcpu, opts: { workerUrl?: URL } = {}): Promise<VcpuThread> {
    if (vcpu.vm.kvm !== kvm) throw new Error("webkvm: the vCPU belongs to another Kvm");
    if (!kvm.core.isThreadsBuild()) throw new Error("webkvm: runInWorker needs the threads core (Kvm.open({ core: \"threads\" }))");
    const worker = await spawnWorker<ToWorker, FromWorker>(opts.workerUrl ?? new URL("./vcpu-thread-worker.js", import.meta.url));
    const ready = await new Promise<number>((resolve, reject) => {
      worker.onMessage((m) => {
        if ("ready" in m) resolve(m.ready);
        else if ("error" in m) reject(new Error(`webkvm: vCPU worker: ${m.error}`));
      });
      worker.post({ init: { share: kvm.share(), vmFd: vcpu.vm.fd, vcpuFd: vcpu.fd } });
    });
    return new VcpuThread(vcpu, worker, ready);
  }

  private message(m: FromWorker | { error: string }): void {
    const p = this.pending;
    if (!("ready" in m)) this.worker.hold(false);
    if (this.stopping && ("error" in m || "done" in m)) {
      this.stopping(); // terminate() waits for this: the thread is idle now
      return;
    }
    if ("error" in m) {
      this.failure = m.error;
      this.pending = null;
      p?.reject(new Error(`webkvm: vCPU worker: ${m.error}`));
      return;
    }
    if (!("done" in m) || !p || m.done !== this.seq) return;
    this.pending = null;
    try {
      p.resolve(this.vcpu.exitOf(m.r, m.check));
    } catch (e) {
      p.reject(e);
    }
  }

  /** KVM_RUN on the Worker: resolves with the exit (or rejects as Vcpu.run throws). One run at a time. */
  run(): Promise<Exit> {
    if (this.gone) return Promise.reject(new Error("webkvm: the vCPU's worker was terminated"));
    if (this.failure) return Promise.reject(new Error(`webkvm: vCPU worker: ${this.failure}`));
    if (this.pending) return Promise.reject(new Error("webkvm: a KVM_RUN is already in flight on this vCPU thread"));
    this.vcpu.runEntryHooks();
    return new Promise<Exit>((resolve, reject) => {
      this.pending = { resolve, reject };
      this.worker.hold(true); // an awaited run keeps the process alive until it returns
      this.worker.post({ run: ++this.seq });
    });
  }

  /** Ends the run in flight (exit INTR, EINTR) at the next instruction boundary; see Vcpu.kick. */
  kick(): void {
    this.vcpu.kick();
  }

  /**
   * Stops the Worker, even inside KVM_RUN, and releases every lock, read
   * section and vCPU state it held (kvm's SRCU, vcpu->mutex, mmu_lock, ...),
   * so the VM's next memslot update and its close complete. The run in flight
   * rejects. The vCPU stays usable from this thread or a new VcpuThread.
   */
  async terminate(): Promise<void> {
    if (this.gone) return;
    this.gone = true;
    if (this.pending && !this.worker.terminateWaitsForStop) {
      // A browser's Worker.terminate() returns before the thread has stopped,
      // so what it held could not be released safely after it: the run is
      // ended first (a kick), and the thread, idle again, holds nothing. A
      // thread that does not return (stuck in a lock) is stopped as it is.
      const idle = new Promise<void>((resolve) => { this.stopping = resolve; });
      this.vcpu.kick();
      await Promise.race([idle, new Promise<void>((resolve) => setTimeout(resolve, STOP_WAIT_MS))]);
    }
    this.worker.hold(false);
    await this.worker.terminate();
    this.vcpu.vm.kvm.core.threadGone(this.threadId);
    const p = this.pending;
    this.pending = null;
    p?.reject(new Error("webkvm: the vCPU's worker was terminated"));
  }
}
