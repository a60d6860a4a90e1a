// /bin/sh: a small shell for a serial console.
//
// A line is commands separated by ';', a command a pipeline of stages joined
// by '|', a stage words split at blanks ('...' and "..." keep blanks) with
// optional '< FILE', '> FILE' and '>> FILE'. '$?' is the last status.
// Builtins: echo, cd, pwd, exit [N], poweroff, reboot, help; anything else is
// /bin/NAME (or a path with a '/'), run by fork + execve + waitpid. A command
// that fails says so: `sh: NAME: exit N` / `killed by signal N`.
//
// On a terminal it edits the line itself (the tty in non-canonical mode, no
// kernel echo): printable bytes echo, Backspace/DEL erases, ^U kills the line,
// ^C drops it, ^D on an empty line ends the shell, escape sequences are
// ignored; the prompt is "# ". Programs it runs get the tty as it found it.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>
#include <sys/reboot.h>
#include <sys/wait.h>

#include "box.h"

#define LINE_MAX_ 4096
#define WORDS_MAX 64
#define STAGES_MAX 8

void box_help(void);

static int last_status;

static void put(int fd, const char *s)
{
	while (*s) {
		ssize_t n = write(fd, s, strlen(s));
		if (n <= 0)
			return;
		s += n;
	}
}

// Prints the prompt and reads a line into buf (NUL-terminated, no newline).
// Returns its length, or -1 at end of input. The tty leaves canonical mode
// before the prompt appears, so no byte typed after it is echoed twice.
static int read_line(char *buf, int size, int tty, const char *prompt)
{
	struct termios saved, raw;
	if (tty) {
		tcgetattr(0, &saved);
		raw = saved;
		raw.c_lflag &= ~(ICANON | ECHO);
		raw.c_cc[VMIN] = 1;
		raw.c_cc[VTIME] = 0;
		tcsetattr(0, TCSANOW, &raw);
		put(1, prompt);
	}
	int n = 0, esc = 0, done = 0;
	while (!done) {
		unsigned char c;
		ssize_t r = read(0, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			n = n ? n : -1;
			break;
		}
		if (!tty) {
			if (c == '\n')
				break;
			if (n < size - 1)
				buf[n++] = c;
			continue;
		}
		if (esc == 1) { // ESC: '[' starts a control sequence, anything else ends it
			esc = c == '[' ? 2 : 0;
			continue;
		}
		if (esc == 2) { // a control sequence ends at its final byte
			if (c >= 0x40 && c <= 0x7e)
				esc = 0;
			continue;
		}
		switch (c) {
		case '\r':
		case '\n':
			put(1, "\n");
			done = 1;
			break;
		case 0x7f: // DEL, what a terminal's Backspace sends
		case '\b':
			if (n > 0) {
				n--;
				put(1, "\b \b");
			}
			break;
		case 0x15: // ^U
			while (n > 0) {
				n--;
				put(1, "\b \b");
			}
			break;
		case 0x03: // ^C
			put(1, "^C\n");
			n = 0;
			done = 1;
			break;
		case 0x04: // ^D
			if (n == 0) {
				put(1, "\n");
				n = -1;
				done = 1;
			}
			break;
		case 0x1b:
			esc = 1;
			break;
		default:
			if (c >= 0x20 && n < size - 1) {
				buf[n++] = c;
				write(1, &c, 1);
			}
		}
	}
	if (tty)
		tcsetattr(0, TCSANOW, &saved);
	buf[n > 0 ? n : 0] = 0;
	return n;
}

struct stage {
	char *argv[WORDS_MAX + 1];
	char *in, *out;
	int append;
};

