// The memory layer of the guest CPU: every guest load, store and fetch goes
// through here. The contract with cpu/ (unchanged from the interpreter's
// bring-up stand-in):
//
//   memLoad / memStore / memFetch take a guest *virtual* address; a call never
//   crosses a page (the CPU splits crossing accesses, lower part first). They
//   report failure through accessStatus (ACCESS_OK between instructions):
//     ACCESS_EXCEPTION  the CPU takes a trap with accessCause / accessTval;
//     ACCESS_EXIT       the CPU stops without retiring the instruction, which
//                       re-executes on the next run (the exit is in the vCPU).
//   The guest page walk (paging.ts) translates va first when satp enables Sv39.
//   memFlush() drops cached translations (satp writes, sfence.vma);
//   mmuModeChanged() after a change of privilege, sstatus.SUM/MXR or satp mode.
//
// The fast path is the shadow page table (spte.ts): one compare of the entry's
// tag with `page | mode key`, one add to reach the host frame. A miss runs the
// fault path (fault.ts) and, for MMIO, records an exit with the fragments of
// an instruction that touches MMIO more than once (exit.ts).

import { accessStatus, curVcpu, ACCESS_OK, ACCESS_EXIT } from "./access_state";
import { translate, fetchWithoutRam, walkLevel } from "./paging";
import { stopNow, STOP_LIMIT } from "../cpu/stop";
import { getPriv, getField, satpMode, OFF_SSTATUS, SATP_MODE_SV39, SSTATUS_SUM, SSTATUS_MXR, PRIV_U } from "../cpu/state";
import { PAGE_MASK, ACCESS_LOG_BYTES, accessLogBase } from "../layout";
import { spteFor, SPT_TABLE_BYTES, SPTE_READ_TAG, SPTE_WRITE_TAG, SPTE_FETCH_TAG, SPTE_ADDEND, SPTE_LEVEL } from "./spte";
import { vcpuTables, dropOwnTables, dropOwnPage, markSpteUsed } from "./mmu";
import { faultIn, faultHost, ACC_READ, ACC_WRITE, ACC_FETCH, FAULT_MAPPED, FAULT_MMIO, FAULT_RETRY, FAULT_RING_FULL, FAULT_EMULATE } from "./fault";
import { notifyTrackWrite } from "./page_track";
import { vmOf, vcpuOf } from "../kvm/kvm_host";
import { mmioAccess, mmioExited, exitRetry, exitMemoryFault, exitRingFull, exitFail } from "./exit";
import { gmemExitFlags, gmemExitErrno } from "../gmem/fault";
import { EOPNOTSUPP, CHECK_RUN_MMIO_INSN } from "../errno";
import { guestEnter, guestExit } from "../kvm/requests";
import { mmuStatAdd } from "./stats";
import { MMU_STAT_FLUSHES } from "../selectors";

export { ACC_READ, ACC_WRITE, ACC_FETCH } from "./fault";

/** The running vCPU's tables (curVcpu is access_state.ts), the current mode's table and key. */
let tables: usize = 0;
export let sptTable: usize = 0;
export let accessKey: u64 = 0;


/**
 * Set while an instruction the MMIO emulation does not decode (LR, SC, AMOs)
 * makes its accesses: kvm_riscv_vcpu_mmio_load / _store only know plain loads
 * and stores, so such an access to MMIO or a read-only slot fails KVM_RUN.
 */
export let undecodableInsn: bool = false;

/** Makes a vCPU current; false when its tables cannot be allocated. */
export function mmuEnter(vcpu: usize): bool {
  const t = vcpuTables(vcpu);
  if (t == 0) return false;
  curVcpu = vcpu;
  tables = t;
  mmuModeChanged();
  return true;
}

/**
 * The mode key: 0 in bare mode (translation does not depend on privilege),
 * else 1 = U, 2 = S, 3 = S with SUM, plus 4 with MXR. Entries filled under one
 * key never serve another; the low two bits pick the table.
 */
export function mmuModeChanged(): void {
  let key: u64 = 0;
  if (satpMode() == SATP_MODE_SV39) {
    const st = getField(OFF_SSTATUS);
    key = getPriv() == PRIV_U ? 1 : (st & SSTATUS_SUM) != 0 ? 3 : 2;
    if (st & SSTATUS_MXR) key |= 4;
  }
  accessKey = key;
  sptTable = tables + <usize>(key & 3) * SPT_TABLE_BYTES;
}

/** sfence.vma / satp write: every translation of this vCPU may be stale. */
export function memFlush(): void {
  mmuStatAdd(MMU_STAT_FLUSHES, 1);
  dropOwnTables(vmOf(vcpuOf(curVcpu).vm), tables);
  mmuModeChanged();
}

