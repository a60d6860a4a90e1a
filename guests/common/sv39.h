/* Sv39 page-table entries and TLB fences, for guests that turn on paging. */
#ifndef WEBKVM_GUEST_SV39_H
#define WEBKVM_GUEST_SV39_H

#include <stdint.h>

#define PTE_V (1UL << 0)
#define PTE_R (1UL << 1)
#define PTE_W (1UL << 2)
#define PTE_X (1UL << 3)
#define PTE_A (1UL << 6)
#define PTE_D (1UL << 7)

#define PAGE_SIZE   4096UL
#define SATP_SV39   (8UL << 60)

typedef uint64_t pte_t;

/* A leaf; A is always preset (Svade: the vCPU never sets A or D itself). */
static inline pte_t pte_leaf(uint64_t pa, uint64_t perms)
{
    return ((pa >> 12) << 10) | perms | PTE_A | PTE_V;
}

/* A pointer to the next-level table. */
static inline pte_t pte_table(const pte_t *next)
{
    return (((uint64_t)next >> 12) << 10) | PTE_V;
}

static inline uint64_t satp_sv39(const pte_t *root)
{
    return SATP_SV39 | ((uint64_t)root >> 12);
}

static inline void sfence_all(void)
{
    __asm__ volatile("sfence.vma zero, zero" ::: "memory");
}

static inline void sfence_va(uint64_t va)
{
    __asm__ volatile("sfence.vma %0, zero" :: "r"(va) : "memory");
}

#endif
