// The ioctl entry points (kvm_dev_ioctl, kvm_vm_ioctl, kvm_vcpu_ioctl). The host
// copies the caller's struct into ioctlBuf() and passes its length (argLen), or
// argLen = -1 and the scalar argument in arg. A struct shorter than the ioctl's
// size is what a faulting copy_from_user is here: EFAULT.

import { ioctlBuf, REGION_SLOT, REGION_FLAGS, REGION_GPA, REGION_SIZE, REGION_UADDR, REGION_GMEM_OFFSET,
  REGION_GMEM_FD, REGION_V1_BYTES, REGION_V2_BYTES } from "../layout";
import { createVm, destroyVm } from "./vm";
import { Vm, vmOf, vcpuAt, vcpuOf, slotsLock, slotsUnlock, vcpuMutexLock, vcpuMutexUnlock, kvmLock, kvmUnlock } from "./kvm_host";
import { createVcpu } from "./vcpu";
import { checkExtension, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, KVM_DIRTY_LOG_MANUAL_CAPS, KVM_CAP_DIRTY_LOG_RING,
  KVM_CAP_DIRTY_LOG_RING_ACQ_REL, KVM_CAP_DISABLE_QUIRKS2, KVM_CAP_HALT_POLL } from "./caps";
import { fdInstall, fdKind, fdObject, fdRelease, FD_NONE, FD_KVM, FD_VM, FD_VCPU, FD_GMEM } from "./fd";
import { gmemCreateIoctl, gmemClose } from "../gmem/file";
import { setMemAttributesIoctl } from "../gmem/attributes";
import { setMemoryRegion } from "./set_memory_region";
import { KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY, KVM_USER_MEM_SLOTS } from "../memslots/slot";
import { KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE } from "./set_memslot";
import { maxNrAddressSpaces, vmTypes, typeHasPrivateMem, memoryAttributesCompiled } from "./config";
import { inHook } from "../debug/hooks";
import { kvmRun, oneReg, vcpuPut } from "./vcpu_run";
import { getRegList } from "./vcpu_onereg";
import { interruptIoctl, KVM_INTERRUPT } from "./interrupt";
import { cpuSignal } from "../cpu/execute";
import { preFaultMemoryIoctl } from "./pre_fault";
import { getDirtyLog, clearDirtyLog } from "../dirty/log";
import { enableDirtyRing, resetDirtyRings } from "../dirty/ring";
import { KVM_X86_VALID_QUIRKS } from "../mmu/mmu";
import { fail, clearFailedCheck, CHECK_RUN_VM_CLOSED, EBADF, EFAULT, EINVAL, ENOMEM, ENOTTY, EBUSY, CHECK_COPY_FROM_USER,
  CHECK_V1_FLAGS, CHECK_USER_SLOT_ID, CHECK_UNKNOWN_IOCTL, CHECK_VM_TYPE, CHECK_BAD_FD, CHECK_ENABLE_CAP,
  CHECK_UPDATE_IN_READER, CHECK_ALLOC_SLOT } from "../errno";
import { P } from "../threads";

export const KVM_GET_API_VERSION: u32 = 0x0000ae00;
export const KVM_CREATE_VM: u32 = 0x0000ae01;
export const KVM_CHECK_EXTENSION: u32 = 0x0000ae03;
export const KVM_GET_VCPU_MMAP_SIZE: u32 = 0x0000ae04;
export const KVM_CREATE_VCPU: u32 = 0x0000ae41;
export const KVM_SET_USER_MEMORY_REGION: u32 = 0x4020ae46;
export const KVM_SET_USER_MEMORY_REGION2: u32 = 0x40a0ae49;
export const KVM_ENABLE_CAP: u32 = 0x4068aea3;
export const KVM_RUN: u32 = 0x0000ae80;
export const KVM_GET_ONE_REG: u32 = 0x4010aeab;
export const KVM_SET_ONE_REG: u32 = 0x4010aeac;
const ONE_REG_BYTES: i32 = 16;
export const KVM_GET_REG_LIST: u32 = 0xc008aeb0;
export const KVM_GET_DIRTY_LOG: u32 = 0x4010ae42;
export const KVM_CLEAR_DIRTY_LOG: u32 = 0xc018aec0;
export const KVM_RESET_DIRTY_RINGS: u32 = 0x0000aec7;
export const KVM_SET_MEMORY_ATTRIBUTES: u32 = 0x4020aed2;
export const KVM_CREATE_GUEST_MEMFD: u32 = 0xc040aed4;
export const KVM_PRE_FAULT_MEMORY: u32 = 0xc040aed5;
const KVM_API_VERSION: i32 = 12;
const KVM_VCPU_MMAP_SIZE: i32 = 3 * 4096; // [x86] run + PIO + coalesced MMIO pages
const ENABLE_CAP_BYTES: i32 = 104;

