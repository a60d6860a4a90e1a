// The SBI PMU extension (performance monitoring unit), answered as
// arch/riscv/kvm/vcpu_pmu.c answers a guest, for a vCPU whose counters are
// what assembly/cpu/csr.ts gives it: cycle and instret count from reset (one
// cycle per retired instruction) and cannot be stopped or given a start
// value; time is the timer; the hpmcounters count nothing.
//
// So the extension describes those counters honestly and refuses every
// event: perf programs a counter by starting it at a value it chooses
// (SBI_PMU_START_FLAG_SET_INIT_VALUE) and later reads the CSR against that
// value, which a counter that cannot be set would answer wrongly. No counter
// is ever configured, no firmware counter exists, and no snapshot memory can
// be set. A guest's Linux finds the counters, opens cycle / time / instret to
// user mode (scounteren) and stops every counter at boot: as in KVM a no-op
// on counters no event configured, so cycle and instret count on. (KVM's
// cycle and instret are virtual: it traps a guest's read of one perf has not
// configured.)

import { SBI_SUCCESS, SBI_ERR_FAILED, SBI_ERR_NOT_SUPPORTED, SBI_ERR_INVALID_PARAM, SBI_ERR_NO_SHMEM } from "./sbiret.js";

export const SBI_EXT_PMU = 0x504d55n;
/** PMU function ids (SBI 2.0; 8, event_get_info, is SBI 3.0). */
export const SBI_PMU_NUM_COUNTERS = 0n, SBI_PMU_COUNTER_GET_INFO = 1n, SBI_PMU_COUNTER_CFG_MATCH = 2n,
  SBI_PMU_COUNTER_START = 3n, SBI_PMU_COUNTER_STOP = 4n, SBI_PMU_COUNTER_FW_READ = 5n, SBI_PMU_COUNTER_FW_READ_HI = 6n,
  SBI_PMU_SNAPSHOT_SET_SHMEM = 7n;
/** counter_config_matching flags: the caller names the counter itself (bit 0 of config_flags). */
export const SBI_PMU_CFG_FLAG_SKIP_MATCH = 1n;
/** counter_start: start at initial_value; start from the snapshot memory. */
export const SBI_PMU_START_FLAG_SET_INIT_VALUE = 1n, SBI_PMU_START_FLAG_INIT_SNAPSHOT = 2n;
/** counter_stop: release the counter's event; write the counters to the snapshot memory. */
export const SBI_PMU_STOP_FLAG_RESET = 1n, SBI_PMU_STOP_FLAG_TAKE_SNAPSHOT = 2n;

const CSR_CYCLE = 0xc00n;
/** Counters 0..2: cycle, time, instret (the counter index is the CSR number minus CSR_CYCLE, as KVM numbers them). */
export const SBI_PMU_NUM_HW_COUNTERS = 3n;
const TIME_COUNTER = 1n;

/**
 * counter_get_info's value for a hardware counter: its CSR number in bits
 * 0..11, its width less one in bits 12..17, type 0 (hardware) in bit 63.
 * cycle and instret are 64 bits wide, as KVM reports them.
 */
export function pmuCounterInfo(csr: bigint, bits: bigint): bigint {
  return csr | ((bits - 1n) << 12n);
}

function counterInfo(idx: bigint): [bigint, bigint] {
  // The time counter is the timer's, never perf's (kvm_riscv_vcpu_pmu_ctr_info refuses index 1).
  if (idx === TIME_COUNTER || idx >= SBI_PMU_NUM_HW_COUNTERS) return [SBI_ERR_INVALID_PARAM, 0n];
  return [SBI_SUCCESS, pmuCounterInfo(CSR_CYCLE + idx, 64n)];
}

/**
 * A (counter_idx_base, counter_idx_mask) pair names counters that exist:
 * a nonzero mask whose highest bit, added to the base, is below
 * num_counters (kvm_pmu_validate_counter_mask).
 */
export function pmuMaskValid(base: bigint, mask: bigint): boolean {
  if (mask === 0n || base >= SBI_PMU_NUM_HW_COUNTERS) return false;
  return base + BigInt(mask.toString(2).length - 1) < SBI_PMU_NUM_HW_COUNTERS;
}

/** Performs one PMU call (function id, a0..a5); returns [error, value]. */
export function handlePmu(functionId: bigint, args: bigint[]): [bigint, bigint] {
  const [a0, a1, a2] = args;
  switch (functionId) {
    case SBI_PMU_NUM_COUNTERS:
      return [SBI_SUCCESS, SBI_PMU_NUM_HW_COUNTERS];
    case SBI_PMU_COUNTER_GET_INFO:
      return counterInfo(a0);
    case SBI_PMU_COUNTER_CFG_MATCH:
      // (base, mask, flags, event_idx, event_data): the mask first, then a
      // SKIP_MATCH naming a counter no event configured, then the event.
      if (!pmuMaskValid(a0, a1)) return [SBI_ERR_INVALID_PARAM, 0n];
      if ((a2 & SBI_PMU_CFG_FLAG_SKIP_MATCH) !== 0n) return [SBI_ERR_FAILED, 0n];
      return [SBI_ERR_NOT_SUPPORTED, 0n];
    case SBI_PMU_COUNTER_START: case SBI_PMU_COUNTER_STOP: {
      // (base, mask, flags[, initial_value]): the mask, then a snapshot flag
      // without snapshot memory; counters with no event are passed over
      // (Linux stops every counter at boot), so a valid mask succeeds.
      if (!pmuMaskValid(a0, a1)) return [SBI_ERR_INVALID_PARAM, 0n];
      const snapshot = functionId === SBI_PMU_COUNTER_START ? SBI_PMU_START_FLAG_INIT_SNAPSHOT : SBI_PMU_STOP_FLAG_TAKE_SNAPSHOT;
      if ((a2 & snapshot) !== 0n) return [SBI_ERR_NO_SHMEM, 0n];
      return [SBI_SUCCESS, 0n];
    }
    case SBI_PMU_COUNTER_FW_READ:
      // Reads a firmware counter (KVM also a configured hardware one): there are none.
      return [SBI_ERR_INVALID_PARAM, 0n];
    case SBI_PMU_COUNTER_FW_READ_HI:
      return [SBI_SUCCESS, 0n]; // the upper half is for RV32; on RV64 it is always 0
  }
  // SNAPSHOT_SET_SHMEM (no snapshot memory here) and every other id.
  return [SBI_ERR_NOT_SUPPORTED, 0n];
}
