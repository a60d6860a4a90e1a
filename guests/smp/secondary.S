/* Where SBI HSM hart_start sends the smp guest's secondary harts: a0 = hart
 * id, a1 = opaque, satp = 0. Each gets its own stack (smp_stacks[hartid])
 * and runs smp_secondary_main, which ends with hart_stop. */
#include "smp.h"

    .file   "secondary.S"
    .text
    .balign 4
    .globl  smp_secondary_entry
smp_secondary_entry:
    csrci   sstatus, 0x2            /* SIE = 0 */
    csrw    sie, zero
    la      t0, guest_fallback_trap
    csrw    stvec, t0

    li      t0, SMP_MAX_HARTS
    bgeu    a0, t0, 1f              /* no stack for this hart id */
    la      sp, smp_stacks
    addi    t1, a0, 1
    slli    t1, t1, 12              /* (hartid + 1) * SMP_STACK_SIZE */
    add     sp, sp, t1
    call    smp_secondary_main      /* does not return */
1:  wfi
    j       1b
