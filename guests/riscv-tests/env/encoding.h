/* Architectural constants that riscv-tests' sources and env/rvtest.S name:
 * privilege levels, sstatus / sip bits and scause exception codes, as the
 * RISC-V privileged specification numbers them. Only what the S-mode
 * environment and the tests it builds use; M-mode fields are left out on
 * purpose, so a test that needs M-mode fails to assemble. */
#ifndef WEBKVM_RVTEST_ENCODING_H
#define WEBKVM_RVTEST_ENCODING_H

#define PRV_U 0
#define PRV_S 1

#define SSTATUS_SIE         0x2
#define SSTATUS_SPIE        0x20
#define SSTATUS_SPP         0x100
#define SSTATUS_FS          0x6000
#define SSTATUS_FS_INITIAL  0x2000
#define SSTATUS_UXL         0x300000000

#define SIP_SSIP            0x2

#define CAUSE_MISALIGNED_FETCH     0
#define CAUSE_ILLEGAL_INSTRUCTION  2
#define CAUSE_BREAKPOINT           3
#define CAUSE_MISALIGNED_LOAD      4
#define CAUSE_MISALIGNED_STORE     6
#define CAUSE_USER_ECALL           8
#define CAUSE_SUPERVISOR_ECALL     9

#endif
