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
 *   kvm-churn churn-vcpus N REPS ROUNDS
 *     The same, while VCPUS vCPU threads run a guest the whole time (started
 *     before populate, running until exit). The guest (32-bit protected mode,
 *     flat segments, no paging; code below) sits in its own slot N at GUEST_GPA,
 *     above every churned gfn, and loops: increment a word in one of its own 16
 *     data pages (round robin: a read and a write), then store its iteration
 *     count at its counter. So the vCPUs hold sptes for ~18 pages, which every
 *     delete and move zaps (x86's default KVM_X86_QUIRK_SLOT_ZAP_ALL zaps all
 *     roots) with a remote TLB flush that must kick them. The counters are read
 *     around every timed block, and between two blocks every vCPU runs SETTLE
 *     more iterations before the next starts. A block during which a vCPU did
 *     not advance is left out of the best (blocks_counted_KIND: the blocks
 *     kept); vcpuI_iters_KIND: vCPU I's iterations during all KIND blocks of
 *     the counted rounds.
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
#include <pthread.h>
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
#define VCPUS 2
/* Above the churned range (2 * 32,000 slots * 64 KiB = 0xfa000000) and below 4 GiB. */
#define GUEST_GPA 0xff000000ULL
#define GUEST_BYTES (1ULL << 20)
#define COUNTER_OFF 0x800ULL /* vCPU i's counter at COUNTER_OFF + 64 * i */
#define DATA_OFF 0x10000ULL /* vCPU i's 16 data pages at DATA_OFF + 0x10000 * i */
#define SETTLE 1000 /* guest iterations every vCPU runs between two timed blocks */

/* Where the counters are read without vCPUs (the plain churn mode): zeros. */
static uint8_t no_guest[COUNTER_OFF + 64 * VCPUS];

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

static int vcpu_mmap_size;

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
	vcpu_mmap_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
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

/*
 * The guest, 32-bit code; ebx = its data pages, edi = its counter:
 *	xor esi, esi
 * 1:	mov eax, esi ; and eax, 15 ; shl eax, 12 ; add eax, ebx
 *	inc dword [eax]
 *	inc esi ; mov [edi], esi
 *	jmp 1b
 */
static const uint8_t guest_code[] = {
	0x31, 0xf6, 0x89, 0xf0, 0x83, 0xe0, 0x0f, 0xc1, 0xe0, 0x0c, 0x01, 0xd8,
	0xff, 0x00, 0x46, 0x89, 0x37, 0xeb, 0xef,
};

struct vcpu_thread {
	int fd;
	struct kvm_run *run;
	pthread_t thread;
};

static volatile uint32_t *guest_counter(uint8_t *guest, int i)
{
	return (volatile uint32_t *)(guest + COUNTER_OFF + 64 * i);
}

static void flat_segment(struct kvm_segment *s, unsigned type, unsigned selector)
{
	*s = (struct kvm_segment){ .base = 0, .limit = 0xffffffff, .selector = selector, .type = type,
		.present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1 };
}

/* Runs the guest until the process exits; any exit but a signal's is an error. */
static void *vcpu_loop(void *arg)
{
	struct vcpu_thread *t = arg;

	for (;;) {
		if (ioctl(t->fd, KVM_RUN, 0) < 0 && errno != EINTR)
			die("KVM_RUN");
		if (t->run->exit_reason != KVM_EXIT_INTR) {
			printf("error the guest exited: exit_reason %u\n", t->run->exit_reason);
			exit(1);
		}
	}
	return NULL;
}

