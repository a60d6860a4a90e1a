/* hello: one line on the UART, then a successful shutdown. */
#include "print.h"

int main(unsigned long hartid, unsigned long arg)
{
    (void)hartid;
    (void)arg;
    put_str("Hello from webkvm!\n");
    return 0;
}
