// The process-wide state block, and the heap lock of the threads build.
//
// The threads build (asconfig.json target `threads`, WEBKVM_THREADS=1) imports a
// shared memory that every thread instantiates the core over. What each
// instance keeps in wasm globals is then per thread; whatever is the VMM
// process's state must live in linear memory where every instance sees it. This
// block is that state: the fd table, the VM list, the host address space's
// roots, the frame allocator and the heap's accounting. It is allocated by the
// first instance (processSetup) and adopted by every later one (processAttach),
// which also adopts the TLSF heap root instead of re-initialising the heap.
//
// Not a data segment: active segments are re-copied by every instantiation, so
// the threads build is compiled with zeroFilledMemory (its `memory.data`
// regions get no segment at all; what remains is constant: strings, tables),
// and start functions re-run per instance, so nothing shared is set up by
// top-level code either: the default builds set the block up in their start
// function, the threads build from the host's explicit call.
//
// Per instance, and rightly so: what describes the current call or the vCPU a
// thread runs (failedCheck, the access status, the stop reason, the loaded
// vCPU, the decoder's and translator's working state), the registered hostmm
// callbacks (the same table indices in every instance) and the config (each
// instance is configured alike), and the per-thread block (layout.ts: the
// ioctl and IO buffers, the staged memslot record, the mask word, the loaded
// vCPU's register block, decode cache and debug access log), which each
// instance allocates here, so ioctls, KVM_RUN included, may run on several
// threads at once. Still per instance, not summed: the statistics counters.

import { ROOT } from "rt/tlsf";
import { setThreadScratch, THREAD_SCRATCH_BYTES } from "./layout";
import { MMU_STATS } from "./selectors";

@unmanaged export class Process {
  /** The TLSF heap's root (its control structure sits in linear memory). */
  heapRoot: usize;
  /** The heap lock word: 0 free, 1 held, 2 held with sleepers. */
  heapLock: i32;
  /** The thread holding it (threadGone releases a dead thread's). */
  heapLockOwner: i32;
  /** Debug lever: 1 turns the heap lock off (test/threads.test.ts shows the stress test then fails). */
  heapLockOff: i32;
  /** How many times a thread found the lock contended and slept in the host. */
  heapLockSleeps: u32;
  /** Debug lever: 1 turns every VM's slots_lock off (test/threads-slots-lock.test.ts shows the test then fails). */
  slotsLockOff: i32;
  /** How many times a thread slept on a slots_lock. */
  slotsLockSleeps: u32;
  /** Debug lever: 1 turns every VM's mmu_lock off. */
  mmuLockOff: i32;
  /** How many times a thread slept on an mmu_lock, a vcpu->mutex, the mmap_lock. */
  mmuLockSleeps: u32;
  vcpuMutexSleeps: u32;
  mmapLockSleeps: u32;
  srcuGpSleeps: u32;
  /** Debug lever: 1 stops memslot swaps from waiting for SRCU readers (synchronize_srcu returns at once). */
  srcuOff: i32;
  /** Debug lever: 1 publishes memslot sets with their settled generation, without the in-progress bit. */
  genInProgressOff: i32;
  /** Debug lever: iterations the fault path spins between its memslot lookup and installing the spte (widens a race window for tests). */
  faultWindowSpin: i32;
  /** Debug count: MMIO sptes whose fault saw the generation change between its start and the install. */
  mmioGenRaces: u32;
  /** hostmm/mmap_lock.ts's mmap_lock: word, owner, depth (ownedLock below; keep the three together). */
  mmapLock: i32;
  mmapLockOwner: i32;
  mmapLockDepth: i32;
  /** The last thread id handed out (threadId: 1 for the first instance). */
  threadIds: i32;
  /** kalloc.ts's accounting (updated under the lock: lost updates show a missing lock). */
  allocatedBytes: u64;
  liveAllocations: u32;
  // kvm/fd.ts: the fd table
  fdKinds: usize;
  fdObjects: usize;
  kvmFd: i32;
  // kvm/kvm_host.ts, kvm/vm.ts: the VM list
  vmList: usize;
  vmListLen: i32;
  vmListCap: i32;
  vmSerials: u32;
  // hostmm/vma.ts: the VMAs; hostmm/pgtable.ts: the page table's first level
  vmas: usize;
  vmaCount: i32;
  vmaCap: i32;
  mmapBase: u64;
  hostL1: usize;
  // hostmm/frames.ts
  freeTop: usize;
  chunkNext: usize;
  chunkEnd: usize;
  framesInUse: u32;
  framesTotal: u32;
  // pfncache.ts's locks (the lever and the sleep count)
  /** Debug lever: 1 turns every pfn cache's locks off (test/threads-pfncache.test.ts shows the test then fails). */
  gpcLockOff: i32;
  /** How many times a thread slept on a pfn cache's lock or refresh_lock, or a VM's gpc_lock. */
  gpcLockSleeps: u32;
  /** mmu/stats.ts: the shadow MMU's counters, MMU_STATS words (per process: vCPUs on any thread count). */
  mmuStats: usize;
  /** debug/inject.ts: the armed fault point, its errno, how many passes it lets through first. */
  injectPoint: i32;
  injectErrno: i32;
  injectSkip: i32;
  /** kalloc.ts: the memory's maximum in 64 KiB pages (the module's, or a smaller shared memory's: memoryMaximum). */
  maxPages: i32;
  /** kalloc.ts: heap bytes of the live blocks, headers included (exact: read from the blocks). */
  heapBlockBytes: u64;
}

