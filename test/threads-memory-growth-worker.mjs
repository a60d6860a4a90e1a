// The other thread of test/threads-memory-growth.test.ts: joins the process,
// makes the memslot update whose dirty bitmap needs the memory to grow past its
// maximum, then shows this thread still works (a small memslot update, a KVM_RUN).
import { parentPort, workerData } from "node:worker_threads";
import { Kvm, KvmError, KVM_MEM_LOG_DIRTY_PAGES } from "../dist/index.js";

const { share, vmFd, vcpuFd, huge, small } = workerData;
try {
  const kvm = await Kvm.join(share);
  const vm = kvm.vmFromFd(vmFd);
  let failed = null;
  try {
    vm.setUserMemoryRegion({ ...huge, flags: KVM_MEM_LOG_DIRTY_PAGES });
  } catch (e) {
    if (!(e instanceof KvmError)) throw e;
    failed = { errno: e.errno, check: e.check };
  }
  vm.setUserMemoryRegion(small);
  const exit = vm.vcpuFromFd(vcpuFd).run();
  parentPort.postMessage({ failed, slots: vm.memslots().map((s) => s.id).sort(), exit: exit.reason });
} catch (e) {
  parentPort.postMessage({ error: String((e && e.stack) || e) });
}
