/* Shared guest runtime: console output, exit, fallback trap report and
 * the few memory helpers the compiler may call in freestanding code. */
#include <stddef.h>
#include <stdint.h>

#include "print.h"
#include "sbi.h"
#include "uart.h"

void put_char(char c)
{
    uart_putc(c);
}

void put_str(const char *s)
{
    while (*s)
        uart_putc(*s++);
}

void put_hex64(uint64_t v)
{
    static const char digits[] = "0123456789abcdef";
    for (int shift = 60; shift >= 0; shift -= 4)
        uart_putc(digits[(v >> shift) & 0xf]);
}

void put_dec(uint64_t v)
{
    char buf[20];   /* 2^64 - 1 has 20 digits */
    int n = 0;
    do {
        buf[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        uart_putc(buf[--n]);
}

void guest_exit(int failure)
{
    sbi_system_reset(SBI_SRST_TYPE_SHUTDOWN,
                     failure ? SBI_SRST_REASON_FAILURE : SBI_SRST_REASON_NONE);
    /* SRST should not return; fall back to the legacy call, then park. */
    sbi_legacy_shutdown();
    for (;;)
        __asm__ volatile("wfi");
}

void guest_unexpected_trap(uint64_t scause, uint64_t sepc, uint64_t stval)
    __attribute__((noreturn));

void guest_unexpected_trap(uint64_t scause, uint64_t sepc, uint64_t stval)
{
    put_str("unexpected trap scause=0x");
    put_hex64(scause);
    put_str(" sepc=0x");
    put_hex64(sepc);
    put_str(" stval=0x");
    put_hex64(stval);
    put_char('\n');
    guest_exit(1);
}

void *memset(void *dst, int c, size_t n)
{
    unsigned char *d = dst;
    while (n--)
        *d++ = (unsigned char)c;
    return dst;
}

void *memcpy(void *restrict dst, const void *restrict src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    while (n--)
        *d++ = *s++;
    return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (d < s) {
        while (n--)
            *d++ = *s++;
    } else {
        while (n--)
            d[n] = s[n];
    }
    return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    for (; n; n--, x++, y++)
        if (*x != *y)
            return *x - *y;
    return 0;
}
