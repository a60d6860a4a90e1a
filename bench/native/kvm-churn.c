/*
 * Kernel baseline for bench/churn.js and bench/dirty.js: the same memslot and
 * dirty-log ioctls on the real kernel through /dev/kvm.
 *
 *   kvm-churn churn N REPS ROUNDS
 *     N slots of SLOT_PAGES pages (slot i at gfn 2*i*SLOT_PAGES: a same-sized
 *     hole after every slot), then ROUNDS rounds of, for REPS slots k spread over
 *     the table: flags-only (LOG_DIRTY_PAGES on, then off), move (into the hole,
 *     then back), delete, create. Each kind is timed as a block; per kind the
 *     best round's ns per ioctl. Also the populate cost (creating 0..N-1).
 *
 *   kvm-churn dirty REPS ROUNDS
 *     A 16 GiB slot (MAP_NORESERVE, never touched) with LOG_DIRTY_PAGES:
 *     KVM_GET_DIRTY_LOG of it clean; then with MANUAL_DIRTY_LOG_PROTECT2 +
 *     INITIALLY_SET (every bit set without touching memory) GET of it fully
 *     dirty, and KVM_CLEAR_DIRTY_LOG of the whole slot (timed once per fresh
 *     slot, ROUNDS times, best).
 *
 * Output: "key value" lines. "skip REASON" (exit 0) when /dev/kvm cannot be
 * opened or KVM_CREATE_VM fails; "error WHAT: REASON" (exit 1) on any other
 * failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096ULL
#define SLOT_PAGES 16ULL
#define SLOT_BYTES (SLOT_PAGES * PAGE)
#define DIRTY_PAGES (4ULL << 20) /* 16 GiB */

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void die(const char *what)
{
	printf("error %s: %s\n", what, strerror(errno));
	exit(1);
}

static int create_vm(void)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC), vm;

	if (kvm < 0) {
		printf("skip cannot open /dev/kvm: %s\n", strerror(errno));
		exit(0);
	}
	if (ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		printf("skip /dev/kvm: unexpected KVM_GET_API_VERSION\n");
		exit(0);
	}
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0) {
		printf("skip KVM_CREATE_VM failed: %s\n", strerror(errno));
		exit(0);
	}
	close(kvm);
	return vm;
}

static void *reserve(uint64_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		die("mmap");
	return p;
}

static void set_region(int vm, uint32_t slot, uint32_t flags, uint64_t gpa, uint64_t size, uint64_t hva)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot, .flags = flags, .guest_phys_addr = gpa, .memory_size = size, .userspace_addr = hva,
	};

	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		die("KVM_SET_USER_MEMORY_REGION");
}

static void churn(unsigned n, unsigned reps, unsigned rounds)
{
	int vm = create_vm();
	int max = ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS);
	uint64_t hva = (uint64_t)(uintptr_t)reserve(n * SLOT_BYTES);
	unsigned *k = malloc(reps * sizeof(*k));
	double best[4] = { 1e300, 1e300, 1e300, 1e300 }, t0;

	if (max > 0 && n > (unsigned)max) {
		printf("skip %u slots: the kernel allows %d\n", n, max);
		exit(0);
	}
	if (reps > n)
		reps = n;
	for (unsigned r = 0; r < reps; r++)
		k[r] = (unsigned)(((uint64_t)r * 7919) % n);

#define GPA(i) ((uint64_t)(i) * 2 * SLOT_BYTES)
#define HVA(i) (hva + (uint64_t)(i) * SLOT_BYTES)
	t0 = now_ns();
	for (unsigned i = 0; i < n; i++)
		set_region(vm, i, 0, GPA(i), SLOT_BYTES, HVA(i));
	printf("populate_ns %.1f\n", (now_ns() - t0) / n);

	/* round 0 warms up and is not counted */
	for (unsigned round = 0; round <= rounds; round++) {
		double dt[4];

		t0 = now_ns();
		for (unsigned r = 0; r < reps; r++)
			set_region(vm, k[r], KVM_MEM_LOG_DIRTY_PAGES, GPA(k[r]), SLOT_BYTES, HVA(k[r]));
		for (unsigned r = 0; r < reps; r++)
			set_region(vm, k[r], 0, GPA(k[r]), SLOT_BYTES, HVA(k[r]));
		dt[1] = (now_ns() - t0) / (2.0 * reps);

		t0 = now_ns();
		for (unsigned r = 0; r < reps; r++)
			set_region(vm, k[r], 0, GPA(k[r]) + SLOT_BYTES, SLOT_BYTES, HVA(k[r]));
		for (unsigned r = 0; r < reps; r++)
			set_region(vm, k[r], 0, GPA(k[r]), SLOT_BYTES, HVA(k[r]));
		dt[2] = (now_ns() - t0) / (2.0 * reps);

		t0 = now_ns();
		for (unsigned r = 0; r < reps; r++)
			set_region(vm, k[r], 0, GPA(k[r]), 0, HVA(k[r]));
		dt[3] = (now_ns() - t0) / reps;

		t0 = now_ns();
		for (unsigned r = 0; r < reps; r++)
			set_region(vm, k[r], 0, GPA(k[r]), SLOT_BYTES, HVA(k[r]));
		dt[0] = (now_ns() - t0) / reps;

		for (int i = 0; round && i < 4; i++)
			if (dt[i] < best[i])
				best[i] = dt[i];
	}
	printf("slots %u\nreps %u\nrounds %u\n", n, reps, rounds);
	printf("create_ns %.1f\nflags_ns %.1f\nmove_ns %.1f\ndelete_ns %.1f\n", best[0], best[1], best[2], best[3]);
}

