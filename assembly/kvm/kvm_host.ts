// kvm_host.h: the layouts of struct kvm and struct kvm_vcpu, the list of live
// VMs, and the small accessors every layer above the memslots reads (the
// active set, the live generation, the vCPU's last-used slot, gfn -> hva).
// Creating and destroying them is kvm/vm.ts and kvm/vcpu.ts, above everything
// they free.

import { kzalloc, kfree } from "../kalloc";
import { slotOf, slotGfnToHva, KVM_MEMSLOT_INVALID, KVM_MEM_READONLY } from "../memslots/slot";
import { searchMemslots } from "../memslots/search";
import { PAGE_SHIFT, PAGE_SIZE } from "../layout";
import { P, Process, threadId, mutexLock, mutexUnlock, ownedLock, ownedUnlock, ownedByMe } from "../threads";

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
  /** kvm->slots_lock's word (threads.ts's mutex: 0 free, 1 held, 2 held with sleepers). */
  slotsLock: i32;
  /** The thread holding slots_lock (threads.ts's threadId), 0 when free: lockdep's owner. */
  slotsLockOwner: i32;
  /** kvm->mmu_lock: word, owner, how deep the owner holds it (threads.ts's ownedLock; keep the three together). */
  mmuLock: i32;
  mmuLockOwner: i32;
  mmuLockDepth: i32;
  /** kvm->srcu (kvm/srcu.ts): the index readers enter on, the readers per index, sleeping synchronizers. */
  srcuIdx: u32;
  srcuReaders0: u32;
  srcuReaders1: u32;
  srcuWaiters: u32;
  /** srcu's grace-period mutex: one synchronize_srcu at a time flips the index. */
  srcuGpLock: i32;
  /** kvm->mn_invalidate_lock, and a memslot swap sleeping until mnActiveInvalidateCount is 0. */
  mnInvalidateLock: i32;
  mnSwapWaiting: u32;
  /** kvm->lock's word (threads.ts's mutex), and how many times a thread slept on it. */
  lock: i32;
  lockSleeps: u32;
  /** kvm->gpc_lock's word (threads.ts's mutex): guards gpcList (pfncache.ts). */
  gpcListLock: i32;
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
  if (WEBKVM_THREADS) return atomic.load<u64>(changetype<usize>(vm) + (as == 0 ? offsetof<Vm>("liveGen0") : offsetof<Vm>("liveGen1")));
  return as == 0 ? vm.liveGen0 : vm.liveGen1;
}

/**
 * Publishes a generation after the set it belongs to (a reader reads the
 * generation first, then the set: a new generation implies the new set). With
 * one thread the windows of the vCPUs are emptied here instead, so a hit needs
 * no generation compare; in the threads build a vCPU's window belongs to its
 * own thread and every lookup compares the generation, as the kernel does.
 */
export function setLiveGeneration(vm: Vm, as: u32, gen: u64): void {
  if (WEBKVM_THREADS) {
    atomic.store<u64>(changetype<usize>(vm) + (as == 0 ? offsetof<Vm>("liveGen0") : offsetof<Vm>("liveGen1")), gen);
    return;
  }
  if (as == 0) vm.liveGen0 = gen; else vm.liveGen1 = gen;
  dropLastUsedWindows(vm, as);
}

/** Flips which set of address space as is active (kvm_swap_active_memslots' rcu_assign_pointer). */
export function flipActiveSet(vm: Vm, as: u32): void {
  if (WEBKVM_THREADS) atomic.xor<u32>(changetype<usize>(vm) + offsetof<Vm>("activeMask"), 1 << as);
  else vm.activeMask ^= 1 << as;
}

// ---- the list of live VMs ----
// In the process block (threads.ts), seen by every thread: P.vmList, P.vmListLen, P.vmListCap.

export function vmCount(): i32 {
  return P.vmListLen;
}

export function vmAt(i: i32): usize {
  return <usize>load<u32>(P.vmList + (<usize>i << 2));
}

/** Makes room for one more VM in the list; false on ENOMEM. */
export function vmListReserve(): bool {
  if (P.vmListLen < P.vmListCap) return true;
  const cap = P.vmListCap == 0 ? 8 : P.vmListCap * 2;
  const l = kzalloc(<usize>cap << 2);
  if (l == 0) return false;
  if (P.vmList != 0) { memory.copy(l, P.vmList, <usize>P.vmListLen << 2); kfree(P.vmList); }
  P.vmList = l;
  P.vmListCap = cap;
  return true;
}

/** list_add(&kvm->vm_list): after vmListReserve. */
export function vmListAdd(p: usize): void {
  store<u32>(P.vmList + (<usize>P.vmListLen << 2), <u32>p);
  P.vmListLen++;
}

