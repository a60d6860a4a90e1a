// webkvm's Linux userland: one static glibc program (box.c) whose name picks
// what it does, as /bin/sh and every tool in /bin are links to it.
#ifndef BOX_H
#define BOX_H

#include <stdint.h>

int sh_main(int argc, char **argv);
int ls_main(int argc, char **argv);
int cat_main(int argc, char **argv);
int free_main(int argc, char **argv);
int uname_main(int argc, char **argv);
int memtouch_main(int argc, char **argv);
int dirty_main(int argc, char **argv);
int mips_main(int argc, char **argv);

/** A non-negative decimal argument, or exits 2 naming it. */
uint64_t arg_u64(const char *prog, const char *what, const char *s);

/** FNV-1a 64 of n bytes, continuing from h (the hash guests/common/pattern.mjs models). */
uint64_t fnv1a64(const void *p, uint64_t n, uint64_t h);
#define FNV_BASIS 0xcbf29ce484222325ULL

#endif
