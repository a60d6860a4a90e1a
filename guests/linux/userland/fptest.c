/* fptest: the F and D extensions (and, compiled for rv64gc, the C extension's
 * compressed FP loads, stores and everything around them) exercised
 * instruction by instruction, printed as hex lines so that two
 * implementations can be compared byte for byte: webkvm's vCPU inside its
 * Linux against qemu-riscv64 (fptest.expected is QEMU's output).
 *
 * A line is an instruction, its operands' bit patterns and, for each result,
 * result/fflags, where fflags (NV DZ OF UF NX = 10 08 04 02 01) were cleared
 * right before the instruction. Instructions that round give one result per
 * rounding mode: rne rtz rdn rup rmm, then dyn with frm set beforehand (by
 * fesetround, or csrw for rmm) to the next mode of that cycle, line by line;
 * one result when all six agree. Singles are NaN-boxed in 64-bit f registers;
 * a section feeds them registers that are not. The random sweep is a fixed
 * LCG: its output is the same on every run. */
#include <fenv.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef uint64_t u64;
typedef struct {
	u64 v;
	unsigned long fl;
} res;

/* Bits in, bits out: the compiler's moves (fld/fmv/flw) never change them,
 * and a float loaded into an f register is NaN-boxed. */
static double d_of(u64 x)
{
	double d;
	memcpy(&d, &x, 8);
	return d;
}
static u64 of_d(double d)
{
	u64 x;
	memcpy(&x, &d, 8);
	return x;
}
static float s_of(u64 x)
{
	uint32_t w = (uint32_t)x;
	float f;
	memcpy(&f, &w, 4);
	return f;
}
static u64 of_s(float f)
{
	uint32_t w;
	memcpy(&w, &f, 4);
	return w;
}

/* One asm statement per static rounding mode (the rm is part of the
 * instruction), chosen at run time: rm 0..4 static, 5 dyn. */
#define RM_SWITCH(rm, pre, post, ...)                                                   \
	switch (rm) {                                                                   \
	case 0: __asm__ volatile(pre "rne" post __VA_ARGS__); break;                    \
	case 1: __asm__ volatile(pre "rtz" post __VA_ARGS__); break;                    \
	case 2: __asm__ volatile(pre "rdn" post __VA_ARGS__); break;                    \
	case 3: __asm__ volatile(pre "rup" post __VA_ARGS__); break;                    \
	case 4: __asm__ volatile(pre "rmm" post __VA_ARGS__); break;                    \
	default: __asm__ volatile(pre "dyn" post __VA_ARGS__); break;                   \
	}

#define PRE "fsflags zero\n\t"
#define POST "\n\tfrflags %1"

