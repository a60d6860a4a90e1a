/* Where hart 0 starts the dirtier guest's other harts (SBI HSM hart_start):
 * a0 = hart id, satp = 0. Each gets its own stack (dirtier_stacks[hartid])
 * and runs dirtier_secondary_main, which never returns. */
#include "dirtier.h"

    .file   "secondary.S"
    .text
    .balign 4
    .globl  dirtier_secondary_entry
dirtier_secondary_entry:
    csrci   sstatus, 0x2            /* SIE = 0 */
    csrw    sie, zero
    la      t0, guest_fallback_trap
    csrw    stvec, t0

    li      t0, DIRTIER_MAX_HARTS
    bgeu    a0, t0, 1f              /* no stack for this hart id */
    la      sp, dirtier_stacks
    addi    t1, a0, 1
    slli    t1, t1, 12              /* (hartid + 1) * DIRTIER_STACK_SIZE */
    add     sp, sp, t1
    call    dirtier_secondary_main  /* does not return */
1:  wfi
    j       1b
