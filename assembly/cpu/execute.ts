// The run loop (the interpreter's KVM_RUN): alternates fast chunks (interp.ts)
// with the slow work between them: taking interrupts, executing SYSTEM
// instructions, entering trap handlers, and returning to the host.
//
// Interrupts are only looked at here, between chunks. That is exact because a
// chunk ends wherever the answer could change: a SYSTEM instruction (CSR
// writes, sret, wfi) stops the fast loop, a trap stops it, and a chunk never
// runs past the instruction at which time reaches stimecmp. The host's own
// changes (signal, raising the external interrupt line) happen between
// cpuRun calls or drop runLimit to 0, which ends the chunk at once.
//
// `budget` bounds instructions attempted: retired ones plus ones that trapped,
// so a guest stuck faulting on its own trap vector still returns to the host.
// The instret CSR counts retired ones only.

import {
  getPc, getX, getPriv, getField, cpuState, PRIV_U, PRIV_S, SSTATUS_WMASK, CAUSE_INTERRUPT, CAUSE_FETCH_MISALIGNED,
  OFF_SSTATUS, OFF_SIGNAL, OFF_TRAP_CAUSE, OFF_TRAP_TVAL, OFF_EXT_IRQ, OFF_SBI_PENDING,
} from "./state";
import { runFast, lastRetired } from "./interp";
import { runLimit, stopInst, STOP_LIMIT, STOP_TRAP, STOP_SYSTEM, STOP_MEM_EXIT } from "./stop";
import { takeTrap, interruptToTake } from "./trap";
import { execSystem, completeEcall, SYS_CONTINUE, SYS_SBI } from "./system";
import { instrUntilTimer } from "./timer";
import { accessStatus, ACCESS_OK } from "../mmu/access_state";
import { guestEnter, guestExit, takeRequests, runningVcpu, REQ_SIGNAL, KVM_REQ_TLB_FLUSH, KVM_REQ_IRQ, irqLineToCpu } from "../kvm/requests";

// Why cpuRun returned.
/** The budget is used up. */
export const EXIT_BUDGET: i32 = 0;
/** ecall from S-mode: the host implements the SBI call (a7 = EID, a6 = FID, a0..a5
 *  arguments), writes a0/a1 and calls cpuCompleteEcall. pc is at the ecall. */
export const EXIT_SBI: i32 = 1;
/** wfi with no interrupt pending that sie enables; pc is past the wfi. */
export const EXIT_WFI: i32 = 2;
/** The memory layer asked to exit (MMIO, ...); the instruction has not retired. */
export const EXIT_MEM: i32 = 3;
/** The host signalled the vCPU (cpuSignal). */
export const EXIT_INTR: i32 = 4;

/** What must hold at every instruction boundary the run loop sees (debug core only). */
function checkBoundary(): void {
  if (accessStatus != ACCESS_OK) abort("CPU: accessStatus still set at an instruction boundary");
  if (getX(0) != 0) abort("CPU: x0 is not zero");
  if (getPriv() != PRIV_U && getPriv() != PRIV_S) abort("CPU: privilege is neither U nor S");
  if ((getField(OFF_SSTATUS) & ~SSTATUS_WMASK) != 0) abort("CPU: sstatus holds bits that are not writable");
}

/**
 * Instructions per call of the fast loop at most. In the threads build a chunk
 * is the time the vCPU spends in guest mode at a stretch: how long a remote TLB
 * flush or a kick may wait for it (kvm/requests.ts).
 */
const FAST_CHUNK: i32 = WEBKVM_THREADS ? 1 << 12 : 1 << 20;

