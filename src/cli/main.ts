// The `webkvm` command.

import { readFile, writeFile } from "node:fs/promises";
import { runScript } from "../conformance/index.js";
import { Kvm } from "../kvm.js";
import { Machine, type RunResult } from "../vmm/machine.js";
import { Snapshotter, restoreSnapshot, type SnapshotProgress } from "../migration/snapshot.js";
import { describeSnapshot, splitSnapshots } from "../migration/snapshot-file.js";

const USAGE = `usage: webkvm <command> [args]

commands:
  run IMAGE [--mem SIZE] [--dirty-log] [--arg N] [--max-instructions N] [--snapshot FILE --snapshot-every N]
                  boot a RISC-V guest (flat image at 0x80000000, or ELF); UART to stdout.
                  --snapshot-every N: a snapshot every N guest instructions, FILE.0 full, FILE.1... incremental
  run --kernel Image [--initrd FILE] [--append ARGS] [--mem SIZE] [--vcpus N]
                  boot Linux (an Image or vmlinux) with a generated device tree; console to stdout,
                  stdin to the guest (the UART, console=ttyS0, and the SBI console, console=hvc0).
                  Exit status: the guest's SRST reason (0 success, 1 failure), 3 if it
                  stopped any other way (halt, memory fault, limit).
  linux [--append ARGS] [--mem SIZE] [--vcpus N] [--dirty-log] [--max-instructions N]
                  boot the bundled Linux (guests/linux: Image + initramfs.cpio) as run --kernel
                  does; a source checkout (the GPL-2.0 guest images are not in the package)
  restore FILE... [--max-instructions N] [--info]
                  continue a guest from a snapshot chain (FILE.0 FILE.1 ...) in a fresh VM, console as run;
                  --info lists each snapshot's header and sections instead
  script FILE     run a conformance script (conformance/README.md), one result line per op
  bench [--quick] run the benchmarks (a source checkout: bench/ is not in the published package)
  help            this text       (every command takes --help)

exit status: 0 on success, 1 when the command failed, 2 on a usage error`;

const DEFAULT_APPEND = "earlycon=sbi console=hvc0";

const RUN_USAGE = `usage: webkvm run IMAGE [--mem SIZE] [--dirty-log] [--arg N] [--max-instructions N] [--snapshot FILE --snapshot-every N]
       webkvm run --kernel Image [--initrd FILE] [--append ARGS] [--vcpus N] [--mem SIZE] [--dirty-log] [--max-instructions N]
  --kernel FILE           a Linux kernel (RISC-V Image or ELF vmlinux) at RAM + 2 MiB, a device tree in a1
  --initrd FILE           an initramfs, placed high in RAM (/chosen linux,initrd-start/end)
  --append ARGS           the kernel command line (default "${DEFAULT_APPEND}")
  --vcpus N               harts (default 1; the kernel starts the others through SBI HSM)
  --mem SIZE              guest RAM, bytes or with K/M/G suffix (default 64M)
  --dirty-log             log dirty pages of the RAM slot
  --arg N                 value of a1 at entry (guest-specific: memtest size, mips iterations)
  --max-instructions N    stop after N instructions
  --snapshot FILE         with --snapshot-every: where snapshots go, FILE.0 (full), FILE.1, FILE.2... (incremental:
                          the whole state and only the pages written since the one before)
  --snapshot-every N      a snapshot every N guest instructions (instructions, not time: guest time counts them,
                          so a restored guest continues exactly as this run would); a line on stderr for each`;

function parseSize(s: string): bigint {
  const m = /^(\d+)([KMG]?)$/i.exec(s);
  if (!m) throw new RangeError(`bad size ${s}`);
  const mult = { "": 1n, K: 1n << 10n, M: 1n << 20n, G: 1n << 30n }[m[2].toUpperCase() as "" | "K" | "M" | "G"];
  return BigInt(m[1]) * mult;
}

