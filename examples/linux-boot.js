// Boots the bundled Linux (guests/linux: Image + initramfs.cpio) on the
// release core and measures the boot: wall time to the init's first line and
// to power-off, and what the memory subsystem did meanwhile (the shadow MMU's
// counters, the RAM slot's dirty pages from one KVM_GET_DIRTY_LOG). Shared by
// `npm start` (examples/demo.js) and the boot bench (bench/linux.js).
import { readFileSync } from "node:fs";
import { Kvm, Machine, MMU_STAT } from "../dist/index.js";
import { INIT_FIRST_LINE_PREFIX, initResultLine } from "../guests/linux/reference.mjs";

export const LINUX_DIR = new URL("../guests/linux/", import.meta.url);
// webkvm.run= (guests/linux/README.md): the commands /init has the shell run before it powers off.
export const LINUX_CMDLINE = "earlycon=sbi console=hvc0 webkvm.run=poweroff";
const MEM = 64n << 20n;

const file = (name) => new Uint8Array(readFileSync(new URL(name, LINUX_DIR)));
let images = null;
let initResult = null; // the init's result line, computed once per process

function popcount(bytes) {
  let n = 0;
  for (let b of bytes) for (; b; b &= b - 1) n++;
  return n;
}

/**
 * One boot in a fresh Kvm (its own core, so the process-wide MMU counters are
 * this boot's alone), timed from before the core is opened to the init's
 * first line and to power-off (the images are read once per process). Throws unless the init's lines appear and the guest
 * powers off with SRST reason 0. onConsole(text, machine) receives the console as it comes;
 * wasm (Kvm.open's) names another release build, e.g. one with names for a profile.
 */
export async function bootLinux({ onConsole, jit, wasm, cmdline = LINUX_CMDLINE } = {}) {
  images ??= { kernel: file("Image"), initrd: file("initramfs.cpio") };
  // The clock starts before the core is opened: QEMU's starts with its process.
  const t0 = performance.now();
  const kvm = await Kvm.open({ core: "release", ...(jit === undefined ? {} : { jit }), ...(wasm === undefined ? {} : { wasm }) });
  let firstLineMs = null;
  const m = await Machine.create({ kvm, memSize: MEM, dirtyLog: true, onConsole: (text) => {
    onConsole?.(text, m);
    if (firstLineMs === null && text.includes("\n") && m.output.includes(INIT_FIRST_LINE_PREFIX)) firstLineMs = performance.now() - t0;
  } });
  m.loadLinux({ ...images, cmdline });
  const stat = (k) => kvm.core.mmuStat(MMU_STAT[k]);
  const before = Object.fromEntries(Object.keys(MMU_STAT).map((k) => [k, stat(k)]));
  const setupMs = performance.now() - t0;
  const r = m.run({ maxInstructions: 2_000_000_000n });
  const powerOffMs = performance.now() - t0;
  const out = m.output.replace(/\r\n/g, "\n");
  if (r.stop !== "shutdown" || r.reason !== 0 || firstLineMs === null || !out.includes(initResult ??= initResultLine())) {
    throw new Error(`Linux boot failed: ${r.stop} (reason ${r.reason}); console:\n${out.slice(-2000)}`);
  }
  const mmu = Object.fromEntries(Object.keys(MMU_STAT).map((k) => [k, stat(k) - before[k]]));
  const counts = {
    instructions: Number(r.instructions),
    exits: r.exits,
    pageFaults: mmu.FAULTS,
    faultRetries: mmu.FAULT_RETRIES,
    // Present sptes on the RAM slot's rmap at power-off.
    sptesLive: kvm.core.slotRmapCount(m.vm.fd, 0x80000n),
    sptesZapped: mmu.SPTES_ZAPPED,
    zapAll: mmu.ZAP_ALL,
    slotZaps: mmu.SLOT_ZAPS,
    flushes: mmu.FLUSHES,
    remoteFlushes: mmu.REMOTE_FLUSHES,
    mmioSpteInstalls: mmu.MMIO_SPTE_INSTALLS,
    mmioSpteHits: mmu.MMIO_SPTE_HITS,
    memslotLookups: Number(m.vcpus.reduce((n, v) => n + v.memslotLookups.lookups, 0n)),
    memslotCacheHits: Number(m.vcpus.reduce((n, v) => n + v.memslotLookups.cacheHits, 0n)),
    dirtyPages: popcount(m.vm.getDirtyLog(0)),
    ramPages: Number(MEM >> 12n),
    hostFramesInUse: kvm.memory.framesInUse,
  };
  const output = m.output;
  m.close();
  return { setupMs, firstLineMs, powerOffMs, counts, output };
}
