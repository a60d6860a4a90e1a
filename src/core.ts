// Loading the core in Node and in browsers. The wasm is found next to this
// module by default (new URL(..., import.meta.url)); callers may pass a URL,
// the bytes, or a compiled WebAssembly.Module (bundlers, CSP-restricted pages).

import * as loader from "@assemblyscript/loader";
import { jitLink } from "./jit.js";
import { THREADS_MEMORY, type CoreExports } from "./abi.gen.js";

/** The raw exports of assembly/index.ts, typed from the core's own bindings (scripts/gen-abi.mjs). */
export type { CoreExports };

/**
 * "threads": the debug core over a shared memory, for several threads (see
 * instantiateCore's `shared`); "threads-release": the same without the debug
 * checks, as "release" is to "debug".
 */
export type CoreBuild = "debug" | "release" | "threads" | "threads-release";
export type WasmSource = URL | string | ArrayBuffer | ArrayBufferView | WebAssembly.Module;

export type ReaderHook = (vmFd: number, point: number, asId: number) => void;

/** Callbacks the core makes into the host (page-track notifications, reader hooks). */
export interface CoreHooks {
  fn: ReaderHook | null;
  trackWrite?: (vmFd: number, gpa: bigint, dataPtr: number, len: number) => void;
  trackRemoveRegion?: (vmFd: number, baseGfn: bigint, npages: bigint) => void;
}

const moduleCache = new Map<string, Promise<WebAssembly.Module>>();

function defaultBuild(): CoreBuild {
  const g = globalThis as { __WEBKVM_CORE__?: CoreBuild; process?: { env?: Record<string, string | undefined> } };
  return g.__WEBKVM_CORE__ ?? (g.process?.env?.WEBKVM_CORE as CoreBuild | undefined) ?? "release";
}

async function fetchBytes(url: URL): Promise<ArrayBuffer> {
  if (url.protocol === "file:") {
    // Only file: URLs (Node) reach node:fs. The specifier is a variable and the
    // import is marked ignored so browser bundlers neither resolve nor inline it.
    const fsModule = "node:fs/promises";
    const fs: typeof import("node:fs/promises") = await import(/* webpackIgnore: true */ /* @vite-ignore */ fsModule);
    const b = await fs.readFile(url);
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
  }
  const res = await fetch(url);
  if (!res.ok) throw new Error(`webkvm: could not load ${url}: ${res.status}`);
  return res.arrayBuffer();
}

async function compile(source: WasmSource | undefined, build: CoreBuild): Promise<WebAssembly.Module> {
  if (source instanceof WebAssembly.Module) return source;
  if (source === undefined || typeof source === "string" || source instanceof URL) {
    // Literal URLs (one per build) so bundlers see and emit the wasm assets.
    const url = source === undefined
      ? (build === "debug" ? new URL("../build/debug.wasm", import.meta.url)
        : build === "threads" ? new URL("../build/threads.wasm", import.meta.url)
        : build === "threads-release" ? new URL("../build/threads-release.wasm", import.meta.url)
        : new URL("../build/release.wasm", import.meta.url))
      : source instanceof URL ? source : new URL(source, import.meta.url);
    const key = url.href;
    let m = moduleCache.get(key);
    if (!m) {
      m = fetchBytes(url).then((b) => WebAssembly.compile(b));
      moduleCache.set(key, m);
    }
    return m;
  }
  const bytes = source instanceof ArrayBuffer ? source
    : new Uint8Array(source.buffer, source.byteOffset, source.byteLength).slice().buffer;
  return WebAssembly.compile(bytes);
}

/**
 * A shared memory the threads build can be instantiated over (`new WebAssembly.Memory({ shared: true })`);
 * `maximum` (64 KiB pages) below the module's must also be told to the core (`memoryMaximum`).
 */
export function createSharedMemory(maximum: number = THREADS_MEMORY.maximum): WebAssembly.Memory {
  return new WebAssembly.Memory({ ...THREADS_MEMORY, maximum, shared: true });
}

/**
 * What a thread needs to join a threads-build process: the compiled module (a
 * WebAssembly.Module and a shared Memory can both be posted to a Worker), the
 * shared memory and the address of the process block (assembly/threads.ts).
 */
export interface SharedCore {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  process: number;
}

