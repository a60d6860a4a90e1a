// Kvm: an open /dev/kvm in one webkvm instance (one core = one VMM process
// with its own address space, file descriptors and VMs).

import { instantiateCore, compileCore, sharedCoreOf, createSharedMemory, bytesAt, type SharedCore, type CoreExports, type CoreBuild, type WasmSource, type ReaderHook, type CoreHooks } from "./core.js";
import { HostMemory } from "./host-memory.js";
import { VcpuRunner } from "./vcpu-runner.js";
import { KvmError, throwIfFailed, ERRNO, CHECK } from "./errors.js";
import { HOOK, THREADS_MEMORY } from "./abi.gen.js";
import { Vm } from "./vm.js";
import { rawIoctl } from "./ioctl.js";
import type { KvmInstance } from "./instance.js";
import { capNumber, type CapName } from "./caps.js";
import { KVM_CHECK_EXTENSION, KVM_CREATE_VM, KVM_GET_API_VERSION } from "./uapi.js";
import { type U64, toU64, toU32 } from "./u64.js";

/** Host-dependent values. Defaults: the host the goldens were recorded on. */
export interface KvmConfig {
  /** KVM_MAX_NR_ADDRESS_SPACES: 2 models a kernel with SMM support. */
  addressSpaces: 1 | 2;
  /** Largest guest frame number a slot may reach (shadow paging: 2^40 - 1). */
  maxGfn: U64;
  /** KVM_CAP_VM_TYPES bitmask. */
  vmTypes: number;
  /** Generic memory attributes compiled in. */
  memoryAttributes: boolean;
  /**
   * The host has two-dimensional paging: KVM_CAP_PRE_FAULT_MEMORY is 1 and
   * KVM_PRE_FAULT_MEMORY maps pages; without it the ioctl is EOPNOTSUPP.
   */
  preFaultMemory: boolean;
  /** Dirty-ring entries kept in reserve (64, more on PML hosts). */
  dirtyRingReserved: number;
  /** First address user space cannot map (TASK_SIZE_MAX; 4-level paging). */
  userAddressLimit: U64;
}

export const DEFAULT_CONFIG: KvmConfig = {
  addressSpaces: 1,
  maxGfn: (1n << 40n) - 1n,
  vmTypes: 1,
  memoryAttributes: false,
  preFaultMemory: false,
  dirtyRingReserved: 64,
  userAddressLimit: 0x7ffffffff000n,
};

export interface OpenOptions {
  /** Where the core comes from: a URL/path, its bytes, or a compiled module. */
  wasm?: WasmSource;
  /**
   * Which build to load when `wasm` is not given (tests use "debug"). "threads"
   * is the debug core over a shared memory that other threads can join
   * (`sharedCore()`), "threads-release" the same without debug checks; they
   * have no translation tier yet.
   */
  core?: CoreBuild;
  config?: Partial<KvmConfig>;
  /**
   * The translation tier: false runs every instruction in the interpreter; a
   * number is how many times a pc must be reached by a jump or taken branch
   * before the region starting there is translated to WebAssembly (default 64;
   * the WEBKVM_JIT_THRESHOLD environment variable overrides the default).
   */
  jit?: boolean | number;
  /**
   * Threads cores: every KVM_RUN of this process's vCPUs executes on a Worker
   * while the calling thread waits for it (vcpu-runner.ts), so single-threaded
   * code runs its guests on another thread unchanged. `workerUrl` says where
   * the built `vcpu-runner-worker.js` is (default: next to this module);
   * `waitLimitMs` bounds a wait for one KVM_RUN (default: none). Needs
   * a thread that may block: Node, or a Worker. Default: off (tests switch it
   * on for a whole run through `globalThis.__WEBKVM_VCPU_WORKERS__`).
   */
  vcpuWorkers?: boolean | { workerUrl?: URL | string; waitLimitMs?: number };
  /**
   * The threads core only: the shared memory's maximum, in 64 KiB pages
   * (default and upper bound: the module's, 4 GiB). Core metadata and host
   * memory frames then fail with ENOMEM at this size, as at 4 GiB.
   */
  maximumMemory?: number;
}

export interface CreateVmOptions {
  type?: number;
  /** Address spaces of this VM (default: what the kernel gives its type; 2 models SMM). */
  addressSpaces?: 1 | 2;
}

/**
 * What another thread needs to join a threads-core process as a `Kvm` of its
 * own (`Kvm.join`): structured-cloneable, so it can be posted to a Worker.
 */
