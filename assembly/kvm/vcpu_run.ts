// KVM_RUN and the vCPU register ioctls. KVM_RUN first completes what the last
// exit left open (an MMIO read's data, an SBI call's return values), then runs
// the interpreter until something needs the host, and reports it in kvm_run.

import { vmOf, Vcpu, vcpuOf, vcpuMutexLock, vcpuMutexUnlock } from "./kvm_host";
import { kzalloc } from "../kalloc";
import { cpuState, CPU_STATE_SIZE, resetState, getX, setX, getPc, setPc, getPriv, setPriv, getInstret, PRIV_S,
  PRIV_U, satpModeSupported } from "../cpu/state";
import { cpuRun, cpuCompleteEcall, EXIT_BUDGET, EXIT_SBI, EXIT_WFI, EXIT_MEM, EXIT_INTR } from "../cpu/execute";
import { timeNow, setTime, timerDeadline, setTimerDeadline, TIMEBASE_HZ } from "../cpu/timer";
import { mmuEnter, mmuModeChanged } from "../mmu/access";
import { csrRead, csrWrite, CSR_SSTATUS, CSR_SIE, CSR_STVEC, CSR_SSCRATCH, CSR_SEPC, CSR_SCAUSE, CSR_STVAL, CSR_SIP,
  CSR_SATP, CSR_SCOUNTEREN, CSR_SENVCFG } from "../cpu/csr";
import { completeMmio, dropFragments, EXITK_MMIO, EXITK_RETRY, EXITK_MEMORY_FAULT, EXITK_RING_FULL, EXITK_NONE,
  EXITK_FAIL } from "../mmu/exit";
import { ringCheckRequest } from "../dirty/ring";
import { hvaToLinear } from "../hostmm/mm";
import { setRunningVcpu, guestExit, takeRequests, REQ_SIGNAL, KVM_REQ_TLB_FLUSH, KVM_REQ_IRQ, irqLineToCpu } from "./requests";
import { vcpuSrcuReadLock, vcpuSrcuReadUnlock } from "./srcu";
import { threadId } from "../threads";
import { KVM_RUN_BYTES, KVM_RUN_IMMEDIATE_EXIT, KVM_RUN_EXIT_REASON, KVM_RUN_MMIO_PHYS_ADDR, KVM_RUN_MMIO_DATA,
  KVM_RUN_MMIO_LEN, KVM_RUN_MMIO_IS_WRITE, KVM_RUN_MEMORY_FAULT_FLAGS, KVM_RUN_MEMORY_FAULT_GPA,
  KVM_RUN_MEMORY_FAULT_SIZE, KVM_RUN_SBI_EXTENSION, KVM_RUN_SBI_FUNCTION, KVM_RUN_SBI_ARGS, KVM_RUN_SBI_RET,
  KVM_EXIT_UNKNOWN, KVM_EXIT_HLT, KVM_EXIT_MMIO, KVM_EXIT_INTR, KVM_EXIT_RISCV_SBI, KVM_EXIT_MEMORY_FAULT, KVM_EXIT_DIRTY_RING_FULL,
  ioctlBuf, PAGE_SIZE } from "../layout";
import { fail, EINTR, EFAULT, EINVAL, ENOENT, ENOMEM, CHECK_ALLOC_SLOT, CHECK_ONE_REG, CHECK_HVA_FAULT } from "../errno";
import { injected, INJECT_RUN_ABORT } from "../debug/inject";
import { fpRegAddr, fpRegSize, fpReset, FP_REG_ERRNO, KVM_REG_RISCV_FP_F, KVM_REG_RISCV_FP_D } from "./vcpu_fp";

export const RAM_BASE: u64 = 0x80000000;
const DEFAULT_BUDGET: u64 = 200_000_000;
const CHUNK: u64 = 1 << 30;

const PENDING_NONE: i32 = 0;
const PENDING_MMIO: i32 = 1;
const PENDING_SBI: i32 = 2;

/** The vCPU whose state is in cpuState() (vcpu_load). */
let loaded: usize = 0;

/** vcpu_load: puts the vCPU's saved state into the interpreter's state block. */
export function vcpuLoad(p: usize): void {
  if (loaded == p) return;
  if (loaded != 0) memory.copy(vcpuOf(loaded).cpuState, cpuState(), CPU_STATE_SIZE);
  memory.copy(cpuState(), vcpuOf(p).cpuState, CPU_STATE_SIZE);
  loaded = p;
  if (WEBKVM_THREADS) {
    vcpuOf(p).loadedIn = cpuState();
    // KVM_INTERRUPT's line as it is now; a later change comes as KVM_REQ_IRQ.
    takeRequests(p, KVM_REQ_IRQ);
    irqLineToCpu(p);
  }
}