// /dev/kvm's fd: P.kvmFd in the process block (threads.ts).

/** Opens /dev/kvm for this instance. */
export function openKvm(): i32 {
  if (P.kvmFd < 0) P.kvmFd = fdInstall(FD_KVM, 0);
  return P.kvmFd;
}

/** kvm_dev_ioctl_create_vm; nrAs 0 = what the kernel gives this type. */
export function kvmCreateVm(type: u64, nrAs: u32): i32 {
  if (type >= 32 || (vmTypes & (1 << <u32>type)) == 0) return fail(CHECK_VM_TYPE, EINVAL);
  if (nrAs == 0) nrAs = typeHasPrivateMem(<u32>type) ? 1 : maxNrAddressSpaces;
  const p = createVm(<u32>type, nrAs);
  if (p == 0) return fail(CHECK_ALLOC_SLOT, ENOMEM);
  const fd = fdInstall(FD_VM, p);
  vmOf(p).fd = fd;
  return fd;
}

function devIoctl(nr: u32, argLen: i32, arg: u64): i32 {
  if (nr == KVM_GET_API_VERSION) return arg != 0 ? fail(CHECK_UNKNOWN_IOCTL, EINVAL) : KVM_API_VERSION;
  if (nr == KVM_CREATE_VM) return kvmCreateVm(arg, 0);
  if (nr == KVM_CHECK_EXTENSION) return checkExtension(0, <i64>arg);
  if (nr == KVM_GET_VCPU_MMAP_SIZE) return arg != 0 ? fail(CHECK_UNKNOWN_IOCTL, EINVAL) : KVM_VCPU_MMAP_SIZE;
  // [x86] kvm_arch_dev_ioctl: unknown /dev/kvm ioctls are EINVAL.
  return fail(CHECK_UNKNOWN_IOCTL, EINVAL);
}

/** kvm_vm_ioctl_set_memory_region after copy_from_user: the id check, then the region. */
function setUserMemoryRegion(vm: Vm, v2: bool): i32 {
  const slot = load<u32>(ioctlBuf() + REGION_SLOT);
  const flags = load<u32>(ioctlBuf() + REGION_FLAGS);
  if (!v2 && (flags & ~(KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY)) != 0) return fail(CHECK_V1_FLAGS, EINVAL);
  if ((slot & 0xffff) >= <u32>KVM_USER_MEM_SLOTS) return fail(CHECK_USER_SLOT_ID, EINVAL);
  // The v1 ioctl sees a zero-filled v2 struct: no guest_memfd fields.
  const gmemOffset = v2 ? load<u64>(ioctlBuf() + REGION_GMEM_OFFSET) : 0;
  const gmemFd = v2 ? load<i32>(ioctlBuf() + REGION_GMEM_FD) : 0;
  return setMemoryRegion(vm, slot, flags, load<u64>(ioctlBuf() + REGION_GPA), load<u64>(ioctlBuf() + REGION_SIZE),
    load<u64>(ioctlBuf() + REGION_UADDR), gmemOffset, gmemFd);
}

/** kvm_vm_ioctl_enable_cap_generic, then the x86 handler. */
function enableCap(vm: Vm): i32 {
  const cap = load<u32>(ioctlBuf());
  const flags = load<u32>(ioctlBuf(), 4);
  const arg0 = load<u64>(ioctlBuf(), 8);
  if (<i64>cap == KVM_CAP_DISABLE_QUIRKS2) {
    // [x86] kvm_vm_ioctl_enable_cap: only known quirks may be disabled.
    if (flags != 0 || (arg0 & ~<u64>KVM_X86_VALID_QUIRKS) != 0) return fail(CHECK_ENABLE_CAP, EINVAL);
    vm.quirks &= ~<u32>arg0;
    return 0;
  }
  if (<i64>cap == KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) {
    const allowed: u64 = (arg0 & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE) != 0 ? KVM_DIRTY_LOG_MANUAL_CAPS : KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE;
    if (flags != 0 || (arg0 & ~allowed) != 0) return fail(CHECK_ENABLE_CAP, EINVAL);
    vm.manualDirtyLogProtect = <u32>arg0;
    return 0;
  }
  if (<i64>cap == KVM_CAP_HALT_POLL) {
    // kvm_vm_ioctl_enable_cap_generic: the limit must fit in 32 bits. (Halts do
    // not poll here; the value is kept as the VM's, as the kernel keeps it.)
    if (flags != 0 || arg0 > 0xffffffff) return fail(CHECK_ENABLE_CAP, EINVAL);
    vm.maxHaltPollNs = <u32>arg0;
    vm.overrideHaltPollNs = 1;
    return 0;
  }
  // The ring size is passed on as a u32; flags are not checked for these caps.
  if (<i64>cap == KVM_CAP_DIRTY_LOG_RING || <i64>cap == KVM_CAP_DIRTY_LOG_RING_ACQ_REL) return enableDirtyRing(vm, <u32>arg0);
  // KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP is never accepted on x86; unknown caps
  // are EINVAL from x86's kvm_vm_ioctl_enable_cap.
  return fail(CHECK_ENABLE_CAP, EINVAL);
}

