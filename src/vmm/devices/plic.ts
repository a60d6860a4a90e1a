// A platform-level interrupt controller as SiFive's PLIC (the `sifive,plic-1.0.0`
// / `riscv,plic0` that Linux's irq-sifive-plic driver programs): per-source
// priorities, pending bits, per-context enable bits, a threshold and a
// claim/complete register per context. One context per hart, its S-mode
// (interrupts-extended = <&cpuN_intc 9>, device-tree.ts). Sources are level
// triggered: the gateway forwards a source whose line is high and which is not
// claimed; completing it forwards it again if the line is still high. Each
// context's output is the hart's external interrupt line, driven through
// KVM_INTERRUPT (`setLine`, Vcpu.setExternalInterrupt).

import type { MmioDevice } from "./mmio-bus.js";

/** The register map (byte offsets). */
const PRIORITY_BASE = 0x0, PENDING_BASE = 0x1000, ENABLE_BASE = 0x2000, ENABLE_STRIDE = 0x80;
const CONTEXT_BASE = 0x200000, CONTEXT_STRIDE = 0x1000;
/** Priorities and thresholds are 3 bits wide here (WARL: higher bits read as 0). */
const PRIORITY_MASK = 7;

export const PLIC_SIZE = 0x4000000n;

/**
 * Everything a Plic holds (save / restore). Per-source arrays are indexed by
 * source id (index 0, no source, is 0); per-context ones by context.
 */
export interface PlicState {
  ndev: number;
  contexts: number;
  priority: number[];
  /** Lines as the devices drive them (0 / 1). */
  level: number[];
  pending: number[];
  claimed: number[];
  /** enable[c][s]. */
  enable: number[][];
  threshold: number[];
  /** Each context's output line (the hart's external interrupt). */
  output: boolean[];
}

export class Plic implements MmioDevice {
  private readonly priority: Uint32Array;
  /** Interrupt lines as the devices drive them. */
  private readonly level: Uint8Array;
  /** IP bits: forwarded by the gateway, not yet claimed. */
  private readonly pending: Uint8Array;
  /** Claimed and not yet completed: the gateway holds the source back. */
  private readonly claimed: Uint8Array;
  private readonly enable: Uint8Array[];
  private readonly threshold: Uint32Array;
  /** The output line of each context as last driven (so setLine is called on changes only). */
  private readonly output: boolean[];

  /**
   * @param ndev sources 1..ndev (source 0 does not exist)
   * @param contexts one per hart
   * @param setLine drives context c's output (the hart's sip.SEIP)
   */
  constructor(readonly ndev: number, readonly contexts: number, private readonly setLine: (context: number, level: boolean) => void) {
    if (!Number.isInteger(ndev) || ndev < 1 || ndev > 1023) throw new RangeError(`plic: ndev ${ndev}`);
    if (!Number.isInteger(contexts) || contexts < 1 || contexts > 15872) throw new RangeError(`plic: contexts ${contexts}`);
    this.priority = new Uint32Array(ndev + 1);
    this.level = new Uint8Array(ndev + 1);
    this.pending = new Uint8Array(ndev + 1);
    this.claimed = new Uint8Array(ndev + 1);
    this.enable = Array.from({ length: contexts }, () => new Uint8Array(ndev + 1));
    this.threshold = new Uint32Array(contexts);
    this.output = new Array<boolean>(contexts).fill(false);
  }

  save(): PlicState {
    return { ndev: this.ndev, contexts: this.contexts, priority: [...this.priority], level: [...this.level],
      pending: [...this.pending], claimed: [...this.claimed], enable: this.enable.map((e) => [...e]),
      threshold: [...this.threshold], output: [...this.output] };
  }

  /**
   * Takes over a saved state of a PLIC of the same shape. The outputs are set
   * without calls to setLine: the caller drives the harts' lines from lineOf.
   */
  restore(s: PlicState): void {
    checkPlicState(s, this.ndev, this.contexts);
    this.priority.set(s.priority);
    this.level.set(s.level);
    this.pending.set(s.pending);
    this.claimed.set(s.claimed);
    s.enable.forEach((e, c) => this.enable[c].set(e));
    this.threshold.set(s.threshold);
    s.output.forEach((o, c) => { this.output[c] = o; });
  }

  /** A device's interrupt line: source `irq` goes high or low. */
  setIrq(irq: number, high: boolean): void {
    if (!Number.isInteger(irq) || irq < 1 || irq > this.ndev) throw new RangeError(`plic: source ${irq}`);
    this.level[irq] = high ? 1 : 0;
    if (high && !this.claimed[irq]) this.pending[irq] = 1;
    // A level source whose line drops before it is claimed is no longer pending.
    if (!high && !this.claimed[irq]) this.pending[irq] = 0;
    this.update();
  }

  /** Whether context c's output is high (the hart has an external interrupt to take). */
  lineOf(context: number): boolean {
    return this.output[context] ?? false;
  }

  /** The highest-priority pending source enabled for context c with priority above `floor` (ties: lowest id), or 0. */
  private best(c: number, floor: number): number {
    return bestSource(this.priority, this.pending, this.enable[c], floor);
  }

  private update(): void {
    for (let c = 0; c < this.contexts; c++) {
      const high = this.best(c, this.threshold[c]) !== 0;
      if (high !== this.output[c]) {
        this.output[c] = high;
        this.setLine(c, high);
      }
    }
  }

  /** Claim: the best pending source of context c (priority above 0; the threshold masks only the notification), which stops being pending. */
  private claim(c: number): number {
    const id = this.best(c, 0);
    if (id !== 0) {
      this.pending[id] = 0;
      this.claimed[id] = 1;
      this.update();
    }
    return id;
  }

