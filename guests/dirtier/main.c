/* dirtier: dirties memory at a set rate, keeps a checksum of everything it
 * wrote, and verifies its memory when the host asks (after a migration's
 * switch-over or a snapshot's restore). The contract (addresses, fields,
 * the stream, the checksum) is guests/README.md's "dirtier" section;
 * dirtier/reference.mjs and test/model/dirtier.ts model it on the host.
 *
 * Hart 0 (entered through common/start.S) validates the config block the host
 * wrote at DIRTIER_CONTROL, sets up every hart's status slot, starts harts
 * 1..n-1 with SBI HSM at dirtier_secondary_entry, and all n harts run
 * dirty_loop over their own partition of the region:
 *   - one "op" dirties one pseudo-random page of the partition (xorshift64
 *     from the seed): one u64 at a pseudo-random offset, or the whole page;
 *     with DIRTIER_FLAG_FILL the first ops rewrite every page once, in order;
 *   - table[page] holds sum_k mix(k, word_k) over the page's 512 words, kept
 *     up to date incrementally, and the hart's running checksum is the sum of
 *     its partition's table entries: a page whose contents are lost or stale
 *     disagrees with its entry, and is counted and located;
 *   - a token bucket on the time CSR holds each hart to `rate` ops per second
 *     of guest time;
 *   - before every op (and every wait for the rate) hart 0 looks at the
 *     mailbox; a request makes every hart verify its own partition, hart 0
 *     gathers the results into the status block, prints one line, and clears
 *     the mailbox (or shuts down, for DIRTIER_VERIFY_EXIT).
 */
#include <stdint.h>

#include "dirtier.h"
#include "print.h"
#include "sbi.h"

#define PAGE_SIZE   4096UL
#define PAGE_WORDS  (PAGE_SIZE / 8)

/* The checksum's constants: mix(k, w) = fold(w * MIX_MUL) * ((2k + 1) * MIX_POS). */
#define MIX_MUL     0xff51afd7ed558ccdUL
#define MIX_POS     0x9E3779B97F4A7C15UL

/* The rate limiter: at most this much guest time (ticks) is credited at once,
 * so a hart that did not run (a verify, a pause, a jump of the clock) does not
 * burst to catch up. */
#define RATE_MAX_GAP 100000UL   /* 10 ms */

struct dirtier_config {           /* DIRTIER_CONTROL + 0x00, written by the host */
    uint64_t magic;               /* DIRTIER_MAGIC */
    uint64_t seed;
    uint64_t base;                /* region gpa, page-aligned, above the table */
    uint64_t pages;               /* region pages, >= harts, < 2^32 */
    uint64_t rate;                /* ops per second of guest time per hart; 0 = unlimited */
    uint64_t flags;               /* DIRTIER_FLAG_PAGE, DIRTIER_FLAG_FILL */
    uint64_t harts;               /* 1..DIRTIER_MAX_HARTS (0 = 1) */
    uint64_t limit;               /* hart 0's ops after which it verifies and shuts down; 0 = never */
};

struct dirtier_status {           /* DIRTIER_STATUS */
    uint64_t mailbox;             /* host: DIRTIER_VERIFY / DIRTIER_VERIFY_EXIT; guest: 0 when served */
    uint64_t state;               /* DIRTIER_STATE_* */
    uint64_t verifies;            /* requests served */
    uint64_t result;              /* the last verify's DIRTIER_BAD_* bits, 0 = ok */
    uint64_t bad;                 /* its bad pages */
    uint64_t first_bad;           /* the gpa of its first bad page, ~0 when none */
    uint64_t checked;             /* pages it checked */
    uint64_t vround;              /* the verify round the harts are asked to serve */
    uint64_t harts;               /* harts running */
};

