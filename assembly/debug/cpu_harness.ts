// The CPU's test and bench surface: drives the interpreter directly (no
// KVM_RUN) on a vCPU of a one-slot VM, through the real MMU, so instruction-
// level tests can look at registers, CSRs, exits and the memory layer's access
// log, and benchmarks can time the spte fast path. Nothing else calls these.

import { cpuState as cpuStateBlock, CPU_STATE_SIZE, getX, setX, getPc, setPc, getPriv, setPriv, getInstret, resetState, PRIV_S,
  PRIV_U } from "../cpu/state";
import { csrRead, csrWrite, csrOk } from "../cpu/csr";
import { getF64, fregAddr } from "../cpu/fpu/fcsr";
import * as S from "../cpu/fpu/softfloat";
import { timeNow, setTime, setInstrPerTick, timerDeadline, setTimerDeadline } from "../cpu/timer";
import { cpuRun as run, cpuCompleteEcall as completeEcall, cpuSignal as signal, cpuSetExternalIrq as setExtIrq } from "../cpu/execute";
import { mmuEnter, memFlush, mmuModeChanged, logCount, logVa, logSize, logKind, logReset, memStore,
  memLoad } from "../mmu/access";
import { completeMmio, dropFragments } from "../mmu/exit";
import { kvmCreateVm, vmFromFd } from "../kvm/ioctl";
import { vmOf, vcpuOf, slotsLock, slotsUnlock } from "../kvm/kvm_host";
import { createVcpu } from "../kvm/vcpu";
import { vcpuLoad, RAM_BASE } from "../kvm/vcpu_run";
import { setMemoryRegion } from "../kvm/set_memory_region";
import { mmap, PROT_READ, PROT_WRITE, MAP_PRIVATE } from "../hostmm/mm";
import { accessGuest } from "../kvm/read_write_guest";
import { ioBuf } from "../layout";
import { mmuStatOf } from "../mmu/stats";
import { MMU_STAT_FLUSHES } from "../selectors";

let testVcpu: usize = 0;
let testVm: usize = 0;
let fragPc: u64 = 0;

/** A VM with `size` bytes of RAM at RAM_BASE and one loaded vCPU. 0 or -1. */
export function memInit(size: u64): i32 {
  const fd = kvmCreateVm(0, 1);
  if (fd < 0) return -1;
  testVm = vmFromFd(fd);
  const hva = mmap(0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE);
  if (hva < 0) return -1;
  slotsLock(vmOf(testVm));
  const r = setMemoryRegion(vmOf(testVm), 0, 0, RAM_BASE, size, <u64>hva, 0, -1);
  slotsUnlock(vmOf(testVm));
  if (r != 0) return -1;
  const v = createVcpu(vmOf(testVm), 0);
  if (v < 0) return -1;
  testVcpu = <usize>v;
  vcpuLoad(testVcpu);
  return mmuEnter(testVcpu) ? 0 : -1;
}

/** Guest-physical copy between ioBuf() and RAM (kvm_read/write_guest). */
export function memPhys(gpa: u64, len: u32, write: bool): i32 {
  return accessGuest(vmOf(testVm), 0, gpa, ioBuf(), len, write);
}

/** Any address without a slot is MMIO already; kept for the tests' readability. */
export function memSetExitWindow(base: u64, size: u64): void {}

/** Answers the pending MMIO exit; the instruction's re-execution gets the value. */
export function memCompleteMmio(value: u64): void {
  const v = vcpuOf(testVcpu);
  if (v.fragCount != 0 && fragPc != getPc()) dropFragments(testVcpu);
  fragPc = getPc();
  completeMmio(testVcpu, value);
  v.fragNext = 0;
}
export function memMmioVa(): u64 { return vcpuOf(testVcpu).exitGpa; }
/** The exit the memory layer recorded (mmu/exit.ts EXITK_*) and its errno. */
export function memExitKind(): i32 { return vcpuOf(testVcpu).exitKind; }
export function memExitErrno(): i32 { return vcpuOf(testVcpu).exitLen; }
export function memMmioSize(): i32 { return vcpuOf(testVcpu).exitLen; }
export function memMmioIsWrite(): bool { return vcpuOf(testVcpu).exitIsWrite != 0; }
export function memMmioValue(): u64 { return vcpuOf(testVcpu).exitData; }
export function memFlushCount(): u32 { return mmuStatOf(MMU_STAT_FLUSHES); }
export function memLogCount(): i32 { return logCount; }
export function memLogVa(i: i32): u64 { return logVa(i); }
export function memLogSize(i: i32): i32 { return logSize(i); }
export function memLogKind(i: i32): i32 { return logKind(i); }
export function memLogReset(): void { logReset(); }

