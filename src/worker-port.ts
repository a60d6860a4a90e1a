// Workers in Node's worker_threads and in browsers alike: starting one
// (vcpu-thread.ts, vcpu-runner.ts) and, inside one, its port to the parent
// (vcpu-thread-worker.ts, vcpu-runner-worker.ts).

export interface Port<In, Out> {
  post(m: Out): void;
  listen(fn: (m: In) => void): void;
}

export async function workerPort<In, Out>(): Promise<Port<In, Out>> {
  const g = globalThis as unknown as { process?: { versions?: { node?: string } } };
  if (g.process?.versions?.node) {
    const wtModule = "node:worker_threads"; // hidden from bundlers: the browser path never loads it
    const wt = await import(/* webpackIgnore: true */ /* @vite-ignore */ wtModule) as typeof import("node:worker_threads");
    const p = wt.parentPort!;
    return { post: (m) => p.postMessage(m), listen: (fn) => p.on("message", fn) };
  }
  const self = globalThis as unknown as { postMessage(m: unknown): void; onmessage: ((e: MessageEvent) => void) | null };
  return { post: (m) => self.postMessage(m), listen: (fn) => { self.onmessage = (e) => fn(e.data as In); } };
}

export interface WorkerHandle<In, Out> {
  post(m: In): void;
  /** Node: whether the Worker keeps the process alive (only while a run is in flight). */
  hold(on: boolean): void;
  /** Messages from the Worker; its uncaught errors arrive as { error }. */
  onMessage(fn: (m: Out | { error: string }) => void): void;
  terminate(): Promise<void>;
  /** Whether terminate() resolves only once the thread has stopped (Node); a browser's returns at once. */
  readonly terminateWaitsForStop: boolean;
}

/** Starts a Worker (module script) in Node or a browser. */
export async function spawnWorker<In, Out>(url: URL): Promise<WorkerHandle<In, Out>> {
  const g = globalThis as unknown as { process?: { versions?: { node?: string } }; Worker?: typeof Worker };
  if (g.process?.versions?.node) {
    const wtModule = "node:worker_threads"; // hidden from bundlers: the browser path never loads it
    const wt = await import(/* webpackIgnore: true */ /* @vite-ignore */ wtModule) as typeof import("node:worker_threads");
    const w = new wt.Worker(url); // keeps the process alive until it is ready (see hold)
    return {
      post: (m) => w.postMessage(m),
      hold: (on) => { if (on) w.ref(); else w.unref(); },
      onMessage: (fn) => { w.on("message", fn); w.on("error", (e) => fn({ error: String(e?.stack ?? e) })); },
      terminate: async () => { await w.terminate(); },
      terminateWaitsForStop: true,
    };
  }
  if (!g.Worker) throw new Error("webkvm: no Worker here");
  const w = new g.Worker(url, { type: "module" });
  return {
    post: (m) => w.postMessage(m),
    hold: () => {},
    onMessage: (fn) => {
      w.onmessage = (e) => fn(e.data);
      w.onerror = (e) => fn({ error: String(e.message) });
    },
    terminate: async () => { w.terminate(); },
    terminateWaitsForStop: false,
  };
}
