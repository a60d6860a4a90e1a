// kvm_create_vm / kvm_destroy_vm: a VM's birth and death. Destruction frees
// everything a VM owns (slots, vCPUs, pfn caches, attributes), so this file
// sits above all of them; the struct itself is kvm/kvm_host.ts.

import { kzalloc, kfree } from "../kalloc";
import { Vm, VM_BYTES, KVM_MAX_VCPUS, vmOf, vcpuAt, memslotSet, vmListReserve, vmListAdd, vmListRemove } from "./kvm_host";
import { allocSet, freeSet, setOf, gfnSlotAt, gfnCap, gfnNext } from "../memslots/set";
import { freeVcpu } from "./vcpu";
import { KVM_X86_QUIRK_SLOT_ZAP_ALL } from "../mmu/mmu";
import { Gpc } from "../pfncache";
import { freeMemslot } from "./set_memslot";
import { freeMemAttributes } from "../gmem/attributes";
import { P } from "../threads";


/** kvm_create_vm: nrAs address spaces, AS i starting at generation i. Returns 0 on ENOMEM. */
export function createVm(type: u32, nrAs: u32): usize {
  if (!vmListReserve()) return 0;
  const p = kzalloc(VM_BYTES);
  if (p == 0) return 0;
  const vm = vmOf(p);
  vm.type = type;
  vm.serial = ++P.vmSerials;
  vm.nrAs = nrAs;
  vm.nMaxMmuPages = 64;
  vm.quirks = KVM_X86_QUIRK_SLOT_ZAP_ALL;
  vm.vcpus = kzalloc(<usize>KVM_MAX_VCPUS << 2);
  let ok = vm.vcpus != 0;
  for (let as: u32 = 0; as < nrAs && ok; as++) {
    for (let w: u32 = 0; w < 2; w++) {
      // The second set shares the first's id table (set.ts).
      const s = allocSet(<u64>as, w == 0 ? 0 : memslotSet(vm, as, 0));
      if (s == 0) { ok = false; break; }
      store<u32>(p + offsetof<Vm>("set00") + (<usize>(as * 2 + w) << 2), <u32>s);
    }
  }
  vm.genSeen0 = 0;
  vm.genSeen1 = 1;
  vm.liveGen0 = 0;
  vm.liveGen1 = 1;
  if (!ok) { destroyVm(p, false); return 0; }
  vmListAdd(p);
  return p;
}

/** kvm_destroy_vm / kvm_free_memslots: frees every slot without generation changes. */
export function destroyVm(p: usize, listed: bool = true): void {
  const vm = vmOf(p);
  for (let as: u32 = 0; as < vm.nrAs; as++) {
    const a = memslotSet(vm, as, 0), b = memslotSet(vm, as, 1);
    // b (allocated second) is never there without a, whose id table it uses.
    if (a == 0 || b == 0) { if (a) freeSet(a, true); continue; }
    // Outside an update both sets hold the same objects: free them once.
    const s = setOf(a);
    for (let i = gfnNext(s, 0); i < gfnCap(s); i = gfnNext(s, i + 1)) freeMemslot(gfnSlotAt(s, i));
    freeSet(b, false);
    freeSet(a, true);
  }
  // pfn caches die with their VM.
  for (let g = vm.gpcList; g != 0;) {
    const next = load<u32>(g + offsetof<Gpc>("next"));
    kfree(g);
    g = <usize>next;
  }
  freeMemAttributes(vm);
  if (vm.vcpus != 0) {
    for (let i: u32 = 0; i < KVM_MAX_VCPUS; i++) {
      const v = vcpuAt(vm, i);
      if (v != 0) freeVcpu(v);
    }
    kfree(vm.vcpus);
  }
  if (listed) vmListRemove(p);
  kfree(p, VM_BYTES);
}
