/* Polled 16550 UART at GPA 0x10000000 (byte registers, stride 1). */
#ifndef WEBKVM_GUEST_UART_H
#define WEBKVM_GUEST_UART_H

#include <stdint.h>

#define UART_BASE      0x10000000UL

#define UART_THR       0   /* write: transmit holding */
#define UART_RBR       0   /* read: receive buffer */
#define UART_IER       1
#define UART_FCR       2   /* write */
#define UART_IIR       2   /* read */
#define UART_LCR       3
#define UART_MCR       4
#define UART_LSR       5
#define UART_MSR       6
#define UART_SCR       7

#define UART_LSR_DR    0x01   /* receive data ready */
#define UART_LSR_THRE  0x20   /* transmit holding register empty */

static inline volatile uint8_t *uart_reg(unsigned int r)
{
    return (volatile uint8_t *)(UART_BASE + r);
}

static inline void uart_putc(char c)
{
    while (!(*uart_reg(UART_LSR) & UART_LSR_THRE))
        ;
    *uart_reg(UART_THR) = (uint8_t)c;
}

/* Returns the received byte, or -1 when nothing is waiting. */
static inline int uart_getc(void)
{
    if (!(*uart_reg(UART_LSR) & UART_LSR_DR))
        return -1;
    return *uart_reg(UART_RBR);
}

#endif
