// webkvm's public API.
export { Kvm, DEFAULT_CONFIG, capNumber } from "./kvm.js";
export type { KvmConfig, OpenOptions, CreateVmOptions, CapName, ReaderPoint } from "./kvm.js";
export { Vm, INJECT_POINTS } from "./vm.js";
export type { MemoryRegion, MemoryRegion2, Memslot, InjectPoint } from "./vm.js";
export { Vcpu } from "./vcpu.js";
export { HostMemory, PROT_NONE, PROT_READ, PROT_WRITE, PROT_EXEC } from "./host-memory.js";
export type { Hva, MmapOptions, Mapping } from "./host-memory.js";
export { KvmError, errnoName } from "./errors.js";
export type { U64 } from "./u64.js";
export * as uapi from "./uapi.js";
export * from "./uapi.js";
