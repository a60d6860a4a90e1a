// ============================================================================
// TEMPORARY STAND-IN for the memory layer. It implements the CPU's memory
// contract over one flat block of guest RAM so the interpreter can be built,
// tested and measured before the real MMU (shadow page tables over memslots)
// exists. The real MMU replaces everything below the contract section and
// keeps the contract itself unchanged.
// ============================================================================
//
// ---- the contract (what the CPU relies on) ----
//
// Every guest memory access of the CPU goes through memLoad / memStore /
// memFetch with a guest *virtual* address. The layer translates it (calling
// cpu/sv39.ts translate() when satp enables Sv39), performs it, and reports
// through accessStatus:
//   ACCESS_OK        done;
//   ACCESS_EXCEPTION the CPU takes a trap with accessCause / accessTval;
//   ACCESS_EXIT      the CPU stops its run loop at once without retiring the
//                    instruction, which re-executes on the next cpuRun.
// accessStatus is ACCESS_OK between instructions: the layer only ever sets it
// to a failure, and the CPU puts it back to ACCESS_OK when it consumes one.
// That keeps the fast path free of stores and the CPU's check to one compare.
//
// Sizes are 1, 2, 4 or 8 bytes, except for the parts of an access that crosses
// a page boundary: the CPU splits those at the boundary into two calls, lower
// address first, so a part may be 1 to 7 bytes long. A single call therefore
// never crosses a page, but it may be misaligned within one.
//
// Privilege and sstatus.SUM / MXR are read from cpu/state at access time; the
// CPU calls memFlush() after a satp write and on sfence.vma, and nowhere else.

import { translate } from "../cpu/sv39";
import {
  CPU_STATE, OFF_PRIV, satpMode, SATP_MODE_SV39,
  CAUSE_FETCH_ACCESS, CAUSE_LOAD_ACCESS, CAUSE_STORE_ACCESS,
} from "../cpu/state";
import { PAGE_SIZE } from "../layout";

export const ACC_READ: i32 = 0;
export const ACC_WRITE: i32 = 1;
export const ACC_FETCH: i32 = 2;

export const ACCESS_OK: i32 = 0;
export const ACCESS_EXCEPTION: i32 = 1;
export const ACCESS_EXIT: i32 = 2;

export let accessStatus: i32 = ACCESS_OK;
export let accessCause: u64 = 0;
export let accessTval: u64 = 0;

// ---- stand-in internals ----

/** Guest physical RAM is [RAM_BASE, RAM_BASE + ramSize). */
export const RAM_BASE: u64 = 0x80000000;

let ramHost: usize = 0;      // linear address of guest physical RAM_BASE
let ramSize: u64 = 0;
let ramCapacity: usize = 0;  // bytes obtained from memory.grow so far

// Bare-mode fast path: va - RAM_BASE < fastSpan means "plain RAM, any size up
// to 8 fits". 0 while Sv39 is on, so the compare alone routes to the slow path.
let fastSpan: u64 = 0;

// One-entry instruction-page cache for Sv39: tag = page va | priv (translation
// permissions differ between U and S), host address = va + fetchDelta.
const NO_TAG: u64 = 2; // has bit 1 set, so no page | priv ever equals it
let fetchTag: u64 = NO_TAG;
let fetchDelta: usize = 0;

// An "MMIO" window whose accesses exit to the host, for exercising ACCESS_EXIT.
// A pending access is remembered; once the host completes it, the re-executed
// access with the same address, size and direction finishes without an exit.
let exitBase: u64 = 0;
let exitSize: u64 = 0;
export let mmioVa: u64 = 0;
export let mmioSize: i32 = 0;
export let mmioIsWrite: bool = false;
export let mmioValue: u64 = 0;   // store data, or the load result the host supplied
let mmioCompleted: bool = false;

export let flushCount: u32 = 0;