/** list_del(&kvm->vm_list) */
export function vmListRemove(p: usize): void {
  for (let i = 0; i < P.vmListLen; i++) {
    if (vmAt(i) == p) {
      memory.copy(P.vmList + (<usize>i << 2), P.vmList + (<usize>(i + 1) << 2), <usize>(P.vmListLen - i - 1) << 2);
      P.vmListLen--;
      break;
    }
  }
}

@unmanaged export class Vcpu {
  // The last-used slot cache, first in the object so a hit reads one cache
  // line: a copy of the slot's gfn window and host address (npages 0 when
  // empty; hvaNpages 0 too when the slot is INVALID, which has no hva), the
  // slot, and the generation it was filled under. A slot object never changes
  // while it is live, and a generation change of the vCPU's address space
  // empties the window at once (dropLastUsedWindows), so a hit is a range
  // check alone; the tag still decides, on a miss, whether the cache is dropped.
  lastBase: u64;
  lastNpages: u64;
  lastHvaNpages: u64;
  lastUaddr: u64;
  lastUsedSlotGen: u64;
  lastUsedSlot: usize;
  /** Per-vCPU MMIO info cache (vcpu_cache_mmio_info): gfn and the AS 0 generation it was filled under. */
  mmioGfn: u64;
  mmioGen: u64;
  /** The exit being reported (mmu/exit.ts) and the MMIO fragments of the instruction in flight. */
  exitGpa: u64;
  exitData: u64;
  frag0Gpa: u64;
  frag0Data: u64;
  frag1Gpa: u64;
  frag1Data: u64;
  /** Instructions one KVM_RUN may execute before it returns (EINTR). */
  budget: u64;
  vm: usize;
  vcpuId: u32;
  asId: u32;
  fd: i32;
  /** Saved CPU state (cpu/state.ts layout) while another vCPU is loaded. */
  cpuState: usize;
  /** struct kvm_run, mapped for the host (layout.ts KVM_RUN_*). */
  kvmRun: usize;
  /** The shadow page tables (mmu/spte.ts), allocated at the first KVM_RUN. */
  sptTables: usize;
  exitKind: i32;
  exitLen: i32;
  exitIsWrite: i32;
  frag0Len: i32;
  frag1Len: i32;
  fragCount: i32;
  fragNext: i32;
  /** The state a KVM_RUN must complete first: an MMIO read or an SBI call. */
  pending: i32;
  /** The dirty ring (dirty/ring.ts): kvm_dirty_gfn entries, free-running indices. */
  ring: usize;
  ringEntries: u32;
  ringDirtyIndex: u32;
  ringResetIndex: u32;
  /** KVM_REQ_DIRTY_RING_SOFT_FULL */
  ringSoftFullRequest: u32;
  /** vcpu->mutex (threads.ts's mutex word) and its owner: one ioctl on the vCPU at a time. */
  mutex: i32;
  mutexOwner: i32;
  /** vcpu->mode (kvm/requests.ts): guest-mode entries and exits so far, odd while in guest mode. */
  mode: u32;
  /** A flush waits on mode: its exit from guest mode wakes it. */
  modeWaiters: u32;
  /** vcpu->requests: KVM_REQ_* bits (kvm/requests.ts). */
  requests: u32;
  /** The kvm->srcu index KVM_RUN holds plus 1, or 0 (kvm/srcu.ts). */
  srcuHeld: u32;
  /** Threads build: the state block of the thread that has the vCPU loaded (0: none; for debug probes). */
  loadedIn: usize;
  /** vcpu->pid: the thread (threads.ts threadId) that issued the last KVM_RUN; 0 before the first. */
  pid: i32;
  /**
   * The external interrupt line KVM_INTERRUPT sets (irqs_pending's IRQ_VS_EXT):
   * written by any thread, copied into the CPU state (sip.SEIP) when the vCPU
   * is loaded and when a running vCPU takes KVM_REQ_IRQ (kvm/interrupt.ts).
   */
  irqLine: u32;
  /**
   * kvm_vcpu_gfn_to_memslot calls, and those the last-used slot answered
   * (index.ts vcpuStat). vcpuGfnToHva's inlined window hit is not counted: it
   * is the lookup benchmark's hot path, and no guest access takes it.
   */
  memslotLookups: u64;
  memslotCacheHits: u64;
}

@inline export function vcpuOf(p: usize): Vcpu {
  return changetype<Vcpu>(p);
}

/** x86-64 PAGE_OFFSET with 4-level paging: every hva at or above it is an error. */
export const KVM_HVA_ERR_BAD: u64 = 0xffff888000000000;
export const KVM_HVA_ERR_RO_BAD: u64 = KVM_HVA_ERR_BAD + <u64>PAGE_SIZE;