/** vcpu_put (threads build): the state goes back to the vCPU, so the next ioctl may come from any thread. */
export function vcpuPut(p: usize): void {
  if (loaded != p) return;
  memory.copy(vcpuOf(p).cpuState, cpuState(), CPU_STATE_SIZE);
  loaded = 0;
  vcpuOf(p).loadedIn = 0;
}

export function vcpuLoaded(p: usize): bool {
  return loaded == p;
}

/** Forgets a vCPU that is being freed. */
export function vcpuForget(p: usize): void {
  if (loaded == p) loaded = 0;
}

/** The arch part of KVM_CREATE_VCPU: kvm_run page, reset state (S-mode at the RAM base). */
export function vcpuArchCreate(p: usize): bool {
  const v = vcpuOf(p);
  v.kvmRun = kzalloc(KVM_RUN_BYTES);
  v.cpuState = kzalloc(CPU_STATE_SIZE);
  if (v.kvmRun == 0 || v.cpuState == 0) return false;
  v.budget = DEFAULT_BUDGET;
  if (loaded != 0) memory.copy(vcpuOf(loaded).cpuState, cpuState(), CPU_STATE_SIZE);
  resetState(RAM_BASE);
  fpReset();
  memory.copy(v.cpuState, cpuState(), CPU_STATE_SIZE);
  // Threads build: a vCPU is loaded only inside an ioctl of it (vcpu_put after each).
  loaded = WEBKVM_THREADS ? 0 : p;
  return true;
}

@inline function setExit(v: Vcpu, reason: u32): void {
  store<u32>(v.kvmRun + KVM_RUN_EXIT_REASON, reason);
}

/** kvm_prepare_memory_fault_exit: kvm_run's memory_fault for the page at gpa. */
export function prepareMemoryFaultExit(v: Vcpu, gpa: u64, flags: u64): void {
  setExit(v, KVM_EXIT_MEMORY_FAULT);
  store<u64>(v.kvmRun + KVM_RUN_MEMORY_FAULT_FLAGS, flags);
  store<u64>(v.kvmRun + KVM_RUN_MEMORY_FAULT_GPA, gpa);
  store<u64>(v.kvmRun + KVM_RUN_MEMORY_FAULT_SIZE, <u64>PAGE_SIZE);
}

/** Turns the exit the memory layer recorded into kvm_run; returns the ioctl result. */
function reportMemExit(p: usize): i32 {
  const v = vcpuOf(p);
  const run = v.kvmRun;
  if (v.exitKind == EXITK_MMIO) {
    setExit(v, KVM_EXIT_MMIO);
    store<u64>(run + KVM_RUN_MMIO_PHYS_ADDR, v.exitGpa);
    store<u64>(run + KVM_RUN_MMIO_DATA, v.exitData);
    store<u32>(run + KVM_RUN_MMIO_LEN, <u32>v.exitLen);
    store<u8>(run + KVM_RUN_MMIO_IS_WRITE, <u8>v.exitIsWrite);
    v.pending = PENDING_MMIO;
    return 0;
  }
  if (v.exitKind == EXITK_MEMORY_FAULT) {
    // KVM_RUN fails (EFAULT, or the guest_memfd lookup's errno) and fills memory_fault.
    prepareMemoryFaultExit(v, v.exitGpa, v.exitData);
    v.exitKind = EXITK_NONE;
    dropFragments(p);
    return -v.exitLen;
  }
  if (v.exitKind == EXITK_FAIL) {
    // kvm_riscv_vcpu_exit: exit_reason is KVM_EXIT_UNKNOWN and KVM_RUN returns
    // the handler's error; pc stays at the instruction, which faults again.
    setExit(v, KVM_EXIT_UNKNOWN);
    v.exitKind = EXITK_NONE;
    dropFragments(p);
    return fail(<i32>v.exitData, v.exitLen);
  }
  if (v.exitKind == EXITK_RING_FULL) {
    // The store that filled the ring is not done; it re-executes once there is room.
    v.exitKind = EXITK_NONE;
    dropFragments(p);
    setExit(v, KVM_EXIT_DIRTY_RING_FULL);
    return 0;
  }
  // EXITK_RETRY: the access met a memslot in flux. The kernel's vCPU re-enters
  // the guest and faults again until the update is done; where the update is
  // what this thread is running (a debug reader hook inside it), it would wait
  // for itself, so the vCPU returns as if interrupted and the access
  // re-executes next time.
  v.exitKind = EXITK_NONE;
  setExit(v, KVM_EXIT_INTR);
  return -EINTR;
}

