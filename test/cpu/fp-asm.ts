// Encoders for the F and D instructions (and their compressed forms) for the
// CPU tests, on top of asm.ts's formats.

import { iType, sType, rType } from "./asm";

export const RNE = 0, RTZ = 1, RDN = 2, RUP = 3, RMM = 4, DYN = 7;
export const S = 0, D = 1;
export const CSR_FFLAGS = 0x001, CSR_FRM = 0x002, CSR_FCSR = 0x003;
export const FS_SHIFT = 13n;
export const FS = 3n << FS_SHIFT;
export const SD = 1n << 63n;
export const NX = 1, UF = 2, OF = 4, DZ = 8, NV = 16;

export const flw = (rd: number, rs1: number, imm: number) => iType(0x07, 2, rd, rs1, imm);
export const fld = (rd: number, rs1: number, imm: number) => iType(0x07, 3, rd, rs1, imm);
export const fsw = (src: number, rs1: number, imm: number) => sType(0x27, 2, rs1, src, imm);
export const fsd = (src: number, rs1: number, imm: number) => sType(0x27, 3, rs1, src, imm);

/** OP-FP: funct5, fmt, rm (or funct3), rd, rs1, rs2. */
export const opfp = (f5: number, fmt: number, rm: number, rd: number, rs1: number, rs2: number) =>
  rType(0x53, rm, (f5 << 2) | fmt, rd, rs1, rs2);
export const F5 = { add: 0, sub: 1, mul: 2, div: 3, sgnj: 4, minmax: 5, cvtff: 8, sqrt: 11, cmp: 20, cvtToInt: 24,
  cvtFromInt: 26, mvToX: 28, mvFromX: 30 } as const;

export const fadd = (fmt: number, rd: number, a: number, b: number, rm = DYN) => opfp(F5.add, fmt, rm, rd, a, b);
export const fsub = (fmt: number, rd: number, a: number, b: number, rm = DYN) => opfp(F5.sub, fmt, rm, rd, a, b);
export const fmul = (fmt: number, rd: number, a: number, b: number, rm = DYN) => opfp(F5.mul, fmt, rm, rd, a, b);
export const fdiv = (fmt: number, rd: number, a: number, b: number, rm = DYN) => opfp(F5.div, fmt, rm, rd, a, b);
export const fsqrt = (fmt: number, rd: number, a: number, rm = DYN) => opfp(F5.sqrt, fmt, rm, rd, a, 0);
export const fsgnj = (fmt: number, rd: number, a: number, b: number) => opfp(F5.sgnj, fmt, 0, rd, a, b);
export const fsgnjn = (fmt: number, rd: number, a: number, b: number) => opfp(F5.sgnj, fmt, 1, rd, a, b);
export const fsgnjx = (fmt: number, rd: number, a: number, b: number) => opfp(F5.sgnj, fmt, 2, rd, a, b);
export const fmin = (fmt: number, rd: number, a: number, b: number) => opfp(F5.minmax, fmt, 0, rd, a, b);
export const fmax = (fmt: number, rd: number, a: number, b: number) => opfp(F5.minmax, fmt, 1, rd, a, b);
export const feq = (fmt: number, rd: number, a: number, b: number) => opfp(F5.cmp, fmt, 2, rd, a, b);
export const flt = (fmt: number, rd: number, a: number, b: number) => opfp(F5.cmp, fmt, 1, rd, a, b);
export const fle = (fmt: number, rd: number, a: number, b: number) => opfp(F5.cmp, fmt, 0, rd, a, b);
export const fclass = (fmt: number, rd: number, a: number) => opfp(F5.mvToX, fmt, 1, rd, a, 0);
/** FCVT.{W,WU,L,LU}.fmt: kind 0..3. */
export const fcvtToInt = (fmt: number, kind: number, rd: number, a: number, rm = DYN) => opfp(F5.cvtToInt, fmt, rm, rd, a, kind);
export const fcvtFromInt = (fmt: number, kind: number, rd: number, a: number, rm = DYN) => opfp(F5.cvtFromInt, fmt, rm, rd, a, kind);
export const fcvt_s_d = (rd: number, a: number, rm = DYN) => opfp(F5.cvtff, S, rm, rd, a, 1);
export const fcvt_d_s = (rd: number, a: number, rm = DYN) => opfp(F5.cvtff, D, rm, rd, a, 0);
export const fmv_x_w = (rd: number, a: number) => opfp(F5.mvToX, S, 0, rd, a, 0);
export const fmv_x_d = (rd: number, a: number) => opfp(F5.mvToX, D, 0, rd, a, 0);
export const fmv_w_x = (rd: number, a: number) => opfp(F5.mvFromX, S, 0, rd, a, 0);
export const fmv_d_x = (rd: number, a: number) => opfp(F5.mvFromX, D, 0, rd, a, 0);

/** FMADD (0x43), FMSUB (0x47), FNMSUB (0x4b), FNMADD (0x4f). */
export const fma4 = (opc: number, fmt: number, rd: number, a: number, b: number, c: number, rm = DYN) =>
  ((c << 27) | (fmt << 25) | (b << 20) | (a << 15) | (rm << 12) | (rd << 7) | opc) >>> 0;
export const FMADD = 0x43, FMSUB = 0x47, FNMSUB = 0x4b, FNMADD = 0x4f;

// Compressed (RV64): C.FLD / C.FSD use x8..x15 and f8..f15, offsets multiples of 8.
const creg = (r: number) => {
  if (r < 8 || r > 15) throw new Error(`compressed register ${r}`);
  return r - 8;
};
const cfd = (f3: number, r: number, base: number, off: number) =>
  (f3 << 13) | (((off >> 3) & 7) << 10) | (creg(base) << 7) | (((off >> 6) & 3) << 5) | (creg(r) << 2);
export const c_fld = (rd: number, base: number, off: number) => cfd(1, rd, base, off);
export const c_fsd = (src: number, base: number, off: number) => cfd(5, src, base, off);
export const c_fldsp = (rd: number, off: number) =>
  (1 << 13) | (((off >> 5) & 1) << 12) | (rd << 7) | (((off >> 3) & 3) << 5) | (((off >> 6) & 7) << 2) | 2;
export const c_fsdsp = (src: number, off: number) => (5 << 13) | (((off >> 3) & 7) << 10) | (((off >> 6) & 7) << 7) | (src << 2) | 2;
