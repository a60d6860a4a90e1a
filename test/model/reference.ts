// A plain TypeScript reference model of KVM's memslot rules, written from
// the kernel's rules (virt/kvm/kvm_main.c: __kvm_set_memory_region and its
// checks, kvm_set_memslot, the generation counting of
// kvm_swap_active_memslots, __gfn_to_hva_many) and nothing else. It is deliberately naive: a Map
// of slots per address space, a linear overlap scan, a generation counter.
// The randomized test drives it side by side with the real core.
//
// Scope: KVM_SET_USER_MEMORY_REGION (v1) and KVM_SET_USER_MEMORY_REGION2
// without a successful guest_memfd bind (this build has no guest_memfd files,
// so every bind fails), the x86 internal slots (__x86_set_memory_region), gfn
// lookups and gfn -> hva translation, and the core's debug fault injection
// points. A default x86 VM: READONLY supported, no dirty ring, so a slot has
// a dirty bitmap exactly when it has LOG_DIRTY_PAGES.

export const PAGE_SIZE = 4096n;
export const U64_MAX = (1n << 64n) - 1n;

export const LOG_DIRTY_PAGES = 1;
export const READONLY = 2;
export const GUEST_MEMFD = 4;

export const USER_SLOTS = 32764; // KVM_USER_MEM_SLOTS: user ids 0..32763
export const MAX_USER_PAGES = (1n << 31n) - 1n;
export const INTERNAL_IDS = [32764, 32765, 32766] as const;

export const EIO = 5, EBADF = 9, ENOMEM = 12, EFAULT = 14, EEXIST = 17, EINVAL = 22;

/** gfn -> hva failure values (x86-64 PAGE_OFFSET, 4-level). */
export const HVA_ERR_BAD = 0xffff888000000000n;
export const HVA_ERR_RO_BAD = HVA_ERR_BAD + PAGE_SIZE;

export type Change = "CREATE" | "DELETE" | "MOVE" | "FLAGS_ONLY" | "NOOP";
export type FaultPoint = "alloc_slot" | "alloc_invalid_slot" | "alloc_bitmap" | "arch_prepare";

export interface ModelConfig {
  /** Address spaces of the VM (1, or 2 with SMM). */
  nrAs: number;
  /** Largest gfn a slot may reach (x86 check in arch prepare). */
  maxGfn: bigint;
  /** TASK_SIZE_MAX: first address user space cannot use. */
  userAddressLimit: bigint;
  /** The VM supports KVM_MEM_READONLY (x86: unless protected state). */
  readonlySupported: boolean;
}

export const DEFAULT_MODEL_CONFIG: ModelConfig = {
  nrAs: 1,
  maxGfn: (1n << 40n) - 1n,
  userAddressLimit: 0x7ffffffff000n,
  readonlySupported: true,
};

export interface ModelSlot {
  id: number;
  asId: number;
  baseGfn: bigint;
  npages: bigint;
  userspaceAddr: bigint;
  flags: number;
  hasDirtyBitmap: boolean;
}

/** One KVM_SET_USER_MEMORY_REGION(2) request as the kernel sees it after copy_from_user. */
export interface RegionRequest {
  version: 1 | 2;
  /** u32: (as_id << 16) | id. */
  slot: number;
  /** u32. */
  flags: number;
  guestPhysAddr: bigint;
  memorySize: bigint;
  userspaceAddr: bigint;
  /** v2 only (the v1 ioctl zero-fills it). */
  guestMemfdOffset: bigint;
  /** v2 only, as a signed fd number. */
  guestMemfd: number;
}

export interface Outcome {
  /** 0 or a positive errno. */
  errno: number;
  /** The change the request was classified as (when it got that far). */
  change?: Change;
  /** Which rule decided the outcome (for failure messages). */
  rule: string;
}

interface Space {
  slots: Map<number, ModelSlot>;
  generation: bigint;
}

interface Armed {
  errno: number;
  skip: number;
}

export class MemslotModel {
  readonly cfg: ModelConfig;
  private readonly spaces: Space[] = [];
  /** File descriptors that are open but are not guest_memfd files. */
  readonly openFds = new Set<number>();
  private readonly armed = new Map<FaultPoint, Armed>();

