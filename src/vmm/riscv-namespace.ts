// The `riscv` namespace of the public API: RISC-V KVM's register ABI (../riscv.ts)
// together with the SBI constants and platform addresses of this VMM.

export * from "../riscv.js";
export {
  SBI_EXT_0_1_SET_TIMER, SBI_EXT_0_1_CONSOLE_PUTCHAR, SBI_EXT_0_1_CONSOLE_GETCHAR, SBI_EXT_0_1_SHUTDOWN, SBI_EXT_BASE,
  SBI_EXT_TIME, SBI_EXT_SRST, SBI_SUCCESS, SBI_ERR_NOT_SUPPORTED,
} from "./sbi.js";
export { RAM_BASE, UART_BASE } from "./platform.js";
