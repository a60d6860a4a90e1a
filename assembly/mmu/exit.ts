// Exits the memory layer asks for, recorded in the vCPU for kvm/vcpu_run.ts to
// report: MMIO (with the fragments of an instruction that needs several MMIO
// round trips, replayed on re-execution the way the kernel's emulator keeps
// mmio_fragments), a retry, and a memory fault.

import { vcpuOf } from "../kvm/kvm_host";
import { PAGE_MASK } from "../layout";
import { EFAULT } from "../errno";

export const EXITK_NONE: i32 = 0;
export const EXITK_MMIO: i32 = 1;
export const EXITK_RETRY: i32 = 2;
export const EXITK_MEMORY_FAULT: i32 = 3;
export const EXITK_RING_FULL: i32 = 4;
/** KVM_RUN fails: errno in exitLen, the check code in exitData (kvm_riscv_vcpu_exit's ret < 0). */
export const EXITK_FAIL: i32 = 5;

export const MAX_FRAGMENTS: i32 = 2;

@inline function lowBytes(v: u64, len: i32): u64 {
  return len >= 8 ? v : v & ((<u64>1 << <u64>(len << 3)) - 1);
}

/** Whether the last mmioAccess recorded an exit (rather than replaying a fragment). */
export let mmioExited: bool = false;

/**
 * One MMIO part of the current instruction. On re-execution after an exit, the
 * parts already completed are answered from the fragments, in order; the first
 * part not yet completed exits.
 */
export function mmioAccess(vcpuP: usize, gpa: u64, len: i32, isWrite: bool, value: u64): u64 {
  const v = vcpuOf(vcpuP);
  mmioExited = false;
  if (v.fragNext < v.fragCount) {
    const i = v.fragNext++;
    const fgpa = i == 0 ? v.frag0Gpa : v.frag1Gpa;
    const flen = i == 0 ? v.frag0Len : v.frag1Len;
    if (fgpa == gpa && flen == len) return isWrite ? 0 : (i == 0 ? v.frag0Data : v.frag1Data);
    // The instruction took another path than before: forget what it did.
    v.fragCount = 0;
    v.fragNext = 0;
  }
  v.exitKind = EXITK_MMIO;
  v.exitGpa = gpa;
  v.exitLen = len;
  v.exitIsWrite = isWrite ? 1 : 0;
  v.exitData = isWrite ? lowBytes(value, len) : 0;
  mmioExited = true;
  return 0;
}

/** Completes the MMIO exit being reported: data is the host's answer (reads). */
export function completeMmio(vcpuP: usize, data: u64): void {
  const v = vcpuOf(vcpuP);
  const d = v.exitIsWrite != 0 ? v.exitData : lowBytes(data, v.exitLen);
  if (v.fragCount < MAX_FRAGMENTS) {
    if (v.fragCount == 0) { v.frag0Gpa = v.exitGpa; v.frag0Len = v.exitLen; v.frag0Data = d; }
    else { v.frag1Gpa = v.exitGpa; v.frag1Len = v.exitLen; v.frag1Data = d; }
    v.fragCount++;
  }
  v.exitKind = EXITK_NONE;
}

export function dropFragments(vcpuP: usize): void {
  const v = vcpuOf(vcpuP);
  v.fragCount = 0;
  v.fragNext = 0;
}

export function exitRetry(vcpuP: usize): void {
  vcpuOf(vcpuP).exitKind = EXITK_RETRY;
}

export function exitRingFull(vcpuP: usize): void {
  vcpuOf(vcpuP).exitKind = EXITK_RING_FULL;
}

/** A memory-fault exit: memory_fault.flags (KVM_MEMORY_EXIT_FLAG_PRIVATE) and KVM_RUN's errno ride in exitData / exitLen. */
export function exitMemoryFault(vcpuP: usize, gpa: u64, flags: u64 = 0, err: i32 = EFAULT): void {
  const v = vcpuOf(vcpuP);
  v.exitKind = EXITK_MEMORY_FAULT;
  v.exitGpa = gpa & ~PAGE_MASK;
  v.exitData = flags;
  v.exitLen = err;
}

/** KVM_RUN fails with -err at gpa, as RISC-V KVM's exit handlers do for what they cannot emulate. */
export function exitFail(vcpuP: usize, gpa: u64, err: i32, check: i32): void {
  const v = vcpuOf(vcpuP);
  v.exitKind = EXITK_FAIL;
  v.exitGpa = gpa;
  v.exitData = <u64>check;
  v.exitLen = err;
}
