// webkvm's first Linux /init: static, no libc (the kernel tree's nolibc),
// rv64ima / lp64, so it runs on a CPU without C, F or D.
//
// It prints a known first line, works the memory subsystem a little
// (anonymous mmap, a page touched at a time, fork with copy-on-write, a pipe,
// munmap, fresh zero pages), prints a known result line and powers off.
// guests/linux/reference.mjs computes the result line on the host.
#include "nolibc.h"	/* also LINUX_REBOOT_* */
#include <linux/utsname.h>

#define REGION_PAGES 256
#define PAGE 4096
#define REGION (REGION_PAGES * PAGE)

static void put(const char *s)
{
	write(1, s, strlen(s));
}

static void put_hex64(unsigned long v)
{
	char buf[19] = "0x";
	for (int i = 0; i < 16; i++)
		buf[2 + i] = "0123456789abcdef"[(v >> (60 - 4 * i)) & 15];
	buf[18] = 0;
	put(buf);
}

static void put_dec(unsigned long v)
{
	char buf[21];
	int i = 20;
	buf[i] = 0;
	do {
		buf[--i] = '0' + v % 10;
		v /= 10;
	} while (v);
	put(buf + i);
}

static void power_off(void)
{
	reboot(LINUX_REBOOT_CMD_POWER_OFF);
	put("webkvm-init: reboot(POWER_OFF) returned\n");
	exit(1);	// init exiting makes the kernel panic: a failure nobody misses
}

static void fail(const char *step, unsigned long detail)
{
	put("webkvm-init: FAIL ");
	put(step);
	put(" detail=");
	put_hex64(detail);
	put("\n");
	power_off();
}

// The same stream and hash as guests/memtest: an LCG word per 8 bytes, FNV-1a 64.
static unsigned long lcg_next(unsigned long x)
{
	return x * 6364136223846793005UL + 1442695040888963407UL;
}

static unsigned long fnv1a64(const unsigned char *p, unsigned long n, unsigned long h)
{
	for (unsigned long i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3UL;
	return h;
}

#define FNV_BASIS 0xcbf29ce484222325UL

static unsigned long *map_region(void)
{
	void *p = mmap(0, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		fail("mmap", errno);
	return p;
}

int main(void)
{
	struct new_utsname u;
	if (my_syscall1(__NR_uname, &u) != 0)
		fail("uname", 0);
	put("webkvm-init: hello from Linux ");
	put(u.release);
	put("\n");

	// Every page of a fresh anonymous mapping, written a word at a time.
	unsigned long *w = map_region();
	unsigned long x = 0x9E3779B97F4A7C15UL;
	for (unsigned long k = 0; k < REGION / 8; k++) {
		x = lcg_next(x);
		w[k] = x;
	}
	unsigned long parent_sum = fnv1a64((unsigned char *)w, REGION, FNV_BASIS);

	// The child writes every page of its copy (copy-on-write breaks), hashes it
	// and sends the hash through a pipe; the parent's pages must not change.
	int fds[2];
	if (my_syscall2(__NR_pipe2, fds, 0) != 0)
		fail("pipe2", 0);
	pid_t pid = fork();
	if (pid < 0)
		fail("fork", errno);
	if (pid == 0) {
		for (unsigned long k = 0; k < REGION / 8; k++)
			w[k] = ~w[k];
		unsigned long child_sum = fnv1a64((unsigned char *)w, REGION, FNV_BASIS);
		if (write(fds[1], &child_sum, 8) != 8)
			exit(2);
		exit(0);
	}
	unsigned long child_sum = 0;
	if (read(fds[0], &child_sum, 8) != 8)
		fail("pipe-read", errno);
	int status = -1;
	if (waitpid(pid, &status, 0) != pid || status != 0)
		fail("wait", (unsigned long)status);
	unsigned long again = fnv1a64((unsigned char *)w, REGION, FNV_BASIS);
	if (again != parent_sum)
		fail("cow", again);
	if (munmap(w, REGION) != 0)
		fail("munmap", errno);

	// A new mapping is zero-filled, whatever the freed pages held.
	unsigned long *z = map_region();
	for (unsigned long k = 0; k < REGION / 8; k += PAGE / 8)
		if (z[k] != 0)
			fail("zero", k);
	munmap(z, REGION);

	unsigned long sums[2] = { parent_sum, child_sum };
	put("webkvm-init: ok pages=");
	put_dec(REGION_PAGES);
	put(" checksum=");
	put_hex64(fnv1a64((unsigned char *)sums, sizeof(sums), FNV_BASIS));
	put("\n");
	power_off();
	return 0;
}
