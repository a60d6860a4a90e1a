// A tiny RV64IMA + Zicsr assembler for the CPU tests: instruction encoders by
// format, named instructions on top, and a program builder with labels so
// tests need no cross compiler. Encoders take register numbers and signed
// immediates and check their ranges, so a test cannot silently encode a
// different instruction than it names.

export const REG = {
  zero: 0, ra: 1, sp: 2, gp: 3, tp: 4, t0: 5, t1: 6, t2: 7, s0: 8, s1: 9,
  a0: 10, a1: 11, a2: 12, a3: 13, a4: 14, a5: 15, a6: 16, a7: 17,
  s2: 18, s3: 19, s4: 20, s5: 21, s6: 22, s7: 23, s8: 24, s9: 25, s10: 26, s11: 27,
  t3: 28, t4: 29, t5: 30, t6: 31,
} as const;

function reg(r: number): number {
  if (!Number.isInteger(r) || r < 0 || r > 31) throw new Error(`Bad register ${r}`);
  return r;
}

function signed(v: number, bits: number, what: string): number {
  const lo = -(2 ** (bits - 1)), hi = 2 ** (bits - 1) - 1;
  if (!Number.isInteger(v) || v < lo || v > hi) throw new Error(`${what} ${v} does not fit in ${bits} signed bits`);
  return v;
}

function unsigned(v: number, bits: number, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v >= 2 ** bits) throw new Error(`${what} ${v} does not fit in ${bits} unsigned bits`);
  return v;
}

// ---- formats ----

export function rType(op: number, f3: number, f7: number, rd: number, rs1: number, rs2: number): number {
  return ((f7 << 25) | (reg(rs2) << 20) | (reg(rs1) << 15) | (f3 << 12) | (reg(rd) << 7) | op) >>> 0;
}

export function iType(op: number, f3: number, rd: number, rs1: number, imm: number): number {
  signed(imm, 12, "I-immediate");
  return (((imm & 0xfff) << 20) | (reg(rs1) << 15) | (f3 << 12) | (reg(rd) << 7) | op) >>> 0;
}

export function sType(op: number, f3: number, rs1: number, rs2: number, imm: number): number {
  signed(imm, 12, "S-immediate");
  return ((((imm >> 5) & 0x7f) << 25) | (reg(rs2) << 20) | (reg(rs1) << 15) | (f3 << 12) | ((imm & 0x1f) << 7) | op) >>> 0;
}

export function bType(op: number, f3: number, rs1: number, rs2: number, off: number): number {
  signed(off, 13, "B-offset");
  if (off & 1) throw new Error(`B-offset ${off} is odd`);
  return ((((off >> 12) & 1) << 31) | (((off >> 5) & 0x3f) << 25) | (reg(rs2) << 20) | (reg(rs1) << 15) | (f3 << 12) |
    (((off >> 1) & 0xf) << 8) | (((off >> 11) & 1) << 7) | op) >>> 0;
}

/** imm20 is the value of bits 31..12 (0..0xfffff, or a negative 20-bit number). */
export function uType(op: number, rd: number, imm20: number): number {
  if (imm20 < 0) imm20 = signed(imm20, 20, "U-immediate") & 0xfffff;
  unsigned(imm20, 20, "U-immediate");
  return ((imm20 << 12) | (reg(rd) << 7) | op) >>> 0;
}

export function jType(op: number, rd: number, off: number): number {
  signed(off, 21, "J-offset");
  if (off & 1) throw new Error(`J-offset ${off} is odd`);
  return ((((off >> 20) & 1) << 31) | (((off >> 1) & 0x3ff) << 21) | (((off >> 11) & 1) << 20) |
    (((off >> 12) & 0xff) << 12) | (reg(rd) << 7) | op) >>> 0;
}

// ---- RV64I ----
const OP = 0x33, OP_IMM = 0x13, OP_32 = 0x3b, OP_IMM_32 = 0x1b, LOAD = 0x03, STORE = 0x23, BRANCH = 0x63;

export const add = (rd: number, a: number, b: number) => rType(OP, 0, 0, rd, a, b);
export const sub = (rd: number, a: number, b: number) => rType(OP, 0, 0x20, rd, a, b);
export const sll = (rd: number, a: number, b: number) => rType(OP, 1, 0, rd, a, b);
export const slt = (rd: number, a: number, b: number) => rType(OP, 2, 0, rd, a, b);
export const sltu = (rd: number, a: number, b: number) => rType(OP, 3, 0, rd, a, b);
export const xor = (rd: number, a: number, b: number) => rType(OP, 4, 0, rd, a, b);
export const srl = (rd: number, a: number, b: number) => rType(OP, 5, 0, rd, a, b);
export const sra = (rd: number, a: number, b: number) => rType(OP, 5, 0x20, rd, a, b);
export const or = (rd: number, a: number, b: number) => rType(OP, 6, 0, rd, a, b);
export const and = (rd: number, a: number, b: number) => rType(OP, 7, 0, rd, a, b);

