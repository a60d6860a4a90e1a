// Randomized differential test: thousands of random memslot operations are
// applied to the real core (debug build) and to the reference model in
// test/model/reference.ts; after every operation the result, the memslots of
// every address space, the generations and the counters must agree.
//
// Reproduce one run:
//   FUZZ_SEED=<seed> FUZZ_AS=<1|2> npx vitest run test/randomized-memslots.test.ts
// Optional: FUZZ_OPS=<ops per run>, FUZZ_SEEDS=<number of seeds>, FUZZ_VERBOSE=1 (log every op),
// FUZZ_SKIP=<kinds> (leave out op kinds: region, short, internal, inject, lookup).

import { describe, it, expect } from "vitest";
import {
  Kvm, KvmError, Vm, KVM_SET_USER_MEMORY_REGION, KVM_SET_USER_MEMORY_REGION2,
  kvm_userspace_memory_region, kvm_userspace_memory_region2,
} from "../src/index.js";
import { openKvm } from "./helpers.js";
import { Rng } from "./rng.js";
import {
  MemslotModel, type RegionRequest, type Outcome, type ModelSlot, type FaultPoint,
  PAGE_SIZE, U64_MAX, LOG_DIRTY_PAGES, READONLY, GUEST_MEMFD, EBADF, EINVAL, EEXIST, EFAULT, ENOMEM, EIO,
  HVA_ERR_BAD, HVA_ERR_RO_BAD, INTERNAL_IDS,
} from "./model/reference.js";

const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env ?? {};
const OPS = Number(env.FUZZ_OPS ?? 1000);
const NSEEDS = Number(env.FUZZ_SEEDS ?? 20);
const ONLY_SEED = env.FUZZ_SEED !== undefined ? Number(env.FUZZ_SEED) : undefined;
const ONLY_AS = env.FUZZ_AS !== undefined ? Number(env.FUZZ_AS) : undefined;
const VERBOSE = env.FUZZ_VERBOSE === "1";
/** Op kinds to leave out (comma-separated, e.g. FUZZ_SKIP=lookup,inject), to look past a known failure. */
const SKIP = new Set((env.FUZZ_SKIP ?? "").split(",").filter(Boolean));

const hex = (v: bigint | number) => "0x" + BigInt(v).toString(16);

// ---------------------------------------------------------------------------
// Operations.

type Op =
  | { kind: "region"; req: RegionRequest; via: "raw" | "wrapper-word" | "wrapper-asid"; extra: number; pad: boolean }
  | { kind: "short"; req: RegionRequest; len: number }
  | { kind: "internal"; id: number; gpa: bigint; size: bigint }
  | { kind: "inject"; point: FaultPoint; errno: number; skip: number }
  | { kind: "lookup"; probes: { asId: number; gfn: bigint; cached: boolean; write: boolean }[] };

function describeReq(r: RegionRequest): string {
  const as = r.slot >>> 16, id = r.slot & 0xffff;
  let s = `v${r.version} slot=${hex(r.slot)}(as ${as} id ${id}) flags=${hex(r.flags)} gpa=${hex(r.guestPhysAddr)} ` +
    `size=${hex(r.memorySize)} hva=${hex(r.userspaceAddr)}`;
  if (r.version === 2) s += ` gmem_off=${hex(r.guestMemfdOffset)} gmem_fd=${r.guestMemfd}`;
  return s;
}

function describeOp(op: Op): string {
  switch (op.kind) {
    case "region": return `SET_USER_MEMORY_REGION ${describeReq(op.req)} via=${op.via}${op.extra ? ` +${op.extra} junk bytes` : ""}${op.pad ? " junk-padding" : ""}`;
    case "short": return `short buffer (${op.len} bytes) ${describeReq(op.req)}`;
    case "internal": return `x86SetMemoryRegion(${op.id}, gpa=${hex(op.gpa)}, size=${hex(op.size)})`;
    case "inject": return `injectFault(${op.point}, errno ${op.errno}, skip ${op.skip})`;
    case "lookup": return `lookups ${op.probes.map((p) => `[as ${p.asId} gfn ${hex(p.gfn)}${p.cached ? " cached" : ""}${p.write ? " write" : ""}]`).join(" ")}`;
  }
}

const MAX_GFN = (1n << 40n) - 1n;
const LIMIT = 0x7ffffffff000n;
const MAP_PAGES = 256;