  constructor(cfg: Partial<ModelConfig> = {}) {
    this.cfg = { ...DEFAULT_MODEL_CONFIG, ...cfg };
    // kvm_create_vm: both sets of address space i start at generation i.
    for (let i = 0; i < this.cfg.nrAs; i++) this.spaces.push({ slots: new Map(), generation: BigInt(i) });
  }

  // ---- observation ----

  /** The slots of an address space in gfn order. */
  slots(asId: number): ModelSlot[] {
    const sp = this.spaces[asId];
    if (!sp) return [];
    return [...sp.slots.values()].map((s) => ({ ...s })).sort((a, b) => (a.baseGfn < b.baseGfn ? -1 : a.baseGfn > b.baseGfn ? 1 : 0));
  }

  slot(asId: number, id: number): ModelSlot | undefined {
    const s = this.spaces[asId]?.slots.get(id);
    return s ? { ...s } : undefined;
  }

  generation(asId: number): bigint {
    return this.spaces[asId].generation;
  }

  /** nr_memslot_pages (all slots of all address spaces) and nr_memslots_dirty_logging. */
  stats(): { nrMemslotPages: bigint; nrMemslotsDirtyLogging: number } {
    let pages = 0n, logging = 0;
    for (const sp of this.spaces) {
      for (const s of sp.slots.values()) {
        pages += s.npages;
        if (s.flags & LOG_DIRTY_PAGES) logging++;
      }
    }
    return { nrMemslotPages: pages, nrMemslotsDirtyLogging: logging };
  }

  /** search_memslots: the slot containing gfn, or null. */
  lookup(asId: number, gfn: bigint): ModelSlot | null {
    const sp = this.spaces[asId];
    if (!sp) return null;
    for (const s of sp.slots.values()) if (gfn >= s.baseGfn && gfn < s.baseGfn + s.npages) return { ...s };
    return null;
  }

  /** __gfn_to_hva_many; write = the non-_prot variants. */
  gfnToHva(asId: number, gfn: bigint, write: boolean): bigint {
    const s = this.lookup(asId, gfn);
    if (!s) return HVA_ERR_BAD;
    if (write && s.flags & READONLY) return HVA_ERR_RO_BAD;
    return BigInt.asUintN(64, s.userspaceAddr + (gfn - s.baseGfn) * PAGE_SIZE);
  }

  // ---- fault injection (the core's debug points) ----

  /** Arms a point: its next `skip` passes succeed, the one after fails with errno. */
  arm(point: FaultPoint, errno: number, skip = 0): void {
    this.armed.set(point, { errno, skip });
  }

  isArmed(point?: FaultPoint): boolean {
    return point === undefined ? this.armed.size > 0 : this.armed.has(point);
  }

  armedPoints(): string {
    return [...this.armed].map(([p, a]) => `${p}(errno ${a.errno}, skip ${a.skip})`).join(", ") || "none";
  }

  /** The update reached `point`: 0 to go on, or the injected errno (which disarms it). */
  private reach(point: FaultPoint): number {
    const a = this.armed.get(point);
    if (!a) return 0;
    if (a.skip > 0) {
      a.skip--;
      return 0;
    }
    this.armed.delete(point);
    return a.errno;
  }

  // ---- the ioctls ----

  /** Check 1: a short argument buffer. Nothing else happens. */
  shortBuffer(): Outcome {
    return { errno: EFAULT, rule: "1: copy_from_user of the whole struct failed" };
  }

  /** kvm_vm_ioctl + kvm_vm_ioctl_set_memory_region for a user request. */
  setUserMemoryRegion(req: RegionRequest): Outcome {
    const flags = req.flags >>> 0;
    // Check 2: the v1 ioctl only knows LOG_DIRTY_PAGES and READONLY.
    if (req.version === 1 && (flags & ~(LOG_DIRTY_PAGES | READONLY)) !== 0) {
      return { errno: EINVAL, rule: "2: v1 flags other than LOG_DIRTY_PAGES|READONLY" };
    }
    const slot = req.slot >>> 0;
    const id = slot & 0xffff;
    const asId = slot >>> 16;
    // Check 3: user slot ids only (low 16 bits).
    if (id >= USER_SLOTS) return { errno: EINVAL, rule: "3: slot id is not a user slot" };
    // Check 4: flag validity (check_memory_region_flags).
    if (!this.flagsValid(flags)) return { errno: EINVAL, rule: "4: invalid flags for this VM and request" };
    // The v1 ioctl zero-fills the v2 fields.
    const gmemOffset = req.version === 1 ? 0n : req.guestMemfdOffset;
    const gmemFd = req.version === 1 ? 0 : req.guestMemfd;
    return this.setMemoryRegion(asId, id, flags, req.guestPhysAddr, req.memorySize, req.userspaceAddr, gmemOffset, gmemFd);
  }

