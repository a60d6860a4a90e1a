// RV64 encodings for the bench's hand-written guest loops (rd/rs fields as the ISA lays them out).
export const sd = (rs2, rs1, off) => ((((off >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (3 << 12) | ((off & 31) << 7) | 0x23) >>> 0;
export const ld = (rd, rs1, off) => (((off & 0xfff) << 20) | (rs1 << 15) | (3 << 12) | (rd << 7) | 0x03) >>> 0;
export const add = (rd, rs1, rs2) => ((rs2 << 20) | (rs1 << 15) | (rd << 7) | 0x33) >>> 0;
export const addi = (rd, rs1, imm) => (((imm & 0xfff) << 20) | (rs1 << 15) | (rd << 7) | 0x13) >>> 0;
export const bne = (rs1, rs2, off) => ((((off >> 12) & 1) << 31) | (((off >> 5) & 0x3f) << 25) | (rs2 << 20) | (rs1 << 15) |
  (1 << 12) | (((off >> 1) & 0xf) << 8) | (((off >> 11) & 1) << 7) | 0x63) >>> 0;
export const jal = (rd, off) => ((((off >> 20) & 1) << 31) | (((off >> 1) & 0x3ff) << 21) | (((off >> 11) & 1) << 20) |
  (((off >> 12) & 0xff) << 12) | (rd << 7) | 0x6f) >>> 0;
