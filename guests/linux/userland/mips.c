// mips [ITERS]: the reference loop (the shared kernel.c that guests/mips
// wraps for bare metal) as a Linux process. Prints the same line as the
// bare-metal guest (guests/mips/reference.mjs's mipsLine: ITERS 0 or absent
// means 40,000,000), then the instructions it retired (rdinstret, when user
// mode may read it) and the time it took (clock_gettime CLOCK_MONOTONIC).
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>

#include "box.h"
#include "kernel.h"

#define MIPS_DEFAULT_ITERS 40000000ULL
#define MIPS_INIT_SEED 12345ULL
#define MIPS_RUN_SEED 0xC0FFEEULL

static volatile int no_instret;

// rdinstret traps when the kernel leaves scounteren.IR clear: skip the
// 4-byte instruction and say it is unavailable.
static void on_sigill(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	no_instret = 1;
	((ucontext_t *)uc)->uc_mcontext.__gregs[REG_PC] += 4;
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
	clock_gettime(CLOCK_MONOTONIC, &t0);
	uint64_t i0 = instret();
	kernel_init(MIPS_INIT_SEED);
	uint64_t sum = kernel_run(iters, MIPS_RUN_SEED);
	uint64_t i1 = instret();
	clock_gettime(CLOCK_MONOTONIC, &t1);
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
