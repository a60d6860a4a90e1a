/* webkvm guest entry point.
 *
 * Entered in S-mode at GPA 0x80000000 with satp = 0, interrupts off,
 * a0 = hart id and a1 = the guest argument (0 = use the default).
 * Sets up the stack, a fallback trap vector and a zeroed BSS, then calls
 *     int main(unsigned long hartid, unsigned long arg)
 * and shuts the machine down with SBI SRST: success when main returns 0,
 * failure otherwise.
 */
    .file   "start.S"
    .section .text.start, "ax", @progbits
    .globl  _start
_start:
    mv      s0, a0
    mv      s1, a1

    csrci   sstatus, 0x2            /* SIE = 0 */
    csrw    sie, zero
    la      t0, guest_fallback_trap
    csrw    stvec, t0

    la      sp, __stack_top

    la      t0, __bss_start
    la      t1, __bss_end
1:  bgeu    t0, t1, 2f
    sd      zero, 0(t0)
    addi    t0, t0, 8
    j       1b
2:
    mv      a0, s0
    mv      a1, s1
    call    main
    snez    a0, a0
    call    guest_exit
3:  j       3b

/* Any trap a guest did not ask for ends the run: report it and fail.
 * Runs on a fresh stack because the old one may be the problem. */
    .text
    .balign 4
    .globl  guest_fallback_trap
guest_fallback_trap:
    la      sp, __stack_top
    csrr    a0, scause
    csrr    a1, sepc
    csrr    a2, stval
    call    guest_unexpected_trap
4:  j       4b