/** Threads build: may an EXITK_RETRY re-enter the guest (true unless this thread holds the update)? */
function retryInPlace(p: usize): bool {
  if (!WEBKVM_THREADS) return false;
  return vcpuOf(p).exitKind == EXITK_RETRY && vmOf(vcpuOf(p).vm).slotsLockOwner != threadId;
}

/** KVM_RUN. In the threads build it holds kvm->srcu for reading except in guest mode (kvm/requests.ts). */
export function kvmRun(p: usize): i32 {
  // kvm_vcpu_ioctl's KVM_RUN: the thread running the vCPU may change from run to run.
  vcpuOf(p).pid = threadId;
  if (!WEBKVM_THREADS) return kvmRunLoaded(p);
  vcpuLoad(p);
  setRunningVcpu(p);
  vcpuSrcuReadLock(p);
  const r = kvmRunLoaded(p);
  guestExit();
  vcpuSrcuReadUnlock(p);
  setRunningVcpu(0);
  return r;
}

function kvmRunLoaded(p: usize): i32 {
  const v = vcpuOf(p);
  vcpuLoad(p);
  // A thread that dies here holds what a run holds (tests of threadGone's release).
  if (WEBKVM_DEBUG && injected(INJECT_RUN_ABORT) != 0) abort("injected: KVM_RUN trapped");
  if (!mmuEnter(p)) return fail(CHECK_ALLOC_SLOT, ENOMEM);
  const run = v.kvmRun;
  if (v.pending == PENDING_MMIO) {
    completeMmio(p, load<u64>(run + KVM_RUN_MMIO_DATA));
  } else if (v.pending == PENDING_SBI) {
    setX(10, load<u64>(run + KVM_RUN_SBI_RET));
    setX(11, load<u64>(run + KVM_RUN_SBI_RET + 8));
    cpuCompleteEcall();
  }
  v.pending = PENDING_NONE;
  // A signal that arrived while the vCPU was not running (kick) ends this run at once.
  if (load<u8>(run + KVM_RUN_IMMEDIATE_EXIT) != 0 || takeRequests(p, REQ_SIGNAL) != 0) {
    setExit(v, KVM_EXIT_INTR);
    return -EINTR;
  }
  // kvm_dirty_ring_check_request: a still soft-full ring exits before the guest runs.
  if (ringCheckRequest(p)) {
    setExit(v, KVM_EXIT_DIRTY_RING_FULL);
    return 0;
  }
  let left = v.budget;
  if (v.fragCount != 0) {
    // Re-execute the instruction that exited, answering its finished MMIO parts
    // from the fragments; once it is done (retired or trapped) they are spent.
    v.fragNext = 0;
    const r = cpuRun(1);
    left--;
    if (r == EXIT_MEM && v.exitKind == EXITK_MMIO) return reportMemExit(p);
    dropFragments(p);
    if (r == EXIT_MEM && !retryInPlace(p)) return reportMemExit(p);
    if (r == EXIT_MEM) v.exitKind = EXITK_NONE;
  }
  while (true) {
    if (vmOf(v.vm).closedInUse != 0) return 0; // host code closed the VM: stop here (kvm/ioctl.ts reports it)
    const chunk = left < CHUNK ? <i32>left : <i32>CHUNK;
    if (chunk <= 0) {
      setExit(v, KVM_EXIT_INTR);
      return -EINTR;
    }
    const before = getInstret();
    const r = cpuRun(chunk);
    const used = getInstret() - before;
    left = left > used ? left - used : 0;
    if (r == EXIT_BUDGET) {
      if (used == 0) left = left > <u64>chunk ? left - <u64>chunk : 0; // trapping in place still spends budget
      continue;
    }
    if (r == EXIT_MEM) {
      if (!retryInPlace(p)) return reportMemExit(p);
      // RET_PF_RETRY: back into the guest, which faults again (the pending
      // request, or the memslot in flux, is seen on the way).
      v.exitKind = EXITK_NONE;
      takeRequests(p, KVM_REQ_TLB_FLUSH);
      continue;
    }
    if (r == EXIT_SBI) {
      setExit(v, KVM_EXIT_RISCV_SBI);
      store<u64>(run + KVM_RUN_SBI_EXTENSION, getX(17));
      store<u64>(run + KVM_RUN_SBI_FUNCTION, getX(16));
      for (let i = 0; i < 6; i++) store<u64>(run + KVM_RUN_SBI_ARGS + (<usize>i << 3), getX(10 + i));
      store<u64>(run + KVM_RUN_SBI_RET, 0);
      store<u64>(run + KVM_RUN_SBI_RET + 8, 0);
      v.pending = PENDING_SBI;
      return 0;
    }
    if (r == EXIT_WFI) {
      // kvm_vcpu_halt: sleep until the timer fires (time jumps there), or
      // report a halt nothing can end.
      const deadline = timerDeadline();
      if (deadline != <u64>-1) {
        if (timeNow() < deadline) setTime(deadline);
        continue;
      }
      setExit(v, KVM_EXIT_HLT);
      return 0;
    }
    // EXIT_INTR: a signal.
    setExit(v, KVM_EXIT_INTR);
    return -EINTR;
  }
  return 0;
}

