// struct kvm: the per-VM state the memory subsystem needs, and the list of live
// VMs that MMU-notifier events are delivered to.

import { kzalloc, kfree } from "../kalloc";
import { allocSet, freeSet, setOf, gfnSlotAt, gfnCap, gfnNext } from "../memslots/set";
import { freeVcpu, dropLastUsedWindows } from "./vcpu";
import { KVM_X86_QUIRK_SLOT_ZAP_ALL } from "../mmu/mmu";
import { Gpc } from "../pfncache";
import { freeMemslot } from "../memslots/update";
import { freeMemAttributes } from "../gmem/attributes";

@unmanaged export class Vm {
  nrMemslotPages: u64;
  nMaxMmuPages: u64;
  mmuInvalidateSeq: u64;
  mmuInvalidateRangeStart: u64;
  mmuInvalidateRangeEnd: u64;
  /** The active set's generation per address space, mirrored here for the hot lookups. */
  liveGen0: u64;
  liveGen1: u64;
  /** Highest settled generation seen per address space (debug monotonicity check). */
  genSeen0: u64;
  genSeen1: u64;
  type: u32;
  nrAs: u32;
  nrMemslotsDirtyLogging: u32;
  manualDirtyLogProtect: u32;
  dirtyRingSize: u32;
  createdVcpus: u32;
  nrMmuPagesSet: u32;
  externalTrackers: u32;
  mnActiveInvalidateCount: u32;
  mmuInvalidateInProgress: u32;
  /** slots_lock is held: a memslot update is running. */
  updating: u32;
  /** Bit as = which of the two sets of that address space is active. */
  activeMask: u32;
  /** Enabled x86 quirks (KVM_CAP_DISABLE_QUIRKS2 clears them). */
  quirks: u32;
  /** Write-track counters exist for every slot (mmu/page_track.ts). */
  writeTrackingEnabled: u32;
  /** Active gfn->pfn caches (pfncache.ts), a singly linked list. */
  gpcList: usize;
  set00: usize;
  set01: usize;
  set10: usize;
  set11: usize;
  vcpus: usize;
  fd: i32;
  /** Identity for guest_memfd ownership: unique per VM, never reused (a file may outlive its VM). */
  serial: u32;
  /** Memory attributes (gmem/attributes.ts), 0 while every gfn is shared. */
  memAttrs: usize;
  /** Ioctls on its fds and its vCPUs' in flight (host code may run inside one: page-track callbacks). */
  ioctlsInFlight: u32;
  /** Its fds were closed during such an ioctl: destroyed when the last one returns (kvm/ioctl.ts). */
  closedInUse: u32;
  /** KVM_CAP_HALT_POLL: the VM's own halt-polling limit, once set (override). */
  maxHaltPollNs: u32;
  overrideHaltPollNs: u32;
}

export const VM_BYTES: usize = offsetof<Vm>();
export const KVM_MAX_VCPUS: u32 = 4096;      // [x86]
export const KVM_MAX_VCPU_IDS: u32 = 16384;  // [x86] KVM_MAX_VCPUS * KVM_VCPU_ID_RATIO

/** kvm_get_vcpu: the i-th created vCPU (i < createdVcpus). */
@inline export function vcpuAt(vm: Vm, i: u32): usize {
  return <usize>load<u32>(vm.vcpus + (<usize>i << 2));
}

@inline export function vmOf(p: usize): Vm {
  return changetype<Vm>(p);
}

/** __memslots[as][which] */
@inline export function memslotSet(vm: Vm, as: u32, which: u32): usize {
  return <usize>load<u32>(changetype<usize>(vm) + offsetof<Vm>("set00") + (<usize>(as * 2 + which) << 2));
}

@inline export function activeSet(vm: Vm, as: u32): usize {
  return memslotSet(vm, as, (vm.activeMask >> as) & 1);
}

@inline export function inactiveSet(vm: Vm, as: u32): usize {
  return memslotSet(vm, as, ((vm.activeMask >> as) & 1) ^ 1);
}

/** The active set's generation of an address space (what per-vCPU caches are tagged with). */
@inline export function liveGeneration(vm: Vm, as: u32): u64 {
  return as == 0 ? vm.liveGen0 : vm.liveGen1;
}

export function setLiveGeneration(vm: Vm, as: u32, gen: u64): void {
  if (as == 0) vm.liveGen0 = gen; else vm.liveGen1 = gen;
  dropLastUsedWindows(vm, as);
}

// ---- the list of live VMs ----
let vmList: usize = 0;
let vmListLen: i32 = 0;
let vmListCap: i32 = 0;
let vmSerials: u32 = 0;

export function vmCount(): i32 {
  return vmListLen;
}

export function vmAt(i: i32): usize {
  return <usize>load<u32>(vmList + (<usize>i << 2));
}

/** kvm_create_vm: nrAs address spaces, AS i starting at generation i. Returns 0 on ENOMEM. */
export function createVm(type: u32, nrAs: u32): usize {
  if (vmListLen == vmListCap) {
    const cap = vmListCap == 0 ? 8 : vmListCap * 2;
    const l = kzalloc(<usize>cap << 2);
    if (l == 0) return 0;
    if (vmList != 0) { memory.copy(l, vmList, <usize>vmListLen << 2); kfree(vmList); }
    vmList = l;
    vmListCap = cap;
  }
  const p = kzalloc(VM_BYTES);
  if (p == 0) return 0;
  const vm = vmOf(p);
  vm.type = type;
  vm.serial = ++vmSerials;
  vm.nrAs = nrAs;
  vm.nMaxMmuPages = 64;
  vm.quirks = KVM_X86_QUIRK_SLOT_ZAP_ALL;
  vm.vcpus = kzalloc(<usize>KVM_MAX_VCPUS << 2);
  let ok = vm.vcpus != 0;
  for (let as: u32 = 0; as < nrAs && ok; as++) {
    for (let w: u32 = 0; w < 2; w++) {
      const s = allocSet(<u64>as);
      if (s == 0) { ok = false; break; }
      store<u32>(p + offsetof<Vm>("set00") + (<usize>(as * 2 + w) << 2), <u32>s);
    }
  }
  vm.genSeen0 = 0;
  vm.genSeen1 = 1;
  vm.liveGen0 = 0;
  vm.liveGen1 = 1;
  if (!ok) { destroyVm(p, false); return 0; }
  store<u32>(vmList + (<usize>vmListLen << 2), <u32>p);
  vmListLen++;
  return p;
}

/** kvm_destroy_vm / kvm_free_memslots: frees every slot without generation changes. */
export function destroyVm(p: usize, listed: bool = true): void {
  const vm = vmOf(p);
  for (let as: u32 = 0; as < vm.nrAs; as++) {
    const a = memslotSet(vm, as, 0), b = memslotSet(vm, as, 1);
    if (a == 0 || b == 0) { if (a) freeSet(a); if (b) freeSet(b); continue; }
    // Outside an update both sets hold the same objects: free them once.
    const s = setOf(a);
    for (let i = gfnNext(s, 0); i < gfnCap(s); i = gfnNext(s, i + 1)) freeMemslot(gfnSlotAt(s, i));
    freeSet(a);
    freeSet(b);
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
  if (listed) {
    for (let i = 0; i < vmListLen; i++) {
      if (vmAt(i) == p) {
        memory.copy(vmList + (<usize>i << 2), vmList + (<usize>(i + 1) << 2), <usize>(vmListLen - i - 1) << 2);
        vmListLen--;
        break;
      }
    }
  }
  kfree(p, VM_BYTES);
}