interface Ctx {
  rng: Rng;
  nrAs: number;
  model: MemslotModel;
  maps: bigint[];
  openFds: number[];
}

/** gfns clustered on a few bases so overlaps, adjacency and moves happen often. */
const GFN_BASES = [0n, 16n, 32n, 48n, 64n, 100n, 128n, 160n, 256n, 1000n];

function randGfn(c: Ctx): bigint {
  const r = c.rng;
  return r.weighted<() => bigint>([
    [() => r.pick(GFN_BASES) + BigInt(r.int(41)), 80],
    [() => 0x10000n + BigInt(r.int(48)) * 0x100n, 10], // sparse: mostly free
    [() => MAX_GFN - BigInt(r.int(70)), 4], // straddles the largest guest gfn
    [() => MAX_GFN + 1n + BigInt(r.int(4)), 2],
    [() => (U64_MAX >> 12n) - BigInt(r.int(3)), 2], // gpa near 2^64: wraps
    [() => 0xfee00n + BigInt(r.int(4)), 2],
  ])();
}

function randAsId(c: Ctx): number {
  const r = c.rng;
  if (r.chance(0.9)) return c.nrAs === 2 && r.chance(0.45) ? 1 : 0;
  return r.pick([1, 2, 3, 0x8000, 0xffff]);
}

function randId(c: Ctx): number {
  const r = c.rng;
  if (r.chance(0.93)) return r.int(16);
  return r.pick([16, 511, 32763, 32764, 32765, 32766, 32767, 65535]);
}

function randFlags(c: Ctx): number {
  return c.rng.weighted<number>([
    [0, 30], [1, 20], [2, 12], [3, 12], [4, 12], [8, 4], [0x10000, 4], [5, 3], [6, 3], [0x20000, 2], [0x80000000, 1],
  ]);
}

function randPages(c: Ctx): bigint {
  const r = c.rng;
  return r.weighted<bigint>([
    [BigInt(r.range(1, 8)), 55],
    [BigInt(r.range(9, 64)), 37],
    [BigInt(r.range(65, 300)), 3],
    [1n << 16n, 2],
    [1n << 31n, 2], // one page past the user limit
    [1n << 40n, 1],
  ]);
}

function randSize(c: Ctx): bigint {
  const r = c.rng;
  if (r.chance(0.03)) return randPages(c) * PAGE_SIZE + BigInt(r.range(1, 4095)); // unaligned
  if (r.chance(0.01)) return 0xfffffffffffff000n;
  return randPages(c) * PAGE_SIZE;
}

function randHva(c: Ctx, size: bigint): bigint {
  const r = c.rng;
  const wrap = (v: bigint) => BigInt.asUintN(64, v);
  return r.weighted<() => bigint>([
    [() => r.pick(c.maps) + BigInt(r.int(MAP_PAGES - 64)) * PAGE_SIZE, 86],
    [() => 0n, 2],
    [() => r.pick(c.maps) + BigInt(r.range(1, 4095)), 2], // unaligned
    [() => wrap(LIMIT - size), 2], // ends exactly at the limit
    [() => wrap(LIMIT - size + PAGE_SIZE), 2], // one page past it
    [() => LIMIT, 1],
    [() => LIMIT + PAGE_SIZE, 1],
    [() => 0x800000000000n, 1], // non-canonical
    [() => 0xffff800000000000n, 1], // kernel half
    [() => 0xfffffffffffff000n, 1], // wraps
    [() => 0x7fffffffe000n, 1],
  ])();
}

function randGmemFields(c: Ctx, flags: number, size: bigint): { off: bigint; fd: number } {
  const r = c.rng;
  const fd = r.weighted<number>([[-1, 3], [999, 2], [c.openFds[0], 3], [c.openFds[1] ?? -1, 1], [0x7fffffff, 1]]);
  if (flags & GUEST_MEMFD) {
    const off = r.weighted<bigint>([
      [0n, 5], [BigInt(r.int(64)) * PAGE_SIZE, 3], [0x800n, 1], [0xfffffffffffff000n, 1],
      [BigInt.asUintN(64, 0n - size), 1], [0xffffffffffffe000n, 1], [0x7ffffffffffff000n, 1],
    ]);
    return { off, fd };
  }
  // Ignored without GUEST_MEMFD: junk is fine.
  return { off: r.pick([0n, 0x123n, U64_MAX, 0x800n]), fd };
}