/**
 * sfence.vma with an address: only translations through the leaf PTE of va
 * may be stale (a changed pointer PTE needs a flush of all), so only the
 * entries that may hold one go (mmu.ts dropOwnPage); the rest stay, as
 * kvm_mmu_invlpg keeps every other shadow entry.
 */
export function memFlushPage(va: u64): void {
  mmuStatAdd(MMU_STAT_FLUSHES, 1);
  dropOwnPage(vmOf(vcpuOf(curVcpu).vm), tables, va);
}

// @ts-ignore: decorator
@inline function tagOf(va: u64): u64 {
  return (va & ~PAGE_MASK) | accessKey;
}

// @ts-ignore: decorator
@inline function rawLoad(p: usize, size: i32): u64 {
  if (size == 8) return load<u64>(p);
  if (size == 4) return <u64>load<u32>(p);
  if (size == 2) return <u64>load<u16>(p);
  if (size == 1) return <u64>load<u8>(p);
  let v: u64 = 0; // a split part: 3, 5, 6 or 7 bytes, little-endian
  for (let i = size - 1; i >= 0; i--) v = (v << 8) | <u64>load<u8>(p + <usize>i);
  return v;
}

// @ts-ignore: decorator
@inline function rawStore(p: usize, value: u64, size: i32): void {
  if (size == 8) store<u64>(p, value);
  else if (size == 4) store<u32>(p, <u32>value);
  else if (size == 2) store<u16>(p, <u16>value);
  else if (size == 1) store<u8>(p, <u8>value);
  else for (let i = 0; i < size; i++, value >>= 8) store<u8>(p + <usize>i, <u8>value);
}

// ---- debug build: a log of what the CPU asked for, in order (fetches not logged) ----
// kind: 0 = load, 1 = load checked as a store (AMO), 2 = store. Lets tests see
// how an access was split without looking inside the CPU.
const LOG_ENTRIES: i32 = ACCESS_LOG_BYTES / 16;
export let logCount: i32 = 0;
function logAccess(va: u64, size: i32, kind: i32): void {
  const p = accessLogBase() + (<usize>(logCount & (LOG_ENTRIES - 1)) << 4);
  store<u64>(p, va);
  store<i32>(p, size, 8);
  store<i32>(p, kind, 12);
  logCount++;
}
export function logVa(i: i32): u64 { return load<u64>(accessLogBase() + (<usize>(i & (LOG_ENTRIES - 1)) << 4)); }
export function logSize(i: i32): i32 { return load<i32>(accessLogBase() + (<usize>(i & (LOG_ENTRIES - 1)) << 4), 8); }
export function logKind(i: i32): i32 { return load<i32>(accessLogBase() + (<usize>(i & (LOG_ENTRIES - 1)) << 4), 12); }
export function logReset(): void { logCount = 0; }

// @ts-ignore: decorator
@inline export function memLoad(va: u64, size: i32, acc: i32): u64 {
  if (WEBKVM_DEBUG) logAccess(va, size, acc == ACC_WRITE ? 1 : 0);
  const e = spteFor(sptTable, va);
  if (load<u64>(e + (acc == ACC_WRITE ? SPTE_WRITE_TAG : SPTE_READ_TAG)) == tagOf(va)) {
    return rawLoad(<usize>(va + load<u64>(e + SPTE_ADDEND)), size);
  }
  return memLoadSlow(va, size, acc);
}

// @ts-ignore: decorator
@inline export function memStore(va: u64, value: u64, size: i32): void {
  if (WEBKVM_DEBUG) logAccess(va, size, 2);
  const e = spteFor(sptTable, va);
  if (load<u64>(e + SPTE_WRITE_TAG) == tagOf(va)) {
    rawStore(<usize>(va + load<u64>(e + SPTE_ADDEND)), value, size);
    return;
  }
  memStoreSlow(va, value, size);
}

// @ts-ignore: decorator
@inline export function memFetch(va: u64): u32 {
  const e = spteFor(sptTable, va);
  if (load<u64>(e + SPTE_FETCH_TAG) == tagOf(va)) return load<u32>(<usize>(va + load<u64>(e + SPTE_ADDEND)));
  return memFetchSlow(va);
}

/**
 * memLoad's and memStore's fast path alone, for a caller that keeps calls off
 * its hot loop (cpu/interp.ts): the linear address of va when its entry allows
 * the access (a store's when `write`), else -1, and the caller then makes the
 * access through memLoad / memStore, which probe again and take the slow path.
 * size (logged on a hit, as memLoad / memStore log) is the caller's to keep
 * within the page.
 */
