// test/browser/threads.html: runScenario(name, params) runs one scenario of
// test/threads-scenarios/ with its VMM on a Web Worker (threads-vmm.mjs: the
// VMM waits with Atomics.wait, which the page's main thread may not) and
// resolves to what its driver returned.
window.runScenario = (name, params) => new Promise((resolve, reject) => {
  const w = new Worker(new URL("./threads-vmm.mjs", import.meta.url), { type: "module" });
  const end = (fn, v) => { w.terminate(); fn(v); };
  w.addEventListener("message", (e) => e.data.error ? end(reject, new Error(e.data.error)) : end(resolve, e.data.result));
  w.addEventListener("error", (e) => end(reject, new Error(`VMM worker: ${e.message}`)));
  w.postMessage({ name, params });
});
window.scenariosReady = true;
