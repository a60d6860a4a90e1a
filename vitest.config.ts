import { defineConfig } from "vitest/config";

// Every test file that runs guest code runs twice: once as the default tier
// set-up has it (regions translated after 4,096 jumps to them) and once with
// every region translated on first sight (WEBKVM_JIT_THRESHOLD=1), so the
// translated code meets every instruction-level and MMU rule the interpreter does.
const GUEST_CODE = [
  "test/cpu/**/*.test.ts",
  "test/vcpu.test.ts",
  "test/mmu.test.ts",
  "test/guests.test.ts",
  "test/guests-smp.test.ts",
  "test/dirtylog-guest.test.ts",
  "test/dirtier.test.ts",
  "test/conformance.test.ts",
  "test/page-track.test.ts",
  "test/dirty-log.test.ts",
  "test/dirty-ring.test.ts",
  "test/stress.test.ts",
  "test/guest-memfd.test.ts",
  "test/edges.test.ts",
  "test/kvm-run-failures.test.ts",
  "test/pre-fault-memory.test.ts",
  "test/linux-boot.test.ts",
  "test/kvm-interrupt.test.ts",
  "test/linux-ttys0.test.ts",
  "test/riscv-tests.test.ts",
  "test/linux-userland.test.ts",
  "test/kvm-fp-regs.test.ts",
  "test/machine-state.test.ts",
];

// Files that never open the in-process core the test projects choose: the
// docs, the import layers, the package, the CLI (child processes) and the
// browser pages (Chromium picks its own core). They run once, in "default".
const CORE_INDEPENDENT = ["test/docs.test.ts", "test/layers.test.ts", "test/package.test.ts", "test/cli.test.ts",
  "test/browser/**"];

export default defineConfig({
  test: {
    setupFiles: ["test/setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    reporters: ["default", "./test/count-reporter.ts"],
    projects: [
      { extends: true, test: { name: "default", include: ["test/**/*.test.ts"] } },
      { extends: true, test: { name: "jit-eager", include: GUEST_CODE, env: { WEBKVM_JIT_THRESHOLD: "1" } } },
      // The whole suite again on the threads build of the debug core, on one
      // thread: its locks, SRCU and lockdep checks must change nothing a single
      // thread sees (test/setup.ts). The threads tests themselves open that core
      // anyway, in Node and in Chromium (test/browser/threads-chromium.test.ts).
      { extends: true, test: { name: "threads-core", include: ["test/**/*.test.ts"],
        exclude: ["test/threads*.test.ts", ...CORE_INDEPENDENT],
        env: { WEBKVM_TEST_CORE: "threads" } } },
      // And every KVM_RUN of it on a Worker vCPU thread (test/setup.ts): the
      // threads core's vcpu_load / vcpu_put, SRCU and lock hand-over between
      // threads must change nothing a test sees. test/cpu drives the
      // interpreter directly, not through KVM_RUN.
      { extends: true, test: { name: "worker-vcpus", include: ["test/**/*.test.ts"],
        exclude: ["test/threads*.test.ts", "test/cpu/**", ...CORE_INDEPENDENT],
        env: { WEBKVM_TEST_CORE: "threads", WEBKVM_TEST_VCPU: "worker" } } },
    ],
  },
});
