/* SBI calls from an S-mode webkvm guest (the host implements the SBI). */
#ifndef WEBKVM_GUEST_SBI_H
#define WEBKVM_GUEST_SBI_H

#include <stdint.h>

#define SBI_EID_LEGACY_PUTCHAR  0x01UL
#define SBI_EID_LEGACY_GETCHAR  0x02UL
#define SBI_EID_LEGACY_SHUTDOWN 0x08UL
#define SBI_EID_TIME            0x54494D45UL   /* "TIME" */
#define SBI_EID_SRST            0x53525354UL   /* "SRST" */
#define SBI_EID_HSM             0x48534DUL     /* "HSM" */

#define SBI_HSM_HART_START      0UL
#define SBI_HSM_HART_STOP       1UL
#define SBI_HSM_HART_GET_STATUS 2UL

/* hart_get_status values. */
#define SBI_HSM_STATE_STARTED   0L
#define SBI_HSM_STATE_STOPPED   1L

#define SBI_SUCCESS               0L
#define SBI_ERR_INVALID_PARAM    -3L
#define SBI_ERR_INVALID_ADDRESS  -5L
#define SBI_ERR_ALREADY_AVAILABLE -6L

#define SBI_SRST_TYPE_SHUTDOWN  0UL
#define SBI_SRST_REASON_NONE    0UL            /* success */
#define SBI_SRST_REASON_FAILURE 1UL            /* system failure */

/* Frequency of the time CSR. */
#define GUEST_TIMEBASE_HZ 10000000UL

struct sbiret {
    long error;
    long value;
};

static inline struct sbiret sbi_call(unsigned long eid, unsigned long fid,
                                     unsigned long arg0, unsigned long arg1,
                                     unsigned long arg2)
{
    register unsigned long a0 __asm__("a0") = arg0;
    register unsigned long a1 __asm__("a1") = arg1;
    register unsigned long a2 __asm__("a2") = arg2;
    register unsigned long a6 __asm__("a6") = fid;
    register unsigned long a7 __asm__("a7") = eid;
    __asm__ volatile("ecall"
                     : "+r"(a0), "+r"(a1)
                     : "r"(a2), "r"(a6), "r"(a7)
                     : "memory");
    struct sbiret r = { (long)a0, (long)a1 };
    return r;
}

static inline void sbi_console_putchar(int c)
{
    sbi_call(SBI_EID_LEGACY_PUTCHAR, 0, (unsigned long)(unsigned char)c, 0, 0);
}

/* Returns the character, or -1 when none is waiting. */
static inline long sbi_console_getchar(void)
{
    return sbi_call(SBI_EID_LEGACY_GETCHAR, 0, 0, 0, 0).error;
}

static inline void sbi_set_timer(uint64_t when)
{
    sbi_call(SBI_EID_TIME, 0, when, 0, 0);
}

static inline struct sbiret sbi_system_reset(unsigned long type, unsigned long reason)
{
    return sbi_call(SBI_EID_SRST, 0, type, reason, 0);
}

static inline void sbi_legacy_shutdown(void)
{
    sbi_call(SBI_EID_LEGACY_SHUTDOWN, 0, 0, 0, 0);
}

/* HSM: start hartid at start_addr in S-mode with a0 = hartid, a1 = opaque. */
static inline struct sbiret sbi_hart_start(unsigned long hartid, unsigned long start_addr,
                                           unsigned long opaque)
{
    return sbi_call(SBI_EID_HSM, SBI_HSM_HART_START, hartid, start_addr, opaque);
}

/* HSM: stops the calling hart; returns only on failure. */
static inline struct sbiret sbi_hart_stop(void)
{
    return sbi_call(SBI_EID_HSM, SBI_HSM_HART_STOP, 0, 0, 0);
}

/* HSM: value = SBI_HSM_STATE_* of hartid. */
static inline struct sbiret sbi_hart_get_status(unsigned long hartid)
{
    return sbi_call(SBI_EID_HSM, SBI_HSM_HART_GET_STATUS, hartid, 0, 0);
}

/* SRST shutdown; failure != 0 reports "system failure". Never returns. */
void guest_exit(int failure) __attribute__((noreturn));

#endif
