// Every test runs against the debug core: invariant checks on. The "threads"
// project runs the guest-running files again on the threads build of the debug
// core (WEBKVM_TEST_CORE=threads): its locks, SRCU and lockdep checks must
// change nothing a single thread sees.
(globalThis as { __WEBKVM_CORE__?: string }).__WEBKVM_CORE__ = process.env.WEBKVM_TEST_CORE === "threads" ? "threads" : "debug";
// The "worker-vcpus" project (WEBKVM_TEST_VCPU=worker, on the threads core):
// every KVM_RUN executes on a Worker while the test waits for it
// (OpenOptions.vcpuWorkers), except runs of a VM that calls back into the test
// during KVM_RUN (reader hooks, page-track users), which stay on its thread.
if (process.env.WEBKVM_TEST_VCPU === "worker") {
  (globalThis as { __WEBKVM_VCPU_WORKERS__?: unknown }).__WEBKVM_VCPU_WORKERS__ =
    { workerUrl: new URL("../dist/vcpu-runner-worker.js", import.meta.url), waitLimitMs: 60_000 };
}