// ---- KVM_GET_ONE_REG / KVM_SET_ONE_REG (arch/riscv uapi) ----
const KVM_REG_RISCV: u64 = 0x8000000000000000;
const KVM_REG_ARCH_MASK: u64 = 0xff00000000000000;
const KVM_REG_SIZE_MASK: u64 = 0x00f0000000000000;
const KVM_REG_SIZE_U64: u64 = 0x0030000000000000;
const TYPE_CORE: u64 = 2, TYPE_CSR: u64 = 3, TYPE_TIMER: u64 = 4;
/** struct kvm_riscv_core: pc, x1..x31, mode. */
export const CORE_REGS: i32 = 33;
/** struct kvm_riscv_timer: frequency, time, compare, state. */
export const TIMER_REGS: i32 = 4;
const KVM_RISCV_TIMER_STATE_ON: u64 = 1;

/** struct kvm_riscv_csr order -> CSR number; reads and writes go through the CPU's own CSR rules. */
const CSR_NUMBERS: StaticArray<i32> = [CSR_SSTATUS, CSR_SIE, CSR_STVEC, CSR_SSCRATCH, CSR_SEPC, CSR_SCAUSE, CSR_STVAL,
  CSR_SIP, CSR_SATP, CSR_SCOUNTEREN, CSR_SENVCFG];

/** The general CSRs ONE_REG offers (this vCPU has no Ssaia or Smstateen CSRs). */
export function csrRegs(): i32 {
  return CSR_NUMBERS.length;
}

/** The value of register id, or sets regErr. */
let regErr: i32 = 0;
function getReg(id: u64): u64 {
  const type = (id >> 24) & 0xff;
  const index = <i32>(id & 0xffffff);
  if (type == TYPE_CORE) {
    if (index == 0) return getPc();
    if (index < CORE_REGS - 1) return getX(index);
    if (index == CORE_REGS - 1) return getPriv() == PRIV_S ? 1 : 0;
  } else if (type == TYPE_CSR) {
    if (index < CSR_NUMBERS.length) return csrRead(CSR_NUMBERS[index], PRIV_S);
  } else if (type == TYPE_TIMER) {
    if (index == 0) return TIMEBASE_HZ;
    if (index == 1) return timeNow();
    if (index == 2) return timerDeadline();
    if (index == 3) return timerDeadline() != <u64>-1 ? 1 : 0;
  }
  regErr = ENOENT;
  return 0;
}