// Splits one pipeline into stages, the words (quotes removed, $? expanded)
// written into words, which must hold 4 bytes per byte of s. Returns the
// stage count, or -1 after saying what is wrong.
static int parse(const char *s, struct stage *st, char *words)
{
	int ns = 0, nw = 0;
	char **redirect = NULL;
	memset(&st[0], 0, sizeof(st[0]));
	char *w = words;
	for (;;) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s || *s == '|') {
			if (redirect) {
				put(2, "sh: a redirection without a file\n");
				return -1;
			}
			if (nw == 0) {
				if (!*s && ns == 0)
					return 0;
				put(2, "sh: an empty command in a pipeline\n");
				return -1;
			}
			st[ns].argv[nw] = NULL;
			ns++;
			if (!*s)
				return ns;
			if (ns == STAGES_MAX) {
				put(2, "sh: too many pipeline stages\n");
				return -1;
			}
			s++;
			nw = 0;
			memset(&st[ns], 0, sizeof(st[ns]));
			continue;
		}
		if (*s == '<' || *s == '>') {
			if (redirect) {
				put(2, "sh: a redirection without a file\n");
				return -1;
			}
			if (*s == '<') {
				redirect = &st[ns].in;
			} else {
				redirect = &st[ns].out;
				st[ns].append = s[1] == '>';
				s += st[ns].append;
			}
			s++;
			continue;
		}
		char *start = w;
		char quote = 0;
		while (*s && (quote || (*s != ' ' && *s != '\t' && *s != '|' && *s != '<' && *s != '>'))) {
			if (quote && *s == quote) {
				quote = 0;
				s++;
			} else if (!quote && (*s == '\'' || *s == '"')) {
				quote = *s++;
			} else if (*s == '$' && s[1] == '?' && quote != '\'') {
				w += sprintf(w, "%d", last_status); // at most 4 bytes for 2
				s += 2;
			} else {
				*w++ = *s++;
			}
		}
		if (quote) {
			put(2, "sh: an unterminated quote\n");
			return -1;
		}
		*w++ = 0;
		if (redirect) {
			*redirect = start;
			redirect = NULL;
		} else if (nw == WORDS_MAX) {
			put(2, "sh: too many words\n");
			return -1;
		} else {
			st[ns].argv[nw++] = start;
		}
	}
}

static int is_builtin(const char *name)
{
	static const char *const names[] = { "echo", "cd", "pwd", "exit", "poweroff", "reboot", "help" };
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(names[i], name) == 0)
			return 1;
	return 0;
}

// Runs a builtin and returns 1, or returns 0 when argv[0] is none.
static int builtin(char **argv, int *status)
{
	const char *n = argv[0];
	if (strcmp(n, "echo") == 0) {
		for (int i = 1; argv[i]; i++)
			printf("%s%s", i > 1 ? " " : "", argv[i]);
		printf("\n");
		fflush(stdout);
		*status = 0;
	} else if (strcmp(n, "cd") == 0) {
		const char *dir = argv[1] ? argv[1] : "/";
		*status = chdir(dir) == 0 ? 0 : 1;
		if (*status)
			fprintf(stderr, "sh: cd: %s: %s\n", dir, strerror(errno));
	} else if (strcmp(n, "pwd") == 0) {
		char cwd[4096];
		*status = getcwd(cwd, sizeof(cwd)) ? 0 : 1;
		if (*status == 0)
			printf("%s\n", cwd);
		fflush(stdout);
	} else if (strcmp(n, "exit") == 0) {
		exit(argv[1] ? atoi(argv[1]) : last_status);
	} else if (strcmp(n, "poweroff") == 0 || strcmp(n, "reboot") == 0) {
		sync();
		reboot(n[0] == 'p' ? RB_POWER_OFF : RB_AUTOBOOT);
		fprintf(stderr, "sh: %s: %s\n", n, strerror(errno));
		*status = 1;
	} else if (strcmp(n, "help") == 0) {
		printf("builtins: echo, cd [DIR], pwd, exit [N], poweroff, reboot, help\n"
		       "programs in /bin:\n");
		box_help();
		printf("  %-9s %s\n", "fptest", "the F/D differential test (hex lines)");
		printf("  %-9s %s\n", "hello", "a stock glibc hello world with a double");
		printf("a line: commands separated by ';', stages by '|', with < FILE, > FILE, >> FILE; $? is the last status\n");
		fflush(stdout);
		*status = 0;
	} else {
		return 0;
	}
	return 1;
}

static int redirect(const struct stage *st)
{
	if (st->in) {
		int fd = open(st->in, O_RDONLY);
		if (fd < 0 || dup2(fd, 0) < 0) {
			fprintf(stderr, "sh: %s: %s\n", st->in, strerror(errno));
			return -1;
		}
		close(fd);
	}
	if (st->out) {
		int fd = open(st->out, O_WRONLY | O_CREAT | (st->append ? O_APPEND : O_TRUNC), 0644);
		if (fd < 0 || dup2(fd, 1) < 0) {
			fprintf(stderr, "sh: %s: %s\n", st->out, strerror(errno));
			return -1;
		}
		close(fd);
	}
	return 0;
}