// @ts-ignore: decorator
@inline export function memProbe(va: u64, size: i32, write: bool): i64 {
  const e = spteFor(sptTable, va);
  if (load<u64>(e + (write ? SPTE_WRITE_TAG : SPTE_READ_TAG)) != tagOf(va)) return -1;
  if (WEBKVM_DEBUG) logAccess(va, size, write ? 2 : 0);
  return <i64><usize>(va + load<u64>(e + SPTE_ADDEND));
}

/** The addend of va's entry right after a successful memFetch(va) (its fetch tag matches). */
// @ts-ignore: decorator
@inline export function fetchAddend(va: u64): u64 {
  return load<u64>(spteFor(sptTable, va) + SPTE_ADDEND);
}

const RESOLVED_MMIO: usize = 1;
/** Set by resolve() when the write must be emulated and reported to page-track users. */
let emulateGpa: u64 = 0;
let emulating: bool = false;

/** Translates and faults in va; the linear address, RESOLVED_MMIO (mmioGpa set), or 0 with accessStatus set. */
let mmioGpa: u64 = 0;
function resolve(va: u64, acc: i32): usize {
  // Threads build: the slow path runs outside guest mode, inside the SRCU read
  // section (kvm/requests.ts); a request that came meanwhile (a zap's flush)
  // may have made the answer stale, so the access retries instead of using it.
  if (WEBKVM_THREADS) guestExit();
  const r = resolveOutsideGuest(va, acc);
  if (WEBKVM_THREADS && !guestEnter() && accessStatus == ACCESS_OK) {
    emulating = false;
    exitRetry(curVcpu);
    accessStatus = ACCESS_EXIT;
    return 0;
  }
  return r;
}

function resolveOutsideGuest(va: u64, acc: i32): usize {
  let gpa = va;
  let level = 0;
  if (accessKey != 0) {
    gpa = translate(va, acc);
    if (accessStatus != ACCESS_OK) return 0;
    level = walkLevel;
  }
  const e = spteFor(sptTable, va);
  markSpteUsed(tables, e);
  store<u8>(e + SPTE_LEVEL, <u8>level);
  const r = faultIn(curVcpu, e, tagOf(va), gpa, acc);
  emulating = false;
  if (r == FAULT_MAPPED) return faultHost;
  if (r == FAULT_EMULATE) {
    emulating = true;
    emulateGpa = gpa;
    return faultHost;
  }
  if (r == FAULT_MMIO) {
    mmioGpa = gpa;
    return RESOLVED_MMIO;
  }
  if (r == FAULT_RETRY) exitRetry(curVcpu);
  else if (r == FAULT_RING_FULL) exitRingFull(curVcpu);
  else exitMemoryFault(curVcpu, gpa, gmemExitFlags, gmemExitErrno);
  accessStatus = ACCESS_EXIT;
  return 0;
}

function memLoadSlow(va: u64, size: i32, acc: i32): u64 {
  const p = resolve(va, acc);
  if (p == 0) return 0;
  if (p == RESOLVED_MMIO) {
    if (undecodableInsn) { failUndecodable(); return 0; }
    const v = mmioAccess(curVcpu, mmioGpa, size, false, 0);
    if (mmioExited) accessStatus = ACCESS_EXIT;
    return v;
  }
  return rawLoad(p, size);
}

function memStoreSlow(va: u64, value: u64, size: i32): void {
  const p = resolve(va, ACC_WRITE);
  if (p == 0) return;
  if (p == RESOLVED_MMIO) {
    if (undecodableInsn) { failUndecodable(); return; }
    mmioAccess(curVcpu, mmioGpa, size, true, value);
    if (mmioExited) accessStatus = ACCESS_EXIT;
  } else {
    rawStore(p, value, size);
    if (emulating) {
      emulating = false;
      notifyTrackWrite(vmOf(vcpuOf(curVcpu).vm), emulateGpa, p, size);
      // Host code ran and may have changed mappings: end the CPU's fast chunk
      // after this instruction, so nothing it cached outlives the callback.
      stopNow(STOP_LIMIT);
    }
  }
}

/** kvm_riscv_vcpu_mmio_load / _store: an instruction they do not decode is -EOPNOTSUPP. */
function failUndecodable(): void {
  exitFail(curVcpu, mmioGpa, EOPNOTSUPP, CHECK_RUN_MMIO_INSN);
  accessStatus = ACCESS_EXIT;
}

function memFetchSlow(va: u64): u32 {
  const p = resolve(va, ACC_FETCH);
  if (p == 0) return 0;
  if (p == RESOLVED_MMIO) { fetchWithoutRam(mmioGpa); return 0; }
  return load<u32>(p);
}
