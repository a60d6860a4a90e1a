/* mips: the reference compute loop (kernel.c from the shared anchors,
 * compiled separately with its own fixed flags) wrapped as a guest.
 * a1 = iteration count, 40,000,000 when 0. The host counts instructions. */
#include <stdint.h>

#include "kernel.h"
#include "print.h"

#define MIPS_DEFAULT_ITERS 40000000ULL
#define MIPS_INIT_SEED     12345ULL
#define MIPS_RUN_SEED      0xC0FFEEULL

int main(unsigned long hartid, unsigned long arg)
{
    (void)hartid;
    uint64_t iters = arg ? arg : MIPS_DEFAULT_ITERS;

    kernel_init(MIPS_INIT_SEED);
    uint64_t sum = kernel_run(iters, MIPS_RUN_SEED);

    put_str("mips iters=");
    put_dec(iters);
    put_str(" checksum=0x");
    put_hex64(sum);
    put_char('\n');
    return 0;
}
