// How the guest access in flight ended, and which vCPU makes it. The MMU
// (access.ts, paging.ts) writes it; the CPU reads it after each access and
// consumes it (cpu/stop.ts memStop). A leaf, so the CPU's stop logic needs
// nothing else of the MMU.

export const ACCESS_OK: i32 = 0;
/** The CPU takes a trap with accessCause / accessTval. */
export const ACCESS_EXCEPTION: i32 = 1;
/** The CPU stops without retiring the instruction (the exit is in the vCPU). */
export const ACCESS_EXIT: i32 = 2;

export let accessStatus: i32 = ACCESS_OK;
export let accessCause: u64 = 0;
export let accessTval: u64 = 0;

/** The vCPU running now (made current by access.ts mmuEnter, from kvm/vcpu_run.ts). */
export let curVcpu: usize = 0;
