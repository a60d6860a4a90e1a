// The SBI calls the host implements for its guests (KVM_EXIT_RISCV_SBI), SBI
// spec 2.0: legacy console and shutdown, BASE probing, TIME (set_timer), SRST,
// HSM (hart start / stop / status, as arch/riscv/kvm/vcpu_sbi_hsm.c answers
// them), IPI and RFENCE on hart masks (vcpu_sbi_replace.c) and DBCN, the debug
// console, and PMU (sbi-pmu.ts). An extension whose host hook is absent is
// absent: probe 0, calls SBI_ERR_NOT_SUPPORTED.

import { SBI_EXT_PMU, handlePmu } from "./sbi-pmu.js";
import { SBI_SUCCESS, SBI_ERR_FAILED, SBI_ERR_NOT_SUPPORTED, SBI_ERR_INVALID_PARAM, SBI_ERR_INVALID_ADDRESS,
  SBI_ERR_ALREADY_AVAILABLE } from "./sbiret.js";

// SBI (RISC-V Supervisor Binary Interface) extension ids; the return codes are sbiret.ts's.
export const SBI_EXT_0_1_SET_TIMER = 0x00n;
export const SBI_EXT_0_1_CONSOLE_PUTCHAR = 0x01n;
export const SBI_EXT_0_1_CONSOLE_GETCHAR = 0x02n;
export const SBI_EXT_0_1_SHUTDOWN = 0x08n;
export const SBI_EXT_BASE = 0x10n;
export const SBI_EXT_TIME = 0x54494d45n;
export const SBI_EXT_SRST = 0x53525354n;
export const SBI_EXT_HSM = 0x48534dn;
export const SBI_EXT_IPI = 0x735049n;
export const SBI_EXT_RFENCE = 0x52464e43n;
export const SBI_EXT_DBCN = 0x4442434en;
export { SBI_SUCCESS, SBI_ERR_FAILED, SBI_ERR_NOT_SUPPORTED, SBI_ERR_INVALID_PARAM, SBI_ERR_INVALID_ADDRESS,
  SBI_ERR_ALREADY_AVAILABLE };

/** RFENCE function ids; 3..6 are the hypervisor fences (no H extension here). */
export const SBI_RFENCE_FENCE_I = 0n, SBI_RFENCE_SFENCE_VMA = 1n, SBI_RFENCE_SFENCE_VMA_ASID = 2n;
/** DBCN function ids. */
export const SBI_DBCN_WRITE = 0n, SBI_DBCN_READ = 1n, SBI_DBCN_WRITE_BYTE = 2n;
/** The most bytes one DBCN write or read moves (the spec lets a call move fewer; the caller loops). */
export const SBI_DBCN_MAX_BYTES = 4096;
/** BASE: spec version 2.0, this implementation's id and version. */
export const SBI_SPEC_VERSION = 2n << 24n, SBI_IMPL_ID = 0x57424bn, SBI_IMPL_VERSION = 1n;

/** HSM function ids and the hart states hart_get_status reports. */
export const SBI_HSM_HART_START = 0n, SBI_HSM_HART_STOP = 1n, SBI_HSM_HART_GET_STATUS = 2n, SBI_HSM_HART_SUSPEND = 3n;
export const SBI_HSM_STATE_STARTED = 0n, SBI_HSM_STATE_STOPPED = 1n;
/** hart_suspend types: the two defaults (every other value is reserved or platform-specific). */
export const SBI_HSM_SUSPEND_RET_DEFAULT = 0n, SBI_HSM_SUSPEND_NON_RET_DEFAULT = 0x80000000n;

/** The harts of the machine as HSM sees them; ids are 0..harts-1 (kvm_get_vcpu_by_id). */
export interface SbiHsm {
  readonly harts: number;
  started(hartid: number): boolean;
  /** Whether a hart can begin executing at this guest-physical address (RAM is there). */
  executable(gpa: bigint): boolean;
  /** Powers a stopped hart on: pc = startAddr, a0 = hartid, a1 = opaque, satp = 0, S-mode. */
  start(hartid: number, startAddr: bigint, opaque: bigint): void;
  /** Powers the calling hart off; it does not return from the call. */
  stopSelf(): void;
}