struct dirtier_hart {             /* DIRTIER_HARTS + DIRTIER_HART_STRIDE * hartid */
    uint64_t ops;                 /* ops done (written last in an op, release order) */
    uint64_t running;             /* sum of the partition's table entries */
    uint64_t x;                   /* the xorshift64 state after `ops` ops */
    uint64_t idle;                /* loop turns that waited for the rate */
    uint64_t t0;                  /* time when the hart began */
    uint64_t t_last;              /* time of its last op */
    uint64_t served;              /* the last verify round it served */
    uint64_t result, bad, first_bad, checked;   /* its part of that round */
    uint64_t first, count;        /* its partition: region pages [first, first + count) */
    uint64_t pad[3];
};

_Static_assert(sizeof(struct dirtier_config) == DIRTIER_STATUS - DIRTIER_CONTROL, "config size");
_Static_assert(sizeof(struct dirtier_hart) == DIRTIER_HART_STRIDE, "hart slot size");
_Static_assert(DIRTIER_STATUS + sizeof(struct dirtier_status) <= DIRTIER_HARTS, "status size");
_Static_assert(DIRTIER_HARTS + DIRTIER_MAX_HARTS * DIRTIER_HART_STRIDE <= DIRTIER_TABLE, "control page");

#define CONFIG ((volatile struct dirtier_config *)DIRTIER_CONTROL)
#define STATUS ((volatile struct dirtier_status *)DIRTIER_STATUS)
#define HART(h) ((volatile struct dirtier_hart *)(DIRTIER_HARTS + DIRTIER_HART_STRIDE * (h)))
#define TABLE  ((volatile uint64_t *)DIRTIER_TABLE)

uint8_t dirtier_stacks[DIRTIER_MAX_HARTS][DIRTIER_STACK_SIZE] __attribute__((aligned(16)));

extern void dirtier_secondary_entry(void);
void dirtier_secondary_main(unsigned long hartid) __attribute__((noreturn));

/* What every hart reads once from the (validated) config. */
struct params {
    uint64_t base, rate, flags, harts, limit;
};

static inline uint64_t rdtime(void)
{
    uint64_t t;
    __asm__ volatile("rdtime %0" : "=r"(t));
    return t;
}

static inline uint64_t xorshift64(uint64_t x)
{
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
}

/* A hart's first xorshift state: splitmix64(seed + (hartid + 1) * MIX_POS), never 0. */
static uint64_t hart_seed(uint64_t seed, uint64_t hartid)
{
    uint64_t z = seed + (hartid + 1) * MIX_POS;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9UL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebUL;
    z ^= z >> 31;
    return z ? z : MIX_POS;
}

/* The checksum term of word w at a position whose multiplier is pos = (2k + 1) * MIX_POS:
 * 0 for w = 0 (a zero page sums to 0, so fresh RAM needs no set-up), and a
 * bijection of w otherwise (a change of one word always changes the sum). */
static inline uint64_t mix(uint64_t pos, uint64_t w)
{
    uint64_t h = w * MIX_MUL;
    return (h ^ (h >> 32)) * pos;
}

static uint64_t page_sum(const volatile uint64_t *page)
{
    uint64_t sum = 0, pos = MIX_POS;
    for (uint64_t k = 0; k < PAGE_WORDS; k++, pos += 2 * MIX_POS)
        sum += mix(pos, page[k]);
    return sum;
}

/* One op on region page `page` (a region index), the whole page or the word
 * r names: returns the table entry's change. */
static uint64_t dirty_page(const struct params *p, uint64_t page, int whole, uint64_t r, uint64_t *x)
{
    volatile uint64_t *w = (volatile uint64_t *)(p->base + page * PAGE_SIZE);
    uint64_t old = TABLE[page], sum;
    if (whole) {
        uint64_t s = *x, pos = MIX_POS;
        sum = 0;
        for (uint64_t k = 0; k < PAGE_WORDS; k++, pos += 2 * MIX_POS) {
            s = xorshift64(s);
            w[k] = s;
            sum += mix(pos, s);
        }
        *x = s;
    } else {
        uint64_t k = r & (PAGE_WORDS - 1), pos = (2 * k + 1) * MIX_POS;
        uint64_t v = *x = xorshift64(*x);
        uint64_t was = w[k];
        w[k] = v;
        sum = old - mix(pos, was) + mix(pos, v);
    }
    TABLE[page] = sum;
    return sum - old;
}

