/* mips-qemu entry point: the reference workload on QEMU's virt machine,
 * started with -bios none, so it runs in M-mode from GPA 0x80000000 (the
 * reset vector's jump) with no firmware beneath it.
 *
 * Does what common/start.S does for an S-mode webkvm guest, in M-mode:
 * stack, trap vector, zeroed BSS, then main(hartid, arg) and guest_exit.
 * The argument (iterations; 0 = the default) is the u64 at MIPS_QEMU_ARG,
 * past the image: QEMU's generic loader puts it there
 * (-device loader,addr=0x80200000,data=N,data-len=8); RAM is zero without it.
 *
 * The trap vector stands in for the SBI the webkvm host provides: the
 * runtime's guest_exit makes an SRST call (an ecall from M-mode here), which
 * becomes a write to the virt machine's SiFive test device ("finisher"):
 * QEMU exits with status 0 for reason 0, 1 otherwise. Any other trap is
 * reported by the runtime's guest_unexpected_trap (with mcause, mepc, mtval).
 */
#define MIPS_QEMU_ARG   0x80200000
#define VIRT_TEST       0x100000
#define FINISHER_PASS   0x5555
#define FINISHER_FAIL   0x3333          /* | exit code << 16 */
#define MCAUSE_ECALL_M  11
#define SBI_EID_SRST    0x53525354

    .file   "start.S"
    .section .text.start, "ax", @progbits
    .globl  _start
_start:
    csrci   mstatus, 0x8            /* MIE = 0 */
    csrw    mie, zero
    la      t0, mips_qemu_trap
    csrw    mtvec, t0

    la      sp, __stack_top

    la      t0, __bss_start
    la      t1, __bss_end
1:  bgeu    t0, t1, 2f
    sd      zero, 0(t0)
    addi    t0, t0, 8
    j       1b
2:
    csrr    a0, mhartid
    li      t0, MIPS_QEMU_ARG
    ld      a1, 0(t0)
    call    main
    snez    a0, a0
    call    guest_exit
3:  j       3b

    .text
    .balign 4
mips_qemu_trap:
    csrr    t0, mcause
    li      t1, MCAUSE_ECALL_M
    bne     t0, t1, 5f
    li      t1, SBI_EID_SRST
    bne     a7, t1, 5f
    /* SRST: a1 = reason, 0 success */
    li      t0, VIRT_TEST
    li      t1, FINISHER_PASS
    beqz    a1, 4f
    li      t1, (1 << 16) | FINISHER_FAIL
4:  sw      t1, 0(t0)
    j       4b
5:  la      sp, __stack_top
    csrr    a0, mcause
    csrr    a1, mepc
    csrr    a2, mtval
    call    guest_unexpected_trap
6:  j       6b
