/* The S-mode half of webkvm's riscv-tests environment (see riscv_test.h):
 * entry into a test's body, the trap vector of tests that bring none, and
 * the end of every run.
 *
 * The verdict leaves the guest twice: as a line on the SBI console
 * ("rvtest: pass", or "rvtest: FAIL test <TESTNUM>" after a description of
 * an unexpected trap) and as the SRST shutdown reason (0 pass, 1 fail).
 * The host's harness checks both and reads TESTNUM from gp. */
#include "encoding.h"

#define SBI_EXT_LEGACY_PUTCHAR  0x01
#define SBI_EXT_BASE            0x10
#define SBI_BASE_GET_SPEC_VERSION 0
#define SBI_EXT_SRST            0x53525354
#define SBI_SRST_SHUTDOWN       0

        .section .text, "ax", @progbits
        .option norvc
        .weak   stvec_handler

/* a0 = the body's privilege (PRV_U or PRV_S), a1 = 1 when it uses the
 * FPU, a2 = its address. Interrupts stay off (sie = 0, SIE = SPIE = 0);
 * traps go to the test's own stvec_handler when it has one, else to
 * rvtest_trap. x1..x31 are zero in the body, as upstream's environment
 * leaves them. */
        .globl  rvtest_enter
rvtest_enter:
        la      t0, stvec_handler
        bnez    t0, 1f
        la      t0, rvtest_trap
1:      csrw    stvec, t0       /* first: the set-up below may trap (no FPU) */
        csrw    sie, zero
        li      t0, SSTATUS_SIE | SSTATUS_SPIE | SSTATUS_SPP | SSTATUS_FS
        csrc    sstatus, t0
        beqz    a1, 1f
        li      t0, SSTATUS_FS_INITIAL
        csrs    sstatus, t0
        csrwi   fcsr, 0
1:      li      t0, PRV_S
        bne     a0, t0, 2f
        li      t0, SSTATUS_SPP
        csrs    sstatus, t0
2:      csrw    sepc, a2
        csrw    sscratch, zero
        li x1, 0;  li x2, 0;  li x3, 0;  li x4, 0;  li x5, 0;  li x6, 0
        li x7, 0;  li x8, 0;  li x9, 0;  li x10, 0; li x11, 0; li x12, 0
        li x13, 0; li x14, 0; li x15, 0; li x16, 0; li x17, 0; li x18, 0
        li x19, 0; li x20, 0; li x21, 0; li x22, 0; li x23, 0; li x24, 0
        li x25, 0; li x26, 0; li x27, 0; li x28, 0; li x29, 0; li x30, 0
        li x31, 0
        sret

/* RVTEST_PASS / RVTEST_FAIL land here with a2 = 0 (pass) or 1 (fail), in
 * whichever mode the body was in. From U-mode the ecall traps: to
 * rvtest_trap, which recognises it by its address and reports in S-mode, or
 * to the test's own handler, which judges and calls RVTEST_PASS / FAIL
 * again from S-mode. From S-mode it is a harmless SBI call (it changes a0
 * and a1 only) and the report follows. */
        .globl  rvtest_exit
rvtest_exit:
        li      a7, SBI_EXT_BASE
        li      a6, SBI_BASE_GET_SPEC_VERSION
rvtest_exit_ecall:
        ecall
rvtest_report:
        mv      s0, a2
        bnez    s0, 1f
        la      a0, msg_pass
        call    rvtest_puts
        j       2f
1:      la      a0, msg_fail
        call    rvtest_puts
        mv      a0, gp          /* TESTNUM */
        call    rvtest_putdec
        li      a0, '\n'
        call    rvtest_putc
2:      li      a1, 0           /* SRST reason: 0 pass, 1 failure (by branch, not */
        beqz    s0, 3f          /* snez: sltu may be what failed) */
        li      a1, 1
3:      li      a7, SBI_EXT_SRST
        li      a6, 0
        li      a0, SBI_SRST_SHUTDOWN
        ecall
4:      wfi                     /* SRST returned: the host's budget ends the run */
        j       4b

/* The trap vector of a test without stvec_handler: the U-mode body's own
 * report (the ecall at rvtest_exit_ecall) continues in S-mode with its
 * registers as they were; anything else is a failure, described first. */
        .balign 4
rvtest_trap:
        csrr    t5, scause
        li      t6, CAUSE_USER_ECALL
        bne     t5, t6, 1f
        csrr    t5, sepc
        la      t6, rvtest_exit_ecall
        beq     t5, t6, rvtest_report
1:      la      a0, msg_trap
        call    rvtest_puts
        csrr    a0, scause
        call    rvtest_puthex
        la      a0, msg_sepc
        call    rvtest_puts
        csrr    a0, sepc
        call    rvtest_puthex
        la      a0, msg_stval
        call    rvtest_puts
        csrr    a0, stval
        call    rvtest_puthex
        li      a0, '\n'
        call    rvtest_putc
        li      a2, 1
        j       rvtest_report

/* Console output through the legacy SBI putchar, which both webkvm and
 * OpenSBI implement. Leaf routines: they change a0, a1, a7, t0..t4 only. */
rvtest_putc:                    /* a0 = the byte */
        li      a7, SBI_EXT_LEGACY_PUTCHAR
        ecall
        ret

rvtest_puts:                    /* a0 = a NUL-terminated string */
        mv      t0, a0
        li      a7, SBI_EXT_LEGACY_PUTCHAR
1:      lbu     a0, 0(t0)
        beqz    a0, 2f
        ecall
        addi    t0, t0, 1
        j       1b
2:      ret

rvtest_puthex:                  /* a0 = the value, printed as 0x and 16 digits */
        mv      t0, a0
        li      a7, SBI_EXT_LEGACY_PUTCHAR
        li      a0, '0'
        ecall
        li      a0, 'x'
        ecall
        li      t1, 60
1:      srl     a0, t0, t1
        andi    a0, a0, 15
        li      t2, 10
        bltu    a0, t2, 2f
        addi    a0, a0, 'a' - '0' - 10
2:      addi    a0, a0, '0'
        ecall
        addi    t1, t1, -4
        bgez    t1, 1b
        ret

/* a0 = the value (below 100000), in decimal by repeated subtraction: it
 * uses no M-extension instruction, which a failing test may be about. */
rvtest_putdec:
        mv      t0, a0
        li      a7, SBI_EXT_LEGACY_PUTCHAR
        la      t1, powers_of_ten
        li      t3, 0           /* a digit was printed */
1:      ld      t2, 0(t1)
        beqz    t2, 4f
        li      a0, '0'
2:      bltu    t0, t2, 3f
        sub     t0, t0, t2
        addi    a0, a0, 1
        j       2b
3:      li      t4, '0'
        bne     a0, t4, 5f
        bnez    t3, 5f
        li      t4, 1           /* the last digit is printed even if 0 */
        bne     t2, t4, 6f
5:      ecall
        li      t3, 1
6:      addi    t1, t1, 8
        j       1b
4:      ret

        .section .rodata, "a", @progbits
        .balign 8
powers_of_ten:
        .dword  10000, 1000, 100, 10, 1, 0
msg_pass:  .asciz "rvtest: pass\n"
msg_fail:  .asciz "rvtest: FAIL test "
msg_trap:  .asciz "rvtest: unexpected trap scause="
msg_sepc:  .asciz " sepc="
msg_stval: .asciz " stval="
