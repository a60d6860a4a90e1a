// The wasm/TS boundary has one definition, the core's: src/abi.gen.ts is
// generated from assembly/ (scripts/gen-abi.mjs). These tests hold the host to
// it: the typed export list matches what each build really exports, every
// check code the core can record has a message and every message a code,
// every errno the core names has its name, and the kernel uapi that users get
// from src/uapi.ts is the one the core implements.
import { describe, it, expect } from "vitest";
import { readFileSync } from "node:fs";
import { instantiateCore, type CoreBuild } from "../src/core.js";
import { CHECK, ERRNO, CHECK_MESSAGES, errnoName, KvmError } from "../src/errors.js";
import { CORE_EXPORTS, CORE_TEST_SURFACE, CORE_IOCTL, CORE_CAP, CORE_MEMSLOT, CORE_EXIT } from "../src/abi.gen.js";
import * as uapi from "../src/uapi.js";
import { KVM_EXIT } from "../src/kvm-run.js";

/** name -> parameter count (functions) or kind, of what a build of the core exports. */
async function actualExports(build: CoreBuild | "bench"): Promise<Record<string, number | string>> {
  const bytes = readFileSync(new URL(`../build/${build}.wasm`, import.meta.url));
  const module = new WebAssembly.Module(bytes);
  const core = await instantiateCore(module, build === "bench" ? "release" : build, { fn: null }) as unknown as Record<string, unknown>;
  const out: Record<string, number | string> = {};
  for (const { name, kind } of WebAssembly.Module.exports(module)) {
    if (kind === "function") {
      // @assemblyscript/loader wraps each function; the wasm function is .original.
      const f = core[name] as { original?: (...a: unknown[]) => unknown; length: number };
      out[name] = (f.original ?? f).length;
    } else out[name] = kind;
  }
  return out;
}

describe("CoreExports is every export of the core", () => {
  for (const build of ["debug", "bench", "release"] as const) {
    // The release core is index.ts alone: it lacks the test surface (assembly/harness.ts).
    const what = build === "release" ? "what CoreExports declares less CORE_TEST_SURFACE" : "what CoreExports declares";
    it(`the ${build} core exports exactly ${what}, with the declared parameter counts`, async () => {
      const actual = await actualExports(build);
      const want: Record<string, number | string> = build === "release"
        ? Object.fromEntries(Object.entries(CORE_EXPORTS).filter(([n]) => !(CORE_TEST_SURFACE as readonly string[]).includes(n)))
        : { ...CORE_EXPORTS };
      expect(Object.keys(actual).sort()).toEqual(Object.keys(want).sort());
      expect(actual).toEqual(want);
    });
  }
});

describe("check codes and their messages", () => {
  const codes = Object.entries(CHECK).filter(([name]) => name !== "NONE").map(([, code]) => code as number);

  it("every check code of the core has a message, and every message is for a check code", () => {
    const messages = Object.keys(CHECK_MESSAGES).map(Number);
    expect(codes.filter((c) => !messages.includes(c))).toEqual([]);
    expect(messages.filter((c) => !codes.includes(c))).toEqual([]);
  });

  it("no two checks share a code, and NONE is 0", () => {
    expect(CHECK.NONE).toBe(0);
    expect(new Set(codes).size).toBe(codes.length);
    expect(codes).not.toContain(0);
  });

  it("a KvmError names its check in the message", () => {
    const e = new KvmError(ERRNO.EEXIST, CHECK.OVERLAP, { guest_phys_addr: 0x1000n, memory_size: 0x2000n }, "KVM_SET_USER_MEMORY_REGION");
    expect([e.errno, e.code, e.check]).toEqual([17, "EEXIST", CHECK.OVERLAP]);
    expect(e.message).toBe("EEXIST: KVM_SET_USER_MEMORY_REGION: gpa range 0x1000+0x2000 overlaps another slot");
  });
});

describe("errno names", () => {
  it("every errno the core defines has its name, and no two names share a number", () => {
    for (const [name, e] of Object.entries(ERRNO)) expect(errnoName(e)).toBe(name);
    expect(new Set(Object.values(ERRNO)).size).toBe(Object.keys(ERRNO).length);
    expect(errnoName(1000)).toBe("E1000");
  });
});

describe("the uapi users get is the one the core implements", () => {
  /** The host's value of each core name (undefined where the host has none), as unsigned numbers. */
  const hostOf = (core: Record<string, number | bigint>, host: Record<string, unknown>) =>
    Object.fromEntries(Object.keys(core).map((n) => [n, host[n] === undefined ? undefined : Number(host[n]) >>> 0]));
  const unsigned = (core: Record<string, number | bigint>) =>
    Object.fromEntries(Object.entries(core).map(([n, v]) => [n, Number(v) >>> 0]));

  it("every ioctl the core dispatches is in src/uapi.ts under its name, with its number", () => {
    expect(hostOf(CORE_IOCTL, uapi as unknown as Record<string, unknown>)).toEqual(unsigned(CORE_IOCTL));
  });

  it("every capability the core answers for is in KVM_CAP, with its number", () => {
    expect(hostOf(CORE_CAP, uapi.KVM_CAP)).toEqual(unsigned(CORE_CAP));
  });

  it("every exit reason the core reports is in KVM_EXIT, with its number", () => {
    expect(hostOf(CORE_EXIT, KVM_EXIT)).toEqual(unsigned(CORE_EXIT));
  });

  it("the memslot flags and limits src/uapi.ts names are the core's", () => {
    const host = uapi as unknown as Record<string, number | bigint>;
    const shared = Object.keys(CORE_MEMSLOT).filter((n) => host[n] !== undefined);
    expect(shared).toEqual(expect.arrayContaining(["KVM_MEM_LOG_DIRTY_PAGES", "KVM_MEM_READONLY", "KVM_MEM_GUEST_MEMFD",
      "KVM_MEMSLOT_INVALID", "KVM_USER_MEM_SLOTS", "KVM_MEM_SLOTS_NUM", "KVM_MEM_MAX_NR_PAGES"]));
    for (const n of shared) expect([n, BigInt(host[n])]).toEqual([n, BigInt((CORE_MEMSLOT as Record<string, number | bigint>)[n])]);
  });
});
