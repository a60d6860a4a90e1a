// mips [ITERS]: the reference loop (the shared kernel.c that guests/mips
// wraps for bare metal) as a Linux process. Prints the same line as the
// bare-metal guest (guests/mips/reference.mjs's mipsLine: ITERS 0 or absent
// means 40,000,000), then the instructions it retired (rdinstret, when user
// mode may read it) and the time it took (CLOCK_MONOTONIC).
//
// User mode reads the counters (cycle, time, instret) only where the kernel
// set scounteren, which Linux 6.1 does in its SBI PMU driver alone; without
// it rdinstret traps, and so does the vDSO's clock_gettime (it reads the time
// CSR). So the time comes from the clock_gettime system call, and a trapping
// rdinstret is skipped and reported as unavailable.
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>
#include <sys/syscall.h>

#include "box.h"
#include "kernel.h"

#define MIPS_DEFAULT_ITERS 40000000ULL
#define MIPS_INIT_SEED 12345ULL
#define MIPS_RUN_SEED 0xC0FFEEULL

static volatile int no_instret;

// A trapping rdinstret (csrrs rd, instret, x0) is skipped; any other illegal
// instruction gets the default action when it runs again.
static void on_sigill(int sig, siginfo_t *si, void *uc)
{
	(void)si;
	unsigned long *pc = &((ucontext_t *)uc)->uc_mcontext.__gregs[REG_PC];
	uint32_t insn;
	memcpy(&insn, (const void *)*pc, 4);
	if ((insn & 0xfffff07f) != 0xc0202073) {
		signal(sig, SIG_DFL);
		return;
	}
	no_instret = 1;
	*pc += 4;
}

static void now(struct timespec *t)
{
	syscall(SYS_clock_gettime, CLOCK_MONOTONIC, t);
}

static uint64_t instret(void)
{
	uint64_t v = 0;
	__asm__ volatile("rdinstret %0" : "+r"(v));
	return v;
}

int mips_main(int argc, char **argv)
{
	uint64_t iters = argc > 1 ? arg_u64("mips", "ITERS", argv[1]) : 0;
	if (iters == 0)
		iters = MIPS_DEFAULT_ITERS;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigill;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGILL, &sa, NULL);

	struct timespec t0, t1;
	now(&t0);
	uint64_t i0 = instret();
	kernel_init(MIPS_INIT_SEED);
	uint64_t sum = kernel_run(iters, MIPS_RUN_SEED);
	uint64_t i1 = instret();
	now(&t1);
	signal(SIGILL, SIG_DFL);

	printf("mips iters=%llu checksum=0x%016llx\n", (unsigned long long)iters, (unsigned long long)sum);
	uint64_t ns = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000ULL + t1.tv_nsec - t0.tv_nsec;
	if (no_instret)
		printf("mips instret=unavailable ns=%llu\n", (unsigned long long)ns);
	else
		printf("mips instret=%llu ns=%llu mips=%.1f\n", (unsigned long long)(i1 - i0), (unsigned long long)ns,
		       ns ? (double)(i1 - i0) * 1e3 / (double)ns : 0.0);
	return 0;
}