export function cpuRun(budget: i32): i32 {
  let left = budget;
  // An SBI call the host did not complete re-executes (and exits again).
  store<u32>(cpuState() + OFF_SBI_PENDING, 0);
  while (true) {
    if (load<u32>(cpuState() + OFF_SIGNAL) != 0) {
      store<u32>(cpuState() + OFF_SIGNAL, 0);
      return EXIT_INTR;
    }
    if (left <= 0) return EXIT_BUDGET;
    if (WEBKVM_DEBUG) checkBoundary();

    const irq = interruptToTake();
    if (irq >= 0) takeTrap(CAUSE_INTERRUPT | <u64>irq, 0);
    // Only the host can put pc off alignment (every guest path checks targets).
    if ((getPc() & 1) != 0) { // IALIGN is 16 (the C extension)
      takeTrap(CAUSE_FETCH_MISALIGNED, getPc());
      left--;
      continue;
    }

    // Run until the budget ends or time reaches stimecmp, whichever is first
    // (0 means the deadline is already behind us: STIP is simply set).
    // Bounded chunks: the engine swaps in optimized code for a function only
    // when it is next entered, so an unbounded fast loop could run to the end
    // of a long budget on its first, baseline-compiled version.
    let chunk = left < FAST_CHUNK ? left : FAST_CHUNK;
    const horizon = instrUntilTimer();
    if (horizon != 0 && horizon < <u64>chunk) chunk = <i32>horizon;
    if (WEBKVM_THREADS && !guestEnter()) {
      // A request is pending: a signal ends the run; a TLB flush needs nothing
      // more here (the zap already emptied the entries, and nothing is cached
      // between chunks).
      if (takeRequests(runningVcpu(), REQ_SIGNAL) != 0) return EXIT_INTR;
      takeRequests(runningVcpu(), KVM_REQ_TLB_FLUSH);
      // KVM_INTERRUPT moved the line (kvm_riscv_vcpu_flush_interrupts): taken at this boundary.
      if (takeRequests(runningVcpu(), KVM_REQ_IRQ) != 0) irqLineToCpu(runningVcpu());
      continue;
    }
    runLimit = chunk;
    const stop = runFast();
    if (WEBKVM_THREADS) guestExit();
    left -= lastRetired;
    if (stop == STOP_LIMIT) continue;

    left--; // the instruction that stopped the chunk
    if (stop == STOP_TRAP) {
      takeTrap(getField(OFF_TRAP_CAUSE), getField(OFF_TRAP_TVAL));
    } else if (stop == STOP_SYSTEM) {
      const r = execSystem(stopInst);
      if (r != SYS_CONTINUE) {
        if (r == SYS_SBI) {
          store<u32>(cpuState() + OFF_SBI_PENDING, 1);
          return EXIT_SBI;
        }
        return EXIT_WFI;
      }
    } else if (stop == STOP_MEM_EXIT) {
      return EXIT_MEM;
    }
  }
}

/** Finishes the SBI call cpuRun returned for; false (and nothing done) if there is none. */
export function cpuCompleteEcall(): bool {
  if (load<u32>(cpuState() + OFF_SBI_PENDING) == 0) return false;
  store<u32>(cpuState() + OFF_SBI_PENDING, 0);
  completeEcall();
  return true;
}

/** Makes cpuRun return EXIT_INTR at the next instruction boundary (or at once, if not running). */
export function cpuSignal(): void {
  store<u32>(cpuState() + OFF_SIGNAL, 1);
  runLimit = 0;
}

/** signal_pending for work outside cpuRun (KVM_PRE_FAULT_MEMORY): true once per cpuSignal, which it consumes. */
export function cpuTakeSignal(): bool {
  if (load<u32>(cpuState() + OFF_SIGNAL) == 0) return false;
  store<u32>(cpuState() + OFF_SIGNAL, 0);
  return true;
}

/**
 * The level of the external interrupt line (sip.SEIP), for an interrupt
 * controller model. Raising it during a run (from a device callback) ends
 * the current chunk so the run loop looks at it at the next boundary.
 */
export function cpuSetExternalIrq(level: bool): void {
  store<u32>(cpuState() + OFF_EXT_IRQ, level ? 1 : 0);
  if (level) runLimit = 0;
}
