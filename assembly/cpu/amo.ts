// The A extension: LR/SC with a single reservation, and the AMOs as a load
// checked as a store followed by a store. There is one hart, so atomicity
// against other harts is free; what matters is the reservation's lifetime
// (set by LR, consumed by any SC, dropped at traps and sret) and that an
// AMO's read already faults as a store would. Unlike plain loads and stores,
// atomics must be naturally aligned (no Zam): misaligned ones trap.

import { memLoad, memStore, undecodableInsn, ACC_READ, ACC_WRITE } from "../mmu/access";
import { accessStatus, ACCESS_OK } from "../mmu/access_state";
import { getX, setX, getField, setField, clearReservation, OFF_RESV_ADDR, OFF_RESV_SIZE,
  CAUSE_LOAD_MISALIGNED, CAUSE_STORE_MISALIGNED } from "./state";
import { raise, illegal, memStop } from "./stop";

const AMOADD: i32 = 0x00;
const AMOSWAP: i32 = 0x01;
const LR: i32 = 0x02;
const SC: i32 = 0x03;
const AMOXOR: i32 = 0x04;
const AMOOR: i32 = 0x08;
const AMOAND: i32 = 0x0c;
const AMOMIN: i32 = 0x10;
const AMOMAX: i32 = 0x14;
const AMOMINU: i32 = 0x18;
const AMOMAXU: i32 = 0x1c;

// @ts-ignore: decorator
@inline function sext(v: u64, size: i32): u64 { return size == 4 ? <u64><i64><i32>v : v; }

/** Executes an AMO-opcode instruction; false when it stopped the fast loop instead of retiring. */
export function execAmo(inst: i32): bool {
  // Its accesses cannot be emulated as MMIO (access.ts).
  undecodableInsn = true;
  const r = amo(inst);
  undecodableInsn = false;
  return r;
}

function amo(inst: i32): bool {
  const width = (inst >>> 12) & 7;
  if (width != 2 && width != 3) { illegal(inst); return false; }
  const size = width == 2 ? 4 : 8;
  const rd = (inst >>> 7) & 31;
  const rs2 = (inst >>> 20) & 31;
  const op = inst >>> 27;
  const va = getX((inst >>> 15) & 31);
  const misaligned = (va & <u64>(size - 1)) != 0;

  if (op == LR) {
    if (rs2 != 0) { illegal(inst); return false; }
    if (misaligned) { raise(CAUSE_LOAD_MISALIGNED, va); return false; }
    const v = memLoad(va, size, ACC_READ);
    if (accessStatus != ACCESS_OK) { memStop(); return false; }
    setField(OFF_RESV_ADDR, va);
    setField(OFF_RESV_SIZE, <u64>size);
    setX(rd, sext(v, size));
    return true;
  }

  if (op == SC) {
    if (misaligned) { raise(CAUSE_STORE_MISALIGNED, va); return false; }
    if (getField(OFF_RESV_ADDR) != va || getField(OFF_RESV_SIZE) != <u64>size) {
      clearReservation();
      setX(rd, 1);
      return true;
    }
    memStore(va, getX(rs2), size);
    if (accessStatus != ACCESS_OK) {
      // An exit re-executes the SC, which must then still find its reservation;
      // a trap drops it on the way into the handler.
      memStop();
      return false;
    }
    clearReservation();
    setX(rd, 0);
    return true;
  }

  switch (op) {
    case AMOADD: case AMOSWAP: case AMOXOR: case AMOOR: case AMOAND:
    case AMOMIN: case AMOMAX: case AMOMINU: case AMOMAXU: break;
    default: illegal(inst); return false;
  }
  if (misaligned) { raise(CAUSE_STORE_MISALIGNED, va); return false; }
  const old = memLoad(va, size, ACC_WRITE);
  if (accessStatus != ACCESS_OK) { memStop(); return false; }
  const src = getX(rs2);
  // Compare as the width's signed or unsigned values; the store keeps the low bytes.
  const a = sext(old, size), b = sext(src, size);
  const au = size == 4 ? old & 0xffffffff : old, bu = size == 4 ? src & 0xffffffff : src;
  let v: u64;
  switch (op) {
    case AMOADD: v = old + src; break;
    case AMOSWAP: v = src; break;
    case AMOXOR: v = old ^ src; break;
    case AMOOR: v = old | src; break;
    case AMOAND: v = old & src; break;
    case AMOMIN: v = <i64>a < <i64>b ? a : b; break;
    case AMOMAX: v = <i64>a > <i64>b ? a : b; break;
    case AMOMINU: v = au < bu ? au : bu; break;
    default: v = au > bu ? au : bu; break; // AMOMAXU
  }
  memStore(va, v, size);
  if (accessStatus != ACCESS_OK) { memStop(); return false; }
  setX(rd, sext(old, size));
  return true;
}
