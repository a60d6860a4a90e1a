// The SBI calls the host implements for its guests (KVM_EXIT_RISCV_SBI):
// legacy console and shutdown, BASE probing, TIME (set_timer) and SRST.

// SBI (RISC-V Supervisor Binary Interface) extension ids and return codes.
export const SBI_EXT_0_1_SET_TIMER = 0x00n;
export const SBI_EXT_0_1_CONSOLE_PUTCHAR = 0x01n;
export const SBI_EXT_0_1_CONSOLE_GETCHAR = 0x02n;
export const SBI_EXT_0_1_SHUTDOWN = 0x08n;
export const SBI_EXT_BASE = 0x10n;
export const SBI_EXT_TIME = 0x54494d45n;
export const SBI_EXT_SRST = 0x53525354n;
export const SBI_SUCCESS = 0n;
export const SBI_ERR_NOT_SUPPORTED = -2n;

export interface SbiHost {
  putchar(byte: number): void;
  /** A received byte, or -1. */
  getchar(): number;
  setTimer(deadline: bigint): void;
  /** SRST / legacy shutdown: type 0 shutdown, 1 cold reboot, 2 warm reboot; reason 0 none, 1 failure. */
  reset(type: number, reason: number): void;
}

export interface SbiCall { extensionId: bigint; functionId: bigint; args: bigint[] }

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
      if (c.functionId !== 0n || c.args[0] > 2n || c.args[1] > 1n) return [-3n, 0n]; // SBI_ERR_INVALID_PARAM
      host.reset(Number(c.args[0]), Number(c.args[1]));
      return [SBI_SUCCESS, 0n];
    case SBI_EXT_BASE:
      switch (c.functionId) {
        case 0n: return [SBI_SUCCESS, 2n << 24n];           // spec version 2.0
        case 1n: return [SBI_SUCCESS, 0x57424bn];           // implementation id ("WBK")
        case 2n: return [SBI_SUCCESS, 1n];
        case 3n: {                                           // probe_extension
          const ok = [SBI_EXT_BASE, SBI_EXT_TIME, SBI_EXT_SRST, SBI_EXT_0_1_CONSOLE_PUTCHAR,
            SBI_EXT_0_1_CONSOLE_GETCHAR, SBI_EXT_0_1_SHUTDOWN, SBI_EXT_0_1_SET_TIMER].includes(c.args[0]);
          return [SBI_SUCCESS, ok ? 1n : 0n];
        }
        case 4n: case 5n: case 6n: return [SBI_SUCCESS, 0n];  // mvendorid, marchid, mimpid
      }
      return [SBI_ERR_NOT_SUPPORTED, 0n];
  }
  return [SBI_ERR_NOT_SUPPORTED, 0n];
}