/** The SharedCore an instance of the threads build belongs to. */
export function sharedCoreOf(core: CoreExports, module: WebAssembly.Module): SharedCore {
  if (!core.isThreadsBuild()) throw new Error("webkvm: not the threads build");
  return { module, memory: core.memory, process: core.processSetup() };
}

/**
 * A fresh core instance: one VMM process (its own linear memory, fds, VMs) or,
 * with the threads build, one thread of a process: `shared.memory` (default: a
 * new shared memory) is imported, and the instance sets the process up or, given
 * `shared.process`, joins the one already there.
 */
export async function instantiateCore(source: WasmSource | undefined, build: CoreBuild | undefined,
                                      hook: CoreHooks, shared?: Partial<SharedCore>): Promise<CoreExports> {
  const module = shared?.module ?? await compile(source, build ?? defaultBuild());
  const jit = jitLink();
  // The threads build imports its (shared) memory; the others define their own.
  const importsMemory = WebAssembly.Module.imports(module).some((i) => i.kind === "memory");
  const memory = importsMemory ? shared?.memory ?? createSharedMemory() : undefined;
  const words = () => new Int32Array(memory!.buffer);
  const imports = {
    env: {
      ...jit.imports,
      ...(memory ? { memory } : {}),
      // The heap lock's slow path (assembly/threads.ts): sleep while the word
      // holds `expected`. A browser's main thread may not block: it returns and
      // the core tries the lock again.
      webkvm_futex_wait: (addr: number, expected: number) => {
        try { Atomics.wait(words(), addr >>> 2, expected); } catch { /* may not block here: spin */ }
      },
      webkvm_futex_wake: (addr: number, count: number) => { Atomics.notify(words(), addr >>> 2, count); },
      webkvm_reader_hook: (vm: number, point: number, asId: number) => hook.fn?.(vm, point, asId),
      webkvm_track_write: (vm: number, gpa: bigint, data: number, len: number) => hook.trackWrite?.(vm, gpa, data, len),
      webkvm_track_remove_region: (vm: number, base: bigint, npages: bigint) => hook.trackRemoveRegion?.(vm, base, npages),
    },
  };
  const inst = await loader.instantiate(module, imports as unknown as loader.Imports);
  const exports = inst.exports as unknown as CoreExports;
  unwrapExports(inst.instance, exports);
  if (memory) {
    // Attach before any other call: the instance must not touch the heap first.
    if (shared?.process !== undefined) exports.processAttach(shared.process);
    else exports.processSetup();
  }
  jit.attach(exports);
  // Translated regions import the core's memory as a plain one: no JIT over a shared memory yet.
  if (memory) exports.jitSetThreshold(0);
  return exports;
}

/**
 * The loader wraps every exported function in a rest-arguments closure that
 * first tells the module how many arguments came (for optional parameters).
 * The core declares no optional parameters (it exports no argument-count
 * setter), so the wrappers only add a call and an array to each entry (every
 * ioctl): the exports become the module's functions themselves.
 */
function unwrapExports(instance: WebAssembly.Instance, exports: CoreExports): void {
  const raw = instance.exports;
  if ("__setArgumentsLength" in raw || "__argumentsLength" in raw || "__setargc" in raw) return;
  const table = exports as unknown as Record<string, unknown>;
  for (const [name, fn] of Object.entries(table)) {
    const original = typeof fn === "function" ? (fn as { original?: unknown }).original : undefined;
    if (typeof original === "function") table[name] = original;
  }
}

/** The compiled module of a build (cached per URL), e.g. to hand to Workers. */
export function compileCore(source: WasmSource | undefined, build: CoreBuild | undefined): Promise<WebAssembly.Module> {
  return compile(source, build ?? defaultBuild());
}

/**
 * Views over linear memory are rebuilt on every use: memory.grow detaches a
 * plain memory's old buffer. A shared memory's SharedArrayBuffer never
 * detaches, and `memory.buffer` has the current length on every thread even
 * when another one grew it (test/threads.test.ts reads pages a Worker added).
 * ptr is a usize as the core returns it (a signed i32: `>>> 0` makes addresses
 * past 2 GiB positive).
 */
export function bytesAt(core: CoreExports, ptr: number, len: number): Uint8Array {
  return new Uint8Array(core.memory.buffer, ptr >>> 0, len);
}

export function viewAt(core: CoreExports, ptr: number, len: number): DataView {
  return new DataView(core.memory.buffer, ptr >>> 0, len);
}
