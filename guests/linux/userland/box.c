// The userland's entry: runs the applet named by argv[0]'s last component
// (/bin/sh, /bin/ls, ...), or by argv[1] when argv[0] names none (`box mips
// 1000`, for running it under qemu-riscv64-static on the host).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "box.h"

static const struct applet {
	const char *name;
	int (*main)(int, char **);
	const char *help;
} applets[] = {
	{ "sh", sh_main, "the shell (sh -c COMMANDS runs COMMANDS)" },
	{ "ls", ls_main, "ls [DIR|FILE]...: names, one a line, directories with a /" },
	{ "cat", cat_main, "cat [FILE]...: copies files (or stdin) to stdout" },
	{ "free", free_main, "free: memory in KiB from /proc/meminfo" },
	{ "uname", uname_main, "uname [-a]: the kernel's name (-a: all of it)" },
	{ "memtouch", memtouch_main, "memtouch MIB: writes MIB MiB a word at a time; pages and a checksum" },
	{ "dirty", dirty_main, "dirty PAGES ROUNDS [STRIDE]: rewrites every STRIDE-th page each round (0 rounds: forever)" },
	{ "mips", mips_main, "mips [ITERS]: the reference loop; checksum, instructions, time" },
};

static const struct applet *find(const char *name)
{
	const char *slash = strrchr(name, '/');
	if (slash)
		name = slash + 1;
	for (unsigned i = 0; i < sizeof(applets) / sizeof(applets[0]); i++)
		if (strcmp(applets[i].name, name) == 0)
			return &applets[i];
	return NULL;
}

void box_help(void)
{
	for (unsigned i = 0; i < sizeof(applets) / sizeof(applets[0]); i++)
		printf("  %-9s %s\n", applets[i].name, applets[i].help);
}

uint64_t arg_u64(const char *prog, const char *what, const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || *s == '-') {
		fprintf(stderr, "%s: %s '%s' is not a non-negative decimal number\n", prog, what, s);
		exit(2);
	}
	return v;
}

uint64_t fnv1a64(const void *p, uint64_t n, uint64_t h)
{
	const unsigned char *b = p;
	for (uint64_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	return h;
}

int main(int argc, char **argv)
{
	const struct applet *a = argc > 0 ? find(argv[0]) : NULL;
	if (!a && argc > 1 && (a = find(argv[1]))) {
		argc--;
		argv++;
	}
	if (!a) {
		fprintf(stderr, "box: no applet '%s'; applets:\n", argc > 1 ? argv[1] : argc ? argv[0] : "");
		box_help();
		return 127;
	}
	return a->main(argc, argv);
}