export interface SbiHost {
  putchar(byte: number): void;
  /** A received byte, or -1. */
  getchar(): number;
  setTimer(deadline: bigint): void;
  /** SRST / legacy shutdown: type 0 shutdown, 1 cold reboot, 2 warm reboot; reason 0 none, 1 failure. */
  reset(type: number, reason: number): void;
  /** HSM; without it the extension is absent (probe 0, calls SBI_ERR_NOT_SUPPORTED). */
  hsm?: SbiHsm;
  /** The harts hart masks name: ids 0..harts-1 (default: hsm.harts, else 1). */
  harts?: number;
  /** IPI: makes the supervisor software interrupt of a hart pending. */
  sendIpi?(hartid: number): void;
  /**
   * RFENCE: the hart's cached translations are dropped before it next
   * executes (a full flush serves every sfence.vma range and ASID). Instruction
   * fetches need nothing for fence.i: they are always coherent here.
   */
  remoteSfence?(hartid: number): void;
  /** DBCN: guest-physical memory; read returns null and write false where no RAM backs the range. */
  guestMemory?: { read(gpa: bigint, len: number): Uint8Array | null; write(gpa: bigint, bytes: Uint8Array): boolean };
}

export interface SbiCall { extensionId: bigint; functionId: bigint; args: bigint[] }

/** The hart id argument as a hart of this machine, or -1 (SBI_ERR_INVALID_PARAM). */
function hartOf(hsm: SbiHsm, id: bigint): number {
  return id < BigInt(hsm.harts) ? Number(id) : -1;
}

/**
 * hart_start: a bad hart id, then a start address no RAM backs (checked before
 * the state, as OpenSBI's sbi_hsm_hart_start does; KVM checks no address),
 * then a hart that is not STOPPED (kvm_sbi_hsm_vcpu_start). Harts start at
 * once: there is no START_PENDING window.
 */
export function hsmHartStart(hsm: SbiHsm, hartid: bigint, startAddr: bigint, opaque: bigint): bigint {
  const h = hartOf(hsm, hartid);
  if (h < 0) return SBI_ERR_INVALID_PARAM;
  if (!hsm.executable(startAddr)) return SBI_ERR_INVALID_ADDRESS;
  if (hsm.started(h)) return SBI_ERR_ALREADY_AVAILABLE;
  hsm.start(h, startAddr, opaque);
  return SBI_SUCCESS;
}

function handleHsm(hsm: SbiHsm, c: SbiCall): [bigint, bigint] {
  switch (c.functionId) {
    case SBI_HSM_HART_START:
      return [hsmHartStart(hsm, c.args[0], c.args[1], c.args[2]), 0n];
    case SBI_HSM_HART_STOP: // the caller runs, so it is STARTED: the call cannot fail
      hsm.stopSelf();
      return [SBI_SUCCESS, 0n];
    case SBI_HSM_HART_GET_STATUS: {
      const h = hartOf(hsm, c.args[0]);
      if (h < 0) return [SBI_ERR_INVALID_PARAM, 0n];
      return [SBI_SUCCESS, hsm.started(h) ? SBI_HSM_STATE_STARTED : SBI_HSM_STATE_STOPPED];
    }
    case SBI_HSM_HART_SUSPEND: // KVM looks at the low 32 bits of the type
      switch (c.args[0] & 0xffffffffn) {
        case SBI_HSM_SUSPEND_RET_DEFAULT: return [SBI_SUCCESS, 0n]; // a WFI whose wake-up event is already here
        case SBI_HSM_SUSPEND_NON_RET_DEFAULT: return [SBI_ERR_NOT_SUPPORTED, 0n];
        default: return [SBI_ERR_INVALID_PARAM, 0n];
      }
  }
  return [SBI_ERR_NOT_SUPPORTED, 0n];
}