export const FD_TABLE_SIZE: i32 = 4096;
export const HOST_L1_ENTRIES: i32 = 2048;
/** The module's own memory maximum (asconfig.json maximumMemory): 4 GiB. */
export const WASM_MAX_PAGES: i32 = 65536;
/** Where hostmm/vma.ts's top-down placement of non-fixed mappings starts. */
const MMAP_BASE: u64 = 0x7f0000000000;

/** This instance's view of the process block (a per-thread global pointing into shared memory). */
export let P: Process = changetype<Process>(0);
/** This instance's thread id (threads build; 0 in the default builds): a lock's owner for lockdep checks. */
export let threadId: i32 = 0;

/** Threads build: this instance's id and its per-call scratch block (layout.ts). */
function threadSetup(): void {
  if (!WEBKVM_THREADS) return;
  threadId = atomic.add<i32>(changetype<usize>(P) + offsetof<Process>("threadIds"), 1) + 1;
  heapLock();
  const s = heap.alloc(THREAD_SCRATCH_BYTES);
  heapUnlock();
  memory.fill(s, 0, THREAD_SCRATCH_BYTES);
  setThreadScratch(s);
}

function sameType<T>(_like: T, p: usize): T { return changetype<T>(p); }

/** First instance: allocates and zeroes the block and the tables it points at; returns its address. */
export function processSetup(): usize {
  if (changetype<usize>(P) != 0) return changetype<usize>(P);
  const p = heap.alloc(offsetof<Process>());
  memory.fill(p, 0, offsetof<Process>());
  const b = changetype<Process>(p);
  b.fdKinds = heap.alloc(FD_TABLE_SIZE);
  memory.fill(b.fdKinds, 0, FD_TABLE_SIZE);
  b.fdObjects = heap.alloc(FD_TABLE_SIZE * 4);
  memory.fill(b.fdObjects, 0, FD_TABLE_SIZE * 4);
  b.hostL1 = heap.alloc(HOST_L1_ENTRIES * 4);
  memory.fill(b.hostL1, 0, HOST_L1_ENTRIES * 4);
  b.mmuStats = heap.alloc(MMU_STATS * 4);
  memory.fill(b.mmuStats, 0, MMU_STATS * 4);
  b.kvmFd = -1;
  b.mmapBase = MMAP_BASE;
  b.maxPages = WASM_MAX_PAGES;
  b.heapRoot = changetype<usize>(ROOT);
  P = b;
  threadSetup();
  return p;
}

/** Every later instance (threads build): adopts the block and the heap root; allocates only its scratch. */
export function processAttach(p: usize): void {
  const b = changetype<Process>(p);
  ROOT = sameType(ROOT, b.heapRoot);
  P = b;
  threadSetup();
}

// ---- the heap lock ----
// One lock serialises the TLSF heap (kalloc.ts) and the frame allocator
// (hostmm/frames.ts): both grow the same memory, and TLSF assumes it owns the
// pages between its grows. A lock rather than per-thread arenas because a block
// is often freed by another thread than the one that allocated it (memslot
// arrays, rmaps), and allocation is off every hot path (lookups, guest
// accesses). The lock never executes memory.atomic.wait32: Node 20's baseline
// compiler miscompiles code around it, so a contended lock spins briefly and
// then sleeps in the host (Atomics.wait, webkvm_futex_wait), which compiles
// no wait instruction into the core on any engine (test/threads.test.ts checks).