function userSlotsOf(c: Ctx, asId: number): ModelSlot[] {
  return asId < c.nrAs ? c.model.slots(asId).filter((s) => s.id < 32764) : [];
}

function genRequest(c: Ctx): RegionRequest {
  const r = c.rng;
  const version: 1 | 2 = r.chance(0.6) ? 1 : 2;
  let asId = randAsId(c);
  const existing = userSlotsOf(c, asId);
  let id: number, flags: number, gpa: bigint, size: bigint, hva: bigint;
  const mode = existing.length > 0 ? r.weighted<string>([["fresh", 50], ["modify", 35], ["delete", 15]]) : "fresh";
  if (mode === "modify") {
    // Same size/hva/READONLY as an existing slot: a no-op, FLAGS_ONLY or MOVE
    // (with an occasional twist that makes it illegal).
    const old = r.pick(existing);
    id = old.id;
    size = old.npages * PAGE_SIZE;
    hva = old.userspaceAddr;
    gpa = r.chance(0.4) ? old.baseGfn * PAGE_SIZE : randGfn(c) * PAGE_SIZE;
    flags = (old.flags & READONLY) | (r.chance(0.5) ? old.flags & LOG_DIRTY_PAGES : r.int(2));
    const twist = r.int(20);
    if (twist === 0) flags |= GUEST_MEMFD;
    else if (twist === 1) flags ^= READONLY;
    else if (twist === 2) hva += PAGE_SIZE;
    else if (twist === 3) size += PAGE_SIZE;
    else if (twist === 4) flags |= 8;
  } else if (mode === "delete") {
    const old = r.pick(existing);
    id = old.id;
    size = 0n;
    flags = r.chance(0.7) ? r.pick([0, 1, 2, 3]) : randFlags(c);
    gpa = r.chance(0.5) ? old.baseGfn * PAGE_SIZE : randGfn(c) * PAGE_SIZE;
    hva = r.chance(0.5) ? old.userspaceAddr : randHva(c, 0n);
    if (r.chance(0.03)) gpa += 0x10n;
  } else {
    id = randId(c);
    flags = randFlags(c);
    size = r.chance(0.05) ? 0n : randSize(c);
    gpa = randGfn(c) * PAGE_SIZE;
    if (r.chance(0.02)) gpa += BigInt(r.range(1, 4095));
    hva = randHva(c, size);
    if (size === 1n << 31n << 12n && r.chance(0.5)) size -= PAGE_SIZE; // 2^31 - 1 pages: allowed by check 11
  }
  // Huge slots that would pass every check would need a huge dirty bitmap and
  // metadata: keep the ones past 2^16 pages failing early (above the largest
  // gfn, or invalid hva/as), and never logging.
  if (size > (1n << 16n) * PAGE_SIZE) {
    flags &= ~LOG_DIRTY_PAGES;
    if (r.chance(0.5)) gpa = (MAX_GFN - BigInt(r.int(1000))) * PAGE_SIZE;
    else if (r.chance(0.5)) hva = 0xfffffffffffff000n;
  }
  if (asId > 0xffff) asId = 0;
  const slot = ((asId << 16) | id) >>> 0;
  const g = randGmemFields(c, flags, size);
  return {
    version, slot, flags: flags >>> 0, guestPhysAddr: gpa, memorySize: size, userspaceAddr: hva,
    guestMemfdOffset: version === 2 ? g.off : 0n, guestMemfd: version === 2 ? g.fd : 0,
  };
}