  private flagsValid(flags: number): boolean {
    let valid = LOG_DIRTY_PAGES | GUEST_MEMFD;
    if (flags & GUEST_MEMFD) valid &= ~LOG_DIRTY_PAGES;
    if (this.cfg.readonlySupported && !(flags & GUEST_MEMFD)) valid |= READONLY;
    return (flags & ~valid) === 0;
  }

  /** access_ok(hva, size) against the user address limit. */
  private accessOk(hva: bigint, size: bigint): boolean {
    const limit = this.cfg.userAddressLimit;
    if (size === 0n) return hva <= limit;
    const end = hva + size;
    if (end > U64_MAX) return false; // wraps
    return end <= limit;
  }

  /** kvm_set_memory_region (checks 5..21), shared by user and internal requests. */
  private setMemoryRegion(asId: number, id: number, flags: number, gpa: bigint, size: bigint, hva: bigint,
                          gmemOffset: bigint, gmemFd: number): Outcome {
    // Check 5: size page aligned.
    if (size % PAGE_SIZE !== 0n) return { errno: EINVAL, rule: "5: memory_size not page aligned" };
    // Check 6: gpa page aligned.
    if (gpa % PAGE_SIZE !== 0n) return { errno: EINVAL, rule: "6: guest_phys_addr not page aligned" };
    // Check 7: hva aligned (no pointer tags on this host) and a valid user range.
    if (hva % PAGE_SIZE !== 0n) return { errno: EINVAL, rule: "7: userspace_addr not page aligned" };
    if (!this.accessOk(hva, size)) return { errno: EINVAL, rule: "7: userspace_addr range fails access_ok" };
    // Check 8: guest_memfd offset when the flag is set.
    if (flags & GUEST_MEMFD) {
      if (gmemOffset % PAGE_SIZE !== 0n) return { errno: EINVAL, rule: "8: guest_memfd_offset not page aligned" };
      if (gmemOffset + size > U64_MAX) return { errno: EINVAL, rule: "8: guest_memfd_offset + memory_size wraps" };
    }
    // Check 9: address space.
    if (asId >= this.cfg.nrAs) return { errno: EINVAL, rule: "9: as_id >= nr_as" };
    // Check 10: gpa range wraps.
    if (gpa + size > U64_MAX) return { errno: EINVAL, rule: "10: guest_phys_addr + memory_size wraps" };
    const npages = size / PAGE_SIZE;
    const baseGfn = gpa / PAGE_SIZE;
    // Check 11: page limit for user slots.
    if (id < USER_SLOTS && npages > MAX_USER_PAGES) return { errno: EINVAL, rule: "11: more than 2^31-1 pages" };

    const sp = this.spaces[asId];
    const old = sp.slots.get(id);
    let change: Change;
    if (size === 0n) {
      // Check 12.
      if (!old) return { errno: EINVAL, rule: "12: delete of a slot that does not exist" };
      change = "DELETE";
    } else if (!old) {
      change = "CREATE";
    } else {
      // Check 15.
      if (flags & GUEST_MEMFD) return { errno: EINVAL, rule: "15: modify with GUEST_MEMFD" };
      // Check 16.
      if (hva !== old.userspaceAddr) return { errno: EINVAL, rule: "16: modify changes userspace_addr" };
      if (npages !== old.npages) return { errno: EINVAL, rule: "16: modify changes the size" };
      if ((flags ^ old.flags) & (READONLY | GUEST_MEMFD)) return { errno: EINVAL, rule: "16: modify changes READONLY/GUEST_MEMFD" };
      // Check 17.
      if (baseGfn === old.baseGfn && flags === old.flags) return { errno: 0, change: "NOOP", rule: "17: no-op modify" };
      change = baseGfn !== old.baseGfn ? "MOVE" : "FLAGS_ONLY";
    }

    // Check 18: overlap with any other slot of this address space (internal ones included).
    if (change === "CREATE" || change === "MOVE") {
      for (const s of sp.slots.values()) {
        if (s.id === id) continue;
        if (baseGfn < s.baseGfn + s.npages && s.baseGfn < baseGfn + npages) {
          return { errno: EEXIST, change, rule: `18: gfn range overlaps slot ${s.id}` };
        }
      }
    }

    // Check 19: the new slot object.
    if (change !== "DELETE") {
      const e = this.reach("alloc_slot");
      if (e) return { errno: e, change, rule: "19: allocation of the new slot failed (injected)" };
    }

    // Check 20: guest_memfd bind (only a CREATE gets here with the flag). No
    // guest_memfd file exists in this build, so the bind always fails.
    if (change !== "DELETE" && flags & GUEST_MEMFD) {
      if (!this.openFds.has(gmemFd)) return { errno: EBADF, change, rule: "20: guest_memfd fd is not open" };
      return { errno: EINVAL, change, rule: "20: fd is not a guest_memfd" };
    }

    const next: ModelSlot | null = change === "DELETE" ? null : {
      id, asId, baseGfn, npages, userspaceAddr: hva, flags,
      hasDirtyBitmap: (flags & LOG_DIRTY_PAGES) !== 0,
    };
    return this.setMemslot(sp, old ?? null, next, change);
  }