/* f <- f op f (rounds) */
#define FFF(name, insn, T)                                                               \
	static res name(int rm, u64 a, u64 b, u64 c)                                       \
	{                                                                                  \
		T x = T##_of(a), y = T##_of(b), r;                                          \
		unsigned long fl;                                                          \
		(void)c;                                                                   \
		RM_SWITCH(rm, PRE insn " %0, %2, %3, ", POST, : "=f"(r), "=r"(fl) : "f"(x), "f"(y)) \
		return (res){ of_##T(r), fl };                                              \
	}
/* f <- f (rounds) */
#define FF(name, insn, T)                                                                \
	static res name(int rm, u64 a, u64 b, u64 c)                                       \
	{                                                                                  \
		T x = T##_of(a), r;                                                         \
		unsigned long fl;                                                          \
		(void)b, (void)c;                                                          \
		RM_SWITCH(rm, PRE insn " %0, %2, ", POST, : "=f"(r), "=r"(fl) : "f"(x))     \
		return (res){ of_##T(r), fl };                                              \
	}
/* f <- f * f + f (rounds) */
#define FFFF(name, insn, T)                                                              \
	static res name(int rm, u64 a, u64 b, u64 c)                                       \
	{                                                                                  \
		T x = T##_of(a), y = T##_of(b), z = T##_of(c), r;                           \
		unsigned long fl;                                                          \
		RM_SWITCH(rm, PRE insn " %0, %2, %3, %4, ", POST, : "=f"(r), "=r"(fl) : "f"(x), "f"(y), "f"(z)) \
		return (res){ of_##T(r), fl };                                              \
	}
/* f <- f op f, no rounding */
#define FFF_NR(name, insn, T)                                                            \
	static res name(int rm, u64 a, u64 b, u64 c)                                       \
	{                                                                                  \
		T x = T##_of(a), y = T##_of(b), r;                                          \
		unsigned long fl;                                                          \
		(void)rm, (void)c;                                                         \
		__asm__ volatile(PRE insn " %0, %2, %3" POST : "=f"(r), "=r"(fl) : "f"(x), "f"(y)); \
		return (res){ of_##T(r), fl };                                              \
	}
/* x <- f op f (compares) or x <- f (fclass, fmv.x.*) */
#define XFF(name, insn, T)                                                               \
	static res name(int rm, u64 a, u64 b, u64 c)                                       \
	{                                                                                  \
		T x = T##_of(a), y = T##_of(b);                                             \
		u64 r;                                                                     \
		unsigned long fl;                                                          \
		(void)rm, (void)c;                                                         \
		__asm__ volatile(PRE insn " %0, %2, %3" POST : "=r"(r), "=r"(fl) : "f"(x), "f"(y)); \
		return (res){ r, fl };                                                      \
	}
#define XF(name, insn, T)                                                                \
	static res name(int rm, u64 a, u64 b, u64 c)                                       \
	{                                                                                  \
		T x = T##_of(a);                                                            \
		u64 r;                                                                     \
		unsigned long fl;                                                          \
		(void)rm, (void)b, (void)c;                                                \
		__asm__ volatile(PRE insn " %0, %2" POST : "=r"(r), "=r"(fl) : "f"(x));      \
		return (res){ r, fl };                                                      \
	}
/* x <- f (rounds: fcvt to an integer) */
#define XF_RM(name, insn, T)                                                             \
	static res name(int rm, u64 a, u64 b, u64 c)                                       \
	{                                                                                  \
		T x = T##_of(a);                                                            \
		u64 r;                                                                     \
		unsigned long fl;                                                          \
		(void)b, (void)c;                                                          \
		RM_SWITCH(rm, PRE insn " %0, %2, ", POST, : "=r"(r), "=r"(fl) : "f"(x))     \
		return (res){ r, fl };                                                      \
	}
/* f <- x (rounds: fcvt from an integer, and fmv.*.x without) */
#define FX_RM(name, insn, T)                                                             \
	static res name(int rm, u64 a, u64 b, u64 c)                                       \
	{                                                                                  \
		T r;                                                                       \
		unsigned long fl;                                                          \
		(void)b, (void)c;                                                          \
		RM_SWITCH(rm, PRE insn " %0, %2, ", POST, : "=f"(r), "=r"(fl) : "r"(a))     \
		return (res){ of_##T(r), fl };                                              \
	}
/* fcvt between precisions (From -> To) */
#define FCVT(name, insn, F, T)                                                           \
	static res name(int rm, u64 a, u64 b, u64 c)                                       \
	{                                                                                  \
		F x = F##_of(a);                                                            \
		T r;                                                                       \
		unsigned long fl;                                                          \
		(void)b, (void)c;                                                          \
		RM_SWITCH(rm, PRE insn " %0, %2, ", POST, : "=f"(r), "=r"(fl) : "f"(x))     \
		return (res){ of_##T(r), fl };                                              \
	}

/* The exact conversions (fcvt.d.w, fcvt.d.wu, fcvt.d.s): the assembler takes no rm for them. */
#define FX_NR(name, insn, T)                                                             \
	static res name(int rm, u64 a, u64 b, u64 c)                                       \
	{                                                                                  \
		T r;                                                                       \
		unsigned long fl;                                                          \
		(void)rm, (void)b, (void)c;                                                \
		__asm__ volatile(PRE insn " %0, %2" POST : "=f"(r), "=r"(fl) : "r"(a));      \
		return (res){ of_##T(r), fl };                                              \
	}
#define FCVT_NR(name, insn, F, T)                                                        \
	static res name(int rm, u64 a, u64 b, u64 c)                                       \
	{                                                                                  \
		F x = F##_of(a);                                                            \
		T r;                                                                       \
		unsigned long fl;                                                          \
		(void)rm, (void)b, (void)c;                                                \
		__asm__ volatile(PRE insn " %0, %2" POST : "=f"(r), "=r"(fl) : "f"(x));      \
		return (res){ of_##T(r), fl };                                              \
	}

#define d_of d_of
#define s_of s_of
typedef double d;
typedef float s;

FFF(fadd_d, "fadd.d", d) FFF(fsub_d, "fsub.d", d) FFF(fmul_d, "fmul.d", d) FFF(fdiv_d, "fdiv.d", d)
FFF(fadd_s, "fadd.s", s) FFF(fsub_s, "fsub.s", s) FFF(fmul_s, "fmul.s", s) FFF(fdiv_s, "fdiv.s", s)
FF(fsqrt_d, "fsqrt.d", d) FF(fsqrt_s, "fsqrt.s", s)
FFFF(fmadd_d, "fmadd.d", d) FFFF(fmsub_d, "fmsub.d", d) FFFF(fnmadd_d, "fnmadd.d", d) FFFF(fnmsub_d, "fnmsub.d", d)
FFFF(fmadd_s, "fmadd.s", s) FFFF(fmsub_s, "fmsub.s", s) FFFF(fnmadd_s, "fnmadd.s", s) FFFF(fnmsub_s, "fnmsub.s", s)
FFF_NR(fmin_d, "fmin.d", d) FFF_NR(fmax_d, "fmax.d", d) FFF_NR(fmin_s, "fmin.s", s) FFF_NR(fmax_s, "fmax.s", s)
FFF_NR(fsgnj_d, "fsgnj.d", d) FFF_NR(fsgnjn_d, "fsgnjn.d", d) FFF_NR(fsgnjx_d, "fsgnjx.d", d)
FFF_NR(fsgnj_s, "fsgnj.s", s) FFF_NR(fsgnjn_s, "fsgnjn.s", s) FFF_NR(fsgnjx_s, "fsgnjx.s", s)
XFF(feq_d, "feq.d", d) XFF(flt_d, "flt.d", d) XFF(fle_d, "fle.d", d)
XFF(feq_s, "feq.s", s) XFF(flt_s, "flt.s", s) XFF(fle_s, "fle.s", s)
XF(fclass_d, "fclass.d", d) XF(fclass_s, "fclass.s", s) XF(fmv_x_d, "fmv.x.d", d) XF(fmv_x_w, "fmv.x.w", s)
XF_RM(fcvt_w_d, "fcvt.w.d", d) XF_RM(fcvt_wu_d, "fcvt.wu.d", d) XF_RM(fcvt_l_d, "fcvt.l.d", d) XF_RM(fcvt_lu_d, "fcvt.lu.d", d)
XF_RM(fcvt_w_s, "fcvt.w.s", s) XF_RM(fcvt_wu_s, "fcvt.wu.s", s) XF_RM(fcvt_l_s, "fcvt.l.s", s) XF_RM(fcvt_lu_s, "fcvt.lu.s", s)
FX_NR(fcvt_d_w, "fcvt.d.w", d) FX_NR(fcvt_d_wu, "fcvt.d.wu", d) FX_RM(fcvt_d_l, "fcvt.d.l", d) FX_RM(fcvt_d_lu, "fcvt.d.lu", d)
FX_RM(fcvt_s_w, "fcvt.s.w", s) FX_RM(fcvt_s_wu, "fcvt.s.wu", s) FX_RM(fcvt_s_l, "fcvt.s.l", s) FX_RM(fcvt_s_lu, "fcvt.s.lu", s)
FCVT(fcvt_s_d, "fcvt.s.d", d, s) FCVT_NR(fcvt_d_s, "fcvt.d.s", s, d)

static res fmv_d_x(int rm, u64 a, u64 b, u64 c)
{
	double r;
	unsigned long fl;
	(void)rm, (void)b, (void)c;
	__asm__ volatile(PRE "fmv.d.x %0, %2" POST : "=f"(r), "=r"(fl) : "r"(a));
	return (res){ of_d(r), fl };
}
/* The whole 64-bit register after fmv.w.x: NaN-boxed. */
static res fmv_w_x(int rm, u64 a, u64 b, u64 c)
{
	u64 r;
	unsigned long fl;
	(void)rm, (void)b, (void)c;
	__asm__ volatile(PRE "fmv.w.x ft0, %2\n\tfmv.x.d %0, ft0" POST : "=r"(r), "=r"(fl) : "r"(a) : "ft0");
	return (res){ r, fl };
}

enum kind { ROUNDS, EXACT };
struct op {
	const char *name;
	res (*fn)(int, u64, u64, u64);
	int nargs;
	enum kind kind;
	int single; /* operands are singles (32-bit patterns) */
};

static const struct op ops[] = {
	{ "fadd.d", fadd_d, 2, ROUNDS, 0 }, { "fsub.d", fsub_d, 2, ROUNDS, 0 },
	{ "fmul.d", fmul_d, 2, ROUNDS, 0 }, { "fdiv.d", fdiv_d, 2, ROUNDS, 0 },
	{ "fsqrt.d", fsqrt_d, 1, ROUNDS, 0 }, { "fmadd.d", fmadd_d, 3, ROUNDS, 0 },
	{ "fmsub.d", fmsub_d, 3, ROUNDS, 0 }, { "fnmadd.d", fnmadd_d, 3, ROUNDS, 0 },
	{ "fnmsub.d", fnmsub_d, 3, ROUNDS, 0 }, { "fmin.d", fmin_d, 2, EXACT, 0 },
	{ "fmax.d", fmax_d, 2, EXACT, 0 }, { "fsgnj.d", fsgnj_d, 2, EXACT, 0 },
	{ "fsgnjn.d", fsgnjn_d, 2, EXACT, 0 }, { "fsgnjx.d", fsgnjx_d, 2, EXACT, 0 },
	{ "feq.d", feq_d, 2, EXACT, 0 }, { "flt.d", flt_d, 2, EXACT, 0 }, { "fle.d", fle_d, 2, EXACT, 0 },
	{ "fclass.d", fclass_d, 1, EXACT, 0 }, { "fcvt.w.d", fcvt_w_d, 1, ROUNDS, 0 },
	{ "fcvt.wu.d", fcvt_wu_d, 1, ROUNDS, 0 }, { "fcvt.l.d", fcvt_l_d, 1, ROUNDS, 0 },
	{ "fcvt.lu.d", fcvt_lu_d, 1, ROUNDS, 0 }, { "fcvt.s.d", fcvt_s_d, 1, ROUNDS, 0 },
	{ "fadd.s", fadd_s, 2, ROUNDS, 1 }, { "fsub.s", fsub_s, 2, ROUNDS, 1 },
	{ "fmul.s", fmul_s, 2, ROUNDS, 1 }, { "fdiv.s", fdiv_s, 2, ROUNDS, 1 },
	{ "fsqrt.s", fsqrt_s, 1, ROUNDS, 1 }, { "fmadd.s", fmadd_s, 3, ROUNDS, 1 },
	{ "fmsub.s", fmsub_s, 3, ROUNDS, 1 }, { "fnmadd.s", fnmadd_s, 3, ROUNDS, 1 },
	{ "fnmsub.s", fnmsub_s, 3, ROUNDS, 1 }, { "fmin.s", fmin_s, 2, EXACT, 1 },
	{ "fmax.s", fmax_s, 2, EXACT, 1 }, { "fsgnj.s", fsgnj_s, 2, EXACT, 1 },
	{ "fsgnjn.s", fsgnjn_s, 2, EXACT, 1 }, { "fsgnjx.s", fsgnjx_s, 2, EXACT, 1 },
	{ "feq.s", feq_s, 2, EXACT, 1 }, { "flt.s", flt_s, 2, EXACT, 1 }, { "fle.s", fle_s, 2, EXACT, 1 },
	{ "fclass.s", fclass_s, 1, EXACT, 1 }, { "fcvt.w.s", fcvt_w_s, 1, ROUNDS, 1 },
	{ "fcvt.wu.s", fcvt_wu_s, 1, ROUNDS, 1 }, { "fcvt.l.s", fcvt_l_s, 1, ROUNDS, 1 },
	{ "fcvt.lu.s", fcvt_lu_s, 1, ROUNDS, 1 }, { "fcvt.d.s", fcvt_d_s, 1, EXACT, 1 },
	{ "fmv.x.w", fmv_x_w, 1, EXACT, 1 }, { "fmv.x.d", fmv_x_d, 1, EXACT, 0 },
};
#define NOPS (sizeof(ops) / sizeof(ops[0]))

/* Integer-source conversions: operands are 64-bit integers. */
static const struct op int_ops[] = {
	{ "fcvt.d.w", fcvt_d_w, 1, EXACT, 0 }, { "fcvt.d.wu", fcvt_d_wu, 1, EXACT, 0 },
	{ "fcvt.d.l", fcvt_d_l, 1, ROUNDS, 0 }, { "fcvt.d.lu", fcvt_d_lu, 1, ROUNDS, 0 },
	{ "fcvt.s.w", fcvt_s_w, 1, ROUNDS, 0 }, { "fcvt.s.wu", fcvt_s_wu, 1, ROUNDS, 0 },
	{ "fcvt.s.l", fcvt_s_l, 1, ROUNDS, 0 }, { "fcvt.s.lu", fcvt_s_lu, 1, ROUNDS, 0 },
	{ "fmv.d.x", fmv_d_x, 1, EXACT, 0 }, { "fmv.w.x", fmv_w_x, 1, EXACT, 0 },
};
#define NINT_OPS (sizeof(int_ops) / sizeof(int_ops[0]))

static const int fe_modes[5] = { FE_TONEAREST, FE_TOWARDZERO, FE_DOWNWARD, FE_UPWARD, 0 /* rmm: frm = 4 */ };
static const char *const rm_names[5] = { "rne", "rtz", "rdn", "rup", "rmm" };

/* frm for the dyn result: fesetround for the four C modes, csrw frm for rmm (C has no name for it). */
static void set_dyn(int mode)
{
	if (mode < 4) {
		if (fesetround(fe_modes[mode]) != 0)
			printf("fesetround(%s) failed\n", rm_names[mode]);
	} else {
		__asm__ volatile("fsrmi 4");
	}
}

static void line(const struct op *op, const u64 *v)
{
	int w = op->single ? 8 : 16;
	printf("%s", op->name);
	for (int i = 0; i < op->nargs; i++)
		printf(" %0*llx", w, (unsigned long long)(op->single ? (uint32_t)v[i] : v[i]));
	printf(":");
	int n = op->kind == ROUNDS ? 6 : 1, same = 1;
	res r[6];
	for (int rm = 0; rm < n; rm++) {
		r[rm] = op->fn(op->kind == ROUNDS ? rm : 5, v[0], v[1], v[2]);
		same &= r[rm].v == r[0].v && r[rm].fl == r[0].fl;
	}
	for (int rm = 0; rm < (same ? 1 : n); rm++)
		printf(" %llx/%02lx", (unsigned long long)r[rm].v, r[rm].fl);
	printf("\n");
}

static const u64 dspecial[] = {
	0x0000000000000000, 0x8000000000000000, 0x3ff0000000000000, 0xbff0000000000000,
	0x3ff8000000000000, 0x3fb999999999999a, 0x400921fb54442d18, 0x0000000000000001,
	0x000fffffffffffff, 0x0010000000000000, 0x7fefffffffffffff, 0x7ff0000000000000,
	0xfff0000000000000, 0x7ff8000000000000, 0x7ff0000000000001, 0xfff8000000000123,
	0x4340000000000001, 0x41dfffffffc00000, 0xc1e0000000000000, 0x41efffffffe00000,
	0x43e0000000000000, 0xc3e0000000000000, 0x43f0000000000000, 0xc004000000000000,
	0x3fe0000000000000, 0x4004000000000000, 0x3ca0000000000000, 0x7fe0000000000000,
};
static const u64 sspecial[] = {
	0x00000000, 0x80000000, 0x3f800000, 0xbf800000, 0x3fc00000, 0x3dcccccd, 0x40490fdb, 0x00000001,
	0x007fffff, 0x00800000, 0x7f7fffff, 0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0xffc00123,
	0x4b800001, 0x4effffff, 0xcf000000, 0x4f800000, 0x5f000000, 0xdf000000, 0x5f800000, 0xc0200000,
	0x3f000000, 0x40200000, 0x33800000, 0x7f000000,
};
static const u64 ispecial[] = {
	0, 1, 0xffffffffffffffff, 0x7fffffff, 0x80000000, 0xffffffff80000000, 0xffffffff, 0x100000000,
	0x7fffffffffffffff, 0x8000000000000000, 0x0020000000000001, 0x0000000001000001, 0xfffffffffeffffff,
	0x123456789abcdef0, 0x3f800000, 0xffffffff3f800000,
};
#define NDS (sizeof(dspecial) / sizeof(dspecial[0]))
#define NSS (sizeof(sspecial) / sizeof(sspecial[0]))
#define NIS (sizeof(ispecial) / sizeof(ispecial[0]))

static u64 lcg = 0x2545F4914F6CDD1DULL;
static u64 rnd(void)
{
	lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
	return lcg ^ (lcg >> 29);
}

/* An operand for the sweep: a special value a third of the time, else random
 * bits with the exponent nudged towards the interesting ends. */
static u64 rnd_operand(int single)
{
	u64 r = rnd();
	int pick = (int)(r % 6);
	if (pick < 2)
		return single ? sspecial[(r >> 8) % NSS] : dspecial[(r >> 8) % NDS];
	u64 bits = rnd();
	if (single) {
		bits &= 0xffffffff;
		if (pick == 2) /* near 1.0 */
			bits = (bits & 0x807fffff) | ((u64)(127 - 2 + (r >> 40) % 5) << 23);
		else if (pick == 3) /* tiny: subnormal results in reach */
			bits = (bits & 0x807fffff) | ((u64)((r >> 40) % 24) << 23);
		return bits;
	}
	if (pick == 2)
		bits = (bits & 0x800fffffffffffffULL) | ((u64)(1023 - 2 + (r >> 40) % 5) << 52);
	else if (pick == 3)
		bits = (bits & 0x800fffffffffffffULL) | ((u64)((r >> 40) % 54) << 52);
	return bits;
}

static void section(const char *name)
{
	printf("# %s\n", name);
}

/* Singles placed in f registers without NaN-boxing: each must read as the
 * canonical NaN, except to fmv.x.w and fsw, which take the low 32 bits. */
static void unboxed(void)
{
	static const u64 raw[] = { 0x000000003f800000, 0x7fffffff40000000, 0xfffffffe3f800000, 0xffffffff3f800000 };
	for (unsigned i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
		u64 r1, r2, r3, r4, r5, r6;
		unsigned long f1, f2, f3, f4;
		uint32_t mem;
		__asm__ volatile("fmv.d.x ft0, %6\n\t"
				 "fsflags zero\n\tfadd.s ft1, ft0, ft0\n\tfrflags %4\n\tfmv.x.d %0, ft1\n\t"
				 "fsflags zero\n\tfsgnj.s ft1, ft0, ft0\n\tfrflags %5\n\tfmv.x.d %1, ft1\n\t"
				 "fmv.x.w %2, ft0\n\t"
				 "fclass.s %3, ft0\n\t"
				 "fsw ft0, %7"
				 : "=&r"(r1), "=&r"(r2), "=&r"(r3), "=&r"(r4), "=&r"(f1), "=&r"(f2)
				 : "r"(raw[i]), "m"(mem)
				 : "ft0", "ft1", "memory");
		__asm__ volatile("fmv.d.x ft0, %4\n\t"
				 "fsflags zero\n\tfcvt.d.s ft1, ft0\n\tfrflags %2\n\tfmv.x.d %0, ft1\n\t"
				 "fsflags zero\n\tfeq.s %1, ft0, ft0\n\tfrflags %3"
				 : "=&r"(r5), "=&r"(r6), "=&r"(f3), "=&r"(f4)
				 : "r"(raw[i])
				 : "ft0", "ft1");
		printf("unboxed %016llx: fadd.s %llx/%02lx fsgnj.s %llx/%02lx fmv.x.w %llx fclass.s %llx fsw %08x"
		       " fcvt.d.s %llx/%02lx feq.s %llx/%02lx\n",
		       (unsigned long long)raw[i], (unsigned long long)r1, f1, (unsigned long long)r2, f2,
		       (unsigned long long)r3, (unsigned long long)r4, mem, (unsigned long long)r5, f3,
		       (unsigned long long)r6, f4);
	}
}

/* fflags accumulate until cleared; fcsr is frm << 5 | fflags. */
static void sticky(void)
{
	volatile double zero = 0.0, one = 1.0, three = 3.0, big = 1e308;
	volatile double r;
	feclearexcept(FE_ALL_EXCEPT);
	fesetround(FE_TONEAREST);
	r = one / three;
	printf("sticky after 1/3: %02x\n", fetestexcept(FE_ALL_EXCEPT));
	r = one / zero;
	printf("sticky after 1/0: %02x\n", fetestexcept(FE_ALL_EXCEPT));
	r = big * big;
	printf("sticky after 1e308^2: %02x\n", fetestexcept(FE_ALL_EXCEPT));
	r = zero / zero;
	printf("sticky after 0/0: %02x\n", fetestexcept(FE_ALL_EXCEPT));
	fesetround(FE_UPWARD);
	unsigned long fcsr, frm;
	__asm__ volatile("frcsr %0\n\tfrrm %1" : "=r"(fcsr), "=r"(frm));
	printf("fcsr %03lx frm %lx fegetround %x\n", fcsr, frm, fegetround());
	__asm__ volatile("fscsr zero");
	__asm__ volatile("csrwi fcsr, 0x1f\n\tfrcsr %0" : "=r"(fcsr));
	printf("fcsr after csrwi 0x1f: %03lx\n", fcsr);
	__asm__ volatile("fscsr %0" : : "r"(0xffUL));
	__asm__ volatile("frcsr %0" : "=r"(fcsr));
	printf("fcsr after fscsr 0xff: %03lx\n", fcsr);
	__asm__ volatile("csrw fcsr, %1\n\tfrcsr %0" : "=r"(fcsr) : "r"(~0UL));
	printf("fcsr after csrw ~0: %03lx\n", fcsr);
	fesetround(FE_TONEAREST);
	feclearexcept(FE_ALL_EXCEPT);
	(void)r;
}

/* Ordinary C doubles, compiled by gcc (compressed fld/fsd on sp): libm-free
 * arithmetic whose results the compiler cannot fold. */
static void compiled(void)
{
	volatile double a = 1.0;
	double acc = 0.0, harmonic = 0.0;
	float facc = 0.0f;
	for (int i = 1; i <= 1000; i++) {
		acc += a / i * (i & 1 ? 1 : -1);
		harmonic += 1.0 / ((double)i * i);
		facc += (float)a / (float)(i * 3);
	}
	printf("compiled ln2~ %016llx pi2/6~ %016llx float-sum %08llx int %lld\n", (unsigned long long)of_d(acc),
	       (unsigned long long)of_d(harmonic), (unsigned long long)of_s(facc), (long long)(acc * 1e15));
	printf("compiled printf %.17g %.9g %a %e\n", acc, (double)facc, harmonic, 1.0 / 3.0);
}

int main(void)
{
	u64 v[3] = { 0, 0, 0 };
	int dynmode = 0;

	section("one operand: every special value, every instruction");
	for (unsigned o = 0; o < NOPS; o++) {
		if (ops[o].nargs != 1)
			continue;
		for (unsigned i = 0; i < (ops[o].single ? NSS : NDS); i++) {
			set_dyn(dynmode = (dynmode + 1) % 5);
			v[0] = ops[o].single ? sspecial[i] : dspecial[i];
			line(&ops[o], v);
		}
	}
	section("integer sources");
	for (unsigned o = 0; o < NINT_OPS; o++)
		for (unsigned i = 0; i < NIS; i++) {
			set_dyn(dynmode = (dynmode + 1) % 5);
			v[0] = ispecial[i];
			line(&int_ops[o], v);
		}
	section("two operands: special x special (a 10-value subset), every instruction");
	for (unsigned o = 0; o < NOPS; o++) {
		if (ops[o].nargs != 2)
			continue;
		for (unsigned i = 0; i < 10; i++)
			for (unsigned j = 0; j < 10; j++) {
				/* ±0, ±1, 0.1, the least subnormal, the greatest finite, +inf, a quiet and a signalling NaN */
				static const unsigned pick[10] = { 0, 1, 2, 3, 5, 7, 10, 11, 13, 14 };
				unsigned a = pick[i], b = pick[j];
				v[0] = ops[o].single ? sspecial[a] : dspecial[a];
				v[1] = ops[o].single ? sspecial[b] : dspecial[b];
				set_dyn(dynmode = (dynmode + 1) % 5);
				line(&ops[o], v);
			}
	}
	section("three operands: fused multiply-add on specials");
	for (unsigned o = 0; o < NOPS; o++) {
		if (ops[o].nargs != 3)
			continue;
		for (unsigned k = 0; k < 30; k++) {
			u64 r = rnd();
			for (int x = 0; x < 3; x++)
				v[x] = ops[o].single ? sspecial[(r >> (8 * x)) % NSS] : dspecial[(r >> (8 * x)) % NDS];
			set_dyn(dynmode = (dynmode + 1) % 5);
			line(&ops[o], v);
		}
	}
	section("fma rounds once: a*b+c where a*b alone would round");
	{
		u64 fd[][3] = { { 0x3ff0000000000001, 0x3ff0000000000001, 0xbff0000000000002 },
				{ 0x3fb999999999999a, 0x4024000000000000, 0xbff0000000000000 },
				{ 0x7fefffffffffffff, 0x4000000000000000, 0xffefffffffffffff },
				{ 0x0010000000000000, 0x3fe0000000000000, 0x8000000000000001 } };
		for (unsigned k = 0; k < 4; k++) {
			memcpy(v, fd[k], sizeof(v));
			for (unsigned o = 5; o <= 8; o++)
				line(&ops[o], v);
		}
	}
	section("NaN boxing: unboxed singles");
	unboxed();
	section("fflags accumulate; fcsr");
	sticky();
	section("random sweep");
	for (int k = 0; k < 500; k++) {
		const struct op *op = &ops[rnd() % NOPS];
		for (int x = 0; x < 3; x++)
			v[x] = rnd_operand(op->single);
		set_dyn(dynmode = (dynmode + 1) % 5);
		line(op, v);
	}
	for (int k = 0; k < 60; k++) {
		const struct op *op = &int_ops[rnd() % NINT_OPS];
		v[0] = rnd() >> (rnd() % 64);
		set_dyn(dynmode = (dynmode + 1) % 5);
		line(op, v);
	}
	section("compiled C");
	fesetround(FE_TONEAREST);
	compiled();
	printf("fptest done\n");
	return 0;
}
