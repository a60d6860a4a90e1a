// ls, cat, free, uname: what a console session needs to look around.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include "box.h"

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ls_one(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		fprintf(stderr, "ls: %s: %s\n", path, strerror(errno));
		return 1;
	}
	if (!S_ISDIR(st.st_mode)) {
		printf("%s\n", path);
		return 0;
	}
	DIR *d = opendir(path);
	if (!d) {
		fprintf(stderr, "ls: %s: %s\n", path, strerror(errno));
		return 1;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap && !(names = realloc(names, (cap = cap ? 2 * cap : 64) * sizeof(*names))))
			abort();
		size_t len = strlen(e->d_name);
		names[n] = malloc(len + 2);
		memcpy(names[n], e->d_name, len + 1);
		if (e->d_type == DT_DIR)
			strcpy(names[n] + len, "/");
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof(*names), by_name);
	for (size_t i = 0; i < n; i++) {
		printf("%s\n", names[i]);
		free(names[i]);
	}
	free(names);
	return 0;
}

int ls_main(int argc, char **argv)
{
	int rc = 0;
	if (argc < 2)
		return ls_one(".");
	for (int i = 1; i < argc; i++) {
		if (argc > 2)
			printf("%s:\n", argv[i]);
		rc |= ls_one(argv[i]);
	}
	return rc;
}

static int cat_fd(int fd, const char *name)
{
	char buf[4096];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n == 0)
			return 0;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "cat: %s: %s\n", name, strerror(errno));
			return 1;
		}
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(1, buf + off, n - off);
			if (w < 0) {
				fprintf(stderr, "cat: write: %s\n", strerror(errno));
				return 1;
			}
			off += w;
		}
	}
}

int cat_main(int argc, char **argv)
{
	int rc = 0;
	if (argc < 2)
		return cat_fd(0, "stdin");
	for (int i = 1; i < argc; i++) {
		int fd = open(argv[i], O_RDONLY);
		if (fd < 0) {
			fprintf(stderr, "cat: %s: %s\n", argv[i], strerror(errno));
			rc = 1;
			continue;
		}
		rc |= cat_fd(fd, argv[i]);
		close(fd);
	}
	return rc;
}

// A /proc/meminfo field in KiB, or -1.
static long meminfo(const char *text, const char *field)
{
	size_t len = strlen(field);
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, field, len) == 0 && p[len] == ':')
			return strtol(p + len + 1, NULL, 10);
	return -1;
}

int free_main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	char text[8192];
	int fd = open("/proc/meminfo", O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, text, sizeof(text) - 1);
	if (n < 0) {
		fprintf(stderr, "free: /proc/meminfo: %s\n", strerror(errno));
		return 1;
	}
	close(fd);
	text[n] = 0;
	long total = meminfo(text, "MemTotal"), freek = meminfo(text, "MemFree");
	long buffers = meminfo(text, "Buffers"), cached = meminfo(text, "Cached");
	printf("%-6s %10s %10s %10s %10s %10s\n", "KiB", "total", "used", "free", "buffers", "cached");
	printf("%-6s %10ld %10ld %10ld %10ld %10ld\n", "Mem:", total, total - freek - buffers - cached, freek,
	       buffers, cached);
	return 0;
}

int uname_main(int argc, char **argv)
{
	struct utsname u;
	if (uname(&u) != 0) {
		perror("uname");
		return 1;
	}
	if (argc > 1 && strcmp(argv[1], "-a") == 0)
		printf("%s %s %s %s %s\n", u.sysname, u.nodename, u.release, u.version, u.machine);
	else
		printf("%s\n", u.sysname);
	return 0;
}
