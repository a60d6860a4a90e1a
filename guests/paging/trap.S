/* Trap vector of the paging guest.
 *
 * Records scause/stval/sepc and counts the trap, then resumes:
 *   13 (load page fault), 15 (store/AMO page fault): skip the faulting
 *       4-byte instruction (sepc += 4);
 *   12 (instruction page fault): the fault came from a `jalr ra, ...` into
 *       an unmapped page, so resume at ra as if the callee had returned.
 * Anything else, or a trap storm, goes to the runtime's fallback handler,
 * which reports it and shuts down with failure.
 * Only t0 and t1 are used; t1 is spilled to the (identity-mapped) stack
 * and t0 to sscratch.
 */
    .file   "trap.S"
    .text
    .balign 4
    .globl  paging_trap
paging_trap:
    csrw    sscratch, t0
    addi    sp, sp, -16
    sd      t1, 0(sp)

    csrr    t0, scause
    la      t1, trap_scause
    sd      t0, 0(t1)
    csrr    t0, stval
    la      t1, trap_stval
    sd      t0, 0(t1)
    csrr    t0, sepc
    la      t1, trap_sepc
    sd      t0, 0(t1)
    la      t1, trap_count
    ld      t0, 0(t1)
    addi    t0, t0, 1
    sd      t0, 0(t1)
    li      t1, 64
    bgtu    t0, t1, .Lgive_up

    csrr    t0, scause
    li      t1, 12
    beq     t0, t1, .Lfetch
    li      t1, 13
    beq     t0, t1, .Lskip
    li      t1, 15
    beq     t0, t1, .Lskip
.Lgive_up:
    j       guest_fallback_trap

.Lfetch:
    csrw    sepc, ra
    j       .Lreturn
.Lskip:
    csrr    t0, sepc
    addi    t0, t0, 4
    csrw    sepc, t0
.Lreturn:
    ld      t1, 0(sp)
    addi    sp, sp, 16
    csrr    t0, sscratch
    sret
