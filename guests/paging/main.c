/* paging: Sv39 from the guest's side.
 *
 * Page tables (all in this image's BSS):
 *   root[0]   gigapage  VA 0x0000_0000 -> PA 0           RW   (UART MMIO)
 *   root[2]   -> l1_ram
 *     l1_ram[0] -> l0_img: 4 KiB identity pages over the image   RWX
 *     l1_ram[1] megapage VA 0x8020_0000 -> PA 0x8020_0000 RW
 *   root[256] -> l1_hi -> l0_hi, VA_HI = 0xFFFF_FFC0_0000_0000
 *     l0_hi[0]  VA_HI + 0x0000 -> alias_page            RW
 *     l0_hi[1]  VA_HI + 0x1000 -> ro_page               R
 *     l0_hi[2]  VA_HI + 0x2000    not mapped
 * A and D are preset on every leaf so no A/D update is needed.
 *
 * Steps (the name is printed on failure): satp, megapage, alias-write,
 * alias-read, ro-read, ro-store, unmapped-load, unmapped-fetch,
 * noncanonical, remap, unmap.
 */
#include <stdint.h>

#include "print.h"
#include "sv39.h"

#define RAM_BASE    0x80000000UL
#define MEGA_BASE   0x80200000UL
#define VA_HI       0xFFFFFFC000000000UL
#define VA_ALIAS    (VA_HI + 0x0000)
#define VA_RO       (VA_HI + 0x1000)
#define VA_HOLE     (VA_HI + 0x2000)
#define VA_NONCANON 0x0000004000000000UL   /* bit 38 set, bits 63..39 clear */

#define CAUSE_FETCH_PAGE_FAULT 12
#define CAUSE_LOAD_PAGE_FAULT  13
#define CAUSE_STORE_PAGE_FAULT 15

#define SENTINEL 0x5A5A5A5A5A5A5A5AUL

static pte_t root[512]    __attribute__((aligned(4096)));
static pte_t l1_ram[512]  __attribute__((aligned(4096)));
static pte_t l0_img[512]  __attribute__((aligned(4096)));
static pte_t l1_hi[512]   __attribute__((aligned(4096)));
static pte_t l0_hi[512]   __attribute__((aligned(4096)));
static volatile uint64_t alias_page[512] __attribute__((aligned(4096)));
static volatile uint64_t ro_page[512]    __attribute__((aligned(4096)));

/* Written by trap.S. */
volatile uint64_t trap_count, trap_scause, trap_stval, trap_sepc;

extern char _end[];
extern void paging_trap(void);

/* A load that may fault: the trap handler skips it, leaving SENTINEL. */
static inline uint64_t try_load(uint64_t va, uint64_t *pc)
{
    uint64_t v = SENTINEL, at;
    __asm__ volatile("1: ld %0, 0(%2)\n\tlla %1, 1b"
                     : "+r"(v), "=r"(at) : "r"(va) : "memory");
    *pc = at;
    return v;
}

static inline void try_store(uint64_t va, uint64_t v, uint64_t *pc)
{
    uint64_t at;
    __asm__ volatile("1: sd %1, 0(%2)\n\tlla %0, 1b"
                     : "=r"(at) : "r"(v), "r"(va) : "memory");
    *pc = at;
}

/* Call into va; on a fetch fault the handler returns to the next insn. */
static inline void try_call(uint64_t va)
{
    __asm__ volatile("jalr ra, 0(%0)" :: "r"(va) : "ra", "memory");
}

static int fail(const char *step)
{
    put_str("paging: step ");
    put_str(step);
    put_str(": traps=");
    put_dec(trap_count);
    put_str(" scause=0x");
    put_hex64(trap_scause);
    put_str(" stval=0x");
    put_hex64(trap_stval);
    put_str(" sepc=0x");
    put_hex64(trap_sepc);
    put_char('\n');
    put_str("paging FAIL ");
    put_str(step);
    put_char('\n');
    return 1;
}

/* Expect exactly one new trap with the given cause and stval (and sepc
 * unless pc == 0). */
static int trapped(uint64_t before, uint64_t cause, uint64_t stval, uint64_t pc)
{
    return trap_count == before + 1 && trap_scause == cause &&
           trap_stval == stval && (pc == 0 || trap_sepc == pc);
}