function setReg(p: usize, id: u64, val: u64): void {
  const type = (id >> 24) & 0xff;
  const index = <i32>(id & 0xffffff);
  if (type == TYPE_CORE) {
    if (index == 0) {
      // The host moved pc: whatever the last instruction had in flight is abandoned.
      setPc(val);
      dropFragments(p);
      vcpuOf(p).pending = PENDING_NONE;
      return;
    }
    if (index < 32) { setX(index, val); return; }
    if (index == 32) {
      if (val > 1) { regErr = EINVAL; return; }
      setPriv(val == 1 ? PRIV_S : PRIV_U);
      mmuModeChanged();
      return;
    }
  } else if (type == TYPE_CSR) {
    if (index < CSR_NUMBERS.length) {
      const csr = CSR_NUMBERS[index];
      if (csr == CSR_SATP && !satpModeSupported(val)) { regErr = EINVAL; return; }
      // csrWrite applies the WARL rules, flushes on satp and tracks the MMU mode.
      if (!mmuEnter(p)) { regErr = ENOMEM; return; }
      csrWrite(csr, val);
      return;
    }
  } else if (type == TYPE_TIMER) {
    // kvm_riscv_vcpu_set_reg_timer: the frequency is the host's, so only it may be written back.
    if (index == 0) { if (val != TIMEBASE_HZ) regErr = EINVAL; return; }
    if (index == 1) { setTime(val); return; }
    if (index == 2) { setTimerDeadline(val); return; }
    // state: the timer is Sstc's (stimecmp), so ON is kvm_riscv_vcpu_update_vstimecmp, whose write the next
    // vcpu_load replaces with compare (no lasting effect), and anything else is kvm_riscv_vcpu_timer_cancel,
    // which refuses a timer that is not set, as an Sstc timer never is outside KVM_RUN.
    if (index == 3) { if (val != KVM_RISCV_TIMER_STATE_ON) regErr = EINVAL; return; }
  }
  regErr = ENOENT;
}

/** copy_to_user / copy_from_user of one u64 (or its low `size` bytes) at a user address (any alignment). */
let userWord: u64 = 0;
function copyUser(addr: u64, toUser: bool, size: i32 = 8): bool {
  let w = userWord;
  for (let i = 0; i < size; i++) {
    const lin = hvaToLinear(addr + <u64>i, toUser);
    if (lin == 0) return false;
    if (toUser) store<u8>(lin, <u8>(w >> (<u64>i << 3)));
    else w = (w & ~(<u64>0xff << (<u64>i << 3))) | (<u64>load<u8>(lin) << (<u64>i << 3));
  }
  userWord = w;
  return true;
}

/** KVM_GET_ONE_REG (set = false) / KVM_SET_ONE_REG: struct kvm_one_reg {id, addr} in ioctlBuf(). */
export function oneReg(p: usize, set: bool): i32 {
  const id = load<u64>(ioctlBuf());
  const addr = load<u64>(ioctlBuf(), 8);
  if ((id & KVM_REG_ARCH_MASK) != KVM_REG_RISCV) return fail(CHECK_ONE_REG, EINVAL);
  const type = (id >> 24) & 0xff;
  // The FP types check their own sizes (u32 and u64 registers).
  if (type == KVM_REG_RISCV_FP_F || type == KVM_REG_RISCV_FP_D) return oneRegFp(p, id, type, addr, set);
  if ((id & KVM_REG_SIZE_MASK) != KVM_REG_SIZE_U64) return fail(CHECK_ONE_REG, EINVAL);
  vcpuLoad(p);
  regErr = 0;
  if (set) {
    if (!copyUser(addr, false)) return fail(CHECK_HVA_FAULT, EFAULT);
    setReg(p, id, userWord);
  } else {
    userWord = getReg(id);
    if (regErr == 0 && !copyUser(addr, true)) return fail(CHECK_HVA_FAULT, EFAULT);
  }
  return regErr != 0 ? fail(CHECK_ONE_REG, regErr) : 0;
}

function oneRegFp(p: usize, id: u64, type: u64, addr: u64, set: bool): i32 {
  vcpuLoad(p);
  const at = fpRegAddr(id, type);
  if (at == 0) return fail(CHECK_ONE_REG, FP_REG_ERRNO);
  const size = fpRegSize;
  if (set) {
    if (!copyUser(addr, false, size)) return fail(CHECK_HVA_FAULT, EFAULT);
    if (size == 4) store<u32>(at, <u32>userWord); else store<u64>(at, userWord);
  } else {
    userWord = size == 4 ? <u64>load<u32>(at) : load<u64>(at);
    if (!copyUser(addr, true, size)) return fail(CHECK_HVA_FAULT, EFAULT);
  }
  return 0;
}

export function vcpuInstret(p: usize): u64 {
  if (!WEBKVM_THREADS) {
    vcpuLoad(p);
    return getInstret();
  }
  // Another thread may be running the vCPU: read its state as an ioctl would (vcpu->mutex).
  vcpuMutexLock(p);
  vcpuLoad(p);
  const n = getInstret();
  vcpuPut(p);
  vcpuMutexUnlock(p);
  return n;
}
