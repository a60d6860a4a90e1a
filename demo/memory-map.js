// The memory map both demo workers post to the page: every address space's
// slots (vm.memslots) and generation, as plain strings and flags.
import { KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY } from "../dist/index.js";

export const hex = (v) => "0x" + BigInt(v).toString(16);

export function memoryMap(vm) {
  const spaces = [];
  for (let as = 0; as < vm.addressSpaces; as++) {
    spaces.push({
      asId: as,
      generation: vm.generation(as).toString(),
      slots: vm.memslots({ asId: as }).map((s) => ({
        id: s.id, gpa: hex(s.guestPhysAddr), end: hex(s.guestPhysAddr + s.memorySize), npages: Number(s.npages),
        hva: hex(s.userspaceAddr), flags: s.flags, logDirty: (s.flags & KVM_MEM_LOG_DIRTY_PAGES) !== 0,
        readonly: (s.flags & KVM_MEM_READONLY) !== 0, invalid: s.invalid,
      })),
    });
  }
  return spaces;
}