/* Checks this hart's partition and publishes its part of verify round `round`. */
static void verify_partition(const struct params *p, volatile struct dirtier_hart *me,
                             uint64_t running, uint64_t round)
{
    uint64_t bad = 0, first_bad = ~0UL, table_sum = 0, memory_sum = 0;
    for (uint64_t i = me->first; i < me->first + me->count; i++) {
        uint64_t gpa = p->base + i * PAGE_SIZE, s = page_sum((const volatile uint64_t *)gpa), t = TABLE[i];
        table_sum += t;
        memory_sum += s;
        if (s != t && bad++ == 0)
            first_bad = gpa;
    }
    me->result = (bad ? DIRTIER_BAD_PAGES : 0) | (table_sum != running ? DIRTIER_BAD_TABLE : 0)
               | (memory_sum != running ? DIRTIER_BAD_MEMORY : 0);
    me->bad = bad;
    me->first_bad = first_bad;
    me->checked = me->count;
    __atomic_store_n(&me->served, round, __ATOMIC_RELEASE);
}

/* Hart 0: serve the mailbox's request with every hart, report, clear it (or shut down). */
static void serve_request(const struct params *p, uint64_t running)
{
    uint64_t cmd = STATUS->mailbox, round = STATUS->verifies + 1;
    STATUS->state = DIRTIER_STATE_VERIFYING;
    __atomic_store_n(&STATUS->vround, round, __ATOMIC_RELEASE);
    verify_partition(p, HART(0), running, round);
    uint64_t result = 0, bad = 0, first_bad = ~0UL, checked = 0;
    for (uint64_t h = 0; h < p->harts; h++) {
        volatile struct dirtier_hart *hs = HART(h);
        while (__atomic_load_n(&hs->served, __ATOMIC_ACQUIRE) != round)
            ;
        result |= hs->result;
        if (bad == 0)
            first_bad = hs->first_bad;   /* partitions ascend with the hart id */
        bad += hs->bad;
        checked += hs->checked;
    }
    STATUS->result = result;
    STATUS->bad = bad;
    STATUS->first_bad = first_bad;
    STATUS->checked = checked;
    STATUS->verifies = round;
    STATUS->state = DIRTIER_STATE_RUNNING;
    if (result == 0) {
        put_str("dirtier verify ok pages=");
        put_dec(checked);
    } else {
        put_str("dirtier verify BAD pages=");
        put_dec(bad);
        put_str(" first=0x");
        put_hex64(first_bad);
        put_str(" result=");
        put_dec(result);
    }
    put_char('\n');
    if (cmd == DIRTIER_VERIFY_EXIT)
        guest_exit(result != 0);
    __atomic_store_n(&STATUS->mailbox, 0, __ATOMIC_RELEASE);
}