  /** Complete: a source enabled for context c is released; still high, it is forwarded again. Others are ignored. */
  private complete(c: number, id: number): void {
    if (id < 1 || id > this.ndev || !this.enable[c][id] || !this.claimed[id]) return;
    this.claimed[id] = 0;
    if (this.level[id]) this.pending[id] = 1;
    this.update();
  }

  read(offset: bigint, len: number): bigint {
    if (len !== 4 || (offset & 3n) !== 0n) return 0n;
    const off = Number(offset);
    if (off < PENDING_BASE) {
      const s = off >> 2;
      return BigInt(s <= this.ndev ? this.priority[s] : 0);
    }
    if (off < ENABLE_BASE) return BigInt(this.bitsWord(this.pending, (off - PENDING_BASE) >> 2));
    if (off < CONTEXT_BASE) {
      const c = Math.floor((off - ENABLE_BASE) / ENABLE_STRIDE);
      return c < this.contexts ? BigInt(this.bitsWord(this.enable[c], ((off - ENABLE_BASE) % ENABLE_STRIDE) >> 2)) : 0n;
    }
    const c = Math.floor((off - CONTEXT_BASE) / CONTEXT_STRIDE);
    if (c >= this.contexts) return 0n;
    const reg = (off - CONTEXT_BASE) % CONTEXT_STRIDE;
    if (reg === 0) return BigInt(this.threshold[c]);
    if (reg === 4) return BigInt(this.claim(c));
    return 0n;
  }

  write(offset: bigint, len: number, value: bigint): void {
    if (len !== 4 || (offset & 3n) !== 0n) return;
    const off = Number(offset);
    const v = Number(value & 0xffffffffn);
    if (off < PENDING_BASE) {
      const s = off >> 2;
      if (s >= 1 && s <= this.ndev) this.priority[s] = v & PRIORITY_MASK;
    } else if (off < ENABLE_BASE) {
      return; // pending bits are read-only
    } else if (off < CONTEXT_BASE) {
      const c = Math.floor((off - ENABLE_BASE) / ENABLE_STRIDE);
      if (c >= this.contexts) return;
      const word = ((off - ENABLE_BASE) % ENABLE_STRIDE) >> 2;
      for (let b = 0; b < 32; b++) {
        const s = word * 32 + b;
        if (s >= 1 && s <= this.ndev) this.enable[c][s] = (v >>> b) & 1;
      }
    } else {
      const c = Math.floor((off - CONTEXT_BASE) / CONTEXT_STRIDE);
      if (c >= this.contexts) return;
      const reg = (off - CONTEXT_BASE) % CONTEXT_STRIDE;
      if (reg === 0) this.threshold[c] = v & PRIORITY_MASK;
      else if (reg === 4) { this.complete(c, v); return; }
      else return;
    }
    this.update();
  }

  /** 32 bits of a per-source bit array, word w (bit 0 of word 0 is source 0, which is never set). */
  private bitsWord(bits: Uint8Array, w: number): number {
    let v = 0;
    for (let b = 0; b < 32; b++) {
      const s = w * 32 + b;
      if (s >= 1 && s <= this.ndev && bits[s]) v |= 1 << b;
    }
    return v >>> 0;
  }
}

/** The highest-priority pending source of `enable` with priority above `floor` (ties: lowest id), or 0. */
function bestSource(priority: ArrayLike<number>, pending: ArrayLike<number>, enable: ArrayLike<number>, floor: number): number {
  let id = 0, prio = floor;
  for (let s = 1; s < priority.length; s++) {
    if (pending[s] && enable[s] && priority[s] > prio) { id = s; prio = priority[s]; }
  }
  return id;
}

/**
 * Refuses a state that is not one of a PLIC with ndev sources and these
 * contexts (RangeError naming the field): sizes, value ranges, and outputs
 * that are what the gateway state makes them.
 */
export function checkPlicState(s: PlicState, ndev: number, contexts: number): void {
  if (s.ndev !== ndev || s.contexts !== contexts) {
    throw new RangeError(`plic: ${s.ndev} sources / ${s.contexts} contexts, this PLIC has ${ndev} / ${contexts}`);
  }
  const values = (name: string, a: unknown, length: number, max: number, perSource: boolean) => {
    if (!Array.isArray(a) || a.length !== length || !a.every((v) => Number.isInteger(v) && v >= 0 && v <= max)) {
      throw new RangeError(`plic: ${name} is not ${length} values in 0..${max}`);
    }
    if (perSource && a[0] !== 0) throw new RangeError(`plic: ${name} has a value for source 0, which does not exist`);
  };
  values("priority", s.priority, ndev + 1, PRIORITY_MASK, true);
  values("level", s.level, ndev + 1, 1, true);
  values("pending", s.pending, ndev + 1, 1, true);
  values("claimed", s.claimed, ndev + 1, 1, true);
  if (s.pending.some((p, i) => p && s.claimed[i])) throw new RangeError("plic: a source is both pending and claimed (the gateway holds a claimed one back)");
  if (!Array.isArray(s.enable) || s.enable.length !== contexts) throw new RangeError(`plic: enable is not ${contexts} contexts`);
  s.enable.forEach((e, c) => values(`enable[${c}]`, e, ndev + 1, 1, true));
  values("threshold", s.threshold, contexts, PRIORITY_MASK, false);
  if (!Array.isArray(s.output) || s.output.length !== contexts) throw new RangeError(`plic: output is not ${contexts} lines`);
  s.output.forEach((o, c) => {
    if (o !== (bestSource(s.priority, s.pending, s.enable[c], s.threshold[c]) !== 0)) {
      throw new RangeError(`plic: output[${c}] ${String(o)} contradicts the pending, enabled sources above the threshold`);
    }
  });
}
