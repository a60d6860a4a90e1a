// A tiny RISC-V (RV64IM + Zicsr) guest, hand-assembled here, that never stops
// writing memory so the demo's dirty heatmap moves. It is paced by guest time
// (the `time` CSR), not by instruction count, so its band sweeps at the same
// speed on any host once the host keeps guest time with the wall clock (as
// demo/worker.js does; on real hardware `time` is a wall clock).
// Registers are set by the host:
//   s0 = gpa of a mailbox u64 holding the data slot's base gpa (re-read for
//        every page, so a moved slot is followed), s2 = pages - 1 (a power of
//        two), s3 = UART base, s4 = log2 of the ticks of `time` per page step,
//        s5 = an odd multiplier.
// For every page step n = time >> s4 that it sees: one store to page n & mask
// (a sweeping band) and one to a hashed page ((n * s5) >> 7) & mask; every 8
// steps a letter A..Z goes to the UART (a newline after Z). Between steps it
// spins on `time`.

const R = { zero: 0, t0: 5, t1: 6, t2: 7, s0: 8, s1: 9, s2: 18, s3: 19, s4: 20, s5: 21, t3: 28, t4: 29, t5: 30, t6: 31 };
const CSR_TIME = 0xc01;

const rType = (f7, f3, op) => (rd, rs1, rs2) => ((f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op) >>> 0;
const iType = (f3, op) => (rd, rs1, imm) => (((imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op) >>> 0;
const sType = (f3) => (rs2, rs1, imm) =>
  ((((imm >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((imm & 0x1f) << 7) | 0x23) >>> 0;
const bType = (f3) => (rs1, rs2, off) =>
  ((((off >> 12) & 1) << 31) | (((off >> 5) & 0x3f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) |
   (((off >> 1) & 0xf) << 8) | (((off >> 11) & 1) << 7) | 0x63) >>> 0;
const jal = (rd, off) =>
  ((((off >> 20) & 1) << 31) | (((off >> 1) & 0x3ff) << 21) | (((off >> 11) & 1) << 20) | (((off >> 12) & 0xff) << 12) |
   (rd << 7) | 0x6f) >>> 0;

const add = rType(0, 0, 0x33), and = rType(0, 7, 0x33), srl = rType(0, 5, 0x33), mul = rType(1, 0, 0x33),
  remu = rType(1, 7, 0x33);
const addi = iType(0, 0x13), andi = iType(7, 0x13), ld = iType(3, 0x03);
const rdtime = (rd) => iType(2, 0x73)(rd, 0, CSR_TIME);   // csrrs rd, time, zero
const slli = (rd, rs1, sh) => iType(1, 0x13)(rd, rs1, sh & 0x3f);
const srli = (rd, rs1, sh) => iType(5, 0x13)(rd, rs1, sh & 0x3f);
const sd = sType(3), sb = sType(0);
const beq = bType(0), bne = bType(1);

/** The guest image: a flat binary to load at the RAM base. */
export function writerImage() {
  const { zero, t0, t1, t2, s0, s1, s2, s3, s4, s5, t3, t4, t5, t6 } = R;
  const code = [];
  const at = () => code.length * 4;
  const loop = at();
  code.push(
    rdtime(t0),
    srl(t0, t0, s4),          // the page step guest time is at
  );
  code.push(beq(t0, s1, loop - at()));  // still the step already written: spin
  code.push(
    addi(s1, t0, 0),
    ld(t6, s0, 0),            // t6 = slot base
    and(t1, s1, s2),          // sweeping page
    slli(t1, t1, 12),
    add(t1, t1, t6),
    sd(s1, t1, 0),
    mul(t2, s1, s5),          // hashed page
    srli(t2, t2, 7),
    and(t2, t2, s2),
    slli(t2, t2, 12),
    add(t2, t2, t6),
    sd(s1, t2, 8),
    andi(t3, s1, 7),
  );
  code.push(bne(t3, zero, loop - at()));
  code.push(
    srli(t4, s1, 3),
    addi(t5, zero, 26),
    remu(t4, t4, t5),
    addi(t4, t4, 65),         // 'A' + n % 26
    sb(t4, s3, 0),
    addi(t5, zero, 90),       // 'Z'
  );
  code.push(bne(t4, t5, loop - at()));
  code.push(addi(t5, zero, 10), sb(t5, s3, 0));
  code.push(jal(zero, loop - at()));
  const out = new Uint8Array(code.length * 4);
  const dv = new DataView(out.buffer);
  code.forEach((w, i) => dv.setUint32(i * 4, w, true));
  return out;
}

/**
 * Register values the host sets before the first KVM_RUN (see the header).
 * The default step, 2^17 ticks, is 13.1 ms of a 10 MHz timebase: the band
 * crosses 512 pages in about 6.7 s.
 */
export function writerRegs({ mailboxGpa, pages, uartBase, stepShift = 17 }) {
  return { [R.s0]: BigInt(mailboxGpa), [R.s1]: -1n & 0xffffffffffffffffn, [R.s2]: BigInt(pages - 1),
    [R.s3]: BigInt(uartBase), [R.s4]: BigInt(stepShift), [R.s5]: 0x9e3779b1n };
}
