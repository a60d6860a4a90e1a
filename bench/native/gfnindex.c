/*
 * Native baseline for bench/lookup.js: webkvm's own gfn -> hva search
 * (assembly/memslots/gfn_index.ts recordFor and search.ts searchHva) in C,
 * over a copy of the core's own records and bucket index: the same
 * algorithm on the same bytes, so the ratio is WebAssembly against native
 * code, not one algorithm against another.
 *
 *   gfnindex FILE MIN_MS ROUNDS OUT
 *
 * FILE (little-endian u64s, written by bench/lookup.js):
 *   the core's image of a set (debug/introspect.ts gfnIndexImage):
 *     index_base, index_span, index_shift, buckets, positions, records_at
 *     (the records' address in the core's memory),
 *     records[positions] (32 bytes: key, span, aux = userspace_addr, slot),
 *     u32 index[buckets + 1] (when buckets > 0: a set with a slot always
 *     has one, and an empty one has span 0) of record addresses in the core's
 *     memory, padded to 8 bytes;
 *   count, random[count] (the timed batch), checks, check[checks].
 *
 * Prints "key value" lines: the random batch's checksum (sum of the hvas, 0
 * for a miss, mod 2^64, as the core's benchLookup returns) and the best ns per
 * lookup (timing.h); writes the hva of every check gfn to OUT (u64s), for a
 * key-by-key comparison with the core.
 */
#include "timing.h"

#include <inttypes.h>
#include <stdlib.h>

/* packed.ts: a position of the gfn order; a gap has span 0 and slot 0. */
struct rec {
	uint64_t key, span, aux;
	uint32_t slot, pad;
};

struct set {
	uint64_t base, span;
	unsigned shift;
	uint32_t buckets, positions;
	const struct rec *recs;
	const uint32_t *index;
	/* the core's memory as the index's addresses see it: record address a is at mem + a */
	const char *mem;
};

#define LINEAR_SCAN_MAX 8

/* The record a gfn outside the span gets (gfn_index.ts MISS_RECORD): a gap, holding nothing. */
static const struct rec miss_record;

/* The last record in [lo, hi] (record addresses) whose key is <= gfn (lo if none). */
static inline uint32_t predecessor(const char *mem, uint64_t gfn, uint32_t lo, uint32_t hi)
{
	if (hi - lo <= LINEAR_SCAN_MAX * sizeof(struct rec)) {
		while (lo < hi) {
			if (((const struct rec *)(mem + lo))[1].key > gfn)
				break;
			lo += sizeof(struct rec);
		}
		return lo;
	}
	int32_t l = 0, h = (int32_t)((hi - lo) / sizeof(struct rec));

	while (l < h) {
		int32_t mid = (int32_t)((uint32_t)(l + h + 1) >> 1);

		if (((const struct rec *)(mem + lo))[mid].key <= gfn)
			l = mid;
		else
			h = mid - 1;
	}
	return lo + (uint32_t)l * sizeof(struct rec);
}

static inline uint64_t lookup(const struct set *s, uint64_t gfn)
{
	/* one compare covers both ends of the indexed span */
	const struct rec *x;
	uint64_t off = gfn - s->base;

	if (off >= s->span)
		x = &miss_record;
	else {
		const uint32_t *at = s->index + (off >> s->shift);

		x = (const struct rec *)(s->mem + predecessor(s->mem, gfn, at[0], at[1]));
	}
	/* and of the record; a gap (span 0) holds nothing */
	off = gfn - x->key;

	return off < x->span ? x->aux + (off << 12) : 0;
}

static uint64_t batch(const void *table, const uint64_t *gfns, size_t count)
{
	const struct set *s = table;
	uint64_t sum = 0;

	for (size_t i = 0; i < count; i++)
		sum += lookup(s, gfns[i]);
	return sum;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: %s FILE MIN_MS ROUNDS OUT\n", argv[0]);
		return 2;
	}
	FILE *f = fopen(argv[1], "rb");
	uint64_t *data;
	long size;

	if (!f || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 56 || fseek(f, 0, SEEK_SET) != 0) {
		perror(argv[1]);
		return 1;
	}
	data = malloc(size);
	if (!data || fread(data, 1, size, f) != (size_t)size) {
		fprintf(stderr, "%s: short read\n", argv[1]);
		return 1;
	}
	fclose(f);

	size_t words = size / 8, at = 6;
	struct set s = { data[0], data[1], (unsigned)data[2], (uint32_t)data[3], (uint32_t)data[4], NULL, NULL, NULL };

	s.recs = (const struct rec *)(data + at);
	s.mem = (const char *)s.recs - data[5];
	at += (size_t)s.positions * sizeof(struct rec) / 8;
	s.index = (const uint32_t *)(data + at);
	at += s.buckets ? (((size_t)s.buckets + 1) * 4 + 7) / 8 : 0;
	if (s.span != 0 && s.buckets == 0) {
		fprintf(stderr, "%s: a span without buckets\n", argv[1]);
		return 1;
	}
	if (at >= words || at + 1 + data[at] >= words) {
		fprintf(stderr, "%s: short file\n", argv[1]);
		return 1;
	}
	size_t count = data[at];
	const uint64_t *rnd = data + at + 1;
	size_t checks = data[at + 1 + count];
	const uint64_t *check = rnd + count + 1;

	if (at + 2 + count + checks != words) {
		fprintf(stderr, "%s: bad layout\n", argv[1]);
		return 1;
	}
	uint64_t *hvas = malloc(checks * 8 + 8);
	FILE *o = fopen(argv[4], "wb");

	for (size_t i = 0; i < checks; i++)
		hvas[i] = lookup(&s, check[i]);
	if (!hvas || !o || fwrite(hvas, 8, checks, o) != checks || fclose(o) != 0) {
		perror(argv[4]);
		return 1;
	}
	printf("checksum_random %" PRIu64 "\n", batch(&s, rnd, count));
	printf("random_ns %.4f\n", time_batch(batch, &s, rnd, count, atof(argv[2]), atoi(argv[3])));
	return 0;
}
