// The Worker behind VcpuThread (vcpu-thread.ts): joins the process over its
// shared memory and issues KVM_RUN on the vCPU whenever the owning thread asks,
// so the guest runs here while the owner's thread stays free (its exits are
// handled there). One script for Node's worker_threads and browser Workers.

import { Kvm, type KvmShare } from "./kvm.js";
import { KVM_RUN } from "./uapi.js";
import { rawIoctl } from "./ioctl.js";
import { workerPort } from "./worker-port.js";

/** Messages in: init first, then one run per KVM_RUN wanted. */
export type ToWorker = { init: { share: KvmShare; vmFd: number; vcpuFd: number } } | { run: number };
/** Messages out: ready (with this thread's id in the process), then done per run, or a fatal error. */
export type FromWorker = { ready: number } | { done: number; r: number; check: number } | { error: string };

const p = await workerPort<ToWorker, FromWorker>();
let kvm: Kvm | null = null;
let vcpuFd = -1;
p.listen((m) => {
  if ("init" in m) {
    vcpuFd = m.init.vcpuFd;
    Kvm.join(m.init.share).then((k) => {
      kvm = k;
      p.post({ ready: k.core.threadIdOf() });
    }, (e) => p.post({ error: String((e as Error)?.stack ?? e) }));
    return;
  }
  try {
    const r = rawIoctl(kvm!.core, vcpuFd, KVM_RUN);
    p.post({ done: m.run, r, check: r < 0 ? kvm!.core.lastFailedCheck() : 0 });
  } catch (e) {
    p.post({ error: String((e as Error)?.stack ?? e) });
  }
});