/**
 * The harts a (hart_mask, hart_mask_base) pair names: every hart when the base
 * is -1 (the mask is then ignored), else hart base + i for each set bit i.
 * `bad` is set when a bit names no hart of the machine (SBI_ERR_INVALID_PARAM
 * after the call has acted on the harts that exist, as kvm_sbi_ext_ipi_handler
 * does).
 */
export function hartMask(harts: number, mask: bigint, base: bigint): { harts: number[]; bad: boolean } {
  if (base === (1n << 64n) - 1n) return { harts: Array.from({ length: harts }, (_, i) => i), bad: false };
  const out: number[] = [];
  let bad = false;
  for (let i = 0n; i < 64n; i++) {
    if (((mask >> i) & 1n) === 0n) continue;
    const id = base + i;
    if (id < BigInt(harts)) out.push(Number(id));
    else bad = true;
  }
  return { harts: out, bad };
}

function hartsOf(host: SbiHost): number {
  return host.harts ?? host.hsm?.harts ?? 1;
}

function handleIpi(host: SbiHost, send: (h: number) => void, c: SbiCall): [bigint, bigint] {
  if (c.functionId !== 0n) return [SBI_ERR_NOT_SUPPORTED, 0n];
  const m = hartMask(hartsOf(host), c.args[0], c.args[1]);
  for (const h of m.harts) send(h);
  return [m.bad ? SBI_ERR_INVALID_PARAM : SBI_SUCCESS, 0n];
}

/** remote_fence_i, remote_sfence_vma[_asid]; the hypervisor fences are not supported (no H extension). */
function handleRfence(host: SbiHost, flush: (h: number) => void, c: SbiCall): [bigint, bigint] {
  const f = c.functionId;
  if (f !== SBI_RFENCE_FENCE_I && f !== SBI_RFENCE_SFENCE_VMA && f !== SBI_RFENCE_SFENCE_VMA_ASID) return [SBI_ERR_NOT_SUPPORTED, 0n];
  const m = hartMask(hartsOf(host), c.args[0], c.args[1]);
  if (f !== SBI_RFENCE_FENCE_I) for (const h of m.harts) flush(h);
  return [m.bad ? SBI_ERR_INVALID_PARAM : SBI_SUCCESS, 0n];
}

/**
 * DBCN: write (num_bytes, base_lo, base_hi) and read move at most
 * SBI_DBCN_MAX_BYTES and return the count moved; a range RAM does not back
 * (or a base_hi above 0: RV64 physical addresses fit base_lo) is
 * SBI_ERR_INVALID_PARAM; read checks the range before it takes any input.
 */
function handleDbcn(host: SbiHost, mem: NonNullable<SbiHost["guestMemory"]>, c: SbiCall): [bigint, bigint] {
  const [n, lo, hi] = c.args;
  switch (c.functionId) {
    case SBI_DBCN_WRITE_BYTE:
      host.putchar(Number(c.args[0] & 0xffn));
      return [SBI_SUCCESS, 0n];
    case SBI_DBCN_WRITE: case SBI_DBCN_READ: {
      const len = Number(n < BigInt(SBI_DBCN_MAX_BYTES) ? n : BigInt(SBI_DBCN_MAX_BYTES));
      if (hi !== 0n) return [SBI_ERR_INVALID_PARAM, 0n];
      const bytes = mem.read(lo, len);
      if (bytes === null) return [SBI_ERR_INVALID_PARAM, 0n];
      if (c.functionId === SBI_DBCN_WRITE) {
        for (const b of bytes) host.putchar(b);
        return [SBI_SUCCESS, BigInt(len)];
      }
      const got: number[] = [];
      for (let b; got.length < len && (b = host.getchar()) >= 0;) got.push(b);
      if (got.length > 0 && !mem.write(lo, new Uint8Array(got))) return [SBI_ERR_FAILED, 0n];
      return [SBI_SUCCESS, BigInt(got.length)];
    }
  }
  return [SBI_ERR_NOT_SUPPORTED, 0n];
}