async function runCommand(args: string[]): Promise<number> {
  if (args.includes("--help")) { process.stdout.write(RUN_USAGE + "\n"); return 0; }
  let image: string | undefined, mem = 64n << 20n, dirtyLog = false, arg = 0n, max: bigint | undefined;
  let kernel: string | undefined, initrd: string | undefined, append = DEFAULT_APPEND, vcpus = 1;
  let snapshotFile: string | undefined, every: bigint | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--mem") mem = parseSize(args[++i] ?? "");
    else if (a === "--kernel" && args[i + 1] !== undefined) kernel = args[++i];
    else if (a === "--initrd" && args[i + 1] !== undefined) initrd = args[++i];
    else if (a === "--append" && args[i + 1] !== undefined) append = args[++i];
    else if (a === "--vcpus") vcpus = Number(args[++i] ?? "x");
    else if (a === "--dirty-log") dirtyLog = true;
    else if (a === "--arg") arg = BigInt(args[++i] ?? "x");
    else if (a === "--max-instructions") max = BigInt(args[++i] ?? "x");
    else if (a === "--snapshot" && args[i + 1] !== undefined) snapshotFile = args[++i];
    else if (a === "--snapshot-every") every = BigInt(args[++i] ?? "x");
    else if (a.startsWith("-") || image !== undefined) { process.stderr.write(RUN_USAGE + "\n"); return 2; }
    else image = a;
  }
  const linux = kernel !== undefined;
  if ((image === undefined) === !linux || (!linux && initrd !== undefined) || !Number.isSafeInteger(vcpus) || vcpus < 1
      || (snapshotFile === undefined) !== (every === undefined) || (every !== undefined && every <= 0n)) {
    process.stderr.write(RUN_USAGE + "\n");
    return 2;
  }
  let bytes: Uint8Array, initrdBytes: Uint8Array | undefined;
  try {
    bytes = new Uint8Array(await readFile((kernel ?? image) as string));
    if (initrd !== undefined) initrdBytes = new Uint8Array(await readFile(initrd));
  } catch (e) {
    process.stderr.write(`webkvm: ${(e as Error).message}\n`);
    return 1;
  }
  // With snapshots, a KVM_RUN returns at least every N instructions, so they come close to every N.
  const turn = every === undefined ? undefined : Number(every < 10_000_000n ? every : 10_000_000n);
  const m = await Machine.create({ memSize: mem, dirtyLog, vcpus, turn, onConsole: (t) => process.stdout.write(t) });
  try {
    if (linux) m.loadLinux({ kernel: bytes, initrd: initrdBytes, cmdline: append });
    else m.load(bytes, arg);
  } catch (e) {
    process.stderr.write(`webkvm: ${(e as Error).message}\n`);
    return 1;
  }
  if (process.stderr.isTTY) process.stderr.write(`webkvm: booting ${kernel ?? image} with ${mem >> 20n} MiB\n`);
  const snapshots = snapshotFile === undefined ? undefined : { every: every as bigint, take: snapshotWriter(m, snapshotFile) };
  return report(linux || snapshots ? await runSliced(m, max, linux, snapshots) : timed(() => m.run({ maxInstructions: max })));
}

function timed(fn: () => RunResult): RunResult & { secs: number } {
  const t0 = performance.now();
  const r = fn();
  return { ...r, secs: (performance.now() - t0) / 1000 };
}

/** Prints a run's outcome on stderr; the exit status (the SRST reason for shutdown and reboot, else 3). */
function report(r: RunResult & { secs: number }): number {
  const secs = r.secs;
  process.stderr.write(`webkvm: ${r.stop}${r.stop === "shutdown" || r.stop === "reboot" ? ` (reason ${r.reason})` : ""}` +
    `, ${r.instructions} instructions in ${secs.toFixed(3)} s (${(Number(r.instructions) / secs / 1e6).toFixed(0)} MIPS), ${r.exits} exits\n`);
  if (r.stop === "shutdown" || r.stop === "reboot") return r.reason === 0 ? 0 : 1;
  return 3;
}

/** Instructions per run() slice while stdin is forwarded: between slices the event loop delivers typed bytes. */
const INPUT_SLICE = 5_000_000n;

/** A progress line on stderr while a snapshot is written or restored, for a TTY (cleared when done). */
function progressLine(what: string): (p: SnapshotProgress) => void {
  let shown = 0;
  return (p) => {
    if (!process.stderr.isTTY) return;
    if (p.phase === "done") { process.stderr.write("\r\x1b[K"); return; }
    const now = performance.now();
    if (now - shown < 100) return;
    shown = now;
    process.stderr.write(`\r\x1b[Kwebkvm: ${what}: ${p.phase} ${p.pages}/${p.totalPages} pages, ${kib(p.bytes)} KiB`);
  };
}

const kib = (bytes: number) => (bytes / 1024).toFixed(0);

