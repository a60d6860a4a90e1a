// How a scenario starts a vCPU Worker, in Node or in a browser: spawn(url, data)
// starts the module at url with data as its input and returns
// { onMessage(cb), terminate() }; a Worker's failure arrives as { error }.
// The Worker side reads its input with workerInput() and answers with post().

const NODE = typeof process === "object" && typeof process.versions?.node === "string";

export async function spawner() {
  if (NODE) {
    const { Worker } = await import("node:worker_threads");
    return (url, data) => {
      const w = new Worker(url, { workerData: data });
      return {
        onMessage(cb) {
          w.on("message", cb);
          w.on("error", (e) => cb({ error: String(e?.stack ?? e) }));
          w.on("exit", () => cb({ exited: true }));
        },
        terminate: () => w.terminate(),
      };
    };
  }
  return (url, data) => {
    const w = new Worker(url, { type: "module" });
    w.postMessage(data);
    return {
      onMessage(cb) {
        w.addEventListener("message", (e) => cb(e.data));
        w.addEventListener("error", (e) => cb({ error: e.message ?? String(e) }));
      },
      terminate: () => w.terminate(),
    };
  };
}

/** In a Worker: its input (Node: workerData; browser: the first message) and how it posts back. */
export async function workerInput() {
  if (NODE) {
    const { workerData, parentPort } = await import("node:worker_threads");
    return { data: workerData, post: (m) => parentPort.postMessage(m) };
  }
  const data = await new Promise((resolve) => self.addEventListener("message", (e) => resolve(e.data), { once: true }));
  return { data, post: (m) => self.postMessage(m) };
}