function vmIoctl(vm: Vm, nr: u32, argLen: i32, arg: u64): i32 {
  if (nr == KVM_SET_USER_MEMORY_REGION || nr == KVM_SET_USER_MEMORY_REGION2) {
    const v2 = nr == KVM_SET_USER_MEMORY_REGION2;
    const need = v2 ? REGION_V2_BYTES : REGION_V1_BYTES;
    if (argLen < need) return fail(CHECK_COPY_FROM_USER, EFAULT);
    if (inHook != 0) return fail(CHECK_UPDATE_IN_READER, EBUSY);
    // kvm_vm_ioctl_set_memory_region -> kvm_set_memory_region: under slots_lock.
    slotsLock(vm);
    vm.updating = 1;
    const r = setUserMemoryRegion(vm, v2);
    vm.updating = 0;
    slotsUnlock(vm);
    return r;
  }
  if (nr == KVM_CHECK_EXTENSION) return checkExtension(changetype<usize>(vm), <i64>arg);
  if (nr == KVM_GET_DIRTY_LOG || nr == KVM_CLEAR_DIRTY_LOG) {
    const clear = nr == KVM_CLEAR_DIRTY_LOG;
    const need = clear ? 24 : 16;
    if (argLen < need) return fail(CHECK_COPY_FROM_USER, EFAULT);
    if (inHook != 0) return fail(CHECK_UPDATE_IN_READER, EBUSY);
    // kvm_vm_ioctl_get_dirty_log / kvm_vm_ioctl_clear_dirty_log take slots_lock.
    slotsLock(vm);
    const r = clear ? clearDirtyLog(vm) : getDirtyLog(vm);
    slotsUnlock(vm);
    return r;
  }
  if (nr == KVM_RESET_DIRTY_RINGS) {
    if (inHook != 0) return fail(CHECK_UPDATE_IN_READER, EBUSY);
    // kvm_vm_ioctl_reset_dirty_pages takes slots_lock.
    slotsLock(vm);
    const r = resetDirtyRings(vm);
    slotsUnlock(vm);
    return r;
  }
  if (nr == KVM_CREATE_VCPU) {
    // kvm_vm_ioctl_create_vcpu counts and installs the vCPU under kvm->lock
    // (here the whole creation: the ring's size is read inside).
    kvmLock(vm);
    const v = createVcpu(vm, arg);
    kvmUnlock(vm);
    if (v < 0) return <i32>v;
    const fd = fdInstall(FD_VCPU, <usize>v);
    vcpuOf(<usize>v).fd = fd;
    return fd;
  }
  if (nr == KVM_ENABLE_CAP) {
    if (argLen < ENABLE_CAP_BYTES) return fail(CHECK_COPY_FROM_USER, EFAULT);
    return enableCap(vm);
  }
  if (nr == KVM_CREATE_GUEST_MEMFD) return gmemCreateIoctl(vm, argLen);
  // Without generic memory attributes the number falls through to x86: ENOTTY.
  if (nr == KVM_SET_MEMORY_ATTRIBUTES && memoryAttributesCompiled) {
    // kvm_vm_ioctl_set_mem_attributes takes slots_lock.
    slotsLock(vm);
    const r = setMemAttributesIoctl(vm, argLen);
    slotsUnlock(vm);
    return r;
  }
  // [x86] kvm_arch_vm_ioctl: unknown numbers (and those this build lacks) are ENOTTY.
  return fail(CHECK_UNKNOWN_IOCTL, ENOTTY);
}

/** ioctl(fd, nr, arg). Returns the ioctl's value or -errno. */
export function ioctl(fd: i32, nr: u32, argLen: i32, arg: u64): i32 {
  clearFailedCheck();
  const kind = fdKind(fd);
  if (kind == FD_NONE) return fail(CHECK_BAD_FD, EBADF);
  if (kind == FD_KVM) return devIoctl(nr, argLen, arg);
  if (kind == FD_VM || kind == FD_VCPU) return vmUserIoctl(fd, kind, nr, argLen, arg);
  return fail(CHECK_UNKNOWN_IOCTL, ENOTTY);
}

/** The VM whose vCPU is in KVM_RUN (runs do not nest), or 0. */
let runningVm: usize = 0;