@inline export function isErrorHva(hva: u64): bool {
  return hva >= KVM_HVA_ERR_BAD;
}

/** __gfn_to_hva_many for one gfn: write lookups fail on READONLY slots. */
export function gfnToHvaMemslot(slot: usize, gfn: u64, write: bool): u64 {
  if (slot == 0 || (slotOf(slot).flags & KVM_MEMSLOT_INVALID) != 0) return KVM_HVA_ERR_BAD;
  const s = slotOf(slot);
  if (write && (s.flags & KVM_MEM_READONLY) != 0) return KVM_HVA_ERR_RO_BAD;
  return slotGfnToHva(s, gfn);
}

/**
 * kvm_vcpu_gfn_to_memslot: the per-vCPU last-used slot, valid only under the
 * generation it was filled in (slot objects are replaced on every change, so a
 * pointer from another generation may be freed or reused). Misses search the
 * set without touching its VM-wide cache.
 */
// @ts-ignore: decorator
@inline export function vcpuGfnToMemslot(p: usize, gfn: u64): usize {
  const v = vcpuOf(p);
  v.memslotLookups++;
  if (!WEBKVM_THREADS && windowHit(v, gfn - v.lastBase, v.lastNpages)) {
    v.memslotCacheHits++;
    return v.lastUsedSlot;
  }
  return vcpuGfnToMemslotSlow(p, gfn);
}

/** Is page `off` of the cached window inside its first `npages`? (Non-empty only under the live generation.) */
// @ts-ignore: decorator
@inline function windowHit(v: Vcpu, off: u64, npages: u64): bool {
  return off < npages;
}

/**
 * The live generation of address space `as` changed: empty the windows of its
 * vCPUs, so a hit never returns a slot of an older generation. The slot and
 * its tag stay; the next miss drops them (kvm_vcpu_gfn_to_memslot).
 */
export function dropLastUsedWindows(vm: Vm, as: u32): void {
  for (let i: u32 = 0; i < vm.createdVcpus; i++) {
    const v = vcpuOf(vcpuAt(vm, i));
    if (v.asId != as) continue;
    v.lastNpages = 0;
    v.lastHvaNpages = 0;
  }
}

/** A miss of the window, or a stale generation (then the cache is dropped first). */
function vcpuGfnToMemslotSlow(p: usize, gfn: u64): usize {
  const v = vcpuOf(p);
  const vm = vmOf(v.vm);
  const gen = liveGeneration(vm, v.asId);
  if (v.lastUsedSlotGen != gen) {
    setLastUsed(v, 0);
    v.lastUsedSlotGen = gen;
  }
  if (WEBKVM_THREADS && windowHit(v, gfn - v.lastBase, v.lastNpages)) {
    v.memslotCacheHits++;
    return v.lastUsedSlot;
  }
  const found = searchMemslots(activeSet(vm, v.asId), gfn);
  if (found != 0) setLastUsed(v, found);
  return found;
}

function setLastUsed(v: Vcpu, slot: usize): void {
  v.lastUsedSlot = slot;
  v.lastBase = slot == 0 ? 0 : slotOf(slot).baseGfn;
  v.lastNpages = slot == 0 ? 0 : slotOf(slot).npages;
  v.lastHvaNpages = slot == 0 || (slotOf(slot).flags & KVM_MEMSLOT_INVALID) != 0 ? 0 : v.lastNpages;
  v.lastUaddr = slot == 0 ? 0 : slotOf(slot).userspaceAddr;
}

/** kvm_vcpu_gfn_to_hva: the hva of gfn through the last-used cache; KVM_HVA_ERR_BAD without a usable slot. */
// @ts-ignore: decorator
@inline export function vcpuGfnToHva(p: usize, gfn: u64): u64 {
  const v = vcpuOf(p);
  const off = gfn - v.lastBase;
  if (!WEBKVM_THREADS && hvaWindowHit(v, off)) return hvaWindowAt(v, off);
  return vcpuGfnToHvaSlow(p, gfn);
}

/** Does page `off` of the last-used window have an hva (a valid slot, under the live generation)? */
// @ts-ignore: decorator
@inline export function hvaWindowHit(v: Vcpu, off: u64): bool {
  return windowHit(v, off, v.lastHvaNpages);
}

/** The hva of page `off` of the last-used window (when hvaWindowHit). */
// @ts-ignore: decorator
@inline export function hvaWindowAt(v: Vcpu, off: u64): u64 {
  return v.lastUaddr + (off << PAGE_SHIFT);
}

/** Out of line, so callers that inline the hit keep their registers. */
function vcpuGfnToHvaSlow(p: usize, gfn: u64): u64 {
  return gfnToHvaMemslot(vcpuGfnToMemslot(p, gfn), gfn, false);
}

