/* memtest: fill a region of guest RAM with a 64-bit LCG stream, read it all
 * back, then report FNV-1a 64 of the region's bytes. The region keeps the
 * pattern afterwards so the host can hash the same memory.
 *
 * Region: [0x80200000, 0x80200000 + size), size = a1 (bytes), 4 MiB when 0.
 * Pattern: x = 0x9E3779B97F4A7C15; for each 8-byte word k:
 *          x = x * 6364136223846793005 + 1442695040888963407 (mod 2^64),
 *          word k = x, stored little-endian. A size that is not a multiple
 *          of 8 ends with the low bytes of the next word.
 */
#include <stdint.h>

#include "pattern.h"
#include "print.h"

#define MEMTEST_BASE         0x80200000UL
#define MEMTEST_DEFAULT_SIZE (4UL << 20)

static void fail_at(uint64_t addr)
{
    put_str("memtest FAIL at 0x");
    put_hex64(addr);
    put_char('\n');
}

int main(unsigned long hartid, unsigned long arg)
{
    (void)hartid;
    uint64_t size = arg ? arg : MEMTEST_DEFAULT_SIZE;
    uint64_t words = size / 8;
    uint64_t tail = size % 8;
    volatile uint64_t *w = (volatile uint64_t *)MEMTEST_BASE;
    volatile uint8_t *b = (volatile uint8_t *)MEMTEST_BASE;
    uint64_t x;

    /* Write. */
    x = LCG_SEED;
    for (uint64_t k = 0; k < words; k++) {
        x = lcg_next(x);
        w[k] = x;
    }
    if (tail) {
        x = lcg_next(x);
        for (uint64_t j = 0; j < tail; j++)
            b[words * 8 + j] = (uint8_t)(x >> (8 * j));
    }

    /* Read back and verify. */
    x = LCG_SEED;
    for (uint64_t k = 0; k < words; k++) {
        x = lcg_next(x);
        if (w[k] != x) {
            fail_at(MEMTEST_BASE + k * 8);
            return 1;
        }
    }
    if (tail) {
        x = lcg_next(x);
        for (uint64_t j = 0; j < tail; j++) {
            if (b[words * 8 + j] != (uint8_t)(x >> (8 * j))) {
                fail_at(MEMTEST_BASE + words * 8 + j);
                return 1;
            }
        }
    }

    /* FNV-1a 64 over the region's bytes, in address order. */
    uint64_t h = FNV_OFFSET;
    for (uint64_t k = 0; k < words; k++)
        h = fnv1a64_word(h, w[k]);
    for (uint64_t j = 0; j < tail; j++) {
        h ^= b[words * 8 + j];
        h *= FNV_PRIME;
    }

    put_str("memtest ok checksum=0x");
    put_hex64(h);
    put_char('\n');
    return 0;
}
