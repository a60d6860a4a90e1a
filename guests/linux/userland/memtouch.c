// memtouch MIB: maps MIB MiB anonymous and private, writes the memtest LCG
// stream over it a word at a time (a page fault per page) and prints the page
// count and the FNV-1a 64 of its bytes: the same stream and hash as /init's
// parent mapping, so guests/linux/reference.mjs's initSums(pages).parent is
// the expected checksum.
#include <stdio.h>
#include <sys/mman.h>

#include "box.h"

int memtouch_main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: memtouch MIB\n");
		return 2;
	}
	uint64_t mib = arg_u64("memtouch", "MIB", argv[1]);
	uint64_t bytes = mib << 20;
	if (mib == 0 || mib > (1 << 20) || (bytes >> 20) != mib) {
		fprintf(stderr, "memtouch: MIB must be 1 to 1048576\n");
		return 2;
	}
	uint64_t *w = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (w == MAP_FAILED) {
		perror("memtouch: mmap");
		return 1;
	}
	uint64_t x = 0x9E3779B97F4A7C15ULL;
	for (uint64_t k = 0; k < bytes / 8; k++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		w[k] = x;
	}
	printf("memtouch mib=%llu pages=%llu checksum=0x%016llx\n", (unsigned long long)mib,
	       (unsigned long long)(bytes / 4096), (unsigned long long)fnv1a64(w, bytes, FNV_BASIS));
	munmap(w, bytes);
	return 0;
}