static void dirty_loop(unsigned long hartid) __attribute__((noreturn));
static void dirty_loop(unsigned long hartid)
{
    const struct params p = { CONFIG->base, CONFIG->rate, CONFIG->flags, STATUS->harts, CONFIG->limit };
    volatile struct dirtier_hart *me = HART(hartid);
    const uint64_t first = me->first, count = me->count, fill = p.flags & DIRTIER_FLAG_FILL ? count : 0;
    const uint64_t cap = p.rate * RATE_MAX_GAP + GUEST_TIMEBASE_HZ;   /* 10 ms of ops, and one */
    uint64_t ops = me->ops, x = me->x, running = me->running, credit = 0, idle = 0;
    uint64_t last = rdtime();
    me->t0 = last;
    for (;;) {
        if (hartid == 0) {
            if (p.limit && ops >= p.limit && STATUS->mailbox == 0)
                STATUS->mailbox = DIRTIER_VERIFY_EXIT;
            if (__atomic_load_n(&STATUS->mailbox, __ATOMIC_ACQUIRE))
                serve_request(&p, running);
        } else {
            uint64_t round = __atomic_load_n(&STATUS->vround, __ATOMIC_ACQUIRE);
            if (round != me->served)
                verify_partition(&p, me, running, round);
        }
        if (ops < fill) {   /* the fill: op i rewrites page first + i, at full speed */
            running += dirty_page(&p, first + ops, 1, 0, &x);
            last = rdtime();
        } else {
            if (p.rate) {
                uint64_t t = rdtime();
                if (t > last) {
                    uint64_t dt = t - last;
                    credit += (dt > RATE_MAX_GAP ? RATE_MAX_GAP : dt) * p.rate;
                    if (credit > cap)
                        credit = cap;
                }
                last = t;   /* a clock that went back (a restore) credits nothing */
                if (credit < GUEST_TIMEBASE_HZ) {
                    me->idle = ++idle;
                    continue;
                }
                credit -= GUEST_TIMEBASE_HZ;
            }
            uint64_t r = x = xorshift64(x);
            uint64_t page = first + (((r >> 32) * count) >> 32);
            running += dirty_page(&p, page, (p.flags & DIRTIER_FLAG_PAGE) != 0, r, &x);
        }
        me->x = x;
        me->running = running;
        me->t_last = rdtime();
        __atomic_store_n(&me->ops, ++ops, __ATOMIC_RELEASE);
    }
}

void dirtier_secondary_main(unsigned long hartid)
{
    dirty_loop(hartid);
}

static int fail(const char *what, uint64_t value)
{
    put_str("dirtier FAIL ");
    put_str(what);
    put_str(" 0x");
    put_hex64(value);
    put_char('\n');
    return 1;
}

int main(unsigned long hartid, unsigned long arg)
{
    (void)arg;
    if (hartid != 0)
        return fail("boot-hart", hartid);
    uint64_t harts = CONFIG->harts ? CONFIG->harts : 1, pages = CONFIG->pages, base = CONFIG->base;
    uint64_t table_end = (DIRTIER_TABLE + pages * 8 + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
    if (CONFIG->magic != DIRTIER_MAGIC)
        return fail("magic", CONFIG->magic);
    if (harts > DIRTIER_MAX_HARTS)
        return fail("harts", harts);
    if (pages < harts || pages >> 32)
        return fail("pages", pages);
    if ((base & (PAGE_SIZE - 1)) || base < table_end || base + pages * PAGE_SIZE < base)
        return fail("base", base);
    if (CONFIG->rate >> 32)
        return fail("rate", CONFIG->rate);
    if (CONFIG->flags & ~(DIRTIER_FLAG_PAGE | DIRTIER_FLAG_FILL))
        return fail("flags", CONFIG->flags);

    volatile uint64_t *status = (volatile uint64_t *)DIRTIER_STATUS;
    for (uint64_t i = 0; i < (DIRTIER_TABLE - DIRTIER_STATUS) / 8; i++)
        status[i] = 0;
    STATUS->harts = harts;
    for (uint64_t h = 0; h < harts; h++) {
        HART(h)->first = h * pages / harts;
        HART(h)->count = (h + 1) * pages / harts - h * pages / harts;
        HART(h)->x = hart_seed(CONFIG->seed, h);
        HART(h)->first_bad = ~0UL;
    }
    STATUS->first_bad = ~0UL;
    put_str("dirtier start harts=");
    put_dec(harts);
    put_str(" pages=");
    put_dec(pages);
    put_str(" rate=");
    put_dec(CONFIG->rate);
    put_str(CONFIG->flags & DIRTIER_FLAG_PAGE ? " write=page" : " write=word");
    put_str(CONFIG->flags & DIRTIER_FLAG_FILL ? " fill\n" : "\n");
    for (uint64_t h = 1; h < harts; h++) {
        struct sbiret r = sbi_hart_start(h, (uint64_t)dirtier_secondary_entry, 0);
        if (r.error != SBI_SUCCESS)
            return fail("hart-start", h);
    }
    __atomic_store_n(&STATUS->state, DIRTIER_STATE_RUNNING, __ATOMIC_RELEASE);
    dirty_loop(0);
}
