// The vCPU's architectural state, laid out in one block of linear memory so the
// host can read, save or restore all of it through a single view (KVM_GET_ONE_REG
// reads from it; vcpu_load swaps it). Hot fields sit at the front.
//
//   offset  size  field
//   ------  ----  -------------------------------------------------------------
//        0   256  x0..x31 (x0 is never written: see decode.ts, X_DISCARD)
//      256     8  discard slot: where the fast loop writes results for rd = x0
//      264     8  pc
//      272     8  priv (PRIV_U = 0, PRIV_S = 1)
//      280     8  sstatus: only the writable bits (SSTATUS_WMASK) are stored
//      288     8  sie
//      296     8  sip: only SSIP is stored; STIP comes from the timer, SEIP
//                 from the host's external interrupt line
//      304     8  stvec        312  sscratch     320  sepc      328  scause
//      336     8  stval        344  satp         352  scounteren 360 senvcfg
//      368     8  stimecmp: the timer deadline, in ticks of `time`
//      376     8  instret: retired instructions since reset
//      384     8  time base: `time` at the instant instret was INSTRET_AT_BASE
//      392     8  instret at base
//      400     8  instructions per tick of `time`
//      408     8  LR reservation: address, or NO_RESERVATION
//      416     8  reservation size (4 or 8)
//      424     4  external interrupt line (SEIP level, set by the host)
//      428     4  signal pending (the host asked the run loop to return)
//      432     8  pending trap cause (set by the instruction that raised it)
//      440     8  pending trap tval
//      448     4  SBI call pending (cpuRun returned EXIT_SBI; cpuCompleteEcall not yet called)
//      512   256  f0..f31 (64 bits each; a binary32 value NaN-boxed)
//      768     4  fcsr (frm[7:5], fflags[4:0]); right after f31, as in RISC-V
//                 KVM's struct __riscv_d_ext_state (the ONE_REG FP views, kvm/vcpu_fp.ts)
//   CPU_STATE_SIZE = 832
//
// Everything a vCPU needs to resume is in here, so several vCPUs can share the
// interpreter by swapping blocks (vcpu_load); the module globals of the CPU
// code only carry values within one cpuRun.

import { cpuBlock, CPU_BLOCK_BYTES } from "../layout";

export const CPU_STATE_SIZE: i32 = CPU_BLOCK_BYTES;
/** This thread's state block (layout.ts: one static block in the default builds, one per thread in the threads build). */
// @ts-ignore: decorator
@inline export function cpuState(): usize { return cpuBlock(); }
// @ts-ignore: decorator
@inline export function xRegs(): usize { return cpuBlock(); }

export const OFF_PC: usize = 264;
export const OFF_PRIV: usize = 272;
export const OFF_SSTATUS: usize = 280;
export const OFF_SIE: usize = 288;
export const OFF_SIP: usize = 296;
export const OFF_STVEC: usize = 304;
export const OFF_SSCRATCH: usize = 312;
export const OFF_SEPC: usize = 320;
export const OFF_SCAUSE: usize = 328;
export const OFF_STVAL: usize = 336;
export const OFF_SATP: usize = 344;
export const OFF_SCOUNTEREN: usize = 352;
export const OFF_SENVCFG: usize = 360;
export const OFF_STIMECMP: usize = 368;
export const OFF_INSTRET: usize = 376;
export const OFF_TIME_BASE: usize = 384;
export const OFF_INSTRET_AT_BASE: usize = 392;
export const OFF_INSTR_PER_TICK: usize = 400;
export const OFF_RESV_ADDR: usize = 408;
export const OFF_RESV_SIZE: usize = 416;
export const OFF_EXT_IRQ: usize = 424;
export const OFF_SIGNAL: usize = 428;
export const OFF_TRAP_CAUSE: usize = 432;
export const OFF_TRAP_TVAL: usize = 440;
export const OFF_SBI_PENDING: usize = 448;
export const OFF_FREGS: usize = 512;
export const OFF_FCSR: usize = 768;

/** The architectural page (Sv39 base page); a split access never crosses one. */
export const RV_PAGE_SHIFT: i32 = 12;
export const RV_PAGE_SIZE: i32 = 1 << RV_PAGE_SHIFT;

export const PRIV_U: u64 = 0;
export const PRIV_S: u64 = 1;

// sstatus (RV64). UXL is read-only 2 (XLEN 64 in U-mode); FS tracks the F/D
// state (fpu/fcsr.ts); VS/XS stay 0 (no V or custom state), so SD (read
// only, not stored) is FS == Dirty.
export const SSTATUS_SIE: u64 = 1 << 1;
export const SSTATUS_SPIE: u64 = 1 << 5;
export const SSTATUS_SPP: u64 = 1 << 8;
export const SSTATUS_SUM: u64 = 1 << 18;
export const SSTATUS_MXR: u64 = 1 << 19;
export const SSTATUS_FS: u64 = 3 << 13;
export const SSTATUS_FS_INITIAL: u64 = 1 << 13;
export const SSTATUS_FS_DIRTY: u64 = 3 << 13;
export const SSTATUS_SD: u64 = <u64>1 << 63;
export const SSTATUS_UXL_64: u64 = <u64>2 << 32;
export const SSTATUS_WMASK: u64 = SSTATUS_SIE | SSTATUS_SPIE | SSTATUS_SPP | SSTATUS_FS | SSTATUS_SUM | SSTATUS_MXR;

