// mips [ITERS]: the reference loop (the shared kernel.c that guests/mips
// wraps for bare metal) as a Linux process. Prints the same line as the
// bare-metal guest (guests/mips/reference.mjs's mipsLine: ITERS 0 or absent
// means 40,000,000), then the instructions it retired (rdinstret) and the
// time it took (CLOCK_MONOTONIC).
//
// The counters are user mode's to read: the kernel's SBI PMU driver sets
// scounteren (cycle, time, instret), so clock_gettime goes through the vDSO
// (it reads the time CSR) and rdinstret reads the vCPU's retired count.
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "box.h"
#include "kernel.h"

#define MIPS_DEFAULT_ITERS 40000000ULL
#define MIPS_INIT_SEED 12345ULL
#define MIPS_RUN_SEED 0xC0FFEEULL

static uint64_t instret(void)
{
	uint64_t v;
	__asm__ volatile("rdinstret %0" : "=r"(v));
	return v;
}

int mips_main(int argc, char **argv)
{
	uint64_t iters = argc > 1 ? arg_u64("mips", "ITERS", argv[1]) : 0;
	if (iters == 0)
		iters = MIPS_DEFAULT_ITERS;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	uint64_t i0 = instret();
	kernel_init(MIPS_INIT_SEED);
	uint64_t sum = kernel_run(iters, MIPS_RUN_SEED);
	uint64_t i1 = instret();
	clock_gettime(CLOCK_MONOTONIC, &t1);

	printf("mips iters=%llu checksum=0x%016llx\n", (unsigned long long)iters, (unsigned long long)sum);
	uint64_t ns = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000ULL + t1.tv_nsec - t0.tv_nsec;
	printf("mips instret=%llu ns=%llu mips=%.1f\n", (unsigned long long)(i1 - i0), (unsigned long long)ns,
	       ns ? (double)(i1 - i0) * 1e3 / (double)ns : 0.0);
	return 0;
}
