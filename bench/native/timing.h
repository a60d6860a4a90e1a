/*
 * The timing loop the lookup baselines share (binsearch.c, gfnindex.c): best
 * ns per lookup of a batch function over the same gfns. The batch function
 * is called once per 4,096 lookups, so calling it through a pointer costs
 * nothing measurable; the lookups inside it are inlined.
 */
#ifndef WEBKVM_BENCH_TIMING_H
#define WEBKVM_BENCH_TIMING_H

#define _POSIX_C_SOURCE 200809L
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

typedef uint64_t (*batch_fn)(const void *table, const uint64_t *gfns, size_t count);

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* Best ns per lookup: calibrate a repeat count to MIN_MS, then ROUNDS blocks. */
static double time_batch(batch_fn batch, const void *t, const uint64_t *gfns, size_t count, double min_ms, int rounds)
{
	uint64_t sink = 0;
	long reps = 1;
	double best = 1e300;

	for (;;) {
		double t0 = now_ns();

		for (long r = 0; r < reps; r++) {
			sink += batch(t, gfns, count);
			/* keep the compiler from hoisting the loop-invariant batch */
			__asm__ volatile("" : "+r"(sink) : : "memory");
		}
		if (now_ns() - t0 >= min_ms * 1e6 || reps >= (1L << 40))
			break;
		reps *= 2;
	}
	for (int k = 0; k < rounds; k++) {
		double t0 = now_ns(), dt;

		for (long r = 0; r < reps; r++) {
			sink += batch(t, gfns, count);
			__asm__ volatile("" : "+r"(sink) : : "memory");
		}
		dt = (now_ns() - t0) / ((double)reps * count);
		if (dt < best)
			best = dt;
	}
	if (sink == 42)
		fputs("", stderr);
	return best;
}

#endif
