// dirty PAGES ROUNDS [STRIDE]: a page-dirtying loop for live-migration tests.
// Maps PAGES pages; each round r = 1, 2, ... writes the word (r << 32 | i)
// at the start of every STRIDE-th page i (default 1: every page). ROUNDS 0
// runs until killed, printing a line every 256 rounds; otherwise it prints
// the pages written per round, the rounds and the FNV-1a 64 of those pages'
// first words after the last round (little-endian: the host can compute it).
#include <stdio.h>
#include <sys/mman.h>

#include "box.h"

int dirty_main(int argc, char **argv)
{
	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: dirty PAGES ROUNDS [STRIDE]\n");
		return 2;
	}
	uint64_t pages = arg_u64("dirty", "PAGES", argv[1]);
	uint64_t rounds = arg_u64("dirty", "ROUNDS", argv[2]);
	uint64_t stride = argc == 4 ? arg_u64("dirty", "STRIDE", argv[3]) : 1;
	if (pages == 0 || pages > (1 << 28) || stride == 0) {
		fprintf(stderr, "dirty: PAGES must be 1 to 2^28, STRIDE at least 1\n");
		return 2;
	}
	uint64_t *m = mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) {
		perror("dirty: mmap");
		return 1;
	}
	uint64_t written = (pages + stride - 1) / stride;
	for (uint64_t r = 1; rounds == 0 || r <= rounds; r++) {
		for (uint64_t i = 0; i < pages; i += stride)
			((volatile uint64_t *)m)[i * 512] = r << 32 | i;
		if (rounds == 0 && r % 256 == 0) {
			printf("dirty round=%llu\n", (unsigned long long)r);
			fflush(stdout);
		}
	}
	uint64_t h = FNV_BASIS;
	for (uint64_t i = 0; i < pages; i += stride)
		h = fnv1a64(&m[i * 512], 8, h);
	printf("dirty pages=%llu stride=%llu rounds=%llu written=%llu checksum=0x%016llx\n",
	       (unsigned long long)pages, (unsigned long long)stride, (unsigned long long)rounds,
	       (unsigned long long)written, (unsigned long long)h);
	munmap(m, pages * 4096);
	return 0;
}
