# The QEMU baseline's M-mode firmware: just enough SBI for guests/linux/Image,
# rv64ima only, so QEMU can run with c=off (Debian's OpenSBI is built with C).
# QEMU enters here at 0x80000000 with a0 = hart id, a1 = DTB.
	.section .text.entry, "ax"
	.globl _start
_start:
	la	sp, stack_top
	csrw	mscratch, sp
	# PMP entry 0: all of memory, RWX, so S-mode can reach it.
	li	t0, -1
	csrw	pmpaddr0, t0
	li	t0, 0x1f		# NAPOT | X | W | R
	csrw	pmpcfg0, t0
	# Every exception S-mode can take goes to it, except ecall from S
	# (9, the SBI) and the ones only M-mode raises.
	li	t0, 0xb1ff
	csrw	medeleg, t0
	li	t0, 0x222		# SSIP | STIP | SEIP
	csrw	mideleg, t0
	li	t0, 7			# cycle, time, instret readable in S-mode
	csrw	mcounteren, t0
	la	t0, m_trap
	csrw	mtvec, t0
	csrw	mie, zero
	li	t0, 1 << 11		# MPP = S
	csrw	mstatus, t0
	li	t0, 0x80200000		# where QEMU put the kernel
	csrw	mepc, t0
	csrw	satp, zero
	mret				# a0 = hart id, a1 = DTB, as Linux wants them

	.align 4
m_trap:
	csrrw	sp, mscratch, sp
	addi	sp, sp, -256
	.irp r, 1,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	sd	x\r, (\r * 8)(sp)
	.endr
	csrr	t0, mscratch		# the interrupted sp
	sd	t0, 16(sp)
	mv	a0, sp
	call	m_handler
	.irp r, 1,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	ld	x\r, (\r * 8)(sp)
	.endr
	addi	sp, sp, 256
	csrrw	sp, mscratch, sp
	mret

	.bss
	.align 12
	.space 8192
stack_top:
