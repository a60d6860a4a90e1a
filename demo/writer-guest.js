// A tiny RISC-V (RV64IM) guest, hand-assembled here, that never stops writing
// memory so the demo's dirty heatmap moves. Registers are set by the host:
//   s0 = gpa of a mailbox u64 holding the data slot's base gpa (re-read every
//        iteration, so a moved slot is followed), s2 = pages - 1 (power of two),
//   s3 = UART base, s4 = delay-loop count, s5 = an odd multiplier.
// Per iteration i: one store to page (i & mask) (a sweeping band) and one to a
// hashed page ((i * s5) >> 7) & mask; every 64 iterations a letter A..Z goes to
// the UART (a newline after Z); then a delay loop.

const R = { zero: 0, t0: 5, t1: 6, t2: 7, s0: 8, s1: 9, s2: 18, s3: 19, s4: 20, s5: 21, t3: 28, t4: 29, t5: 30, t6: 31 };

const rType = (f7, f3, op) => (rd, rs1, rs2) => ((f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op) >>> 0;
const iType = (f3, op) => (rd, rs1, imm) => (((imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op) >>> 0;
const sType = (f3) => (rs2, rs1, imm) =>
  ((((imm >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((imm & 0x1f) << 7) | 0x23) >>> 0;
const bne = (rs1, rs2, off) =>
  ((((off >> 12) & 1) << 31) | (((off >> 5) & 0x3f) << 25) | (rs2 << 20) | (rs1 << 15) | (1 << 12) |
   (((off >> 1) & 0xf) << 8) | (((off >> 11) & 1) << 7) | 0x63) >>> 0;
const jal = (rd, off) =>
  ((((off >> 20) & 1) << 31) | (((off >> 1) & 0x3ff) << 21) | (((off >> 11) & 1) << 20) | (((off >> 12) & 0xff) << 12) |
   (rd << 7) | 0x6f) >>> 0;

const add = rType(0, 0, 0x33), and = rType(0, 7, 0x33), mul = rType(1, 0, 0x33), remu = rType(1, 7, 0x33);
const addi = iType(0, 0x13), andi = iType(7, 0x13), ld = iType(3, 0x03);
const slli = (rd, rs1, sh) => iType(1, 0x13)(rd, rs1, sh & 0x3f);
const srli = (rd, rs1, sh) => iType(5, 0x13)(rd, rs1, sh & 0x3f);
const sd = sType(3), sb = sType(0);

/** The guest image: a flat binary to load at the RAM base. */
export function writerImage() {
  const { zero, t0, t1, t2, s0, s1, s2, s3, s4, s5, t3, t4, t5, t6 } = R;
  const code = [];
  const at = () => code.length * 4;
  const loop = at();
  code.push(
    ld(t0, s0, 0),            // t0 = slot base
    and(t1, s1, s2),          // sweeping page
    slli(t1, t1, 12),
    add(t1, t1, t0),
    sd(s1, t1, 0),
    mul(t2, s1, s5),          // hashed page
    srli(t2, t2, 7),
    and(t2, t2, s2),
    slli(t2, t2, 12),
    add(t2, t2, t0),
    sd(s1, t2, 8),
    addi(s1, s1, 1),
    andi(t3, s1, 63),
  );
  const skipBranch = code.length;
  code.push(0); // bne t3, zero, skip (patched)
  code.push(
    srli(t4, s1, 6),
    addi(t5, zero, 26),
    remu(t4, t4, t5),
    addi(t4, t4, 65),         // 'A' + n % 26
    sb(t4, s3, 0),
    addi(t6, zero, 90),       // 'Z'
  );
  const nlBranch = code.length;
  code.push(0); // bne t4, t6, skip (patched)
  code.push(addi(t6, zero, 10), sb(t6, s3, 0));
  const skip = at();
  code[skipBranch] = bne(t3, zero, skip - skipBranch * 4);
  code[nlBranch] = bne(t4, t6, skip - nlBranch * 4);
  code.push(addi(t3, s4, 0));  // delay
  const delay = at();
  code.push(addi(t3, t3, -1));
  code.push(bne(t3, zero, delay - at()));
  code.push(jal(zero, loop - at()));
  const out = new Uint8Array(code.length * 4);
  const dv = new DataView(out.buffer);
  code.forEach((w, i) => dv.setUint32(i * 4, w, true));
  return out;
}

/** Register values the host sets before the first KVM_RUN (see the header). */
export function writerRegs({ mailboxGpa, pages, uartBase, delay = 20000 }) {
  return { [R.s0]: BigInt(mailboxGpa), [R.s1]: 0n, [R.s2]: BigInt(pages - 1), [R.s3]: BigInt(uartBase),
    [R.s4]: BigInt(delay), [R.s5]: 0x9e3779b1n };
}