export const addi = (rd: number, a: number, imm: number) => iType(OP_IMM, 0, rd, a, imm);
export const slti = (rd: number, a: number, imm: number) => iType(OP_IMM, 2, rd, a, imm);
export const sltiu = (rd: number, a: number, imm: number) => iType(OP_IMM, 3, rd, a, imm);
export const xori = (rd: number, a: number, imm: number) => iType(OP_IMM, 4, rd, a, imm);
export const ori = (rd: number, a: number, imm: number) => iType(OP_IMM, 6, rd, a, imm);
export const andi = (rd: number, a: number, imm: number) => iType(OP_IMM, 7, rd, a, imm);
export const slli = (rd: number, a: number, sh: number) => iType(OP_IMM, 1, rd, a, unsigned(sh, 6, "shamt"));
export const srli = (rd: number, a: number, sh: number) => iType(OP_IMM, 5, rd, a, unsigned(sh, 6, "shamt"));
export const srai = (rd: number, a: number, sh: number) => iType(OP_IMM, 5, rd, a, unsigned(sh, 6, "shamt") | 0x400);

export const addw = (rd: number, a: number, b: number) => rType(OP_32, 0, 0, rd, a, b);
export const subw = (rd: number, a: number, b: number) => rType(OP_32, 0, 0x20, rd, a, b);
export const sllw = (rd: number, a: number, b: number) => rType(OP_32, 1, 0, rd, a, b);
export const srlw = (rd: number, a: number, b: number) => rType(OP_32, 5, 0, rd, a, b);
export const sraw = (rd: number, a: number, b: number) => rType(OP_32, 5, 0x20, rd, a, b);
export const addiw = (rd: number, a: number, imm: number) => iType(OP_IMM_32, 0, rd, a, imm);
export const slliw = (rd: number, a: number, sh: number) => iType(OP_IMM_32, 1, rd, a, unsigned(sh, 5, "shamt"));
export const srliw = (rd: number, a: number, sh: number) => iType(OP_IMM_32, 5, rd, a, unsigned(sh, 5, "shamt"));
export const sraiw = (rd: number, a: number, sh: number) => iType(OP_IMM_32, 5, rd, a, unsigned(sh, 5, "shamt") | 0x400);

export const lui = (rd: number, imm20: number) => uType(0x37, rd, imm20);
export const auipc = (rd: number, imm20: number) => uType(0x17, rd, imm20);
export const jal = (rd: number, off: number) => jType(0x6f, rd, off);
export const jalr = (rd: number, a: number, imm: number) => iType(0x67, 0, rd, a, imm);

export const beq = (a: number, b: number, off: number) => bType(BRANCH, 0, a, b, off);
export const bne = (a: number, b: number, off: number) => bType(BRANCH, 1, a, b, off);
export const blt = (a: number, b: number, off: number) => bType(BRANCH, 4, a, b, off);
export const bge = (a: number, b: number, off: number) => bType(BRANCH, 5, a, b, off);
export const bltu = (a: number, b: number, off: number) => bType(BRANCH, 6, a, b, off);
export const bgeu = (a: number, b: number, off: number) => bType(BRANCH, 7, a, b, off);

export const lb = (rd: number, a: number, imm: number) => iType(LOAD, 0, rd, a, imm);
export const lh = (rd: number, a: number, imm: number) => iType(LOAD, 1, rd, a, imm);
export const lw = (rd: number, a: number, imm: number) => iType(LOAD, 2, rd, a, imm);
export const ld = (rd: number, a: number, imm: number) => iType(LOAD, 3, rd, a, imm);
export const lbu = (rd: number, a: number, imm: number) => iType(LOAD, 4, rd, a, imm);
export const lhu = (rd: number, a: number, imm: number) => iType(LOAD, 5, rd, a, imm);
export const lwu = (rd: number, a: number, imm: number) => iType(LOAD, 6, rd, a, imm);
export const sb = (src: number, a: number, imm: number) => sType(STORE, 0, a, src, imm);
export const sh = (src: number, a: number, imm: number) => sType(STORE, 1, a, src, imm);
export const sw = (src: number, a: number, imm: number) => sType(STORE, 2, a, src, imm);
export const sd = (src: number, a: number, imm: number) => sType(STORE, 3, a, src, imm);