static void build_tables(void)
{
    root[0] = pte_leaf(0, PTE_R | PTE_W | PTE_D);
    root[2] = pte_table(l1_ram);
    l1_ram[0] = pte_table(l0_img);
    for (uint64_t pa = RAM_BASE; pa < (uint64_t)_end; pa += PAGE_SIZE)
        l0_img[(pa - RAM_BASE) / PAGE_SIZE] =
            pte_leaf(pa, PTE_R | PTE_W | PTE_X | PTE_D);
    l1_ram[1] = pte_leaf(MEGA_BASE, PTE_R | PTE_W | PTE_D);

    root[256] = pte_table(l1_hi);
    l1_hi[0] = pte_table(l0_hi);
    l0_hi[0] = pte_leaf((uint64_t)alias_page, PTE_R | PTE_W | PTE_D);
    l0_hi[1] = pte_leaf((uint64_t)ro_page, PTE_R);
    l0_hi[2] = 0;
}

int main(unsigned long hartid, unsigned long arg)
{
    (void)hartid;
    (void)arg;
    uint64_t n, v, pc;

    build_tables();
    ro_page[0] = 0x0123456789ABCDEFUL;

    __asm__ volatile("csrw stvec, %0" :: "r"((uint64_t)paging_trap));
    uint64_t satp = satp_sv39(root);
    sfence_all();
    __asm__ volatile("csrw satp, %0" :: "r"(satp) : "memory");
    sfence_all();

    /* satp: mode 8 took effect. */
    uint64_t got;
    __asm__ volatile("csrr %0, satp" : "=r"(got));
    if (got != satp)
        return fail("satp");

    /* megapage: identity 2 MiB leaf above the image. */
    volatile uint64_t *mega = (volatile uint64_t *)(MEGA_BASE + 0x1238);
    *mega = 0xFEEDFACECAFEBEEFUL;
    if (*mega != 0xFEEDFACECAFEBEEFUL)
        return fail("megapage");

    /* alias-write: store through the high alias, see it via identity. */
    *(volatile uint64_t *)VA_ALIAS = 0x1122334455667788UL;
    if (alias_page[0] != 0x1122334455667788UL)
        return fail("alias-write");

    /* alias-read: store via identity, load through the alias. */
    alias_page[1] = 0x8877665544332211UL;
    if (*(volatile uint64_t *)(VA_ALIAS + 8) != 0x8877665544332211UL)
        return fail("alias-read");

    /* ro-read: a read-only page is readable without a trap. */
    n = trap_count;
    v = try_load(VA_RO, &pc);
    if (v != 0x0123456789ABCDEFUL || trap_count != n)
        return fail("ro-read");

    /* ro-store: a store to it faults (15) and does not land. */
    n = trap_count;
    try_store(VA_RO + 8, 0xBADBADBADBADBADBUL, &pc);
    if (!trapped(n, CAUSE_STORE_PAGE_FAULT, VA_RO + 8, pc) || ro_page[1] != 0)
        return fail("ro-store");

    /* unmapped-load: a load from an invalid PTE faults (13). */
    n = trap_count;
    v = try_load(VA_HOLE + 0x10, &pc);
    if (!trapped(n, CAUSE_LOAD_PAGE_FAULT, VA_HOLE + 0x10, pc) || v != SENTINEL)
        return fail("unmapped-load");

    /* unmapped-fetch: jumping there faults (12) with sepc = stval = target. */
    n = trap_count;
    try_call(VA_HOLE);
    if (!trapped(n, CAUSE_FETCH_PAGE_FAULT, VA_HOLE, VA_HOLE))
        return fail("unmapped-fetch");

    /* noncanonical: bits 63..39 must equal bit 38, else a page fault. */
    n = trap_count;
    v = try_load(VA_NONCANON, &pc);
    if (!trapped(n, CAUSE_LOAD_PAGE_FAULT, VA_NONCANON, pc) || v != SENTINEL)
        return fail("noncanonical");

    /* remap: map the hole onto alias_page, flush that VA, read through it. */
    l0_hi[2] = pte_leaf((uint64_t)alias_page, PTE_R | PTE_W | PTE_D);
    sfence_va(VA_HOLE);
    n = trap_count;
    v = try_load(VA_HOLE + 8, &pc);
    if (v != 0x8877665544332211UL || trap_count != n)
        return fail("remap");

    /* unmap: drop the alias, flush it, and the old VA must fault. */
    l0_hi[0] = 0;
    sfence_va(VA_ALIAS);
    n = trap_count;
    v = try_load(VA_ALIAS, &pc);
    if (!trapped(n, CAUSE_LOAD_PAGE_FAULT, VA_ALIAS, pc) || v != SENTINEL)
        return fail("unmap");

    put_str("paging ok\n");
    return 0;
}