function genOp(c: Ctx): Op {
  const r = c.rng;
  const kind = r.weighted<Op["kind"]>([["region", 78], ["lookup", 10], ["internal", 4], ["inject", 5], ["short", 3]]);
  switch (kind) {
    case "region": {
      const via = r.weighted<"raw" | "wrapper-word" | "wrapper-asid">([["raw", 75], ["wrapper-word", 12], ["wrapper-asid", 13]]);
      return { kind, req: genRequest(c), via, extra: via === "raw" && r.chance(0.05) ? r.range(1, 64) : 0, pad: r.chance(0.1) };
    }
    case "short": {
      const req = genRequest(c);
      return { kind, req, len: r.int(req.version === 1 ? 32 : 160) };
    }
    case "internal": {
      const id = r.pick(INTERNAL_IDS);
      const del = r.chance(0.4);
      const gpa = r.chance(0.03) ? (MAX_GFN - BigInt(r.int(3))) * PAGE_SIZE : randGfn(c) * PAGE_SIZE;
      const size = del ? 0n : BigInt(r.pick([1, 1, 3])) * PAGE_SIZE;
      return { kind, id, gpa: del && r.chance(0.7) ? 0n : gpa, size };
    }
    case "inject": {
      const point = r.pick<FaultPoint>(["alloc_slot", "alloc_invalid_slot", "alloc_bitmap", "arch_prepare"]);
      const errno = point === "arch_prepare" ? r.pick([ENOMEM, EINVAL, EIO]) : ENOMEM;
      return { kind, point, errno, skip: r.chance(0.8) ? 0 : r.range(1, 2) };
    }
    case "lookup": {
      const probes = [];
      for (let i = 0; i < 6; i++) {
        const asId = r.int(c.nrAs);
        const slots = c.model.slots(asId);
        let gfn: bigint;
        if (slots.length && r.chance(0.6)) {
          const s = r.pick(slots);
          gfn = r.weighted<bigint>([
            [s.baseGfn + BigInt(r.int(Number(s.npages < 4096n ? s.npages : 4096n))), 6],
            [s.baseGfn + s.npages - 1n, 1], [s.baseGfn + s.npages, 1], [s.baseGfn - 1n, 1],
          ]);
          if (gfn < 0n) gfn = 0n;
        } else {
          gfn = randGfn(c);
        }
        probes.push({ asId, gfn, cached: r.chance(0.5), write: r.chance(0.5) });
      }
      return { kind, probes };
    }
  }
}

// ---------------------------------------------------------------------------
// Running an op on the implementation.

function encodeReq(req: RegionRequest, rng: Rng, pad: boolean): Uint8Array {
  const base = {
    slot: req.slot >>> 0, flags: req.flags >>> 0, guest_phys_addr: req.guestPhysAddr,
    memory_size: req.memorySize, userspace_addr: req.userspaceAddr,
  };
  if (req.version === 1) return kvm_userspace_memory_region.encode(base);
  const buf = kvm_userspace_memory_region2.encode({
    ...base, guest_memfd_offset: req.guestMemfdOffset, guest_memfd: BigInt.asUintN(32, BigInt(req.guestMemfd)),
  });
  if (pad) for (let i = 44; i < 160; i++) buf[i] = rng.int(256); // pad1 + pad2: ignored
  return buf;
}

function errnoOf(fn: () => unknown): number {
  try {
    fn();
    return 0;
  } catch (e) {
    if (e instanceof KvmError) return e.errno;
    throw e;
  }
}

function runRegion(vm: Vm, op: Extract<Op, { kind: "region" }>, rng: Rng): number {
  const { req } = op;
  if (op.via === "raw") {
    let buf = encodeReq(req, rng, op.pad);
    if (op.extra) {
      const longer = new Uint8Array(buf.length + op.extra);
      longer.set(buf);
      for (let i = buf.length; i < longer.length; i++) longer[i] = rng.int(256);
      buf = longer;
    }
    const r = vm.ioctl(req.version === 1 ? KVM_SET_USER_MEMORY_REGION : KVM_SET_USER_MEMORY_REGION2, buf);
    return r < 0 ? -r : r;
  }
  const region = op.via === "wrapper-word"
    ? { slot: req.slot >>> 0 }
    : { slot: req.slot & 0xffff, asId: req.slot >>> 16 };
  const common = {
    ...region, flags: req.flags >>> 0, guestPhysAddr: req.guestPhysAddr, memorySize: req.memorySize,
    userspaceAddr: req.userspaceAddr,
  };
  if (req.version === 1) return errnoOf(() => vm.setUserMemoryRegion(common));
  return errnoOf(() => vm.setUserMemoryRegion2({ ...common, guestMemfdOffset: req.guestMemfdOffset, guestMemfd: req.guestMemfd }));
}

// ---------------------------------------------------------------------------
// Comparison.

const fmtSlot = (s: { id: number; asId: number; baseGfn: bigint; npages: bigint; userspaceAddr: bigint; flags: number; hasDirtyBitmap: boolean; invalid?: boolean }) =>
  `id ${s.id} as ${s.asId} gfn ${hex(s.baseGfn)}+${hex(s.npages)} hva ${hex(s.userspaceAddr)} flags ${hex(s.flags)}` +
  `${s.hasDirtyBitmap ? " bitmap" : ""}${s.invalid ? " INVALID" : ""}`;

