// The guest page walk, MMU code as the kernel's paging_tmpl.h is: Sv39 address
// translation (privileged spec, "Sv39: Page-Based 39-bit Virtual Memory
// System"), called by access.ts when satp.MODE = 8. A walk reads
// at most three PTEs through physLoad64 and never writes one: A/D bits are
// managed by the guest (Svade), as on RISC-V KVM's default vCPU. The kernel
// assumes Svade when a host names neither Svade nor Svadu, gives a vCPU the
// host's extensions, and sets henvcfg.ADUE (hardware A/D updates) only for a
// vCPU that has Svadu without Svade; so a walk that finds A clear (or D clear
// for a store/AMO) raises the guest's own page fault, never touching the PTE.
// Page tables may thus sit in a READONLY memslot.
//
//   va:  [63..39 = copy of bit 38][38..30 VPN2][29..21 VPN1][20..12 VPN0][11..0]
//   pte: [63..54 reserved/N/PBMT][53..10 PPN][9..8 RSW][D A G U X W R V]
//
// Failures set accessStatus = ACCESS_EXCEPTION with the page-fault cause of the
// original access (12 fetch, 13 load, 15 store/AMO) and tval = va; a PTE that
// is not in RAM gives the access fault of the original access instead, except
// for a fetch, whose walk ends KVM_RUN as the fetch itself would.

import { accessStatus, accessCause, accessTval, curVcpu, ACCESS_OK, ACCESS_EXCEPTION, ACCESS_EXIT } from "./access_state";
import { ACC_READ, ACC_FETCH, ACC_WRITE } from "./fault";
import { exitFail } from "./exit";
import { vcpuGfnToMemslot, gfnToHvaMemslot, isErrorHva } from "../kvm/kvm_host";
import { hvaToLinear } from "../hostmm/mm";
import {
  getField, getPriv, OFF_SATP, OFF_SSTATUS, SATP_PPN_MASK, SSTATUS_SUM, SSTATUS_MXR, PRIV_U,
  CAUSE_FETCH_PAGE, CAUSE_LOAD_PAGE, CAUSE_STORE_PAGE, CAUSE_FETCH_ACCESS, CAUSE_LOAD_ACCESS, CAUSE_STORE_ACCESS,
} from "../cpu/state";
import { PAGE_SHIFT, PAGE_MASK } from "../layout";
import { EOPNOTSUPP, CHECK_RUN_FETCH_NO_SLOT } from "../errno";

export const PTE_V: u64 = 1 << 0;
export const PTE_R: u64 = 1 << 1;
export const PTE_W: u64 = 1 << 2;
export const PTE_X: u64 = 1 << 3;
export const PTE_U: u64 = 1 << 4;
export const PTE_G: u64 = 1 << 5;
export const PTE_A: u64 = 1 << 6;
export const PTE_D: u64 = 1 << 7;
const PTE_PPN_SHIFT: u64 = 10;
const PTE_PPN_MASK: u64 = (<u64>1 << 44) - 1;
// Bits 63..54: N (Svnapot) and PBMT (Svpbmt) are not implemented, the rest are
// reserved; any of them set makes the PTE invalid.
const PTE_HIGH_SHIFT: u64 = 54;

const LEVELS: i32 = 3;
const VPN_BITS: i32 = 9;

/** The level of the leaf PTE the last successful translate() found (0: a 4 KiB page, 1: 2 MiB, 2: 1 GiB). */
export let walkLevel: i32 = 0;

function fault(va: u64, acc: i32): u64 {
  accessStatus = ACCESS_EXCEPTION;
  accessCause = acc == ACC_FETCH ? CAUSE_FETCH_PAGE : acc == ACC_WRITE ? CAUSE_STORE_PAGE : CAUSE_LOAD_PAGE;
  accessTval = va;
  return 0;
}