static void exec_stage(struct stage *st)
{
	int status;
	if (redirect(st) < 0)
		_exit(1);
	if (builtin(st->argv, &status))
		_exit(status);
	char path[512];
	const char *name = st->argv[0];
	if (strchr(name, '/'))
		snprintf(path, sizeof(path), "%s", name);
	else
		snprintf(path, sizeof(path), "/bin/%s", name);
	extern char **environ;
	execve(path, st->argv, environ);
	fprintf(stderr, "sh: %s: %s\n", name, errno == ENOENT ? "not found" : strerror(errno));
	_exit(errno == ENOENT ? 127 : 126);
}

static void report(const char *name, int status)
{
	if (WIFSIGNALED(status)) {
		fprintf(stderr, "sh: %s: killed by signal %d\n", name, WTERMSIG(status));
		last_status = 128 + WTERMSIG(status);
	} else {
		last_status = WEXITSTATUS(status);
		if (last_status != 0 && last_status != 127)
			fprintf(stderr, "sh: %s: exit %d\n", name, last_status);
	}
}

static void run_pipeline(char *text)
{
	struct stage st[STAGES_MAX];
	char words[4 * LINE_MAX_ + 4];
	if (strlen(text) >= LINE_MAX_) {
		put(2, "sh: line too long\n");
		last_status = 2;
		return;
	}
	int ns = parse(text, st, words);
	if (ns < 0) {
		last_status = 2;
		return;
	}
	if (ns == 0)
		return;
	// A builtin alone runs in the shell (cd and exit must), its redirections undone after.
	if (ns == 1 && is_builtin(st[0].argv[0])) {
		int saved0 = dup(0), saved1 = dup(1), status = 1;
		if (redirect(&st[0]) == 0)
			builtin(st[0].argv, &status);
		fflush(stdout);
		dup2(saved0, 0);
		dup2(saved1, 1);
		close(saved0);
		close(saved1);
		last_status = status;
		return;
	}
	pid_t pids[STAGES_MAX];
	int in = -1;
	for (int i = 0; i < ns; i++) {
		int p[2] = { -1, -1 };
		if (i + 1 < ns && pipe(p) < 0) {
			fprintf(stderr, "sh: pipe: %s\n", strerror(errno));
			ns = i;
			break;
		}
		fflush(stdout);
		pids[i] = fork();
		if (pids[i] == 0) {
			if (in >= 0) {
				dup2(in, 0);
				close(in);
			}
			if (p[1] >= 0) {
				dup2(p[1], 1);
				close(p[1]);
				close(p[0]);
			}
			exec_stage(&st[i]);
		}
		if (pids[i] < 0)
			fprintf(stderr, "sh: fork: %s\n", strerror(errno));
		if (in >= 0)
			close(in);
		if (p[1] >= 0)
			close(p[1]);
		in = p[0];
	}
	for (int i = 0; i < ns; i++) {
		int status = 0;
		if (pids[i] > 0 && waitpid(pids[i], &status, 0) == pids[i] && i == ns - 1)
			report(st[i].argv[0], status);
	}
}

// Runs a line: its ';'-separated commands in turn (a ';' inside quotes stays).
static void run_line(char *line)
{
	char quote = 0;
	char *start = line;
	for (char *p = line;; p++) {
		if (quote) {
			if (*p == quote)
				quote = 0;
			else if (!*p)
				break;
			continue;
		}
		if (*p == '\'' || *p == '"') {
			quote = *p;
		} else if (*p == ';' || !*p) {
			char end = *p;
			*p = 0;
			run_pipeline(start);
			if (!end)
				return;
			start = p + 1;
		}
	}
	run_pipeline(start); // ends inside a quote: parse says so
}

int sh_main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "-c") == 0) {
		char *line = strdup(argv[2]);
		run_line(line);
		free(line);
		return last_status;
	}
	if (argc > 1) {
		fprintf(stderr, "usage: sh [-c COMMANDS]\n");
		return 2;
	}
	int tty = isatty(0);
	char line[LINE_MAX_];
	for (;;) {
		if (read_line(line, sizeof(line), tty, "# ") < 0)
			return last_status;
		run_line(line);
	}
}