class Mismatch extends Error {}

function fail(what: string, expected: unknown, got: unknown): never {
  const show = (v: unknown) => Array.isArray(v) ? (v.length ? "\n      " + v.join("\n      ") : "(none)") : String(v);
  throw new Mismatch(`${what}\n    expected (model): ${show(expected)}\n    got (core):       ${show(got)}`);
}

function compareState(vm: Vm, model: MemslotModel, nrAs: number): void {
  for (let as = 0; as < nrAs; as++) {
    const want = model.slots(as).map(fmtSlot);
    const got = vm.memslots({ asId: as }).map(fmtSlot);
    if (want.join("|") !== got.join("|")) fail(`memslots of AS ${as} differ`, want, got);
    const inactive = vm.memslots({ asId: as, inactive: true }).map(fmtSlot);
    if (inactive.join("|") !== got.join("|")) fail(`inactive set of AS ${as} differs from the active one outside an update`, got, inactive);
    const wantGen = model.generation(as), gotGen = vm.generation(as);
    if (wantGen !== gotGen) fail(`generation of AS ${as} differs`, wantGen, gotGen);
  }
  const ws = model.stats(), gs = vm.debug.stats();
  if (ws.nrMemslotPages !== gs.nrMemslotPages) fail("nr_memslot_pages differs", ws.nrMemslotPages, gs.nrMemslotPages);
  if (ws.nrMemslotsDirtyLogging !== gs.nrMemslotsDirtyLogging) {
    fail("nr_memslots_dirty_logging differs", ws.nrMemslotsDirtyLogging, gs.nrMemslotsDirtyLogging);
  }
}

function checkOutcome(got: number, want: Outcome): void {
  if (got !== want.errno) fail(`result differs (model rule: ${want.rule})`, errText(want.errno), errText(got));
}

const ERRNAMES: Record<number, string> = { 0: "0", 5: "EIO", 9: "EBADF", 12: "ENOMEM", 14: "EFAULT", 17: "EEXIST", 22: "EINVAL" };
const errText = (e: number) => ERRNAMES[e] ?? `errno ${e}`;

// ---------------------------------------------------------------------------
// One run.

