// How an instruction leaves the fast loop (interp.ts). The loop runs while its
// retired count is below runLimit, a global; anything that must end it
// (an exception, a SYSTEM instruction, a memory-layer exit, a host signal)
// records why in stopReason and drops runLimit to 0, so the loop needs no
// per-instruction flag test beyond the count compare it does anyway.

import { setField, OFF_TRAP_CAUSE, OFF_TRAP_TVAL, CAUSE_ILLEGAL } from "./state";
import { accessStatus, accessCause, accessTval, ACCESS_OK, ACCESS_EXIT } from "../mmu/access_state";

/** Ran to runLimit: the chunk's budget, the timer horizon, or a host signal. */
export const STOP_LIMIT: i32 = 0;
/** The instruction at pc raised an exception (cause and tval in the state block). */
export const STOP_TRAP: i32 = 1;
/** A SYSTEM-opcode instruction (stopInst) is at pc, not yet executed. */
export const STOP_SYSTEM: i32 = 2;
/** The memory layer asked to exit; the instruction at pc re-executes later. */
export const STOP_MEM_EXIT: i32 = 3;

export let runLimit: i32 = 0;
export let stopReason: i32 = STOP_LIMIT;
export let stopInst: u32 = 0;

/** Ends the fast loop before the current instruction retires. */
// @ts-ignore: decorator
@inline export function stopNow(reason: i32): void {
  stopReason = reason;
  runLimit = 0;
}

export function raise(cause: u64, tval: u64): void {
  setField(OFF_TRAP_CAUSE, cause);
  setField(OFF_TRAP_TVAL, tval);
  stopNow(STOP_TRAP);
}

export function illegal(inst: i32): void {
  raise(CAUSE_ILLEGAL, <u64><u32>inst);
}

/** Consumes a failed accessStatus: a trap or an exit. */
export function memStop(): void {
  if (accessStatus == ACCESS_EXIT) {
    stopNow(STOP_MEM_EXIT);
  } else {
    raise(accessCause, accessTval);
  }
  accessStatus = ACCESS_OK;
}