/** Takes the machine's next snapshot of the chain into FILE.n, with a line on stderr. */
function snapshotWriter(m: Machine, file: string): () => Promise<void> {
  let progress = progressLine(file);
  const snapshots = new Snapshotter(m, { onProgress: (p) => progress(p) });
  return async () => {
    const name = `${file}.${snapshots.taken}`;
    progress = progressLine(name);
    const t0 = performance.now();
    const bytes = snapshots.take();
    await writeFile(name, bytes);
    const d = describeSnapshot(bytes);
    process.stderr.write(`webkvm: snapshot ${name} (${d.incremental ? "incremental" : "full"}): ${d.dataPages} pages` +
      `${d.zeroPages ? ` + ${d.zeroPages} zero` : ""}, ${kib(bytes.length)} KiB in ${(performance.now() - t0).toFixed(0)} ms\n`);
  };
}

/**
 * Machine.run in slices: with input, stdin forwarded to the guest's consoles
 * between them (to the UART, its receive interrupt, console=ttyS0, and to the
 * SBI console, getchar / DBCN read, console=hvc0); with snapshots, one taken
 * every `every` instructions. Totals as one run() reports them (secs: running
 * time, snapshots not counted).
 */
async function runSliced(m: Machine, max: bigint | undefined, input: boolean,
                         snapshots?: { every: bigint; take: () => Promise<void> }): Promise<RunResult & { secs: number }> {
  const onData = (b: Buffer) => { m.uart.feed(b); m.feedConsole(b); };
  if (input) process.stdin.on("data", onData);
  let instructions = 0n, exits = 0, sinceSnapshot = 0n, secs = 0;
  try {
    for (;;) {
      let slice = input ? INPUT_SLICE : 1n << 62n;
      if (snapshots && snapshots.every - sinceSnapshot < slice) slice = snapshots.every - sinceSnapshot;
      if (max !== undefined && max - instructions < slice) slice = max - instructions;
      const r = timed(() => m.run({ maxInstructions: slice }));
      secs += r.secs;
      instructions += r.instructions;
      sinceSnapshot += r.instructions;
      exits += r.exits;
      if (r.stop !== "limit" || (max !== undefined && instructions >= max)) return { ...r, instructions, exits, secs };
      if (snapshots && sinceSnapshot >= snapshots.every) {
        await snapshots.take();
        sinceSnapshot = 0n;
      }
      if (input) await new Promise((done) => setImmediate(done));
    }
  } finally {
    if (input) {
      process.stdin.off("data", onData);
      process.stdin.pause();
      process.stdin.unref?.();
    }
  }
}

const RESTORE_USAGE = `usage: webkvm restore FILE... [--max-instructions N] [--info]
  Restores a snapshot chain into a fresh VM and continues the guest as run does: console to stdout, stdin to the
  guest's consoles, the same exit status. FILE...: the full snapshot, then its incrementals in order (FILE.0 FILE.1
  ... as run --snapshot wrote them), or files holding several one after another. The whole chain is checked first:
  a truncated, damaged or mismatched snapshot is refused naming it and its header or section (status 1).
  --max-instructions N    stop after N instructions
  --info                  list each snapshot's header, sections and pages instead`;

async function restoreCommand(args: string[]): Promise<number> {
  if (args.includes("--help")) { process.stdout.write(RESTORE_USAGE + "\n"); return 0; }
  const files: string[] = [];
  let max: bigint | undefined, info = false;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--max-instructions") max = BigInt(args[++i] ?? "x");
    else if (args[i] === "--info") info = true;
    else if (args[i].startsWith("-")) { process.stderr.write(RESTORE_USAGE + "\n"); return 2; }
    else files.push(args[i]);
  }
  if (files.length === 0) { process.stderr.write(RESTORE_USAGE + "\n"); return 2; }
  let m: Machine;
  try {
    const chain = (await Promise.all(files.map((f) => readFile(f)))).flatMap((b) => splitSnapshots(new Uint8Array(b)));
    if (info) {
      chain.forEach((bytes, i) => {
        const d = describeSnapshot(bytes);
        process.stdout.write(`snapshot ${i}: ${d.incremental ? `incremental ${d.sequence}` : "full"}, id 0x${d.id.toString(16)}` +
          `${d.incremental ? `, parent 0x${d.parent.toString(16)}` : ""}, ${d.totalBytes} bytes, ${d.dataPages} pages` +
          ` + ${d.zeroPages} zero\n` + d.sectionList.map((s) => `  ${s.name} v${s.version}: ${s.bytes} bytes\n`).join(""));
      });
      return 0;
    }
    m = await restoreSnapshot(chain, { onConsole: (t) => process.stdout.write(t), onProgress: progressLine("restore") });
  } catch (e) {
    process.stderr.write(`webkvm: ${(e as Error).message}\n`);
    return 1;
  }
  return report(await runSliced(m, max, true));
}