export interface KvmShare {
  core: SharedCore;
  config: KvmConfig;
  /** The process's /dev/kvm fd. */
  fd: number;
}

export class Kvm implements KvmInstance {
  readonly memory: HostMemory;
  readonly config: Readonly<KvmConfig>;
  /** @internal */ readonly fd: number;
  /** @internal */ readonly hook: CoreHooks;
  private vcpuRunner: VcpuRunner | null = null;
  private readonly vms = new Map<number, Vm>();

  private constructor(readonly core: CoreExports, config: KvmConfig, hook: CoreHooks,
                      private readonly module: WebAssembly.Module, joinedFd?: number) {
    this.config = config;
    this.hook = hook;
    this.memory = new HostMemory(core);
    // Every instance of a process is configured alike (the config lives per instance).
    core.configure(config.addressSpaces, toU64(config.maxGfn, "maxGfn"), config.vmTypes >>> 0,
      config.memoryAttributes, config.preFaultMemory, config.dirtyRingReserved, toU64(config.userAddressLimit, "userAddressLimit"));
    this.fd = joinedFd ?? core.openKvm();
    hook.trackWrite = (fd, gpa, ptr, len) => this.callback(() =>
      this.vms.get(fd)?.pageTrack.notifyWrite(gpa, bytesAt(core, ptr, len).slice()));
    hook.trackRemoveRegion = (fd, base, npages) => this.callback(() =>
      this.vms.get(fd)?.pageTrack.notifyRemoveRegion(base, npages));
  }

  private callbackError: { error: unknown } | null = null;

  /**
   * Runs a user callback the core calls (page tracking). An exception must not
   * unwind through the core, which would leave its ioctl half done: it is kept
   * and thrown by the host method that entered the core (rethrowCallbackError).
   */
  private callback(fn: () => void): void {
    try {
      fn();
    } catch (error) {
      this.callbackError ??= { error };
    }
  }

  /** @internal After a core call that may run callbacks: throws the first exception one of them raised. */
  rethrowCallbackError(): void {
    const e = this.callbackError;
    this.callbackError = null;
    if (e) throw e.error;
  }

  static async open(opts: OpenOptions = {}): Promise<Kvm> {
    const config = { ...DEFAULT_CONFIG, ...opts.config };
    if (config.addressSpaces !== 1 && config.addressSpaces !== 2) throw new RangeError("addressSpaces must be 1 or 2");
    const hook: CoreHooks = { fn: null as ReaderHook | null };
    const module = await compileCore(opts.wasm, opts.core);
    const max = opts.maximumMemory;
    let memory: WebAssembly.Memory | undefined;
    if (max !== undefined) {
      const importsMemory = WebAssembly.Module.imports(module).some((i) => i.kind === "memory");
      if (!importsMemory) throw new RangeError("maximumMemory needs the threads core");
      if (!Number.isInteger(max) || max < THREADS_MEMORY.initial || max > THREADS_MEMORY.maximum) {
        throw new RangeError(`maximumMemory must be a page count in [${THREADS_MEMORY.initial}, ${THREADS_MEMORY.maximum}], not ${max}`);
      }
      memory = createSharedMemory(max);
    }
    const core = await instantiateCore(undefined, opts.core, hook, { module, memory });
    if (max !== undefined) core.memoryMaximum(max);
    const jit = opts.jit; // without it, the core keeps its default or WEBKVM_JIT_THRESHOLD (src/jit.ts)
    if (core.isThreadsBuild() && jit !== undefined && jit !== false) {
      throw new RangeError("the threads core has no translation tier yet: jit must be false or left out");
    }
    if (jit !== undefined && jit !== true) {
      if (jit !== false && (!Number.isInteger(jit) || jit < 0 || jit > 0x7fffffff)) {
        throw new RangeError(`jit must be a boolean or a threshold in [0, 2^31), not ${jit}`);
      }
      core.jitSetThreshold(jit === false ? 0 : jit);
    }
    const kvm = new Kvm(core, config, hook, module);
    const workers = opts.vcpuWorkers ?? (globalThis as { __WEBKVM_VCPU_WORKERS__?: OpenOptions["vcpuWorkers"] }).__WEBKVM_VCPU_WORKERS__;
    if (opts.vcpuWorkers && !core.isThreadsBuild()) throw new RangeError("vcpuWorkers needs a threads core (core: \"threads\" or \"threads-release\")");
    if (workers && core.isThreadsBuild()) {
      const o = typeof workers === "object" ? workers : {};
      kvm.vcpuRunner = await VcpuRunner.get(new URL(o.workerUrl ?? "./vcpu-runner-worker.js", import.meta.url), o.waitLimitMs);
    }
    return kvm;
  }