// ---- kvm->slots_lock ----
// Serialises memslot updates and the dirty-log ioctls of one VM, as the kernel's
// mutex does (kvm_set_memory_region, kvm_vm_ioctl_get_dirty_log, ...). Only the
// threads build can have two callers at once: the default builds compile these
// to nothing. Readers (lookups, guest accesses) never take it.

/** mutex_lock(&kvm->slots_lock). */
export function slotsLock(vm: Vm): void {
  if (!WEBKVM_THREADS) return;
  if (P.slotsLockOff != 0) return;
  mutexLock(changetype<usize>(vm) + offsetof<Vm>("slotsLock"), changetype<usize>(P) + offsetof<Process>("slotsLockSleeps"));
  vm.slotsLockOwner = threadId;
}

/** mutex_unlock(&kvm->slots_lock). */
export function slotsUnlock(vm: Vm): void {
  if (!WEBKVM_THREADS) return;
  if (P.slotsLockOff != 0) return;
  vm.slotsLockOwner = 0;
  mutexUnlock(changetype<usize>(vm) + offsetof<Vm>("slotsLock"));
}

// ---- vcpu->mutex ----
// One ioctl on a vCPU at a time (kvm_vcpu_ioctl): an ioctl from another thread
// while the vCPU is in KVM_RUN waits for the run to return, as in Linux.

export function vcpuMutexLock(p: usize): void {
  if (!WEBKVM_THREADS) return;
  mutexLock(p + offsetof<Vcpu>("mutex"), changetype<usize>(P) + offsetof<Process>("vcpuMutexSleeps"));
  atomic.store<i32>(p + offsetof<Vcpu>("mutexOwner"), threadId);
}

export function vcpuMutexUnlock(p: usize): void {
  if (!WEBKVM_THREADS) return;
  atomic.store<i32>(p + offsetof<Vcpu>("mutexOwner"), 0);
  mutexUnlock(p + offsetof<Vcpu>("mutex"));
}

// ---- kvm->mmu_lock ----
// Serialises changes of sptes and rmaps (mmu/): the fault path installing an
// entry, zaps, write protection, the MMU-notifier window. The kernel's is a
// spinlock (rwlock on x86) that is never taken recursively; here host code can
// run inside a zap (debug reader hooks, page-track callbacks) and come back
// into the core, so the owner may take it again (depth counted).

// @ts-ignore: decorator
@inline function mmuLockWord(vm: Vm): usize { return changetype<usize>(vm) + offsetof<Vm>("mmuLock"); }

/** write_lock(&kvm->mmu_lock). */
export function mmuLock(vm: Vm): void {
  if (!WEBKVM_THREADS) return;
  if (P.mmuLockOff != 0) return;
  ownedLock(mmuLockWord(vm), changetype<usize>(P) + offsetof<Process>("mmuLockSleeps"));
}

/** write_unlock(&kvm->mmu_lock). */
export function mmuUnlock(vm: Vm): void {
  if (!WEBKVM_THREADS) return;
  if (P.mmuLockOff != 0) return;
  ownedUnlock(mmuLockWord(vm));
}

/** lockdep_assert_held(&kvm->mmu_lock). */
export function assertMmuLockHeld(vm: Vm): void {
  if (!WEBKVM_THREADS || !WEBKVM_DEBUG) return;
  if (P.mmuLockOff != 0) return;
  if (!ownedByMe(mmuLockWord(vm))) abort("lockdep: mmu_lock not held by this thread");
}

// ---- kvm->lock ----
// Serialises vCPU creation with the VM-wide settings that must be fixed before
// the first vCPU exists (the dirty ring's size), as the kernel's mutex does.
// The threads build only, like slots_lock.

/** mutex_lock(&kvm->lock). */
export function kvmLock(vm: Vm): void {
  if (!WEBKVM_THREADS) return;
  mutexLock(changetype<usize>(vm) + offsetof<Vm>("lock"), changetype<usize>(vm) + offsetof<Vm>("lockSleeps"));
}

/** mutex_unlock(&kvm->lock). */
export function kvmUnlock(vm: Vm): void {
  if (!WEBKVM_THREADS) return;
  mutexUnlock(changetype<usize>(vm) + offsetof<Vm>("lock"));
}

/** lockdep_assert_held(&kvm->slots_lock): the debug threads build traps when this thread does not hold it. */
export function assertSlotsLockHeld(vm: Vm): void {
  if (!WEBKVM_THREADS || !WEBKVM_DEBUG) return;
  if (P.slotsLockOff != 0) return;
  if (atomic.load<i32>(changetype<usize>(vm) + offsetof<Vm>("slotsLockOwner")) != threadId) abort("lockdep: slots_lock not held by this thread");
}