/** The guest physical address of va for an access of kind acc, or 0 with accessStatus set. */
export function translate(va: u64, acc: i32): u64 {
  // Bits 63..38 must all be equal, or the address is outside both halves.
  if (<u64>((<i64>va << 25) >> 25) != va) return fault(va, acc);

  let table = (getField(OFF_SATP) & SATP_PPN_MASK) << 12;
  let level = LEVELS - 1;
  let pte: u64 = 0;
  while (true) {
    const shift = <u64>(12 + VPN_BITS * level);
    const pteAddr = table + (((va >> shift) & 511) << 3);
    pte = physLoad64(pteAddr);
    // A page-table read outside RAM: for a load or store the access fault of
    // its type; a fetch's ends the run (fetchWithoutRam).
    if (accessStatus != ACCESS_OK) {
      if (acc == ACC_FETCH) fetchWithoutRam(pteAddr);
      else accessFault(va, acc);
      return 0;
    }
    if ((pte & PTE_V) == 0 || (pte & (PTE_R | PTE_W)) == PTE_W || (pte >> PTE_HIGH_SHIFT) != 0) return fault(va, acc);
    if ((pte & (PTE_R | PTE_X)) != 0) break; // leaf
    // A pointer to the next level: D, A and U are reserved in it.
    if (level == 0 || (pte & (PTE_D | PTE_A | PTE_U)) != 0) return fault(va, acc);
    table = ((pte >> PTE_PPN_SHIFT) & PTE_PPN_MASK) << 12;
    level--;
  }

  // Privilege: U pages are for U-mode; S-mode may load/store them only with
  // SUM and may never execute them. S pages are never accessible from U-mode.
  const sstatus = getField(OFF_SSTATUS);
  if ((pte & PTE_U) != 0) {
    if (getPriv() != PRIV_U && (acc == ACC_FETCH || (sstatus & SSTATUS_SUM) == 0)) return fault(va, acc);
  } else if (getPriv() == PRIV_U) {
    return fault(va, acc);
  }
  let allowed: bool;
  if (acc == ACC_FETCH) allowed = (pte & PTE_X) != 0;
  else if (acc == ACC_WRITE) allowed = (pte & PTE_W) != 0;
  else allowed = (pte & PTE_R) != 0 || ((sstatus & SSTATUS_MXR) != 0 && (pte & PTE_X) != 0);
  if (!allowed) return fault(va, acc);

  // A superpage's PPN must be aligned to its size.
  const ppn = (pte >> PTE_PPN_SHIFT) & PTE_PPN_MASK;
  const lowPpn = (<u64>1 << <u64>(VPN_BITS * level)) - 1;
  if ((ppn & lowPpn) != 0) return fault(va, acc);

  // Svade: A must be set, and D too for a store or AMO; else the access's page fault.
  if ((pte & PTE_A) == 0 || (acc == ACC_WRITE && (pte & PTE_D) == 0)) return fault(va, acc);

  const offMask = (<u64>1 << <u64>(12 + VPN_BITS * level)) - 1;
  walkLevel = level;
  return ((ppn << 12) & ~offMask) | (va & offMask);
}

/** An access exception of kind acc at va. */
function accessFault(va: u64, acc: i32): void {
  accessStatus = ACCESS_EXCEPTION;
  accessCause = acc == ACC_FETCH ? CAUSE_FETCH_ACCESS : acc == ACC_WRITE ? CAUSE_STORE_ACCESS : CAUSE_LOAD_ACCESS;
  accessTval = va;
}

/**
 * gstage_page_fault emulates MMIO only for loads and stores: a fetch from a
 * gpa without usable RAM, or whose page-table walk reads from one (an
 * implicit access faults with the cause of its fetch), ends KVM_RUN with -EOPNOTSUPP.
 */
export function fetchWithoutRam(gpa: u64): void {
  exitFail(curVcpu, gpa, EOPNOTSUPP, CHECK_RUN_FETCH_NO_SLOT);
  accessStatus = ACCESS_EXIT;
}

/**
 * Guest-physical read for the page-table walker (kvm_vcpu_read_guest-like):
 * the linear address of gpa, or 0 when no usable RAM slot backs it.
 */
function physAccess(vcpuP: usize, gpa: u64): usize {
  const gfn = gpa >> PAGE_SHIFT;
  const hva = gfnToHvaMemslot(vcpuGfnToMemslot(vcpuP, gfn), gfn, false);
  if (isErrorHva(hva)) return 0;
  return hvaToLinear(hva + (gpa & PAGE_MASK), false);
}

/** A page-table read of the walk (guest physical); an access exception when no RAM backs it. */
function physLoad64(gpa: u64): u64 {
  const p = physAccess(curVcpu, gpa);
  if (p == 0) { accessFault(gpa, ACC_READ); return 0; }
  return load<u64>(p);
}