// @ts-ignore: decorator
@external("env", "webkvm_futex_wait")
export declare function futexWait(addr: usize, expected: i32): void;
/** Wakes one thread sleeping at addr. */
// @ts-ignore: decorator
@external("env", "webkvm_futex_wake")
export declare function futexWake(addr: usize, count: i32): void;

/** How many times a contended lock re-checks its word before sleeping in the host. */
export const SPINS: i32 = 64;

// The default builds have one instance: set the block up at start-up.
if (!WEBKVM_THREADS) processSetup();

/**
 * Takes the mutex whose word is at w (0 free, 1 held, 2 held with sleepers):
 * spins briefly, then sleeps in the host; counts its sleeps at sleeps.
 */
export function mutexLock(w: usize, sleeps: usize): void {
  let c = atomic.cmpxchg<i32>(w, 0, 1);
  if (c == 0) return;
  for (let i = 0; i < SPINS; i++) {
    if (atomic.load<i32>(w) == 0) {
      c = atomic.cmpxchg<i32>(w, 0, 1);
      if (c == 0) return;
    }
  }
  // Contended: mark sleepers (2) and sleep until the holder's unlock wakes us.
  if (c != 2) c = atomic.xchg<i32>(w, 2);
  while (c != 0) {
    atomic.add<u32>(sleeps, 1);
    futexWait(w, 2);
    c = atomic.xchg<i32>(w, 2);
  }
}

export function mutexUnlock(w: usize): void {
  if (atomic.xchg<i32>(w, 0) == 2) futexWake(w, 1);
}

// ---- a mutex its owner may take again ----
// Three consecutive i32s: the mutex word, the owner's thread id (0: free) and
// how deep the owner holds it. For locks host code can re-enter while they are
// held (mmu_lock, mmap_lock): a reader hook or a callback that comes back into
// the core takes them again on the same thread.
const OWNER: usize = 4;
const DEPTH: usize = 8;

export function ownedLock(w: usize, sleeps: usize): void {
  if (atomic.load<i32>(w + OWNER) == threadId) { store<i32>(w + DEPTH, load<i32>(w + DEPTH) + 1); return; }
  mutexLock(w, sleeps);
  atomic.store<i32>(w + OWNER, threadId);
  store<i32>(w + DEPTH, 1);
}

export function ownedUnlock(w: usize): void {
  const depth = load<i32>(w + DEPTH) - 1;
  store<i32>(w + DEPTH, depth);
  if (depth != 0) return;
  atomic.store<i32>(w + OWNER, 0);
  mutexUnlock(w);
}

/** Whether this thread holds the lock (lockdep's owner check). */
export function ownedByMe(w: usize): bool {
  return atomic.load<i32>(w + OWNER) == threadId;
}

/** Releases the lock, however deep, if thread tid holds it (a dead thread's, kvm/thread_exit.ts). */
export function ownedRelease(w: usize, tid: i32): void {
  if (atomic.load<i32>(w + OWNER) != tid) return;
  store<i32>(w + DEPTH, 0);
  atomic.store<i32>(w + OWNER, 0);
  mutexUnlock(w);
}

/** Sleeps in the host while the i32 at addr equals expected (returns at once if it does not). */
export function futexSleep(addr: usize, expected: i32): void { futexWait(addr, expected); }

/** Wakes every thread sleeping on addr. */
export function futexWakeAll(addr: usize): void { futexWake(addr, 0x7fffffff); }

/**
 * Waits until the i32 at addr differs from value: spins briefly, then sleeps
 * with the waiter count at waiters raised (the writer of addr wakes sleepers
 * when it sees waiters, see futexWakeAll).
 */
export function waitWhileEquals(addr: usize, value: i32, waiters: usize): void {
  for (let i = 0; i < SPINS * 4; i++) if (atomic.load<i32>(addr) != value) return;
  atomic.add<u32>(waiters, 1);
  while (atomic.load<i32>(addr) == value) futexWait(addr, value);
  atomic.sub<u32>(waiters, 1);
}

export function heapLock(): void {
  if (!WEBKVM_THREADS) return;
  if (P.heapLockOff != 0) return;
  mutexLock(changetype<usize>(P) + offsetof<Process>("heapLock"), changetype<usize>(P) + offsetof<Process>("heapLockSleeps"));
  P.heapLockOwner = threadId;
}

export function heapUnlock(): void {
  if (!WEBKVM_THREADS) return;
  if (P.heapLockOff != 0) return;
  P.heapLockOwner = 0;
  mutexUnlock(changetype<usize>(P) + offsetof<Process>("heapLock"));
}
