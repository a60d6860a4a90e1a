// A VM running test code on n vCPUs: shared by the threads tests (through
// test/threads-helpers.ts) and the scenarios that also run in Chromium, so it
// is plain JavaScript that works on either Kvm (the sources or dist/).

export const RAM = 0x80000000n;

/** A VM with 1 MiB of RAM at RAM holding code (instruction words), and n vCPUs starting there. */
export function vmWithCode(kvm, code, n) {
  const vm = kvm.createVm();
  const hva = kvm.memory.mmap(1n << 20n);
  vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: RAM, memorySize: 1n << 20n, userspaceAddr: hva });
  const bytes = new Uint8Array(code.length * 4);
  const dv = new DataView(bytes.buffer);
  code.forEach((w, i) => dv.setUint32(i * 4, w >>> 0, true));
  vm.writeGuest(RAM, bytes);
  return { vm, vcpus: Array.from({ length: n }, (_, i) => vm.createVcpu(i)) };
}