async function run(seed: number, nrAs: 1 | 2, ops: number): Promise<{ counts: Record<string, number> }> {
  const kvm: Kvm = await openKvm({ config: { addressSpaces: nrAs } });
  const vm = nrAs === 2 ? kvm.createVm({ addressSpaces: 2 }) : kvm.createVm();
  expect(vm.addressSpaces).toBe(nrAs);
  const model = new MemslotModel({ nrAs, maxGfn: BigInt(kvm.config.maxGfn), userAddressLimit: BigInt(kvm.config.userAddressLimit) });
  // Open fds that are not guest_memfd files: the VM's own and /dev/kvm's.
  const openFds = [vm.fd, kvm.fd];
  for (const fd of openFds) model.openFds.add(fd);
  const maps = [kvm.memory.mmap(BigInt(MAP_PAGES) * PAGE_SIZE), kvm.memory.mmap(BigInt(MAP_PAGES) * PAGE_SIZE)];
  const rng = new Rng(seed);
  const c: Ctx = { rng, nrAs, model, maps, openFds };
  const counts: Record<string, number> = {};
  const recent: string[] = [];

  compareState(vm, model, nrAs);
  for (let i = 0; i < ops; i++) {
    const op = genOp(c);
    // Fault injection: only one point armed at a time (the model tracks it until reached).
    if (op.kind === "inject" && model.isArmed()) continue;
    if (SKIP.has(op.kind)) continue;
    const desc = describeOp(op);
    if (VERBOSE) console.log(`#${i} ${desc}`);
    try {
      switch (op.kind) {
        case "region": {
          const want = model.setUserMemoryRegion(op.req);
          const got = runRegion(vm, op, rng);
          const key = want.errno ? `fail:${want.change ?? "check"}:${errText(want.errno)}` : `ok:${want.change}`;
          counts[key] = (counts[key] ?? 0) + 1;
          checkOutcome(got, want);
          break;
        }
        case "short": {
          const buf = encodeReq(op.req, rng, false).subarray(0, op.len);
          const r = vm.ioctl(op.req.version === 1 ? KVM_SET_USER_MEMORY_REGION : KVM_SET_USER_MEMORY_REGION2, buf);
          checkOutcome(r < 0 ? -r : r, model.shortBuffer());
          counts.short = (counts.short ?? 0) + 1;
          break;
        }
        case "internal": {
          let gotErr = 0;
          let hva = 0n;
          try {
            hva = vm.x86SetMemoryRegion(op.id, op.gpa, op.size);
          } catch (e) {
            if (!(e instanceof KvmError)) throw e;
            gotErr = e.errno;
            // A partial creation (some address spaces done): the mapping's address
            // is the VMM's choice, take it from the slot the core installed.
            hva = vm.memslots({ asId: 0 }).find((s) => s.id === op.id)?.userspaceAddr ?? 0n;
          }
          const want = model.x86SetMemoryRegion(op.id, op.gpa, op.size, hva);
          const key = `internal:${errText(want.errno)}${want.rule.startsWith("AS 1") ? ":partial" : ""}`;
          counts[key] = (counts[key] ?? 0) + 1;
          checkOutcome(gotErr, want);
          break;
        }
        case "inject": {
          vm.debug.injectFault(op.point, op.errno, op.skip);
          model.arm(op.point, op.errno, op.skip);
          counts.inject = (counts.inject ?? 0) + 1;
          break;
        }
        case "lookup": {
          for (const p of op.probes) {
            const want = model.lookup(p.asId, p.gfn);
            const got = vm.debug.lookup(p.gfn, { asId: p.asId, cached: p.cached });
            const w = want ? fmtSlot(want) : "null", g = got ? fmtSlot(got) : "null";
            if (w !== g) fail(`lookup of gfn ${hex(p.gfn)} in AS ${p.asId}${p.cached ? " (cached)" : ""}`, w, g);
            const wantHva = model.gfnToHva(p.asId, p.gfn, p.write);
            const gotHva = vm.gfnToHva(p.gfn, { asId: p.asId, write: p.write });
            if (wantHva !== gotHva) {
              const name = (v: bigint) => v === HVA_ERR_BAD ? "KVM_HVA_ERR_BAD" : v === HVA_ERR_RO_BAD ? "KVM_HVA_ERR_RO_BAD" : hex(v);
              fail(`gfnToHva(${hex(p.gfn)}, as ${p.asId}, ${p.write ? "write" : "read"})`, name(wantHva), name(gotHva));
            }
          }
          counts.lookup = (counts.lookup ?? 0) + 1;
          break;
        }
      }
      compareState(vm, model, nrAs);
    } catch (e) {
      const reason = e instanceof Mismatch ? e.message : `the core threw: ${(e as Error)?.stack ?? e}`;
      throw new Error(
        `seed=${seed} nrAs=${nrAs} op #${i}: ${desc}\n  ${reason}\n  armed in model: ${model.armedPoints()}\n` +
        `  model slots: ${Array.from({ length: nrAs }, (_, as) => model.slots(as).map(fmtSlot).join("; ") || "(none)").join(" || ")}\n` +
        `  previous ops:\n    ${recent.slice(-12).join("\n    ") || "(none)"}\n` +
        `  reproduce: FUZZ_SEED=${seed} FUZZ_AS=${nrAs} FUZZ_OPS=${i + 1} npx vitest run test/randomized-memslots.test.ts`,
      );
    }
    recent.push(`#${i} ${desc}`);
    if (recent.length > 40) recent.shift();
  }
  vm.close();
  return { counts };
}

// ---------------------------------------------------------------------------

