// The QEMU baseline's SBI, for QEMU's virt machine: BASE, TIME, SRST and the
// legacy console, set_timer and shutdown; everything else NOT_SUPPORTED.
// At shutdown it prints how often each call was made: the contract
// guests/linux/README.md lists for webkvm.
typedef unsigned long u64;

#define UART ((volatile unsigned char *)0x10000000UL)
#define MTIMECMP ((volatile u64 *)0x2004000UL)	// the ACLINT timer comparator of hart 0
#define FINISHER ((volatile unsigned int *)0x100000UL)	// sifive,test1

#define EXT_LEGACY_SET_TIMER 0x00
#define EXT_LEGACY_PUTCHAR 0x01
#define EXT_LEGACY_GETCHAR 0x02
#define EXT_LEGACY_SHUTDOWN 0x08
#define EXT_BASE 0x10
#define EXT_TIME 0x54494D45
#define EXT_SRST 0x53525354
#define ERR_NOT_SUPPORTED (-2L)

#define MIP_STIP (1UL << 5)
#define MIE_MTIE (1UL << 7)

#define csr_read(c) ({ u64 v_; __asm__ volatile("csrr %0, " #c : "=r"(v_)); v_; })
#define csr_set(c, v) __asm__ volatile("csrs " #c ", %0" ::"r"(v))
#define csr_clear(c, v) __asm__ volatile("csrc " #c ", %0" ::"r"(v))

static void putc(char c)
{
	while (!(UART[5] & 0x20))
		;
	UART[0] = c;
}

static void puts(const char *s)
{
	while (*s)
		putc(*s++);
}

static void puthex(u64 v)
{
	puts("0x");
	int started = 0;
	for (int i = 60; i >= 0; i -= 4) {
		int d = (v >> i) & 15;
		if (d || started || i == 0) {
			putc("0123456789abcdef"[d]);
			started = 1;
		}
	}
}

static void putdec(u64 v)
{
	char b[21];
	int i = 20;
	b[i] = 0;
	do
		b[--i] = '0' + v % 10;
	while (v /= 10);
	puts(b + i);
}

// Call counts: one slot per (extension, function) the kernel may use.
static struct { u64 eid, fid, n; } calls[32];

static void count(u64 eid, u64 fid)
{
	for (unsigned i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
		if (calls[i].n && (calls[i].eid != eid || calls[i].fid != fid))
			continue;
		calls[i].eid = eid;
		calls[i].fid = fid;
		calls[i].n++;
		return;
	}
}

static void shutdown(unsigned code)
{
	puts("sbi: calls");
	for (unsigned i = 0; i < sizeof(calls) / sizeof(calls[0]) && calls[i].n; i++) {
		puts(" ");
		puthex(calls[i].eid);
		puts("/");
		putdec(calls[i].fid);
		puts("=");
		putdec(calls[i].n);
	}
	puts("\n");
	*FINISHER = code ? (code << 16) | 0x3333 : 0x5555;
	for (;;)
		;
}

static void set_timer(u64 when)
{
	*MTIMECMP = when;
	csr_clear(mip, MIP_STIP);
	csr_set(mie, MIE_MTIE);
}

static int probe(u64 eid)
{
	return eid == EXT_BASE || eid == EXT_TIME || eid == EXT_SRST ||
	       eid == EXT_LEGACY_SET_TIMER || eid == EXT_LEGACY_PUTCHAR ||
	       eid == EXT_LEGACY_GETCHAR || eid == EXT_LEGACY_SHUTDOWN;
}

// regs[r] is xr at the trap (regs[2] the interrupted sp).
void m_handler(u64 *regs)
{
	u64 cause = csr_read(mcause);
	if ((long)cause < 0) {
		if ((cause & 0xff) == 7) {	// machine timer: hand it to S-mode
			csr_clear(mie, MIE_MTIE);
			csr_set(mip, MIP_STIP);
			return;
		}
		puts("sbi: unexpected interrupt ");
		puthex(cause);
		puts("\n");
		shutdown(1);
	}
	if (cause != 9) {
		puts("sbi: unexpected trap mcause=");
		puthex(cause);
		puts(" mepc=");
		puthex(csr_read(mepc));
		puts(" mtval=");
		puthex(csr_read(mtval));
		puts("\n");
		shutdown(1);
	}
	__asm__ volatile("csrw mepc, %0" ::"r"(csr_read(mepc) + 4));
	u64 eid = regs[17], fid = regs[16], a0 = regs[10], a1 = regs[11];
	long err = 0;
	u64 val = 0;
	count(eid, eid < 0x10 ? 0 : fid);
	switch (eid) {
	case EXT_LEGACY_SET_TIMER:
		set_timer(a0);
		regs[10] = 0;
		return;
	case EXT_LEGACY_PUTCHAR:
		putc((char)a0);
		regs[10] = 0;
		return;
	case EXT_LEGACY_GETCHAR:
		regs[10] = (UART[5] & 1) ? UART[0] : (u64)-1;
		return;
	case EXT_LEGACY_SHUTDOWN:
		shutdown(0);
		return;
	case EXT_BASE:
		switch (fid) {
		case 0: val = 1UL << 24; break;		// SBI 1.0
		case 1: val = 0x7765626b; break;	// implementation id: "webk"
		case 2: val = 1; break;
		case 3: val = probe(a0); break;
		case 4: val = csr_read(mvendorid); break;
		case 5: val = csr_read(marchid); break;
		case 6: val = csr_read(mimpid); break;
		default: err = ERR_NOT_SUPPORTED;
		}
		break;
	case EXT_TIME:
		if (fid == 0)
			set_timer(a0);
		else
			err = ERR_NOT_SUPPORTED;
		break;
	case EXT_SRST:
		if (fid == 0 && a0 == 0)
			shutdown(a1 != 0);
		err = ERR_NOT_SUPPORTED;
		break;
	default:
		err = ERR_NOT_SUPPORTED;
	}
	regs[10] = err;
	regs[11] = val;
}
