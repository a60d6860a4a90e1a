// The SBI calls the host implements for its guests (KVM_EXIT_RISCV_SBI):
// legacy console and shutdown, BASE probing, TIME (set_timer), SRST and HSM
// (hart start / stop / status, as arch/riscv/kvm/vcpu_sbi_hsm.c answers them).

// SBI (RISC-V Supervisor Binary Interface) extension ids and return codes.
export const SBI_EXT_0_1_SET_TIMER = 0x00n;
export const SBI_EXT_0_1_CONSOLE_PUTCHAR = 0x01n;
export const SBI_EXT_0_1_CONSOLE_GETCHAR = 0x02n;
export const SBI_EXT_0_1_SHUTDOWN = 0x08n;
export const SBI_EXT_BASE = 0x10n;
export const SBI_EXT_TIME = 0x54494d45n;
export const SBI_EXT_SRST = 0x53525354n;
export const SBI_EXT_HSM = 0x48534dn;
export const SBI_SUCCESS = 0n;
export const SBI_ERR_FAILED = -1n;
export const SBI_ERR_NOT_SUPPORTED = -2n;
export const SBI_ERR_INVALID_PARAM = -3n;
export const SBI_ERR_INVALID_ADDRESS = -5n;
export const SBI_ERR_ALREADY_AVAILABLE = -6n;

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
    case SBI_EXT_BASE:
      switch (c.functionId) {
        case 0n: return [SBI_SUCCESS, 2n << 24n];           // spec version 2.0
        case 1n: return [SBI_SUCCESS, 0x57424bn];           // implementation id ("WBK")
        case 2n: return [SBI_SUCCESS, 1n];
        case 3n: {                                           // probe_extension
          const ok = [SBI_EXT_BASE, SBI_EXT_TIME, SBI_EXT_SRST, SBI_EXT_0_1_CONSOLE_PUTCHAR,
            SBI_EXT_0_1_CONSOLE_GETCHAR, SBI_EXT_0_1_SHUTDOWN, SBI_EXT_0_1_SET_TIMER].includes(c.args[0]) ||
            (c.args[0] === SBI_EXT_HSM && host.hsm !== undefined);
          return [SBI_SUCCESS, ok ? 1n : 0n];
        }
        case 4n: case 5n: case 6n: return [SBI_SUCCESS, 0n];  // mvendorid, marchid, mimpid
      }
      return [SBI_ERR_NOT_SUPPORTED, 0n];
  }
  return [SBI_ERR_NOT_SUPPORTED, 0n];
}
