// webkvm's Linux /init: an ordinary static program (glibc, rv64gc, built
// with riscv64-linux-gnu-gcc -static), so the vCPU needs F and D: glibc's
// startup saves the FP registers before main.
//
// It prints a known first line, mounts /proc, /sys and /dev, works the memory
// subsystem a little (anonymous mmap, a page touched at a time, fork with
// copy-on-write, a pipe, munmap, fresh zero pages), prints a known result line
// (guests/linux/reference.mjs computes it on the host), says whether user mode
// reads the time, cycle and instret counters, then hands the console
// to /bin/sh (guests/linux/userland, glibc):
//   webkvm.run=<commands> on the kernel command line: `/bin/sh -c <commands>`;
//   otherwise: an interactive `/bin/sh` on the console.
// When the shell ends, however it ends, init says how and powers off.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#define SHELL "/bin/sh"
#define RUN_KEY "webkvm.run="

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
	reboot(RB_POWER_OFF);
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

// Mounts the kernel's own filesystems where a shell expects them.
static void mount_or_fail(const char *type, const char *dir)
{
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		fail("mkdir", errno);
	if (mount(type, dir, type, 0, 0) != 0)
		fail(type, errno);
}

// The commands of webkvm.run= in the kernel command line, or 0 when it is
// absent. The value ends at the first space, and a ',' in it stands for a
// space (webkvm.run=memtouch,4;mips,1000); a value in double quotes is taken
// as it is (webkvm.run="memtouch 4; mips 1000"), as the kernel's own
// parameter parser (next_arg) quotes. Commands are split by the shell (';').
static char *run_commands(char *cmdline)
{
	static char cmds[4096];
	for (char *p = cmdline; *p; p++) {
		if ((p != cmdline && p[-1] != ' ') || strncmp(p, RUN_KEY, strlen(RUN_KEY)) != 0)
			continue;
		p += strlen(RUN_KEY);
		int quoted = *p == '"';
		p += quoted;
		unsigned long n = 0;
		for (; *p && n < sizeof(cmds) - 1; p++) {
			if (quoted ? *p == '"' : (*p == ' ' || *p == '\n'))
				break;
			cmds[n++] = (!quoted && *p == ',') ? ' ' : *p;
		}
		cmds[n] = 0;
		return cmds;
	}
	return 0;
}

static char *read_cmdline(void)
{
	static char buf[4096];
	int fd = open("/proc/cmdline", O_RDONLY);
	if (fd < 0)
		fail("cmdline", errno);
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		fail("cmdline", errno);
	buf[n] = 0;
	close(fd);
	return buf;
}

static void rd_time(void) { unsigned long v; __asm__ volatile("rdtime %0" : "=r"(v)); }
static void rd_cycle(void) { unsigned long v; __asm__ volatile("rdcycle %0" : "=r"(v)); }
static void rd_instret(void) { unsigned long v; __asm__ volatile("rdinstret %0" : "=r"(v)); }

// User mode reads the counters (the vDSO's clock_gettime reads time) only
// where the kernel set scounteren, which Linux 6.1 does in its SBI PMU driver
// alone. A child reads them, so a trap (SIGILL) ends the child, not init.
// Whether cycle and instret advance is the platform's business (OpenSBI's
// PMU stops them when Linux stops every counter at boot; webkvm's count on).
static void check_counters(void)
{
	pid_t pid = fork();
	if (pid < 0)
		fail("fork", errno);
	if (pid == 0) {
		rd_time();
		rd_cycle();
		rd_instret();
		exit(0);
	}
	int status = 0;
	if (waitpid(pid, &status, 0) != pid)
		fail("wait", errno);
	if (WIFSIGNALED(status)) {
		put("webkvm-init: user-mode counters trap: signal ");
		put_dec(WTERMSIG(status));
		put("\n");
	} else {
		put("webkvm-init: user-mode counters readable (time, cycle, instret)\n");
	}
}

// Runs the shell as init's child and waits for it (reaping any orphan that
// PID 1 inherits meanwhile); says how it ended unless it exited 0.
static void run_shell(char *cmds)
{
	char *argv_run[] = { "sh", "-c", cmds, 0 };
	char *argv_tty[] = { "sh", 0 };
	char *envp[] = { "PATH=/bin", "HOME=/", "TERM=vt100", 0 };
	pid_t pid = fork();
	if (pid < 0)
		fail("fork", errno);
	if (pid == 0) {
		execve(SHELL, cmds ? argv_run : argv_tty, envp);
		put("webkvm-init: FAIL exec " SHELL " detail=");
		put_hex64(errno);
		put("\n");
		exit(127);
	}
	int status = 0;
	while (waitpid(-1, &status, 0) != pid)
		;
	if (WIFSIGNALED(status)) {
		put("webkvm-init: " SHELL " killed by signal ");
		put_dec(WTERMSIG(status));
		put("\n");
	} else if (WEXITSTATUS(status) != 0) {
		put("webkvm-init: " SHELL " exit ");
		put_dec(WEXITSTATUS(status));
		put("\n");
	}
}

int main(void)
{
	struct utsname u;
	if (uname(&u) != 0)
		fail("uname", 0);
	put("webkvm-init: hello from Linux ");
	put(u.release);
	put("\n");
	mount_or_fail("proc", "/proc");
	mount_or_fail("sysfs", "/sys");
	mount_or_fail("devtmpfs", "/dev");

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
	if (pipe2(fds, 0) != 0)
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

	check_counters();
	run_shell(run_commands(read_cmdline()));
	power_off();
	return 0;
}
