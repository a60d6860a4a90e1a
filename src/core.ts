// Loading the core in Node and in browsers. The wasm is found next to this
// module by default (new URL(..., import.meta.url)); callers may pass a URL,
// the bytes, or a compiled WebAssembly.Module (bundlers, CSP-restricted pages).

import * as loader from "@assemblyscript/loader";
import { jitLink } from "./jit.js";
import type { CoreExports } from "./abi.gen.js";

/** The raw exports of assembly/index.ts, typed from the core's own bindings (scripts/gen-abi.mjs). */
export type { CoreExports };

export type CoreBuild = "debug" | "release";
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
      ? (build === "debug" ? new URL("../build/debug.wasm", import.meta.url) : new URL("../build/release.wasm", import.meta.url))
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

/** A fresh core instance: one VMM process (its own linear memory, fds, VMs). */
export async function instantiateCore(source: WasmSource | undefined, build: CoreBuild | undefined,
                                      hook: CoreHooks): Promise<CoreExports> {
  const module = await compile(source, build ?? defaultBuild());
  const jit = jitLink();
  const imports = {
    env: {
      ...jit.imports,
      webkvm_reader_hook: (vm: number, point: number, asId: number) => hook.fn?.(vm, point, asId),
      webkvm_track_write: (vm: number, gpa: bigint, data: number, len: number) => hook.trackWrite?.(vm, gpa, data, len),
      webkvm_track_remove_region: (vm: number, base: bigint, npages: bigint) => hook.trackRemoveRegion?.(vm, base, npages),
    },
  };
  const inst = await loader.instantiate(module, imports as unknown as loader.Imports);
  const exports = inst.exports as unknown as CoreExports;
  jit.attach(exports);
  return exports;
}

/**
 * Views over linear memory are rebuilt on every use: memory.grow detaches old
 * buffers. ptr is a usize as the core returns it (a signed i32: `>>> 0` makes
 * addresses past 2 GiB positive).
 */
export function bytesAt(core: CoreExports, ptr: number, len: number): Uint8Array {
  return new Uint8Array(core.memory.buffer, ptr >>> 0, len);
}

export function viewAt(core: CoreExports, ptr: number, len: number): DataView {
  return new DataView(core.memory.buffer, ptr >>> 0, len);
}
