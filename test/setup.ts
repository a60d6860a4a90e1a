// Every test runs against the debug core: invariant checks on. The "threads"
// project runs the guest-running files again on the threads build of the debug
// core (WEBKVM_TEST_CORE=threads): its locks, SRCU and lockdep checks must
// change nothing a single thread sees.
(globalThis as { __WEBKVM_CORE__?: string }).__WEBKVM_CORE__ = process.env.WEBKVM_TEST_CORE === "threads" ? "threads" : "debug";