export function cpuReset(entry: u64): void {
  resetState(entry);
  memFlush(); // ends with mmuModeChanged()
}
export function cpuState(): usize { return cpuStateBlock(); }
export function cpuStateSize(): i32 { return CPU_STATE_SIZE; }
export function cpuGetX(r: i32): u64 { return getX(r & 31); }
export function cpuSetX(r: i32, v: u64): void { setX(r & 31, v); }
export function cpuGetPc(): u64 { return getPc(); }
export function cpuSetPc(v: u64): void { setPc(v); }
export function cpuGetPriv(): i32 { return <i32>getPriv(); }
export function cpuSetPriv(p: i32): void {
  setPriv(p != 0 ? PRIV_S : PRIV_U);
  mmuModeChanged();
}
export function cpuGetCsr(csr: i32): u64 { return csrRead(csr, PRIV_S); }
export function cpuSetCsr(csr: i32, v: u64): void { csrWrite(csr, v); }
export function cpuCsrOk(): bool { return csrOk; }
export function cpuInstret(): u64 { return getInstret(); }
export function cpuRun(budget: i32): i32 { return run(budget); }
export function cpuCompleteEcall(): bool { return completeEcall(); }
export function cpuSignal(): void { signal(); }
export function cpuSetExternalIrq(level: bool): void { setExtIrq(level); }
export function cpuGetTime(): u64 { return timeNow(); }
export function cpuSetTime(t: u64): void { setTime(t); }
export function cpuSetInstrPerTick(k: u64): void { setInstrPerTick(k); }
export function cpuSetTimer(deadline: u64): void { setTimerDeadline(deadline); }
export function cpuGetTimer(): u64 { return timerDeadline(); }

// ---- benchmarks: guest stores through an spte hit vs plain stores ----
const BENCH_RAW: usize = memory.data(4096, 4096);

/** n 8-byte guest stores into the page at gpa va (bare mode), through the shadow MMU fast path. */
export function benchSpteStores(va: u64, n: i32): u64 {
  memStore(va, 0, 8); // fault the page in: every store below is an spte hit
  for (let i = 0; i < n; i++) memStore(va + (<u64>(i & 511) << 3), <u64>i, 8);
  return memLoad(va, 8, 0);
}

/** The same n stores straight to linear memory. */
export function benchRawStores(n: i32): u64 {
  for (let i = 0; i < n; i++) store<u64>(BENCH_RAW + (<usize>(i & 511) << 3), <u64>i);
  return load<u64>(BENCH_RAW);
}

// ---- F/D: the f registers, and the soft-float core called directly (test/cpu/softfloat.test.ts) ----
export function cpuGetF(r: i32): u64 { return getF64(r & 31); }
/** Sets f[r] as the host would (ONE_REG): sstatus.FS is not touched. */
export function cpuSetF(r: i32, v: u64): void { store<u64>(fregAddr(r & 31), v); }

/**
 * One soft-float operation on raw bits (dbl: binary64, else binary32 in the
 * low 32 bits): op 0 add, 1 sub, 2 mul, 3 div, 4 sqrt(a), 5 fmadd, 6 fmsub,
 * 7 fnmsub, 8 fnmadd, 9 convert a to the other format (dbl: the result's),
 * 10 to integer (kind b), 11 from integer a (kind b), 12 compare (b2: 0 eq,
 * 1 lt, 2 le), 13 min, 14 max, 15 class. The flags it raised: sfFlags().
 */
export function sfOp(op: i32, a: u64, b: u64, c: u64, dbl: bool, rm: i32, kind: i32): u64 {
  S.clearFpFlags();
  switch (op) {
    case 0: return S.fadd(a, b, dbl, rm, false);
    case 1: return S.fadd(a, b, dbl, rm, true);
    case 2: return S.fmul(a, b, dbl, rm);
    case 3: return S.fdiv(a, b, dbl, rm);
    case 4: return S.fsqrt(a, dbl, rm);
    case 5: return S.ffma(a, b, c, dbl, rm, false, false);
    case 6: return S.ffma(a, b, c, dbl, rm, false, true);
    case 7: return S.ffma(a, b, c, dbl, rm, true, false);
    case 8: return S.ffma(a, b, c, dbl, rm, true, true);
    case 9: return S.fcvtFF(a, dbl, rm);
    case 10: return S.fcvtToInt(a, dbl, rm, kind);
    case 11: return S.fcvtFromInt(a, dbl, rm, kind);
    case 12: return S.fcompare(a, b, dbl, kind);
    case 13: return S.fminmax(a, b, dbl, false);
    case 14: return S.fminmax(a, b, dbl, true);
    default: return S.fclass(a, dbl);
  }
}
export function sfFlags(): u32 { return S.fpFlags; }
