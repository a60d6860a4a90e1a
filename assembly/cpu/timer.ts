// The `time` CSR and the supervisor timer (Sstc's stimecmp, which SBI set_timer
// also writes). Time is a pure function of retired instructions so runs are
// reproducible:
//
//   time = timeBase + (instret - instretAtBase) / instrPerTick
//
// The guest is told the timebase is 10 MHz; with the default of 10 instructions
// per tick that makes a nominal 100 MIPS machine. The host may jump time
// forward (a vCPU idle in wfi) or change the ratio; both rebase, so time never
// goes backwards and the fraction of a tick in progress is dropped.
//
// STIP is level-triggered: it is set exactly while time >= stimecmp. Nothing
// polls it per instruction; the run loop asks instrUntilTimer() how far it may
// run before STIP can change and ends its fast chunk there.

import { getField, setField, getInstret, OFF_STIMECMP, OFF_TIME_BASE, OFF_INSTRET_AT_BASE, OFF_INSTR_PER_TICK } from "./state";

export const TIMEBASE_HZ: u64 = 10_000_000;
export const DEFAULT_INSTR_PER_TICK: u64 = 10;

export function timeNow(): u64 {
  return getField(OFF_TIME_BASE) + (getInstret() - getField(OFF_INSTRET_AT_BASE)) / getField(OFF_INSTR_PER_TICK);
}

/** Sets `time` to t from this instruction boundary on. */
export function setTime(t: u64): void {
  setField(OFF_TIME_BASE, t);
  setField(OFF_INSTRET_AT_BASE, getInstret());
}

export function setInstrPerTick(k: u64): void {
  const t = timeNow();
  setField(OFF_INSTR_PER_TICK, k == 0 ? 1 : k);
  setTime(t);
}

export function timerDeadline(): u64 { return getField(OFF_STIMECMP); }
export function setTimerDeadline(t: u64): void { setField(OFF_STIMECMP, t); }

export function timerPending(): bool { return timeNow() >= getField(OFF_STIMECMP); }

/**
 * Retired instructions from now until time reaches the deadline (0 when it
 * already has, u64 max when it never will within 2^64 instructions).
 */
export function instrUntilTimer(): u64 {
  const deadline = getField(OFF_STIMECMP);
  const base = getField(OFF_TIME_BASE);
  const k = getField(OFF_INSTR_PER_TICK);
  const done = getInstret() - getField(OFF_INSTRET_AT_BASE);
  if (deadline <= base) return 0;
  const ticks = deadline - base;
  if (ticks > <u64>-1 / k) return <u64>-1;
  const need = ticks * k; // instructions after the base at which time == deadline
  return need > done ? need - done : 0;
}