describe("reference model: spot checks against the kernel's rules", () => {
  const req = (p: Partial<RegionRequest>): RegionRequest => ({
    version: 1, slot: 0, flags: 0, guestPhysAddr: 0n, memorySize: PAGE_SIZE, userspaceAddr: 0x10000n,
    guestMemfdOffset: 0n, guestMemfd: -1, ...p,
  });

  it("generations: start at i, +nr_as per swap, CREATE/FLAGS_ONLY 1 swap, MOVE/DELETE 2, no-op 0", () => {
    const m = new MemslotModel({ nrAs: 2 });
    expect([m.generation(0), m.generation(1)]).toEqual([0n, 1n]);
    expect(m.setUserMemoryRegion(req({})).errno).toBe(0);
    expect(m.generation(0)).toBe(2n);
    expect(m.setUserMemoryRegion(req({})).change).toBe("NOOP");
    expect(m.generation(0)).toBe(2n);
    expect(m.setUserMemoryRegion(req({ flags: 1 })).change).toBe("FLAGS_ONLY");
    expect(m.generation(0)).toBe(4n);
    expect(m.setUserMemoryRegion(req({ flags: 1, guestPhysAddr: 0x1000n })).change).toBe("MOVE");
    expect(m.generation(0)).toBe(8n);
    expect(m.setUserMemoryRegion(req({ memorySize: 0n })).change).toBe("DELETE");
    expect(m.generation(0)).toBe(12n);
    expect(m.setUserMemoryRegion(req({ slot: 1 << 16 })).errno).toBe(0);
    expect([m.generation(0), m.generation(1)]).toEqual([12n, 3n]);
  });

  it("__kvm_set_memory_region validation facts: access_ok limit, overlap, page and gfn limits, gpa wrap", () => {
    const m = new MemslotModel();
    // access_ok against the limit (4-level paging).
    expect(m.setUserMemoryRegion(req({ userspaceAddr: 0x7fffffffe000n })).errno).toBe(0);
    expect(m.setUserMemoryRegion(req({ slot: 1, guestPhysAddr: 0x1000n, userspaceAddr: 0x7ffffffff000n })).errno).toBe(EINVAL);
    expect(m.setUserMemoryRegion(req({ slot: 1, guestPhysAddr: 0x1000n, memorySize: 2n * PAGE_SIZE, userspaceAddr: 0x7fffffffe000n })).errno).toBe(EINVAL);
    expect(m.setUserMemoryRegion(req({ slot: 1, guestPhysAddr: 0x1000n, memorySize: 2n * PAGE_SIZE, userspaceAddr: 0x7fffffffd000n })).errno).toBe(0);
    // A delete may carry the limit itself, not a non-canonical address.
    expect(m.setUserMemoryRegion(req({ slot: 1, memorySize: 0n, userspaceAddr: 0x800000000000n })).errno).toBe(EINVAL);
    expect(m.setUserMemoryRegion(req({ slot: 1, memorySize: 0n, userspaceAddr: 0x7ffffffff000n })).errno).toBe(0);
    // Overlap + invalid → EINVAL; overlap alone → EEXIST; adjacent fine.
    expect(m.setUserMemoryRegion(req({ slot: 2, flags: 8 })).errno).toBe(EINVAL);
    expect(m.setUserMemoryRegion(req({ slot: 2 })).errno).toBe(EEXIST);
    expect(m.setUserMemoryRegion(req({ slot: 2, guestPhysAddr: 0x1000n })).errno).toBe(0);
    // Page limit: 2^31 - 1 pages pass check 11 (then fail elsewhere or not), 2^31 do not.
    expect(m.setUserMemoryRegion(req({ slot: 3, memorySize: (1n << 31n) * PAGE_SIZE, guestPhysAddr: 1n << 40n })).rule).toMatch(/^11/);
    // Max gfn after overlap: last gfn 2^40 - 1 fine, 2^40 EINVAL.
    expect(m.setUserMemoryRegion(req({ slot: 4, guestPhysAddr: ((1n << 40n) - 1n) * PAGE_SIZE })).errno).toBe(0);
    expect(m.setUserMemoryRegion(req({ slot: 5, guestPhysAddr: (1n << 40n) * PAGE_SIZE })).errno).toBe(EINVAL);
    expect(m.setUserMemoryRegion(req({ slot: 5, guestPhysAddr: ((1n << 40n) - 1n) * PAGE_SIZE })).errno).toBe(EEXIST);
    // gpa wrap.
    expect(m.setUserMemoryRegion(req({ slot: 6, guestPhysAddr: 0xfffffffffffff000n })).rule).toMatch(/^10/);
    expect(m.setUserMemoryRegion(req({ slot: 6, guestPhysAddr: 0xffffffffffffe000n })).rule).toMatch(/^21/);
    // Delete of a missing slot.
    expect(m.setUserMemoryRegion(req({ slot: 7, memorySize: 0n })).errno).toBe(EINVAL);
  });

  it("guest_memfd requests (no guest_memfd files exist)", () => {
    const m = new MemslotModel();
    m.openFds.add(3);
    const g = (p: Partial<RegionRequest>) => req({ version: 2, flags: GUEST_MEMFD, ...p });
    expect(m.setUserMemoryRegion(req({ flags: GUEST_MEMFD })).errno).toBe(EINVAL); // v1
    expect(m.setUserMemoryRegion(g({})).errno).toBe(EBADF);
    expect(m.setUserMemoryRegion(g({ guestMemfd: 3 })).errno).toBe(EINVAL);
    expect(m.setUserMemoryRegion(g({ guestMemfdOffset: 0xfffffffffffff000n })).rule).toMatch(/^8/);
    expect(m.setUserMemoryRegion(g({ guestMemfdOffset: 0xffffffffffffe000n })).errno).toBe(EBADF);
    expect(m.setUserMemoryRegion(g({ flags: GUEST_MEMFD | READONLY })).rule).toMatch(/^4/);
    // Above the gfn limit with a bad fd: EBADF (bind before the limit).
    expect(m.setUserMemoryRegion(g({ guestPhysAddr: (1n << 40n) * PAGE_SIZE })).errno).toBe(EBADF);
    expect(m.setUserMemoryRegion(req({})).errno).toBe(0);
    expect(m.setUserMemoryRegion(g({})).rule).toMatch(/^15/); // modify with GUEST_MEMFD
    expect(m.setUserMemoryRegion(g({ memorySize: 0n })).change).toBe("DELETE"); // delete ignores the fd
  });

  it("injected failures: DELETE/MOVE failing after the INVALID phase cost 2 swaps, CREATE/FLAGS_ONLY 0", () => {
    const m = new MemslotModel();
    m.arm("arch_prepare", EIO);
    expect(m.setUserMemoryRegion(req({})).errno).toBe(EIO);
    expect(m.generation(0)).toBe(0n);
    expect(m.setUserMemoryRegion(req({})).errno).toBe(0);
    m.arm("alloc_bitmap", ENOMEM);
    expect(m.setUserMemoryRegion(req({ flags: 1 })).errno).toBe(ENOMEM);
    expect(m.generation(0)).toBe(1n);
    m.arm("alloc_bitmap", ENOMEM);
    expect(m.setUserMemoryRegion(req({ flags: 1, guestPhysAddr: 0x5000n })).errno).toBe(ENOMEM);
    expect(m.generation(0)).toBe(3n);
    m.arm("alloc_invalid_slot", ENOMEM);
    expect(m.setUserMemoryRegion(req({ memorySize: 0n })).errno).toBe(ENOMEM);
    expect(m.generation(0)).toBe(3n);
    m.arm("alloc_slot", ENOMEM);
    expect(m.setUserMemoryRegion(req({ memorySize: 0n })).errno).toBe(0); // DELETE does not reach alloc_slot
    expect(m.isArmed("alloc_slot")).toBe(true);
    expect(m.shortBuffer().errno).toBe(EFAULT);
  });
});

