// The threads build's dirty-log race surface (test/threads-dirty.test.ts): a
// vCPU's write logged from any thread, the way the fault path logs it (the
// levers that take the dirty log's atomics away are debug/dirty_levers.ts).

import { vmOf, vcpuOf, activeSet } from "../kvm/kvm_host";
import { vcpuFromFd } from "../kvm/ioctl";
import { gfnToMemslotInSet } from "../memslots/search";
import { markPageDirtyInSlot } from "../dirty/mark";
import { ringCheckRequest } from "../dirty/ring";

/**
 * A guest write to gfn (address space 0) logged on behalf of the vCPU behind
 * fd, as its write fault logs it (mark_page_dirty_in_slot with the running
 * vCPU): 1 logged (or the slot does not log), 0 not attempted because the
 * vCPU would not enter the guest (its ring is soft-full: the run would exit
 * with KVM_EXIT_DIRTY_RING_FULL), -1 no slot holds gfn, -2 fd is no vCPU's.
 */
export function debugVcpuMarkPageDirty(fd: i32, gfn: u64): i32 {
  const vcpu = vcpuFromFd(fd);
  if (vcpu == 0) return -2;
  const vm = vmOf(vcpuOf(vcpu).vm);
  if (ringCheckRequest(vcpu)) return 0;
  const slot = gfnToMemslotInSet(activeSet(vm, 0), gfn);
  if (slot == 0) return -1;
  markPageDirtyInSlot(vm, slot, gfn, vcpu);
  return 1;
}
