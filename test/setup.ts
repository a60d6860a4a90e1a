// Every test runs against the debug core: invariant checks on.
(globalThis as { __WEBKVM_CORE__?: string }).__WEBKVM_CORE__ = "debug";
