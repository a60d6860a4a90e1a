// The host half of the translation tier (assembly/cpu/jit/): the core writes a
// WebAssembly module for a hot region of guest code into its memory and asks
// the host to compile it. The module imports the core's memory, one of its
// exports (F/D operations; accesses its probe misses go back to the
// interpreter) and `chain`, which tail-calls a region through the core's
// function table (chaining, translate.ts). Its function goes into that table,
// which the host owns so that it can grow.
//
// Compilation is synchronous (the core is waiting in the middle of KVM_RUN).
// Where an engine refuses that (a browser's main thread limits synchronous
// compiles by size) the call fails and the core keeps interpreting that region.

import type { CoreExports } from "./abi.gen.js";

/** The exports the translation tier links against. */
export type CoreJitExports = Pick<CoreExports, "memory" | "isDebugBuild" | "jitSetThreshold" | "jitFpOp">;

/** Room for the core's own function references at the front of the table (11 today: callbacks and the jit link). */
const CORE_TABLE_ENTRIES = 16;

export interface JitLink {
  /** Entries for the core's `env` imports. */
  imports: {
    table: WebAssembly.Table;
    webkvm_jit_compile: (ptr: number, len: number) => number;
    webkvm_jit_free: (index: number) => void;
  };
  /** Connects the link to the instantiated core (before it runs any guest code) and applies WEBKVM_JIT_THRESHOLD. */
  attach(exports: CoreJitExports): void;
}

/**
 * env.chain(code, budget, acc, fn): a tail call of the region in table slot
 * fn. Regions reach the table through this one small module rather than each
 * importing it: the engine updates every importer of a table at each
 * table.set, which made installing n regions cost n^2 (a Linux boot
 * translating every region on first sight took minutes, not seconds).
 *   (module (type $region (func (param i32 i32 i32) (result i32)))
 *     (import "env" "table" (table 0 funcref))
 *     (func (export "chain") (param i32 i32 i32 i32) (result i32)
 *       (return_call_indirect (type $region) (local.get 0) (local.get 1) (local.get 2) (local.get 3))))
 */
const CHAIN_MODULE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 16, 2, 96, 4, 127, 127, 127, 127, 1, 127, 96, 3, 127,
  127, 127, 1, 127, 2, 15, 1, 3, 101, 110, 118, 5, 116, 97, 98, 108, 101, 1, 112, 0, 0, 3, 2, 1, 0, 7, 9, 1, 5, 99, 104, 97,
  105, 110, 0, 0, 10, 15, 1, 13, 0, 32, 0, 32, 1, 32, 2, 32, 3, 19, 1, 0, 11]);

export function jitLink(): JitLink {
  const table = new WebAssembly.Table({ initial: CORE_TABLE_ENTRIES, element: "anyfunc" });
  const free: number[] = [];
  let core: CoreJitExports | undefined;
  let env: WebAssembly.ModuleImports | undefined;
  return {
    imports: {
      table,
      webkvm_jit_compile(ptr: number, len: number): number {
        if (!core || !env) return 0;
        try {
          // An engine without tail calls refuses this (and the regions): the core interprets.
          env.chain ??= new WebAssembly.Instance(new WebAssembly.Module(CHAIN_MODULE), { env: { table } }).exports.chain;
          const bytes = new Uint8Array(core.memory.buffer, ptr, len).slice();
          const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env });
          const index = free.pop() ?? table.grow(1);
          table.set(index, inst.exports.b as () => unknown);
          return index;
        } catch (err) {
          // The debug core is what the tests run: a module the engine rejects
          // is a code generator bug there, not a reason to interpret quietly.
          if (core.isDebugBuild()) throw err;
          return 0;
        }
      },
      webkvm_jit_free(index: number): void {
        table.set(index, null);
        free.push(index);
      },
    },
    attach(exports: CoreJitExports): void {
      core = exports;
      env = { memory: exports.memory, fp: exports.jitFpOp };
      const threshold = jitThresholdFromEnv();
      if (threshold !== undefined) exports.jitSetThreshold(threshold);
    },
  };
}

/**
 * The threshold the environment asks for (WEBKVM_JIT_THRESHOLD: 0 off, 1
 * translate on first sight, as the test suite's second pass does), if any.
 */
export function jitThresholdFromEnv(): number | undefined {
  const g = globalThis as { process?: { env?: Record<string, string | undefined> } };
  const v = g.process?.env?.WEBKVM_JIT_THRESHOLD;
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`WEBKVM_JIT_THRESHOLD must be a non-negative integer, not ${v}`);
  return n;
}
