// kvm_vm_ioctl_create_vcpu and the vCPU's destruction; the struct is kvm/kvm_host.ts.

import { Vm, Vcpu, vcpuOf, vcpuAt, KVM_MAX_VCPUS, KVM_MAX_VCPU_IDS } from "./kvm_host";
import { kzalloc, kfree } from "../kalloc";
import { vcpuArchCreate, vcpuForget } from "./vcpu_run";
import { ringAllocVcpu } from "../dirty/ring";
import { fail, EINVAL, EEXIST, ENOMEM, CHECK_VCPU_ID, CHECK_VCPU_EXISTS, CHECK_VCPU_LIMIT, CHECK_ALLOC_SLOT } from "../errno";

/** kvm_vm_ioctl_create_vcpu: the vCPU object, or -errno. */
export function createVcpu(vm: Vm, id: u64): i64 {
  if (id >= <u64>KVM_MAX_VCPU_IDS) return fail(CHECK_VCPU_ID, EINVAL);
  if (vm.createdVcpus >= KVM_MAX_VCPUS) return fail(CHECK_VCPU_LIMIT, EINVAL);
  for (let i: u32 = 0; i < vm.createdVcpus; i++) {
    const v = vcpuAt(vm, i);
    if (<u64>vcpuOf(v).vcpuId == id) return fail(CHECK_VCPU_EXISTS, EEXIST);
  }
  const p = kzalloc(offsetof<Vcpu>());
  if (p == 0) return fail(CHECK_ALLOC_SLOT, ENOMEM);
  const v = vcpuOf(p);
  v.vm = changetype<usize>(vm);
  v.vcpuId = <u32>id;
  if (!vcpuArchCreate(p) || !ringAllocVcpu(vm, p)) {
    freeVcpu(p);
    return fail(CHECK_ALLOC_SLOT, ENOMEM);
  }
  store<u32>(vm.vcpus + (<usize>vm.createdVcpus << 2), <u32>p);
  // Published after its entry: a flush on another thread walks 0..createdVcpus.
  if (WEBKVM_THREADS) atomic.store<u32>(changetype<usize>(vm) + offsetof<Vm>("createdVcpus"), vm.createdVcpus + 1);
  else vm.createdVcpus++;
  return <i64>p;
}

export function freeVcpu(p: usize): void {
  const v = vcpuOf(p);
  vcpuForget(p);
  kfree(v.ring);
  kfree(v.cpuState);
  kfree(v.kvmRun);
  kfree(v.sptTables);
  kfree(p);
}