/** An ioctl on a VM or vCPU fd, holding the VM alive until it returns (see closeFd). */
function vmUserIoctl(fd: i32, kind: i32, nr: u32, argLen: i32, arg: u64): i32 {
  const obj = fdObject(fd);
  const vm = kind == FD_VM ? vmOf(obj) : vmOf(vcpuOf(obj).vm);
  vmHold(vm);
  let r: i32;
  if (kind == FD_VM) r = vmIoctl(vm, nr, argLen, arg);
  // kvm_arch_vcpu_async_ioctl: before vcpu->mutex, so it reaches a vCPU running on another thread.
  else if (nr == KVM_INTERRUPT) r = interruptIoctl(obj, argLen);
  else if (nr != KVM_RUN) r = vcpuIoctl(obj, nr, argLen);
  else {
    const outer = runningVm;
    runningVm = changetype<usize>(vm);
    r = vcpuIoctl(obj, nr, argLen);
    runningVm = outer;
  }
  // A run cut short by the close has no exit to report; any other ioctl completed.
  if (vmRelease(vm) && kind == FD_VCPU && nr == KVM_RUN) return fail(CHECK_RUN_VM_CLOSED, EBADF);
  return r;
}

/** Keeps vm alive across a call that may run host code (see closeFd). */
export function vmHold(vm: Vm): void {
  if (WEBKVM_THREADS) atomic.add<u32>(changetype<usize>(vm) + offsetof<Vm>("ioctlsInFlight"), 1);
  else vm.ioctlsInFlight++;
}

/** Ends a vmHold; true if the VM was closed meanwhile and is now destroyed. */
export function vmRelease(vm: Vm): bool {
  const left = WEBKVM_THREADS ? atomic.sub<u32>(changetype<usize>(vm) + offsetof<Vm>("ioctlsInFlight"), 1) - 1 : --vm.ioctlsInFlight;
  if (left != 0 || vm.closedInUse == 0) return false;
  destroyVm(changetype<usize>(vm));
  return true;
}

function vcpuIoctl(vcpu: usize, nr: u32, argLen: i32): i32 {
  if (!WEBKVM_THREADS) return vcpuIoctlLocked(vcpu, nr, argLen);
  // kvm_vcpu_ioctl: under vcpu->mutex, between vcpu_load and vcpu_put.
  vcpuMutexLock(vcpu);
  const r = vcpuIoctlLocked(vcpu, nr, argLen);
  vcpuPut(vcpu);
  vcpuMutexUnlock(vcpu);
  return r;
}

function vcpuIoctlLocked(vcpu: usize, nr: u32, argLen: i32): i32 {
  if (nr == KVM_RUN) return kvmRun(vcpu);
  if (nr == KVM_GET_ONE_REG || nr == KVM_SET_ONE_REG) {
    if (argLen < ONE_REG_BYTES) return fail(CHECK_COPY_FROM_USER, EFAULT);
    return oneReg(vcpu, nr == KVM_SET_ONE_REG);
  }
  if (nr == KVM_GET_REG_LIST) return getRegList(argLen);
  // CONFIG_KVM_GENERIC_PRE_FAULT_MEMORY: x86 always has the ioctl (it is EOPNOTSUPP without TDP).
  if (nr == KVM_PRE_FAULT_MEMORY) return preFaultMemoryIoctl(vcpu, argLen);
  return fail(CHECK_UNKNOWN_IOCTL, ENOTTY);
}

/** close(fd): a VM fd's close destroys the VM. */
export function closeFd(fd: i32): i32 {
  const kind = fdKind(fd);
  if (kind == FD_NONE) return fail(CHECK_BAD_FD, EBADF);
  if (kind == FD_VM) {
    // The VM goes with its vCPUs (their fds would keep it alive in Linux; the
    // host API closes them together).
    const vm = vmOf(fdObject(fd));
    for (let i: u32 = 0; i < vm.createdVcpus; i++) fdRelease(vcpuOf(vcpuAt(vm, i)).fd);
    // Closed by host code that an ioctl on the VM called (a page-track callback):
    // the ioctl still uses the VM, as in Linux where it holds its file; the VM
    // goes when the ioctl returns (vmUserIoctl). A KVM_RUN stops at the next
    // instruction boundary rather than run the guest of a closed VM on.
    if (vm.ioctlsInFlight != 0) {
      vm.closedInUse = 1;
      if (runningVm == changetype<usize>(vm)) cpuSignal();
    } else destroyVm(fdObject(fd));
  }
  if (kind == FD_KVM) P.kvmFd = -1;
  if (kind == FD_GMEM) gmemClose(fdObject(fd)); // the file lives on while a mapping holds it
  fdRelease(fd);
  return 0;
}

/** The VM behind a VM fd, or 0. */
export function vmFromFd(fd: i32): usize {
  return fdKind(fd) == FD_VM ? fdObject(fd) : 0;
}

/** The vCPU behind a vCPU fd, or 0. */
export function vcpuFromFd(fd: i32): usize {
  return fdKind(fd) == FD_VCPU ? fdObject(fd) : 0;
}