/** Reserves and zeroes `size` bytes (rounded up to pages) of guest RAM. 0 or -1. */
export function memInit(size: u64): i32 {
  size = (size + <u64>PAGE_SIZE - 1) & ~(<u64>PAGE_SIZE - 1);
  if (size < <u64>PAGE_SIZE || size > (<u64>1 << 31)) return -1;
  if (<usize>size > ramCapacity) {
    const pages = <i32>((size + 0xffff) >> 16);
    const before = memory.grow(pages);
    if (before < 0) return -1;
    ramHost = <usize>before << 16;
    ramCapacity = <usize>pages << 16;
  } else {
    memory.fill(ramHost, 0, <usize>size);
  }
  ramSize = size;
  exitBase = 0;
  exitSize = 0;
  mmioCompleted = false;
  accessStatus = ACCESS_OK;
  memFlush();
  return 0;
}

export function ramHostBase(): usize { return ramHost; }
export function ramBytes(): u64 { return ramSize; }

export function memSetExitWindow(base: u64, size: u64): void {
  exitBase = base;
  exitSize = size;
}

/** The host finished the pending MMIO access; `value` is the load result. */
export function memCompleteMmio(value: u64): void {
  mmioValue = value;
  mmioCompleted = true;
}

export function memFlush(): void {
  fetchTag = NO_TAG;
  fastSpan = satpMode() == SATP_MODE_SV39 || ramSize < 8 ? 0 : ramSize - 7;
  flushCount++;
}

// ---- debug-only access log: what the CPU asked for, in order ----
// Lets tests see how an access was split without exposing internals. Fetches
// are not logged. kind: 0 = load, 1 = load checked as a store (AMO), 2 = store.

const LOG_ENTRIES: i32 = 64;
const LOG: usize = memory.data(LOG_ENTRIES * 16, 8);
export let logCount: i32 = 0;

function logAccess(va: u64, size: i32, kind: i32): void {
  const p = LOG + (<usize>(logCount & (LOG_ENTRIES - 1)) << 4);
  store<u64>(p, va);
  store<i32>(p, size, 8);
  store<i32>(p, kind, 12);
  logCount++;
}
export function logVa(i: i32): u64 { return load<u64>(LOG + (<usize>(i & (LOG_ENTRIES - 1)) << 4)); }
export function logSize(i: i32): i32 { return load<i32>(LOG + (<usize>(i & (LOG_ENTRIES - 1)) << 4), 8); }
export function logKind(i: i32): i32 { return load<i32>(LOG + (<usize>(i & (LOG_ENTRIES - 1)) << 4), 12); }
export function logReset(): void { logCount = 0; }

// ---- the contract's functions ----

// @ts-ignore: decorator
@inline export function memLoad(va: u64, size: i32, acc: i32): u64 {
  if (WEBKVM_DEBUG) logAccess(va, size, acc == ACC_WRITE ? 1 : 0);
  const off = va - RAM_BASE;
  if (off < fastSpan) {
    const p = ramHost + <usize>off;
    if (size == 8) return load<u64>(p);
    if (size == 4) return <u64>load<u32>(p);
    if (size == 2) return <u64>load<u16>(p);
    if (size == 1) return <u64>load<u8>(p);
  }
  return memLoadSlow(va, size, acc);
}

// @ts-ignore: decorator
@inline export function memStore(va: u64, value: u64, size: i32): void {
  if (WEBKVM_DEBUG) logAccess(va, size, 2);
  const off = va - RAM_BASE;
  if (off < fastSpan) {
    const p = ramHost + <usize>off;
    if (size == 8) { store<u64>(p, value); return; }
    if (size == 4) { store<u32>(p, <u32>value); return; }
    if (size == 2) { store<u16>(p, <u16>value); return; }
    if (size == 1) { store<u8>(p, <u8>value); return; }
  }
  memStoreSlow(va, value, size);
}

// @ts-ignore: decorator
@inline export function memFetch(va: u64): u32 {
  const off = va - RAM_BASE;
  if (off < fastSpan) return load<u32>(ramHost + <usize>off);
  if (((va & ~(<u64>PAGE_SIZE - 1)) | load<u64>(CPU_STATE + OFF_PRIV)) == fetchTag) {
    return load<u32>(<usize>va + fetchDelta);
  }
  return memFetchSlow(va);
}

/** Page-table read for sv39.ts; on failure accessStatus = ACCESS_EXCEPTION. */
export function physLoad64(gpa: u64): u64 {
  const off = gpa - RAM_BASE;
  if (off < ramSize && (off & 7) == 0) return load<u64>(ramHost + <usize>off);
  return accessFault(gpa, ACC_READ);
}

