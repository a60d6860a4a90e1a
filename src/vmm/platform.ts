// The platform this VMM builds: where guest RAM starts and where its devices
// sit in the guest-physical address space. A VMM's choice, not KVM's.

/** Guest RAM base and the UART (the guests in guests/ are linked for them, guests/README.md). */
export const RAM_BASE = 0x80000000n;
export const UART_BASE = 0x10000000n;
/** The UART's register window and the input clock its device-tree node states (a 16550's common 1.8432 MHz crystal). */
export const UART_SIZE = 0x100n;
export const UART_CLOCK_HZ = 1_843_200;
/** The PLIC (devices/plic.ts), where kvmtool puts it on RISC-V, its sources 1..PLIC_NDEV, and the UART's source. */
export const PLIC_BASE = 0x0c000000n;
export const PLIC_NDEV = 31;
export const UART_IRQ = 1;
