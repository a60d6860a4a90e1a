/* dirtylog: the guest side of a dirty_log_test (the kernel selftest's
 * guest_code): forever, pick a pseudo-random page of the test region, read
 * the iteration number the host keeps at DIRTYLOG_ITERATION, and store it in
 * the page's first u64. One store per step; every hart may run it at once.
 *
 * Argument (a1): 0 = defaults (region DIRTYLOG_DEFAULT_BASE, pages
 * DIRTYLOG_DEFAULT_PAGES, seed hartid + 1); otherwise the gpa of
 *     struct { u64 base; u64 pages; u64 seed; }
 * (base page-aligned, pages > 0). Step n (from 1): x = lcg_next(x) starting
 * from x = seed; page (x >> 32) % pages; then steps[hartid] = n. A bad
 * argument or a hart id >= DIRTYLOG_MAX_HARTS shuts down with failure.
 *
 * Every hart enters through common/start.S, whose stack they all share:
 * main keeps its state in registers and calls nothing on its loop, so no
 * hart writes that stack (see the disassembly: no sp-relative stores).
 */
#include <stdint.h>

#include "pattern.h"

#define PAGE_SIZE              4096UL
#define DIRTYLOG_ITERATION     0x80200000UL   /* u64, written by the host */
#define DIRTYLOG_STEPS         0x80200008UL   /* u64 steps[hartid], written by the guest */
#define DIRTYLOG_MAX_HARTS     511UL          /* the rest of that page */
#define DIRTYLOG_DEFAULT_BASE  0x80400000UL
#define DIRTYLOG_DEFAULT_PAGES 512UL

struct dirtylog_params {
    uint64_t base;
    uint64_t pages;
    uint64_t seed;
};

int main(unsigned long hartid, unsigned long arg)
{
    uint64_t base = DIRTYLOG_DEFAULT_BASE, pages = DIRTYLOG_DEFAULT_PAGES, x = hartid + 1;
    if (arg) {
        const volatile struct dirtylog_params *p = (const volatile struct dirtylog_params *)arg;
        base = p->base;
        pages = p->pages;
        x = p->seed;
    }
    if (pages == 0 || (base & (PAGE_SIZE - 1)) || hartid >= DIRTYLOG_MAX_HARTS)
        return 1;

    volatile uint64_t *iteration = (volatile uint64_t *)DIRTYLOG_ITERATION;
    volatile uint64_t *steps = (volatile uint64_t *)DIRTYLOG_STEPS + hartid;
    for (uint64_t n = 1;; n++) {
        x = lcg_next(x);
        uint64_t page = (x >> 32) % pages;
        *(volatile uint64_t *)(base + page * PAGE_SIZE) = *iteration;
        *steps = n;
    }
}