/** A/D-bit update for sv39.ts; on failure accessStatus = ACCESS_EXCEPTION. */
export function physStore64(gpa: u64, value: u64): void {
  const off = gpa - RAM_BASE;
  if (off < ramSize && (off & 7) == 0) store<u64>(ramHost + <usize>off, value);
  else accessFault(gpa, ACC_WRITE);
}

// ---- slow paths ----

function accessFault(va: u64, acc: i32): u64 {
  accessStatus = ACCESS_EXCEPTION;
  accessCause = acc == ACC_FETCH ? CAUSE_FETCH_ACCESS : acc == ACC_WRITE ? CAUSE_STORE_ACCESS : CAUSE_LOAD_ACCESS;
  accessTval = va;
  return 0;
}

/** RAM offset of [gpa, gpa + size), or -1 when it is not all RAM. */
// @ts-ignore: decorator
@inline function ramOffset(gpa: u64, size: i32): i64 {
  const off = gpa - RAM_BASE;
  return off < ramSize && <u64>size <= ramSize - off ? <i64>off : -1;
}

function rawLoad(p: usize, size: i32): u64 {
  switch (size) {
    case 1: return <u64>load<u8>(p);
    case 2: return <u64>load<u16>(p);
    case 4: return <u64>load<u32>(p);
    case 8: return load<u64>(p);
  }
  let v: u64 = 0; // a split part: 3, 5, 6 or 7 bytes, little-endian
  for (let i = size - 1; i >= 0; i--) v = (v << 8) | <u64>load<u8>(p + <usize>i);
  return v;
}

function rawStore(p: usize, value: u64, size: i32): void {
  for (let i = 0; i < size; i++) {
    store<u8>(p + <usize>i, <u8>value);
    value >>= 8;
  }
}

function mmio(gpa: u64, size: i32, isWrite: bool, value: u64): u64 {
  if (mmioCompleted && gpa == mmioVa && size == mmioSize && isWrite == mmioIsWrite) {
    mmioCompleted = false;
    return isWrite ? 0 : mmioValue;
  }
  mmioCompleted = false;
  mmioVa = gpa;
  mmioSize = size;
  mmioIsWrite = isWrite;
  mmioValue = isWrite ? value : 0;
  accessStatus = ACCESS_EXIT;
  return 0;
}

function memLoadSlow(va: u64, size: i32, acc: i32): u64 {
  let gpa = va;
  if (satpMode() == SATP_MODE_SV39) {
    gpa = translate(va, acc);
    if (accessStatus != ACCESS_OK) return 0;
  }
  const off = ramOffset(gpa, size);
  if (off >= 0) return rawLoad(ramHost + <usize>off, size);
  if (gpa - exitBase < exitSize) return mmio(gpa, size, false, 0);
  return accessFault(va, acc);
}

function memStoreSlow(va: u64, value: u64, size: i32): void {
  let gpa = va;
  if (satpMode() == SATP_MODE_SV39) {
    gpa = translate(va, ACC_WRITE);
    if (accessStatus != ACCESS_OK) return;
  }
  const off = ramOffset(gpa, size);
  if (off >= 0) rawStore(ramHost + <usize>off, value, size);
  else if (gpa - exitBase < exitSize) mmio(gpa, size, true, value);
  else accessFault(va, ACC_WRITE);
}

function memFetchSlow(va: u64): u32 {
  let gpa = va;
  if (satpMode() == SATP_MODE_SV39) {
    gpa = translate(va, ACC_FETCH);
    if (accessStatus != ACCESS_OK) return 0;
  }
  const off = ramOffset(gpa, 4);
  if (off < 0) return <u32>accessFault(va, ACC_FETCH);
  const host = ramHost + <usize>off;
  if (satpMode() == SATP_MODE_SV39) {
    const pageMask = <u64>PAGE_SIZE - 1;
    fetchTag = (va & ~pageMask) | load<u64>(CPU_STATE + OFF_PRIV);
    fetchDelta = (host & ~<usize>pageMask) - (<usize>va & ~<usize>pageMask);
  }
  return load<u32>(host);
}