  /**
   * The threads core only: what another thread needs to join this process
   * (`instantiateCore(undefined, "threads", hooks, kvm.sharedCore())`, in a
   * Worker or not). The joined instance sees every VM, fd and mapping of this
   * one; it must be configured with this instance's config (`configure`).
   */
  sharedCore(): SharedCore {
    return sharedCoreOf(this.core, this.module);
  }

  /** The threads core only: what `Kvm.join` needs on another thread (post it to a Worker). */
  share(): KvmShare {
    return { core: this.sharedCore(), config: { ...this.config }, fd: this.fd };
  }

  /**
   * Joins a threads-core process from another thread (a Worker): a `Kvm` over
   * the same shared memory that sees every VM, vCPU, fd and mapping of the
   * one that shared it. Wrap its fds with `vmFromFd` and `vm.vcpuFromFd`.
   * Page-track callbacks and reader hooks stay with the instance that set them.
   */
  static async join(share: KvmShare): Promise<Kvm> {
    const hook: CoreHooks = { fn: null as ReaderHook | null };
    const core = await instantiateCore(undefined, "threads", hook, share.core);
    return new Kvm(core, { ...share.config }, hook, share.core.module, share.fd);
  }

  /** Whether this instance runs the debug core (invariant checks on). */
  get debugCore(): boolean {
    return this.core.isDebugBuild() !== 0;
  }

  /** Raw ioctl on /dev/kvm: returns the value or -errno. */
  ioctl(nr: number, arg?: Uint8Array | number | bigint): number {
    return rawIoctl(this.core, this.fd, nr, arg);
  }

  apiVersion(): number {
    return this.ioctl(KVM_GET_API_VERSION);
  }

  /** KVM_CHECK_EXTENSION on /dev/kvm. */
  checkExtension(cap: number | CapName): number {
    return this.ioctl(KVM_CHECK_EXTENSION, capNumber(cap));
  }

  createVm(opts: CreateVmOptions = {}): Vm {
    const type = toU32(opts.type ?? 0, "type");
    let fd: number;
    if (opts.addressSpaces === undefined) {
      fd = this.ioctl(KVM_CREATE_VM, type);
    } else {
      if (opts.addressSpaces !== 1 && opts.addressSpaces !== 2) throw new RangeError("addressSpaces must be 1 or 2");
      fd = this.core.createVm(BigInt(type), opts.addressSpaces);
    }
    throwIfFailed(this.core, fd, "KVM_CREATE_VM", { type });
    const vm = new Vm(this, fd);
    this.vms.set(fd, vm);
    return vm;
  }

  /** Wraps an fd that a raw KVM_CREATE_VM returned. */
  vmFromFd(fd: number): Vm {
    let vm = this.vms.get(fd);
    if (!vm) {
      if (!this.core.vmLive(fd)) throw new KvmError(ERRNO.EBADF, CHECK.BAD_FD, { fd }, "vmFromFd");
      vm = new Vm(this, fd);
      this.vms.set(fd, vm);
    }
    return vm;
  }

  /** @internal */
  runOnWorker(vcpuFd: number): { r: number; check: number } | null {
    return this.vcpuRunner && this.hook.fn === null ? this.vcpuRunner.run(this.core.memory, () => this.share(), vcpuFd) : null;
  }

  /** @internal */
  forget(fd: number): void {
    this.vms.delete(fd);
  }

  /**
   * Runs fn at the points where, in the kernel, a concurrent reader could
   * observe a memslot update or an MMU-notifier invalidation in flight
   * (see assembly/debug/hooks.ts). null turns the hooks off.
   */
  setReaderHook(fn: ((vm: Vm, point: ReaderPoint, asId: number) => void) | null): void {
    this.hook.fn = fn ? (fd, point, asId) => fn(this.vmFromFd(fd), READER_POINTS[point], asId) : null;
    this.core.enableReaderHooks(fn !== null);
  }
}

export type ReaderPoint = "invalid-published" | "invalidated" | "published" | "mn-invalidating" | "gpc-resolved";
const READER_POINTS: Record<number, ReaderPoint> = {
  [HOOK.INVALID_PUBLISHED]: "invalid-published", [HOOK.INVALIDATED]: "invalidated", [HOOK.PUBLISHED]: "published",
  [HOOK.MN_INVALIDATING]: "mn-invalidating", [HOOK.GPC_RESOLVED]: "gpc-resolved",
};
