/* Minimal console output on the UART (no printf). */
#ifndef WEBKVM_GUEST_PRINT_H
#define WEBKVM_GUEST_PRINT_H

#include <stdint.h>

void put_char(char c);
void put_str(const char *s);
/* Exactly 16 lower-case hex digits, no prefix. */
void put_hex64(uint64_t v);
/* Unsigned decimal, no leading zeros. */
void put_dec(uint64_t v);

#endif
