// Capability names: KVM_CAP_* by number or by lower-case name, as
// KVM_CHECK_EXTENSION and KVM_ENABLE_CAP take them on /dev/kvm and on a VM.

import { KVM_CAP } from "./uapi.js";

export type CapName = Lowercase<keyof typeof KVM_CAP>;

export function capNumber(cap: number | CapName | keyof typeof KVM_CAP): number {
  if (typeof cap === "number") return cap;
  const n = (KVM_CAP as Record<string, number>)[cap.toUpperCase()];
  if (n === undefined) throw new RangeError(`unknown capability ${cap}`);
  return n;
}