describe("randomized memslot operations: core vs reference model", () => {
  const seeds = ONLY_SEED !== undefined ? [ONLY_SEED] : Array.from({ length: NSEEDS }, (_, i) => 0x5eed0000 + i * 7919);
  const spaces: (1 | 2)[] = ONLY_AS !== undefined ? [ONLY_AS as 1 | 2] : [1, 2];
  const total: Record<string, number> = {};
  let failedRuns = 0;
  for (const nrAs of spaces) {
    for (const seed of seeds) {
      it(`nrAs=${nrAs} seed=${seed}: ${OPS} ops`, async () => {
        failedRuns++;
        const { counts } = await run(seed, nrAs, OPS);
        failedRuns--;
        for (const [k, v] of Object.entries(counts)) total[k] = (total[k] ?? 0) + v;
      });
    }
  }
  it("the runs covered every change type and failure path", () => {
    if (VERBOSE || env.FUZZ_STATS === "1") console.log(Object.entries(total).sort().map(([k, v]) => `${k}: ${v}`).join("\n"));
    if (ONLY_SEED !== undefined || OPS < 200 || failedRuns > 0 || SKIP.size > 0) return;
    for (const k of ["ok:CREATE", "ok:DELETE", "ok:MOVE", "ok:FLAGS_ONLY", "ok:NOOP", "fail:CREATE:EEXIST", "fail:MOVE:EEXIST",
      "fail:check:EINVAL", "fail:CREATE:EBADF", "fail:CREATE:ENOMEM", "fail:MOVE:ENOMEM", "fail:CREATE:EINVAL", "fail:MOVE:EINVAL",
      "fail:DELETE:ENOMEM", "short", "lookup", "internal:0", "inject"]) {
      expect(total[k] ?? 0, `op class ${k} never happened`).toBeGreaterThan(0);
    }
  });
});
