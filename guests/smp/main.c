/* smp: several harts, each with its own Sv39 tables over its own partition.
 *
 * Hart 0 (entered through common/start.S) finds the harts present with SBI
 * HSM hart_get_status, checks the HSM answers about itself, and starts every
 * other hart with hart_start(hartid, smp_secondary_entry, opaque). Each hart
 * then, in its partition [SMP_PART_BASE + hartid * SMP_PART_SIZE, +1 MiB):
 *   - builds a root table (+0), an L1 (+0x1000) and an L0 (+0x2000):
 *       root[0] gigapage VA 0          -> PA 0           RW  (UART)
 *       root[1] -> L1[0] -> L0: VA 0x4000_0000 + i * 4 KiB -> its data page i
 *       root[2] gigapage VA 0x8000_0000 -> PA 0x8000_0000 RWX (image, BSS)
 *     every hart uses the same VAs; its own satp makes them its own pages;
 *   - turns paging on, writes an LCG stream (seed LCG_SEED + hartid) over its
 *     SMP_DATA_PAGES data pages (+0x10000) through VA 0x4000_0000, reads it
 *     back, checks the first word through the identity map too, and hashes
 *     the data (FNV-1a 64);
 *   - a secondary reports {round, status, checksum} in results[hartid]
 *     (round last, with release order) and calls hart_stop.
 * Hart 0 polls each result word and then hart_get_status until the hart is
 * STOPPED (both bounded), then restarts every secondary once more (round 2:
 * a restarted hart must again begin with satp = 0 and redo the same work),
 * and prints
 *     smp ok harts=<n> checksum=0x<FNV-1a 64 of the harts' checksums>
 * (each as 8 little-endian bytes, hart order). a1 = 0: every hart present
 * (consecutive ids from 0, at most SMP_MAX_HARTS); a1 = n: harts 0..n-1.
 * smp/reference.mjs computes the line.
 */
#include <stdint.h>

#include "pattern.h"
#include "print.h"
#include "sbi.h"
#include "smp.h"
#include "sv39.h"

#define SMP_PART_BASE   0x80400000UL
#define SMP_PART_SIZE   0x100000UL
#define SMP_DATA_OFF    0x10000UL
#define SMP_DATA_PAGES  32UL
#define SMP_DATA_VA     0x40000000UL
#define SMP_IMAGE_GIGA  0x80000000UL
#define SMP_ROUNDS      2
#define SMP_POLL_LIMIT  (1UL << 26)

/* opaque = magic | round << 8 | hartid: the secondary checks a1 and a0 agree. */
#define SMP_OPAQUE_MAGIC 0x534D500000000000UL
#define SMP_OPAQUE(h, r) (SMP_OPAQUE_MAGIC | ((uint64_t)(r) << 8) | (uint64_t)(h))

/* A hart's status: ST_OK = passed, else the failing step (index into step_names). */
enum { ST_OK, ST_SATP_ENTRY, ST_OPAQUE, ST_SATP_ON, ST_VERIFY, ST_ALIAS };
static const char *const step_names[] = {
    "ok", "satp-at-entry", "opaque", "satp", "verify", "alias",
};

struct hart_result {
    uint64_t round;      /* written last, with release order */
    uint64_t status;
    uint64_t checksum;
};

static struct hart_result results[SMP_MAX_HARTS];
uint8_t smp_stacks[SMP_MAX_HARTS][SMP_STACK_SIZE] __attribute__((aligned(16)));

extern void smp_secondary_entry(void);
void smp_secondary_main(unsigned long hartid, unsigned long opaque) __attribute__((noreturn));

static inline uint64_t read_satp(void)
{
    uint64_t v;
    __asm__ volatile("csrr %0, satp" : "=r"(v));
    return v;
}

/* Builds this hart's tables, turns paging on, writes, verifies and hashes. */
static uint64_t hart_work(unsigned long hartid, uint64_t *checksum)
{
    uint64_t part = SMP_PART_BASE + hartid * SMP_PART_SIZE;
    pte_t *root = (pte_t *)part, *l1 = root + 512, *l0 = root + 1024;
    for (unsigned i = 0; i < 3 * 512; i++)
        root[i] = 0;
    root[0] = pte_leaf(0, PTE_R | PTE_W | PTE_D);
    root[1] = pte_table(l1);
    l1[0] = pte_table(l0);
    for (uint64_t i = 0; i < SMP_DATA_PAGES; i++)
        l0[i] = pte_leaf(part + SMP_DATA_OFF + i * PAGE_SIZE, PTE_R | PTE_W | PTE_D);
    root[2] = pte_leaf(SMP_IMAGE_GIGA, PTE_R | PTE_W | PTE_X | PTE_D);

    uint64_t satp = satp_sv39(root);
    sfence_all();
    __asm__ volatile("csrw satp, %0" :: "r"(satp) : "memory");
    sfence_all();
    if (read_satp() != satp)
        return ST_SATP_ON;

    volatile uint64_t *w = (volatile uint64_t *)SMP_DATA_VA;
    const uint64_t words = SMP_DATA_PAGES * PAGE_SIZE / 8;
    uint64_t x = LCG_SEED + hartid;
    for (uint64_t k = 0; k < words; k++) {
        x = lcg_next(x);
        w[k] = x;
    }
    uint64_t h = FNV_OFFSET;
    x = LCG_SEED + hartid;
    for (uint64_t k = 0; k < words; k++) {
        x = lcg_next(x);
        uint64_t v = w[k];
        if (v != x)
            return ST_VERIFY;
        h = fnv1a64_word(h, v);
    }
    /* The VA reached this hart's own partition: the identity map agrees. */
    if (*(volatile uint64_t *)(part + SMP_DATA_OFF) != w[0])
        return ST_ALIAS;
    *checksum = h;
    return ST_OK;
}