/* VCPUS vCPU threads running the guest in slot `slot` at GUEST_GPA; returns once every one has counted. */
static uint8_t *start_vcpus(int vm, unsigned slot, struct vcpu_thread *t)
{
	uint8_t *guest = mmap(NULL, GUEST_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (guest == MAP_FAILED)
		die("mmap");
	memcpy(guest, guest_code, sizeof(guest_code));
	set_region(vm, slot, 0, GUEST_GPA, GUEST_BYTES, (uint64_t)(uintptr_t)guest);
	for (int i = 0; i < VCPUS; i++) {
		struct kvm_sregs sregs;
		struct kvm_regs regs = { .rip = GUEST_GPA, .rflags = 2,
			.rbx = GUEST_GPA + DATA_OFF + 0x10000ULL * i, .rdi = GUEST_GPA + COUNTER_OFF + 64 * i };

		t[i].fd = ioctl(vm, KVM_CREATE_VCPU, i);
		if (t[i].fd < 0)
			die("KVM_CREATE_VCPU");
		t[i].run = mmap(NULL, vcpu_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, t[i].fd, 0);
		if (t[i].run == MAP_FAILED)
			die("mmap(kvm_run)");
		if (ioctl(t[i].fd, KVM_GET_SREGS, &sregs) < 0)
			die("KVM_GET_SREGS");
		flat_segment(&sregs.cs, 11, 8);
		flat_segment(&sregs.ds, 3, 16);
		sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
		sregs.cr0 |= 1; /* protected mode, paging off */
		if (ioctl(t[i].fd, KVM_SET_SREGS, &sregs) < 0)
			die("KVM_SET_SREGS");
		if (ioctl(t[i].fd, KVM_SET_REGS, &regs) < 0)
			die("KVM_SET_REGS");
		if (pthread_create(&t[i].thread, NULL, vcpu_loop, &t[i]))
			die("pthread_create");
	}
	for (int i = 0; i < VCPUS; i++)
		while (*guest_counter(guest, i) == 0)
			usleep(100);
	return guest;
}

static void read_counters(uint8_t *guest, uint32_t *c)
{
	for (int i = 0; i < VCPUS; i++)
		c[i] = *guest_counter(guest, i);
}

/*
 * Off the clock between two blocks: waits until every vCPU has run SETTLE
 * iterations past `from` (so the next block starts with them running), then
 * reads the counters the block starts from into `from`.
 */
static void settle(uint8_t *guest, uint32_t *from)
{
	uint32_t start[VCPUS];

	read_counters(guest, start);
	for (int i = 0; guest != no_guest && i < VCPUS; i++)
		while (*guest_counter(guest, i) - start[i] < SETTLE)
			usleep(50);
	read_counters(guest, from);
}

/* The smallest advance of any vCPU's counter from a to b. */
static uint32_t min_advance(const uint32_t *a, const uint32_t *b)
{
	uint32_t m = UINT32_MAX;

	for (int i = 0; i < VCPUS; i++)
		if (b[i] - a[i] < m)
			m = b[i] - a[i];
	return m;
}

static void churn(unsigned n, unsigned reps, unsigned rounds, int with_vcpus)
{
	int vm = create_vm();
	int max = ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS);
	uint64_t hva = (uint64_t)(uintptr_t)reserve(n * SLOT_BYTES);
	unsigned *k = malloc(reps * sizeof(*k));
	double best[4] = { 1e300, 1e300, 1e300, 1e300 }, t0;
	unsigned counted[4] = { 0 };
	uint64_t iters[4][VCPUS] = { { 0 } };
	struct vcpu_thread threads[VCPUS];
	uint8_t *guest = no_guest;

	if (max > 0 && n > (unsigned)max) {
		printf("skip %u slots: the kernel allows %d\n", n, max);
		exit(0);
	}
	if (reps > n)
		reps = n;
	for (unsigned r = 0; r < reps; r++)
		k[r] = (unsigned)(((uint64_t)r * 7919) % n);
	if (with_vcpus) {
		if (max > 0 && n + 1 > (unsigned)max) {
			printf("skip %u slots and the guest's: the kernel allows %d\n", n, max);
			exit(0);
		}
		guest = start_vcpus(vm, n, threads);
	}

#define GPA(i) ((uint64_t)(i) * 2 * SLOT_BYTES)
#define HVA(i) (hva + (uint64_t)(i) * SLOT_BYTES)
	t0 = now_ns();
	for (unsigned i = 0; i < n; i++)
		set_region(vm, i, 0, GPA(i), SLOT_BYTES, HVA(i));
	printf("populate_ns %.1f\n", (now_ns() - t0) / n);

	/* round 0 warms up and is not counted */
	for (unsigned round = 0; round <= rounds; round++) {
		double dt[4];
		uint32_t c[5][VCPUS];

		settle(guest, c[0]);
		t0 = now_ns();
		for (unsigned r = 0; r < reps; r++)
			set_region(vm, k[r], KVM_MEM_LOG_DIRTY_PAGES, GPA(k[r]), SLOT_BYTES, HVA(k[r]));
		for (unsigned r = 0; r < reps; r++)
			set_region(vm, k[r], 0, GPA(k[r]), SLOT_BYTES, HVA(k[r]));
		dt[1] = (now_ns() - t0) / (2.0 * reps);
		read_counters(guest, c[1]);
		settle(guest, c[1]);

		t0 = now_ns();
		for (unsigned r = 0; r < reps; r++)
			set_region(vm, k[r], 0, GPA(k[r]) + SLOT_BYTES, SLOT_BYTES, HVA(k[r]));
		for (unsigned r = 0; r < reps; r++)
			set_region(vm, k[r], 0, GPA(k[r]), SLOT_BYTES, HVA(k[r]));
		dt[2] = (now_ns() - t0) / (2.0 * reps);
		read_counters(guest, c[2]);
		settle(guest, c[2]);

		t0 = now_ns();
		for (unsigned r = 0; r < reps; r++)
			set_region(vm, k[r], 0, GPA(k[r]), 0, HVA(k[r]));
		dt[3] = (now_ns() - t0) / reps;
		read_counters(guest, c[3]);
		settle(guest, c[3]);

		t0 = now_ns();
		for (unsigned r = 0; r < reps; r++)
			set_region(vm, k[r], 0, GPA(k[r]), SLOT_BYTES, HVA(k[r]));
		dt[0] = (now_ns() - t0) / reps;
		read_counters(guest, c[4]);

		for (int i = 0; round && i < 4; i++) {
			/* block order: flags (c0..c1), move (c1..c2), delete (c2..c3), create (c3..c4) */
			static const int from[4] = { 3, 0, 1, 2 };

			if (with_vcpus) {
				for (int v = 0; v < VCPUS; v++)
					iters[i][v] += c[from[i] + 1][v] - c[from[i]][v];
				if (min_advance(c[from[i]], c[from[i] + 1]) == 0)
					continue; /* a vCPU did not run during this block */
				counted[i]++;
			}
			if (dt[i] < best[i])
				best[i] = dt[i];
		}
	}
	printf("slots %u\nreps %u\nrounds %u\n", n, reps, rounds);
	printf("create_ns %.1f\nflags_ns %.1f\nmove_ns %.1f\ndelete_ns %.1f\n", best[0], best[1], best[2], best[3]);
	if (with_vcpus) {
		static const char *kind[4] = { "create", "flags", "move", "delete" };

		printf("vcpus %d\n", VCPUS);
		for (int i = 0; i < 4; i++) {
			printf("blocks_counted_%s %u\n", kind[i], counted[i]);
			for (int v = 0; v < VCPUS; v++)
				printf("vcpu%d_iters_%s %llu\n", v, kind[i], (unsigned long long)iters[i][v]);
		}
	}
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
		churn(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), 0);
	else if (argc == 5 && !strcmp(argv[1], "churn-vcpus"))
		churn(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), 1);
	else if (argc == 4 && !strcmp(argv[1], "dirty"))
		dirty(atoi(argv[2]), atoi(argv[3]));
	else {
		fprintf(stderr, "usage: %s churn N REPS ROUNDS | churn-vcpus N REPS ROUNDS | dirty REPS ROUNDS\n", argv[0]);
		return 2;
	}
	return 0;
}
