/* webkvm's environment for riscv-tests: the RVTEST_* macros the tests are
 * written against, for a guest that starts in S-mode at the RAM base with
 * satp = 0 and reaches the host through SBI calls (there is no M-mode).
 *
 * A test is one .S file: RVTEST_RV64U / RV64UF / RV64S say which privilege
 * its body runs in (U for the user-level suites, as the upstream "p"
 * environment does; S for rv64si) and whether it uses the FPU.
 * RVTEST_CODE_BEGIN puts _start first in the image; it hands the body to
 * rvtest_enter (env/rvtest.S), which sets stvec, sstatus and the registers
 * and sret's into it. RVTEST_PASS / RVTEST_FAIL jump to rvtest_exit, which
 * prints the verdict and ends the run with SBI SRST. TESTNUM (gp) names the
 * failing case and survives to the end, where the host can read it too. */
#ifndef WEBKVM_RISCV_TEST_H
#define WEBKVM_RISCV_TEST_H

#include "encoding.h"

#define TESTNUM gp

#define RVTEST_RV64U  .set rvtest_priv, PRV_U; .set rvtest_fpu, 0
#define RVTEST_RV64UF .set rvtest_priv, PRV_U; .set rvtest_fpu, 1
#define RVTEST_RV64S  .set rvtest_priv, PRV_S; .set rvtest_fpu, 0
/* RVTEST_RV64M is not defined: a test of M-mode cannot run here. */

#define RVTEST_CODE_BEGIN \
        .section .text.init, "ax", @progbits; \
        .globl _start; \
_start: \
        li a0, rvtest_priv; \
        li a1, rvtest_fpu; \
        la a2, rvtest_body; \
        j rvtest_enter; \
rvtest_body:

/* Running off the end of a test is a failure (an illegal-instruction trap). */
#define RVTEST_CODE_END \
        unimp

/* The stores a test made are visible before the verdict (as upstream's fence).
 * TESTNUM = 1 on pass as upstream has it: rv64si's handlers tell a pass
 * coming up from U-mode by it. a2 carries the verdict to rvtest_exit. */
#define RVTEST_PASS \
        fence; \
        li TESTNUM, 1; \
        li a2, 0; \
        j rvtest_exit

#define RVTEST_FAIL \
        fence; \
        li a2, 1; \
        j rvtest_exit

#define RVTEST_DATA_BEGIN \
        .align 4;

#define RVTEST_DATA_END \
        .align 4;

#endif
