/*
 * Native baseline for bench/lookup.js: a plain C binary search over the same
 * slot table (sorted base gfn, npages, userspace_addr arrays) and the same gfn
 * batches the wasm and TypeScript lookups use.
 *
 *   binsearch FILE MIN_MS ROUNDS
 *
 * FILE (little-endian u64s, written by bench/native/native.js):
 *   n, batch, base[n], npages[n], uaddr[n], random[batch], sequential[batch]
 *
 * Prints "key value" lines: the checksum of each batch (sum of the hvas, 0 for
 * a miss, mod 2^64 — the same sum the core's benchLookup returns) and the best
 * ns per lookup over ROUNDS timed blocks of at least MIN_MS each (timing.h).
 */
#include "timing.h"

#include <inttypes.h>
#include <stdlib.h>

struct table {
	size_t n;
	const uint64_t *base, *npages, *uaddr;
};

static uint64_t lookup(const struct table *t, uint64_t gfn)
{
	size_t lo = 0, hi = t->n; /* the first slot whose base is above gfn is in [lo, hi] */

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->base[mid] <= gfn)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return 0;
	lo--;
	if (gfn - t->base[lo] >= t->npages[lo])
		return 0;
	return t->uaddr[lo] + ((gfn - t->base[lo]) << 12);
}

static uint64_t batch(const void *table, const uint64_t *gfns, size_t count)
{
	const struct table *t = table;
	uint64_t sum = 0;

	for (size_t i = 0; i < count; i++)
		sum += lookup(t, gfns[i]);
	return sum;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s FILE MIN_MS ROUNDS\n", argv[0]);
		return 2;
	}
	FILE *f = fopen(argv[1], "rb");
	uint64_t hdr[2];

	if (!f || fread(hdr, 8, 2, f) != 2) {
		perror(argv[1]);
		return 1;
	}
	size_t n = hdr[0], count = hdr[1], words = 3 * n + 2 * count;
	uint64_t *data = malloc(words * 8);

	if (!data || fread(data, 8, words, f) != words) {
		fprintf(stderr, "%s: short file\n", argv[1]);
		return 1;
	}
	fclose(f);

	struct table t = { n, data, data + n, data + 2 * n };
	const uint64_t *rnd = data + 3 * n, *seq = rnd + count;
	double min_ms = atof(argv[2]);
	int rounds = atoi(argv[3]);

	printf("checksum_random %" PRIu64 "\n", batch(&t, rnd, count));
	printf("checksum_sequential %" PRIu64 "\n", batch(&t, seq, count));
	printf("random_ns %.4f\n", time_batch(batch, &t, rnd, count, min_ms, rounds));
	printf("sequential_ns %.4f\n", time_batch(batch, &t, seq, count, min_ms, rounds));
	return 0;
}
