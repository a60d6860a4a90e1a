// Memslots as the host sees them: the core's snapshot records (struct
// kvm_memory_slot's fields the API shows) decoded, one slot through a chosen
// lookup path (search_memslots, the set's last_used_slot, a vCPU's cache), and
// a whole set in gfn order.

import { viewAt, type CoreExports } from "./core.js";
import { KvmError, ERRNO, CHECK } from "./errors.js";
import { SNAP } from "./abi.gen.js";
import { KVM_MEMSLOT_INVALID } from "./uapi.js";

export interface Memslot {
  id: number;
  asId: number;
  baseGfn: bigint;
  npages: bigint;
  guestPhysAddr: bigint;
  memorySize: bigint;
  userspaceAddr: bigint;
  flags: number;
  /** Being deleted or moved: visible to lookups, not translatable. */
  invalid: boolean;
  hasDirtyBitmap: boolean;
}

export function decodeSnap(dv: DataView): Memslot {
  const baseGfn = dv.getBigUint64(SNAP.BASE_GFN, true), npages = dv.getBigUint64(SNAP.NPAGES, true);
  const flags = dv.getUint32(SNAP.FLAGS, true);
  return {
    baseGfn, npages, guestPhysAddr: baseGfn << 12n, memorySize: npages << 12n,
    userspaceAddr: dv.getBigUint64(SNAP.UADDR, true), flags: flags & 0xffff, invalid: (flags & KVM_MEMSLOT_INVALID) !== 0,
    id: dv.getUint32(SNAP.ID, true), asId: dv.getUint32(SNAP.AS_ID, true), hasDirtyBitmap: dv.getUint32(SNAP.HAS_BITMAP, true) !== 0,
  };
}

/** The core's gfn lookup (mode: a LOOKUP of the core: search_memslots, the set's last_used_slot, a vCPU's), decoded. */
export function lookupSlot(core: CoreExports, fd: number, asId: number, gfn: bigint, mode: number): Memslot | null {
  return core.lookupGfn(fd, asId, gfn, mode) ? decodeSnap(viewAt(core, core.ioBuffer(), SNAP.BYTES)) : null;
}

/** The slots of VM fd's address space asId in gfn order (the active set, or the inactive one). */
export function snapshotMemslots(core: CoreExports, fd: number, asId: number, inactive: boolean): Memslot[] {
  if (asId >= core.vmNrAs(fd)) return [];
  const p = core.snapshotMemslots(fd, asId, inactive);
  if (p === 0) throw new KvmError(ERRNO.ENOMEM, CHECK.NOMEM, {}, "memslots");
  try {
    const n = viewAt(core, p, 4).getUint32(0, true);
    const out: Memslot[] = [];
    for (let i = 0; i < n; i++) out.push(decodeSnap(viewAt(core, p + SNAP.HEADER_BYTES + i * SNAP.BYTES, SNAP.BYTES)));
    return out;
  } finally {
    core.kmfree(p);
  }
}
