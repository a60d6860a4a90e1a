/* The entry of a guest's secondary harts, where hart 0 sends them with SBI HSM
 * hart_start (a0 = hart id, satp = 0): interrupts off, the fallback trap
 * handler, then a stack of its own, STACK bytes from STACKS[hartid], and
 * MAIN, which does not return. A hart id without a stack waits in wfi. Used
 * by the smp and dirtier guests' secondary.S (stack size 4 KiB: shift 12). */
    .macro SECONDARY_ENTRY entry, max_harts, stacks, main
    .text
    .balign 4
    .globl  \entry
\entry:
    csrci   sstatus, 0x2            /* SIE = 0 */
    csrw    sie, zero
    la      t0, guest_fallback_trap
    csrw    stvec, t0

    li      t0, \max_harts
    bgeu    a0, t0, 1f              /* no stack for this hart id */
    la      sp, \stacks
    addi    t1, a0, 1
    slli    t1, t1, 12              /* (hartid + 1) * 4 KiB */
    add     sp, sp, t1
    call    \main                   /* does not return */
1:  wfi
    j       1b
    .endm