const BENCH_USAGE = `usage: webkvm bench [--quick]
  Runs bench/index.js of a source checkout: every figure with its baseline measured in the same run,
  written to bench/results/latest.{json,html} (--quick: a few seconds, bench/results/quick.json).`;

async function benchCommand(args: string[]): Promise<number> {
  if (args.includes("--help")) { process.stdout.write(BENCH_USAGE + "\n"); return 0; }
  if (args.some((a) => a !== "--quick")) { process.stderr.write(BENCH_USAGE + "\n"); return 2; }
  const { existsSync } = await import("node:fs");
  const { spawnSync } = await import("node:child_process");
  const entry = new URL("../../bench/index.js", import.meta.url);
  if (!existsSync(entry)) {
    process.stderr.write("webkvm: the benchmarks are not part of this installation (use a source checkout)\n");
    return 1;
  }
  process.stderr.write(`webkvm: running ${args.includes("--quick") ? "the quick " : ""}benchmarks...\n`);
  const r = spawnSync(process.execPath, [entry.pathname, ...args], { stdio: "inherit" });
  return r.status === 0 ? 0 : 1;
}

const LINUX_USAGE = `usage: webkvm linux [--append ARGS] [--mem SIZE] [--vcpus N] [--dirty-log] [--max-instructions N]
  Boots guests/linux/Image with guests/linux/initramfs.cpio (webkvm run --kernel ... --initrd ...; same options
  and exit status). Needs a source checkout: the guest images (GPL-2.0, with their source notes) are not in the
  published package.`;

async function linuxCommand(args: string[]): Promise<number> {
  if (args.includes("--help")) { process.stdout.write(LINUX_USAGE + "\n"); return 0; }
  if (args.some((a) => a === "--kernel" || a === "--initrd" || a === "--arg")) { process.stderr.write(LINUX_USAGE + "\n"); return 2; }
  const { existsSync } = await import("node:fs");
  const { fileURLToPath } = await import("node:url");
  const kernel = fileURLToPath(new URL("../../guests/linux/Image", import.meta.url));
  const initrd = fileURLToPath(new URL("../../guests/linux/initramfs.cpio", import.meta.url));
  if (!existsSync(kernel) || !existsSync(initrd)) {
    process.stderr.write("webkvm: the bundled Linux is not part of this installation (use a source checkout, " +
      "or webkvm run --kernel Image --initrd FILE)\n");
    return 1;
  }
  return runCommand(["--kernel", kernel, "--initrd", initrd, ...args]);
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === "help" || cmd === "--help" || cmd === "-h") {
    process.stdout.write(USAGE + "\n");
    return cmd === undefined ? 2 : 0;
  }
  if (cmd === "run") return runCommand(rest);
  if (cmd === "bench") return benchCommand(rest);
  if (cmd === "linux") return linuxCommand(rest);
  if (cmd === "restore") return restoreCommand(rest);
  if (cmd === "script") {
    if (rest.includes("--help")) {
      process.stdout.write("usage: webkvm script [--debug-core] FILE\n  runs a conformance script (language: conformance/README.md;" +
        " goldens: conformance/golden), one result line per operation\n");
      return 0;
    }
    const debug = rest.includes("--debug-core");
    const files = rest.filter((a) => a !== "--debug-core");
    if (files.length !== 1) { process.stderr.write("usage: webkvm script [--debug-core] FILE\n"); return 2; }
    let text: string;
    try {
      text = await readFile(files[0], "utf8");
    } catch (e) {
      process.stderr.write(`webkvm: ${(e as Error).message}\n`);
      return 1;
    }
    const kvm = await Kvm.open({ core: debug ? "debug" : "release" });
    const lines = await runScript(text, kvm);
    process.stdout.write(lines.map((l) => l + "\n").join(""));
    return 0;
  }
  process.stderr.write(`webkvm: unknown command ${cmd}\n${USAGE}\n`);
  return 2;
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (e) => {
  process.stderr.write(`webkvm: ${(e as Error).stack ?? e}\n`);
  process.exitCode = 1;
});