export const fence = () => 0x0ff0000f; // fence iorw, iorw
export const fence_i = () => 0x0000100f;

// ---- M ----
const M = (f3: number) => (rd: number, a: number, b: number) => rType(OP, f3, 1, rd, a, b);
const MW = (f3: number) => (rd: number, a: number, b: number) => rType(OP_32, f3, 1, rd, a, b);
export const mul = M(0), mulh = M(1), mulhsu = M(2), mulhu = M(3), div = M(4), divu = M(5), rem = M(6), remu = M(7);
export const mulw = MW(0), divw = MW(4), divuw = MW(5), remw = MW(6), remuw = MW(7);

// ---- A ----
export const AMO = {
  add: 0x00, swap: 0x01, lr: 0x02, sc: 0x03, xor: 0x04, or: 0x08, and: 0x0c,
  min: 0x10, max: 0x14, minu: 0x18, maxu: 0x1c,
} as const;
/** width: 32 or 64. rs2 is the source (0 for lr). */
export function amo(op: number, width: 32 | 64, rd: number, addr: number, rs2: number, aq = 0, rl = 0): number {
  return rType(0x2f, width === 32 ? 2 : 3, (op << 2) | (aq << 1) | rl, rd, addr, rs2);
}
export const lr_w = (rd: number, a: number) => amo(AMO.lr, 32, rd, a, 0);
export const lr_d = (rd: number, a: number) => amo(AMO.lr, 64, rd, a, 0);
export const sc_w = (rd: number, a: number, src: number) => amo(AMO.sc, 32, rd, a, src);
export const sc_d = (rd: number, a: number, src: number) => amo(AMO.sc, 64, rd, a, src);

// ---- SYSTEM ----
export const ecall = () => 0x00000073;
export const ebreak = () => 0x00100073;
export const sret = () => 0x10200073;
export const mret = () => 0x30200073;
export const wfi = () => 0x10500073;
export const sfence_vma = (a = 0, b = 0) => rType(0x73, 0, 0x09, 0, a, b);
const csrOp = (f3: number) => (rd: number, csr: number, src: number) =>
  (((unsigned(csr, 12, "CSR number")) << 20) | (unsigned(src, 5, "CSR source") << 15) | (f3 << 12) | (reg(rd) << 7) | 0x73) >>> 0;
export const csrrw = csrOp(1), csrrs = csrOp(2), csrrc = csrOp(3);
/** The immediate forms take a 5-bit unsigned immediate instead of rs1. */
export const csrrwi = csrOp(5), csrrsi = csrOp(6), csrrci = csrOp(7);

export const CSR = {
  sstatus: 0x100, sie: 0x104, stvec: 0x105, scounteren: 0x106, senvcfg: 0x10a,
  sscratch: 0x140, sepc: 0x141, scause: 0x142, stval: 0x143, sip: 0x144, stimecmp: 0x14d,
  satp: 0x180, cycle: 0xc00, time: 0xc01, instret: 0xc02, hpmcounter3: 0xc03,
  mstatus: 0x300, mepc: 0x341, hstatus: 0x600,
} as const;

export const nop = () => addi(0, 0, 0);

// ---- program builder ----

type Fixup = { at: number; label: string; make: (off: number) => number };

/** Assembles a program at a base address, with forward and backward labels. */
export class Program {
  readonly words: number[] = [];
  private labels = new Map<string, number>();
  private fixups: Fixup[] = [];
  constructor(readonly base: bigint = 0x80000000n) {}

  /** Address of the next instruction. */
  get here(): bigint { return this.base + BigInt(this.words.length * 4); }

  emit(...words: number[]): this {
    for (const w of words) this.words.push(w >>> 0);
    return this;
  }

  label(name: string): this {
    if (this.labels.has(name)) throw new Error(`Label ${name} defined twice`);
    this.labels.set(name, this.words.length * 4);
    return this;
  }

  addr(name: string): bigint {
    const off = this.labels.get(name);
    if (off === undefined) throw new Error(`Unknown label ${name}`);
    return this.base + BigInt(off);
  }

  /** An instruction whose pc-relative offset to `label` is filled in by finish(). */
  to(label: string, make: (off: number) => number): this {
    this.fixups.push({ at: this.words.length, label, make });
    this.words.push(0);
    return this;
  }

