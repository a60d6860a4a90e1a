// The platform this VMM builds: where guest RAM starts and where its devices
// sit in the guest-physical address space. A VMM's choice, not KVM's.

/** Guest RAM base and the UART (the guests in guests/ are linked for them, guests/README.md). */
export const RAM_BASE = 0x80000000n;
export const UART_BASE = 0x10000000n;
/** The UART's register window and the input clock its device-tree node states (a 16550's common 1.8432 MHz crystal). */
export const UART_SIZE = 0x100n;
export const UART_CLOCK_HZ = 1_843_200;