static void dirty(unsigned reps, unsigned rounds)
{
	uint64_t bytes = DIRTY_PAGES / 8;
	void *buf = reserve(bytes), *ones = reserve(bytes);
	struct kvm_dirty_log get = { .slot = 0, .dirty_bitmap = buf };
	struct kvm_clear_dirty_log clear = { .slot = 0, .first_page = 0, .num_pages = DIRTY_PAGES, .dirty_bitmap = ones };
	struct kvm_enable_cap cap = { .cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 };
	int clean_vm = create_vm(), dirty_vm = create_vm();
	uint64_t clean_hva = (uint64_t)(uintptr_t)reserve(DIRTY_PAGES * PAGE);
	uint64_t dirty_hva = (uint64_t)(uintptr_t)reserve(DIRTY_PAGES * PAGE);
	double best_clean = 1e300, best_dirty = 1e300, best_clear = 1e300, t0, dt;
	int caps = ioctl(dirty_vm, KVM_CHECK_EXTENSION, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);

	memset(buf, 0, bytes); /* fault the user buffers in before timing */
	memset(ones, 0xff, bytes);
	set_region(clean_vm, 0, KVM_MEM_LOG_DIRTY_PAGES, 0, DIRTY_PAGES * PAGE, clean_hva);
	for (unsigned round = 0; round <= rounds; round++) {
		t0 = now_ns();
		for (unsigned r = 0; r < reps; r++)
			if (ioctl(clean_vm, KVM_GET_DIRTY_LOG, &get) < 0)
				die("KVM_GET_DIRTY_LOG (clean)");
		dt = (now_ns() - t0) / reps;
		if (round && dt < best_clean)
			best_clean = dt;
	}
	if (((uint64_t *)buf)[bytes / 8 - 1] != 0) {
		printf("error the clean slot reported dirty pages\n");
		exit(1);
	}
	printf("get_clean_ns %.1f\n", best_clean);

	if (!(caps & KVM_DIRTY_LOG_INITIALLY_SET)) {
		printf("skip_dirty KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 lacks INITIALLY_SET (%d)\n", caps);
		return;
	}
	cap.args[0] = KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | KVM_DIRTY_LOG_INITIALLY_SET;
	if (ioctl(dirty_vm, KVM_ENABLE_CAP, &cap) < 0)
		die("KVM_ENABLE_CAP(MANUAL_DIRTY_LOG_PROTECT2)");
	set_region(dirty_vm, 0, KVM_MEM_LOG_DIRTY_PAGES, 0, DIRTY_PAGES * PAGE, dirty_hva);
	for (unsigned round = 0; round <= rounds; round++) {
		t0 = now_ns();
		for (unsigned r = 0; r < reps; r++)
			if (ioctl(dirty_vm, KVM_GET_DIRTY_LOG, &get) < 0)
				die("KVM_GET_DIRTY_LOG (dirty)");
		dt = (now_ns() - t0) / reps;
		if (round && dt < best_dirty)
			best_dirty = dt;
	}
	if (((uint64_t *)buf)[bytes / 8 - 1] != ~0ULL) {
		printf("error the INITIALLY_SET slot is not fully dirty\n");
		exit(1);
	}
	printf("get_dirty_ns %.1f\n", best_dirty);

	/* CLEAR leaves the slot clean: each round re-creates it (INITIALLY_SET) */
	for (unsigned round = 0; round < rounds; round++) {
		if (round) {
			set_region(dirty_vm, 0, 0, 0, 0, dirty_hva);
			set_region(dirty_vm, 0, KVM_MEM_LOG_DIRTY_PAGES, 0, DIRTY_PAGES * PAGE, dirty_hva);
		}
		t0 = now_ns();
		if (ioctl(dirty_vm, KVM_CLEAR_DIRTY_LOG, &clear) < 0)
			die("KVM_CLEAR_DIRTY_LOG");
		dt = now_ns() - t0;
		if (dt < best_clear)
			best_clear = dt;
	}
	if (ioctl(dirty_vm, KVM_GET_DIRTY_LOG, &get) < 0)
		die("KVM_GET_DIRTY_LOG (after clear)");
	if (((uint64_t *)buf)[bytes / 8 - 1] != 0) {
		printf("error CLEAR left dirty bits\n");
		exit(1);
	}
	printf("clear_dirty_ns %.1f\n", best_clear);
	printf("pages %llu\n", (unsigned long long)DIRTY_PAGES);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 5 && !strcmp(argv[1], "churn"))
		churn(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]));
	else if (argc == 4 && !strcmp(argv[1], "dirty"))
		dirty(atoi(argv[2]), atoi(argv[3]));
	else {
		fprintf(stderr, "usage: %s churn N REPS ROUNDS | dirty REPS ROUNDS\n", argv[0]);
		return 2;
	}
	return 0;
}