  /** li: materialises any 64-bit constant (lui/addiw, then shift-and-add steps). */
  li(rd: number, value: bigint | number): this {
    let v = BigInt.asIntN(64, BigInt(value));
    if (v >= -2048n && v < 2048n) return this.emit(addi(rd, 0, Number(v)));
    if (v >= -(1n << 31n) && v < (1n << 31n)) {
      // addiw wraps at 32 bits, so hi and lo only need to agree modulo 2^32.
      const lo = Number(BigInt.asIntN(12, v));
      const hi = Number(BigInt.asIntN(20, (v - BigInt(lo)) >> 12n));
      this.emit(lui(rd, hi));
      if (lo !== 0) this.emit(addiw(rd, rd, lo));
      return this;
    }
    const lo12 = BigInt.asIntN(12, v);
    let rest = (v - lo12) >> 12n;
    let shift = 12;
    while ((rest & 1n) === 0n && shift < 60) { rest >>= 1n; shift++; }
    this.li(rd, rest);
    this.emit(slli(rd, rd, shift));
    if (lo12 !== 0n) this.emit(addi(rd, rd, Number(lo12)));
    return this;
  }

  finish(): Uint32Array {
    for (const f of this.fixups) {
      const target = this.labels.get(f.label);
      if (target === undefined) throw new Error(`Unknown label ${f.label}`);
      this.words[f.at] = f.make(target - f.at * 4) >>> 0;
    }
    return Uint32Array.from(this.words);
  }
}

// ---- C extension (16-bit encodings; each encoder returns the halfword) ----
// Bit placement helper: b(v, from, to) moves bit `from` of v to bit `to`.
const b = (v: number, from: number, to: number) => ((v >> from) & 1) << to;
/** The 3-bit register field of the CIW/CL/CS/CA/CB formats: x8..x15 only. */
function creg(r: number): number {
  if (!Number.isInteger(r) || r < 8 || r > 15) throw new Error(`Register x${r} is not one of x8..x15`);
  return r - 8;
}
function cmul(v: number, of: number, bits: number, what: string, sign = false): number {
  if (v % of !== 0) throw new Error(`${what} ${v} is not a multiple of ${of}`);
  return sign ? signed(v, bits, what) : unsigned(v, bits, what);
}
const ci = (f3: number, rd: number, imm6: number, q: number) =>
  (f3 << 13) | b(imm6, 5, 12) | (reg(rd) << 7) | ((imm6 & 31) << 2) | q;

export const c_addi4spn = (rd: number, imm: number) => {
  cmul(imm, 4, 10, "c.addi4spn immediate");
  return (((imm >> 4) & 3) << 11) | (((imm >> 6) & 15) << 7) | b(imm, 2, 6) | b(imm, 3, 5) | (creg(rd) << 2);
};
const clw = (f3: number, r: number, base: number, off: number) => {
  cmul(off, 4, 7, "c.lw/sw offset");
  return (f3 << 13) | (((off >> 3) & 7) << 10) | (creg(base) << 7) | b(off, 2, 6) | b(off, 6, 5) | (creg(r) << 2);
};
const cld = (f3: number, r: number, base: number, off: number) => {
  cmul(off, 8, 8, "c.ld/sd offset");
  return (f3 << 13) | (((off >> 3) & 7) << 10) | (creg(base) << 7) | (((off >> 6) & 3) << 5) | (creg(r) << 2);
};
export const c_lw = (rd: number, base: number, off: number) => clw(2, rd, base, off);
export const c_ld = (rd: number, base: number, off: number) => cld(3, rd, base, off);
export const c_sw = (src: number, base: number, off: number) => clw(6, src, base, off);
export const c_sd = (src: number, base: number, off: number) => cld(7, src, base, off);

