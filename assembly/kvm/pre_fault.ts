// KVM_PRE_FAULT_MEMORY (kvm_vcpu_pre_fault_memory, then x86's
// kvm_arch_vcpu_pre_fault_memory / kvm_tdp_map_page per page): maps a gpa
// range ahead of the guest's accesses, as read faults would.
//
// x86 does it only with two-dimensional paging, where the vCPU's root is
// indexed by gpa; here that is the bare-mode table (mode key 0), whose entry
// for a gpa is what a guest access with translation off finds. Without TDP
// (config.preFaultMemory false, KVM_CAP_PRE_FAULT_MEMORY 0) the ioctl still
// exists and fails with EOPNOTSUPP after the generic checks, as on Linux.
//
// Progress is page by page, reported by moving gpa/size in the caller's
// struct (copied back whatever the result); a failure after some progress
// is 0, so the caller retries from where it stopped.

import { vmOf, Vcpu, vcpuOf, vcpuGfnToMemslot } from "./kvm_host";
import { vcpuLoad, prepareMemoryFaultExit } from "./vcpu_run";
import { preFaultMemory, KVM_X86_SNP_VM, KVM_X86_TDX_VM } from "./config";
import { slotOf, KVM_MEMSLOT_INVALID } from "../memslots/slot";
import { cpuTakeSignal } from "../cpu/execute";
import { takeRequests, REQ_SIGNAL } from "./requests";
import { vcpuTables, markSpteUsed } from "../mmu/mmu";
import { spteFor } from "../mmu/spte";
import { faultIn, ACC_READ, FAULT_MAPPED, FAULT_MMIO, FAULT_RETRY, FAULT_EFAULT } from "../mmu/fault";
import { gmemExitFlags, gmemExitErrno } from "../gmem/fault";
import { checkMmuInvariants } from "../debug/invariants";
import { ioctlBuf, PAGE_MASK, PAGE_SHIFT, PAGE_SIZE } from "../layout";
import { fail, clearFailedCheck, EINVAL, EFAULT, EINTR, EAGAIN, EIO, ENOENT, ENOMEM, EOPNOTSUPP, CHECK_COPY_FROM_USER,
  CHECK_PRE_FAULT_FLAGS, CHECK_PRE_FAULT_RANGE, CHECK_PRE_FAULT_VM, CHECK_PRE_FAULT_TDP, CHECK_PRE_FAULT_MAP,
  CHECK_NOMEM, CHECK_VCPU_RUN } from "../errno";

/** struct kvm_pre_fault_memory: gpa, size, flags, padding[5] (not checked). */
export const PRE_FAULT_BYTES: i32 = 64;
const PF_GPA: usize = 0;
const PF_SIZE: usize = 8;
const PF_FLAGS: usize = 16;

/**
 * Pages one call maps at most before it returns as if a signal had come (the
 * ABI's partial progress: 0 with the rest of the range left), so a huge range
 * never holds the caller for long.
 */
const MAX_PAGES_PER_CALL: u32 = 1 << 18;

/** The ioctl, after the host copied the struct into ioctlBuf() (argLen bytes). */
export function preFaultMemoryIoctl(p: usize, argLen: i32): i32 {
  if (argLen < PRE_FAULT_BYTES) return fail(CHECK_COPY_FROM_USER, EFAULT);
  const flags = load<u64>(ioctlBuf() + PF_FLAGS);
  let gpa = load<u64>(ioctlBuf() + PF_GPA);
  let size = load<u64>(ioctlBuf() + PF_SIZE);
  if (flags != 0) return fail(CHECK_PRE_FAULT_FLAGS, EINVAL);
  if ((gpa & PAGE_MASK) != 0 || (size & PAGE_MASK) != 0 || gpa + size <= gpa) return fail(CHECK_PRE_FAULT_RANGE, EINVAL);

  vcpuLoad(p);
  const v = vcpuOf(p);
  const full = size;
  let r: i32 = 0;
  let budget = MAX_PAGES_PER_CALL;
  do {
    // signal_pending: a kick from another thread (threads build) or the host signal of this one.
    if (cpuTakeSignal() || takeRequests(p, REQ_SIGNAL) != 0 || budget-- == 0) {
      r = fail(CHECK_VCPU_RUN, EINTR);
      break;
    }
    r = archPreFault(v, p, gpa);
    if (r < 0) break;
    size -= <u64>r;
    gpa += <u64>r;
  } while (size != 0);
  store<u64>(ioctlBuf() + PF_GPA, gpa);
  store<u64>(ioctlBuf() + PF_SIZE, size);
  if (WEBKVM_DEBUG) checkMmuInvariants(vmOf(v.vm));
  // Success if at least one page was mapped.
  if (full == size) return r;
  clearFailedCheck();
  return 0;
}

/** kvm_arch_vcpu_pre_fault_memory for the page at gpa: bytes mapped (PAGE_SIZE) or -errno. */
function archPreFault(v: Vcpu, p: usize, gpa: u64): i32 {
  const type = vmOf(v.vm).type;
  // pre_fault_allowed: SNP and TDX only after their launch is finalized, which this build does not model.
  if (type == KVM_X86_SNP_VM || type == KVM_X86_TDX_VM) return fail(CHECK_PRE_FAULT_VM, EOPNOTSUPP);
  const tables = vcpuTables(p); // kvm_mmu_reload
  if (tables == 0) return fail(CHECK_NOMEM, ENOMEM);
  if (!preFaultMemory) return fail(CHECK_PRE_FAULT_TDP, EOPNOTSUPP);

  // kvm_tdp_map_page: a read fault (PFERR_GUEST_FINAL_MASK) in the gpa-indexed table.
  const page = gpa & ~PAGE_MASK;
  const e = spteFor(tables, page);
  markSpteUsed(tables, e);
  const r = faultIn(p, e, page, gpa, ACC_READ);
  if (r == FAULT_MAPPED) return PAGE_SIZE;
  if (r == FAULT_MMIO) return fail(CHECK_PRE_FAULT_MAP, ENOENT); // RET_PF_EMULATE: no slot
  if (r == FAULT_EFAULT) {
    // kvm_handle_error_pfn / the guest_memfd lookup: a memory fault, as KVM_RUN would report.
    prepareMemoryFaultExit(v, page, gmemExitFlags);
    return fail(CHECK_PRE_FAULT_MAP, gmemExitErrno);
  }
  if (r == FAULT_RETRY) {
    // kvm_mmu_faultin_pfn: a slot being deleted or moved is EAGAIN for a prefetch
    // (userspace retries); otherwise an invalidation kept racing the fault, which
    // the kernel would retry until a signal came.
    const slot = vcpuGfnToMemslot(p, gpa >> PAGE_SHIFT);
    if (slot != 0 && (slotOf(slot).flags & KVM_MEMSLOT_INVALID) != 0) return fail(CHECK_PRE_FAULT_MAP, EAGAIN);
    return fail(CHECK_VCPU_RUN, EINTR);
  }
  // A read fault neither emulates nor fills the dirty ring: the kernel's WARN case.
  return fail(CHECK_PRE_FAULT_MAP, EIO);
}
