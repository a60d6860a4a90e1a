/* The data patterns and the hash the guests report: a 64-bit LCG stream and
 * FNV-1a 64 (memtest/reference.mjs models both on the host). */
#ifndef WEBKVM_GUEST_PATTERN_H
#define WEBKVM_GUEST_PATTERN_H

#include <stdint.h>

#define LCG_SEED 0x9E3779B97F4A7C15ULL
#define LCG_MUL  6364136223846793005ULL
#define LCG_ADD  1442695040888963407ULL

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME  0x100000001b3ULL

static inline uint64_t lcg_next(uint64_t x)
{
    return x * LCG_MUL + LCG_ADD;
}

/* FNV-1a 64 of h's state extended by the 8 bytes of v, little-endian. */
static inline uint64_t fnv1a64_word(uint64_t h, uint64_t v)
{
    for (int j = 0; j < 8; j++) {
        h ^= (v >> (8 * j)) & 0xff;
        h *= FNV_PRIME;
    }
    return h;
}

#endif