export const c_nop = () => 0x0001;
export const c_addi = (rd: number, imm: number) => ci(0, rd, signed(imm, 6, "c.addi immediate") & 63, 1);
export const c_addiw = (rd: number, imm: number) => ci(1, rd, signed(imm, 6, "c.addiw immediate") & 63, 1);
export const c_li = (rd: number, imm: number) => ci(2, rd, signed(imm, 6, "c.li immediate") & 63, 1);
/** imm6 is the value of bits 17..12 (a signed 6-bit number). */
export const c_lui = (rd: number, imm6: number) => ci(3, rd, signed(imm6, 6, "c.lui immediate") & 63, 1);
export const c_addi16sp = (imm: number) => {
  cmul(imm, 16, 10, "c.addi16sp immediate", true);
  return (3 << 13) | b(imm, 9, 12) | (2 << 7) | b(imm, 4, 6) | b(imm, 6, 5) | (((imm >> 7) & 3) << 3) | b(imm, 5, 2) | 1;
};
const cb = (f2: number, rd: number, imm6: number) => (4 << 13) | b(imm6, 5, 12) | (f2 << 10) | (creg(rd) << 7) | ((imm6 & 31) << 2) | 1;
export const c_srli = (rd: number, sh: number) => cb(0, rd, unsigned(sh, 6, "shamt"));
export const c_srai = (rd: number, sh: number) => cb(1, rd, unsigned(sh, 6, "shamt"));
export const c_andi = (rd: number, imm: number) => cb(2, rd, signed(imm, 6, "c.andi immediate") & 63);
const ca = (w: number, f2: number, rd: number, rs2: number) => (4 << 13) | (w << 12) | (3 << 10) | (creg(rd) << 7) | (f2 << 5) | (creg(rs2) << 2) | 1;
export const c_sub = (rd: number, rs2: number) => ca(0, 0, rd, rs2);
export const c_xor = (rd: number, rs2: number) => ca(0, 1, rd, rs2);
export const c_or = (rd: number, rs2: number) => ca(0, 2, rd, rs2);
export const c_and = (rd: number, rs2: number) => ca(0, 3, rd, rs2);
export const c_subw = (rd: number, rs2: number) => ca(1, 0, rd, rs2);
export const c_addw = (rd: number, rs2: number) => ca(1, 1, rd, rs2);
export const c_j = (off: number) => {
  cmul(off, 2, 12, "c.j offset", true);
  return (5 << 13) | b(off, 11, 12) | b(off, 4, 11) | (((off >> 8) & 3) << 9) | b(off, 10, 8) | b(off, 6, 7) |
    b(off, 7, 6) | (((off >> 1) & 7) << 3) | b(off, 5, 2) | 1;
};
const cbr = (f3: number, rs1: number, off: number) => {
  cmul(off, 2, 9, "c.beqz/bnez offset", true);
  return (f3 << 13) | b(off, 8, 12) | (((off >> 3) & 3) << 10) | (creg(rs1) << 7) | (((off >> 6) & 3) << 5) |
    (((off >> 1) & 3) << 3) | b(off, 5, 2) | 1;
};
export const c_beqz = (rs1: number, off: number) => cbr(6, rs1, off);
export const c_bnez = (rs1: number, off: number) => cbr(7, rs1, off);

export const c_slli = (rd: number, sh: number) => ci(0, rd, unsigned(sh, 6, "shamt"), 2);
export const c_lwsp = (rd: number, off: number) => {
  cmul(off, 4, 8, "c.lwsp offset");
  return (2 << 13) | b(off, 5, 12) | (reg(rd) << 7) | (((off >> 2) & 7) << 4) | (((off >> 6) & 3) << 2) | 2;
};
export const c_ldsp = (rd: number, off: number) => {
  cmul(off, 8, 9, "c.ldsp offset");
  return (3 << 13) | b(off, 5, 12) | (reg(rd) << 7) | (((off >> 3) & 3) << 5) | (((off >> 6) & 7) << 2) | 2;
};
export const c_swsp = (src: number, off: number) => {
  cmul(off, 4, 8, "c.swsp offset");
  return (6 << 13) | (((off >> 2) & 15) << 9) | (((off >> 6) & 3) << 7) | (reg(src) << 2) | 2;
};
export const c_sdsp = (src: number, off: number) => {
  cmul(off, 8, 9, "c.sdsp offset");
  return (7 << 13) | (((off >> 3) & 7) << 10) | (((off >> 6) & 7) << 7) | (reg(src) << 2) | 2;
};
export const c_jr = (rs1: number) => (4 << 13) | (reg(rs1) << 7) | 2;
export const c_mv = (rd: number, rs2: number) => (4 << 13) | (reg(rd) << 7) | (reg(rs2) << 2) | 2;
export const c_ebreak = () => 0x9002;
export const c_jalr = (rs1: number) => (4 << 13) | (1 << 12) | (reg(rs1) << 7) | 2;
export const c_add = (rd: number, rs2: number) => (4 << 13) | (1 << 12) | (reg(rd) << 7) | (reg(rs2) << 2) | 2;

/** A 32-bit instruction as its two halfwords, for mixing with compressed ones in halves(). */
export const w32 = (inst: number): [number, number] => [inst & 0xffff, (inst >>> 16) & 0xffff];
/** Packs halfwords (16-bit instructions, and w32's pairs spread in) into little-endian bytes. */
export function halves(...hs: number[]): Uint8Array {
  const out = new Uint8Array(hs.length * 2);
  hs.forEach((h, i) => { unsigned(h, 16, "halfword"); out[2 * i] = h & 0xff; out[2 * i + 1] = h >> 8; });
  return out;
}