// Interrupt numbers and their bits in sip / sie.
export const IRQ_S_SOFT: u64 = 1;
export const IRQ_S_TIMER: u64 = 5;
export const IRQ_S_EXT: u64 = 9;
export const SIP_SSIP: u64 = 1 << IRQ_S_SOFT;
export const SIP_STIP: u64 = 1 << IRQ_S_TIMER;
export const SIP_SEIP: u64 = 1 << IRQ_S_EXT;
export const SIE_WMASK: u64 = SIP_SSIP | SIP_STIP | SIP_SEIP;
export const SIP_WMASK: u64 = SIP_SSIP;

// satp (Sv39 only): MODE[63:60], ASID[59:44], PPN[43:0].
export const SATP_MODE_SHIFT: u64 = 60;
export const SATP_MODE_BARE: u64 = 0;
export const SATP_MODE_SV39: u64 = 8;
/** Only Bare and Sv39 are implemented: a satp value selecting another mode is not accepted. */
@inline export function satpModeSupported(satp: u64): bool {
  const mode = satp >> SATP_MODE_SHIFT;
  return mode == SATP_MODE_BARE || mode == SATP_MODE_SV39;
}
export const SATP_ASID_MASK: u64 = <u64>0xffff << 44;
export const SATP_PPN_MASK: u64 = (<u64>1 << 44) - 1;

// senvcfg: only FIOM is implemented (no Zicbo*, no pointer masking).
export const SENVCFG_WMASK: u64 = 1;

export const NO_RESERVATION: u64 = <u64>-1;

// Exception causes (scause without the interrupt bit).
export const CAUSE_FETCH_MISALIGNED: u64 = 0;
export const CAUSE_FETCH_ACCESS: u64 = 1;
export const CAUSE_ILLEGAL: u64 = 2;
export const CAUSE_BREAKPOINT: u64 = 3;
export const CAUSE_LOAD_MISALIGNED: u64 = 4;
export const CAUSE_LOAD_ACCESS: u64 = 5;
export const CAUSE_STORE_MISALIGNED: u64 = 6;
export const CAUSE_STORE_ACCESS: u64 = 7;
export const CAUSE_ECALL_U: u64 = 8;
export const CAUSE_ECALL_S: u64 = 9;
export const CAUSE_FETCH_PAGE: u64 = 12;
export const CAUSE_LOAD_PAGE: u64 = 13;
export const CAUSE_STORE_PAGE: u64 = 15;
export const CAUSE_INTERRUPT: u64 = <u64>1 << 63;

// ---- accessors ----

// @ts-ignore: decorator
@inline export function getX(r: i32): u64 { return load<u64>(xRegs() + (<usize>r << 3)); }
// @ts-ignore: decorator
@inline export function setX(r: i32, v: u64): void { if (r != 0) store<u64>(xRegs() + (<usize>r << 3), v); }

// @ts-ignore: decorator
@inline export function getField(off: usize): u64 { return load<u64>(cpuState() + off); }
// @ts-ignore: decorator
@inline export function setField(off: usize, v: u64): void { store<u64>(cpuState() + off, v); }

// @ts-ignore: decorator
@inline export function getPc(): u64 { return load<u64>(cpuState() + OFF_PC); }
// @ts-ignore: decorator
@inline export function setPc(v: u64): void { store<u64>(cpuState() + OFF_PC, v); }
// @ts-ignore: decorator
@inline export function getPriv(): u64 { return load<u64>(cpuState() + OFF_PRIV); }
// @ts-ignore: decorator
@inline export function setPriv(v: u64): void { store<u64>(cpuState() + OFF_PRIV, v); }
// @ts-ignore: decorator
@inline export function getInstret(): u64 { return load<u64>(cpuState() + OFF_INSTRET); }
// @ts-ignore: decorator
@inline export function addInstret(n: u64): void { store<u64>(cpuState() + OFF_INSTRET, load<u64>(cpuState() + OFF_INSTRET) + n); }

// @ts-ignore: decorator
@inline export function satpMode(): u64 { return load<u64>(cpuState() + OFF_SATP) >> SATP_MODE_SHIFT; }

/** Drops the LR reservation (SC, trap entry, sret: any context switch point). */
// @ts-ignore: decorator
@inline export function clearReservation(): void { store<u64>(cpuState() + OFF_RESV_ADDR, NO_RESERVATION); }

/** Power-on state: S-mode at the RAM base, everything else zero, no deadline. */
export function resetState(entry: u64): void {
  memory.fill(cpuState(), 0, CPU_STATE_SIZE);
  setPc(entry);
  setPriv(PRIV_S);
  setField(OFF_STIMECMP, <u64>-1);
  setField(OFF_INSTR_PER_TICK, 10);
  clearReservation();
}