  /** kvm_set_memslot. */
  private setMemslot(sp: Space, old: ModelSlot | null, next: ModelSlot | null, change: Change): Outcome {
    const swap = () => { sp.generation += BigInt(this.cfg.nrAs); };
    const twoPhase = change === "DELETE" || change === "MOVE";
    if (twoPhase) {
      const e = this.reach("alloc_invalid_slot");
      if (e) return { errno: e, change, rule: "21: allocation of the INVALID copy failed (injected)" };
      swap(); // pass 1: publish the INVALID copy
    }
    const fail = (errno: number, rule: string): Outcome => {
      if (twoPhase) swap(); // revert: put old back
      return { errno, change, rule: `21: ${rule}` };
    };
    if (next) {
      // Dirty bitmap: reuse old's, or allocate when logging is newly on.
      if (next.flags & LOG_DIRTY_PAGES && !(old && old.hasDirtyBitmap)) {
        const e = this.reach("alloc_bitmap");
        if (e) return fail(e, "dirty bitmap allocation failed (injected)");
      }
      if (change === "CREATE" || change === "MOVE") {
        if (next.baseGfn + next.npages - 1n > this.cfg.maxGfn) return fail(EINVAL, "last gfn above the largest guest gfn");
        const e = this.reach("arch_prepare");
        if (e) return fail(e, "arch prepare failed (injected)");
      }
    }
    // Install.
    if (old) sp.slots.delete(old.id);
    if (next) sp.slots.set(next.id, next);
    swap();
    return { errno: 0, change, rule: `success (${change})` };
  }

  /**
   * __x86_set_memory_region(id, gpa, size): size 0 deletes. `hva` is the
   * address the VMM's fresh mapping got (creation only; the model cannot
   * choose it). Installs in each address space in turn and stops at the
   * first failure, without undoing the address spaces already done.
   */
  x86SetMemoryRegion(id: number, gpa: bigint, size: bigint, hva: bigint): Outcome {
    const as0 = this.spaces[0].slots.get(id);
    let delHva = hva;
    if (size !== 0n) {
      if (as0) return { errno: EEXIST, rule: "internal slot already exists" };
    } else {
      if (!as0) return { errno: 0, rule: "internal delete of an absent slot: nothing to do" };
      delHva = as0.userspaceAddr;
    }
    for (let as = 0; as < this.cfg.nrAs; as++) {
      const r = this.setMemoryRegion(as, id, 0, gpa, size, size === 0n ? delHva : hva, 0n, 0);
      if (r.errno) return { ...r, rule: `AS ${as}: ${r.rule}` };
    }
    return { errno: 0, rule: size === 0n ? "internal slot deleted" : "internal slot created" };
  }
}