/** probe_extension: 1 for what this host implements, 0 for everything else. */
function probe(host: SbiHost, ext: bigint): bigint {
  const always = [SBI_EXT_BASE, SBI_EXT_TIME, SBI_EXT_SRST, SBI_EXT_PMU, SBI_EXT_0_1_CONSOLE_PUTCHAR, SBI_EXT_0_1_CONSOLE_GETCHAR,
    SBI_EXT_0_1_SHUTDOWN, SBI_EXT_0_1_SET_TIMER];
  const ok = always.includes(ext) || (ext === SBI_EXT_HSM && host.hsm !== undefined) ||
    (ext === SBI_EXT_IPI && host.sendIpi !== undefined) || (ext === SBI_EXT_RFENCE && host.remoteSfence !== undefined) ||
    (ext === SBI_EXT_DBCN && host.guestMemory !== undefined);
  return ok ? 1n : 0n;
}

/** Performs one call; returns [error, value] for a0 / a1. */
export function handleSbi(host: SbiHost, c: SbiCall): [bigint, bigint] {
  switch (c.extensionId) {
    case SBI_EXT_0_1_CONSOLE_PUTCHAR:
      host.putchar(Number(c.args[0] & 0xffn));
      return [SBI_SUCCESS, 0n];
    case SBI_EXT_0_1_CONSOLE_GETCHAR:
      return [BigInt(host.getchar()), 0n]; // legacy calls return the value in a0
    case SBI_EXT_0_1_SET_TIMER:
      host.setTimer(c.args[0]);
      return [SBI_SUCCESS, 0n];
    case SBI_EXT_0_1_SHUTDOWN:
      host.reset(0, 0);
      return [SBI_SUCCESS, 0n];
    case SBI_EXT_TIME:
      if (c.functionId !== 0n) return [SBI_ERR_NOT_SUPPORTED, 0n];
      host.setTimer(c.args[0]);
      return [SBI_SUCCESS, 0n];
    case SBI_EXT_SRST:
      if (c.functionId !== 0n || c.args[0] > 2n || c.args[1] > 1n) return [SBI_ERR_INVALID_PARAM, 0n];
      host.reset(Number(c.args[0]), Number(c.args[1]));
      return [SBI_SUCCESS, 0n];
    case SBI_EXT_HSM:
      return host.hsm ? handleHsm(host.hsm, c) : [SBI_ERR_NOT_SUPPORTED, 0n];
    case SBI_EXT_IPI:
      return host.sendIpi ? handleIpi(host, host.sendIpi.bind(host), c) : [SBI_ERR_NOT_SUPPORTED, 0n];
    case SBI_EXT_RFENCE:
      return host.remoteSfence ? handleRfence(host, host.remoteSfence.bind(host), c) : [SBI_ERR_NOT_SUPPORTED, 0n];
    case SBI_EXT_PMU:
      return handlePmu(c.functionId, c.args);
    case SBI_EXT_DBCN:
      return host.guestMemory ? handleDbcn(host, host.guestMemory, c) : [SBI_ERR_NOT_SUPPORTED, 0n];
    case SBI_EXT_BASE:
      switch (c.functionId) {
        case 0n: return [SBI_SUCCESS, SBI_SPEC_VERSION];
        case 1n: return [SBI_SUCCESS, SBI_IMPL_ID];         // "WBK"
        case 2n: return [SBI_SUCCESS, SBI_IMPL_VERSION];
        case 3n: return [SBI_SUCCESS, probe(host, c.args[0])];
        case 4n: case 5n: case 6n: return [SBI_SUCCESS, 0n];  // mvendorid, marchid, mimpid
      }
      return [SBI_ERR_NOT_SUPPORTED, 0n];
  }
  return [SBI_ERR_NOT_SUPPORTED, 0n];
}