void smp_secondary_main(unsigned long hartid, unsigned long opaque)
{
    uint64_t round = (opaque >> 8) & 0xff, checksum = 0, status;
    if (read_satp() != 0)
        status = ST_SATP_ENTRY;
    else if ((opaque & ~0xffffUL) != SMP_OPAQUE_MAGIC || (opaque & 0xff) != hartid)
        status = ST_OPAQUE;
    else
        status = hart_work(hartid, &checksum);
    results[hartid].status = status;
    results[hartid].checksum = checksum;
    __atomic_store_n(&results[hartid].round, round, __ATOMIC_RELEASE);
    sbi_hart_stop();
    for (;;)
        __asm__ volatile("wfi");
}

static int fail(const char *step, unsigned long hartid, long detail)
{
    put_str("smp FAIL ");
    put_str(step);
    put_str(" hart=");
    put_dec(hartid);
    put_str(" detail=0x");
    put_hex64((uint64_t)detail);
    put_char('\n');
    return 1;
}

int main(unsigned long hartid, unsigned long arg)
{
    if (hartid != 0)
        return fail("boot-hart", hartid, 0);

    unsigned long n = 1;
    while (n < SMP_MAX_HARTS && sbi_hart_get_status(n).error == SBI_SUCCESS)
        n++;
    if (arg) {
        if (arg > n)
            return fail("harts", arg, (long)n);
        n = arg;
    }

    /* HSM about the boot hart: STARTED, and starting it again is refused. */
    struct sbiret r = sbi_hart_get_status(0);
    if (r.error != SBI_SUCCESS || r.value != SBI_HSM_STATE_STARTED)
        return fail("status-self", 0, r.error ? r.error : r.value);
    r = sbi_hart_start(0, (uint64_t)smp_secondary_entry, 0);
    if (r.error != SBI_ERR_ALREADY_AVAILABLE)
        return fail("start-self", 0, r.error);
    for (unsigned long h = 1; h < n; h++) {
        r = sbi_hart_get_status(h);
        if (r.error != SBI_SUCCESS || r.value != SBI_HSM_STATE_STOPPED)
            return fail("status-stopped", h, r.error ? r.error : r.value);
    }

    uint64_t checksums[SMP_MAX_HARTS];
    for (uint64_t round = 1; round <= SMP_ROUNDS; round++) {
        for (unsigned long h = 1; h < n; h++) {
            r = sbi_hart_start(h, (uint64_t)smp_secondary_entry, SMP_OPAQUE(h, round));
            if (r.error != SBI_SUCCESS)
                return fail("start", h, r.error);
        }
        if (round == 1) {
            uint64_t status = hart_work(0, &checksums[0]);
            if (status != ST_OK)
                return fail(step_names[status], 0, (long)round);
        }
        for (unsigned long h = 1; h < n; h++) {
            uint64_t polls = 0;
            while (__atomic_load_n(&results[h].round, __ATOMIC_ACQUIRE) != round)
                if (++polls == SMP_POLL_LIMIT)
                    return fail("result-timeout", h, (long)round);
            if (results[h].status != ST_OK)
                return fail(step_names[results[h].status], h, (long)round);
            for (polls = 0; sbi_hart_get_status(h).value != SBI_HSM_STATE_STOPPED;)
                if (++polls == SMP_POLL_LIMIT)
                    return fail("stop-timeout", h, (long)round);
            if (round == 1)
                checksums[h] = results[h].checksum;
            else if (results[h].checksum != checksums[h])
                return fail("round-checksum", h, (long)round);
        }
    }

    uint64_t sum = FNV_OFFSET;
    for (unsigned long h = 0; h < n; h++)
        sum = fnv1a64_word(sum, checksums[h]);
    put_str("smp ok harts=");
    put_dec(n);
    put_str(" checksum=0x");
    put_hex64(sum);
    put_char('\n');
    return 0;
}
