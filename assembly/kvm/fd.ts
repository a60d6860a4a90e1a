// The VMM process's file descriptors that KVM hands out: /dev/kvm, VM, vCPU
// and guest_memfd files (gmem/). Numbered like a process's: lowest free >= 3.

import { P, FD_TABLE_SIZE } from "../threads";

export const FD_NONE: u8 = 0;
export const FD_KVM: u8 = 1;
export const FD_VM: u8 = 2;
export const FD_VCPU: u8 = 3;
export const FD_GMEM: u8 = 4;

// The table lives in the process block (threads.ts): every thread's instance sees one table.
const MAX_FDS: i32 = FD_TABLE_SIZE;
const FIRST_FD: i32 = 3;

/** Installs an object at the lowest free fd; -1 when the table is full (EMFILE). */
export function fdInstall(kind: u8, obj: usize): i32 {
  for (let fd = FIRST_FD; fd < MAX_FDS; fd++) {
    if (load<u8>(P.fdKinds + <usize>fd) == FD_NONE) {
      store<u8>(P.fdKinds + <usize>fd, kind);
      store<u32>(P.fdObjects + (<usize>fd << 2), <u32>obj);
      return fd;
    }
  }
  return -1;
}

export function fdKind(fd: i32): u8 {
  if (fd < 0 || fd >= MAX_FDS) return FD_NONE;
  return load<u8>(P.fdKinds + <usize>fd);
}

export function fdObject(fd: i32): usize {
  return <usize>load<u32>(P.fdObjects + (<usize>fd << 2));
}

export function fdRelease(fd: i32): void {
  store<u8>(P.fdKinds + <usize>fd, FD_NONE);
  store<u32>(P.fdObjects + (<usize>fd << 2), 0);
}

