// The `webkvm` command.

import { readFile } from "node:fs/promises";
import { runScript } from "../conformance/index.js";
import { Kvm } from "../kvm.js";
import { Machine } from "../vmm/machine.js";
import { parseCount, parseSize } from "./args.js";
import { report, runSliced, timed } from "./console-run.js";
import { restoreCommand, snapshotWriter } from "./snapshot.js";
import { MIGRATE_FLAGS_USAGE, MIGRATION_RING_BYTES, PRECOPY_SLICE, incomingCommand, runAndMigrate,
  takeMigrateFlags } from "./migration.js";

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
  run IMAGE ... --migrate-to HOST:PORT [--migrate-after N] [--migrate-mode bitmap|ring|postcopy] [--downtime-ms N]
                  run, then move the running guest to webkvm incoming (live migration over TCP)
  incoming --listen [HOST:]PORT [--mem SIZE] [--max-instructions N]
                  receive one migrated guest and run it on to its end, console and exit status as run
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
       webkvm run (IMAGE | --kernel Image) ... --migrate-to HOST:PORT [--migrate-after N] [--migrate-mode bitmap|ring|postcopy] [--downtime-ms N]
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
                          so a restored guest continues exactly as this run would); a line on stderr for each
${MIGRATE_FLAGS_USAGE}`;

async function runCommand(argv: string[]): Promise<number> {
  if (argv.includes("--help")) { process.stdout.write(RUN_USAGE + "\n"); return 0; }
  const usage = () => { process.stderr.write(RUN_USAGE + "\n"); return 2; };
  const args = [...argv];
  const migration = takeMigrateFlags(args);
  if (migration === "usage") return usage();
  let image: string | undefined, mem: bigint | undefined = 64n << 20n, dirtyLog = false, arg: bigint | undefined = 0n;
  let max: bigint | undefined, kernel: string | undefined, initrd: string | undefined, append = DEFAULT_APPEND, vcpus = 1;
  let snapshotFile: string | undefined, every: bigint | undefined, bad = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--mem") mem = parseSize(args[++i]);
    else if (a === "--kernel" && args[i + 1] !== undefined) kernel = args[++i];
    else if (a === "--initrd" && args[i + 1] !== undefined) initrd = args[++i];
    else if (a === "--append" && args[i + 1] !== undefined) append = args[++i];
    else if (a === "--vcpus") vcpus = Number(args[++i] ?? "x");
    else if (a === "--dirty-log") dirtyLog = true;
    else if (a === "--arg") arg = parseCount(args[++i]);
    else if (a === "--max-instructions") bad ||= (max = parseCount(args[++i])) === undefined;
    else if (a === "--snapshot" && args[i + 1] !== undefined) snapshotFile = args[++i];
    else if (a === "--snapshot-every") bad ||= (every = parseCount(args[++i])) === undefined;
    else if (a.startsWith("-") || image !== undefined) return usage();
    else image = a;
  }
  const linux = kernel !== undefined;
  if (bad || mem === undefined || arg === undefined || (image === undefined) === !linux || (!linux && initrd !== undefined)
      || !Number.isSafeInteger(vcpus) || vcpus < 1 || (snapshotFile === undefined) !== (every === undefined) || every === 0n
      // One guest either stays (snapshots) or moves; a ring nobody harvests before the migration would stop it.
      || (migration && (snapshotFile !== undefined || (migration.mode === "ring" && dirtyLog)))) {
    return usage();
  }
  let bytes: Uint8Array, initrdBytes: Uint8Array | undefined;
  try {
    bytes = new Uint8Array(await readFile((kernel ?? image) as string));
    if (initrd !== undefined) initrdBytes = new Uint8Array(await readFile(initrd));
  } catch (e) {
    process.stderr.write(`webkvm: ${(e as Error).message}\n`);
    return 1;
  }
  // With snapshots or a migration, a KVM_RUN returns at least every N instructions, so they come close to every N
  // (and pre-copy's slices end when they should).
  const period = every ?? (migration ? (migration.after > 0n && migration.after < PRECOPY_SLICE ? migration.after : PRECOPY_SLICE) : undefined);
  const turn = period === undefined ? undefined : Number(period < 10_000_000n ? period : 10_000_000n);
  const m = await Machine.create({ memSize: mem, dirtyLog, vcpus, turn, onConsole: (t) => process.stdout.write(t),
    dirtyRing: migration?.mode === "ring" ? MIGRATION_RING_BYTES : undefined });
  try {
    if (linux) m.loadLinux({ kernel: bytes, initrd: initrdBytes, cmdline: append });
    else m.load(bytes, arg);
  } catch (e) {
    process.stderr.write(`webkvm: ${(e as Error).message}\n`);
    return 1;
  }
  if (process.stderr.isTTY) process.stderr.write(`webkvm: booting ${kernel ?? image} with ${mem >> 20n} MiB\n`);
  if (migration) return runAndMigrate(m, migration, max, linux);
  const snapshots = snapshotFile === undefined ? undefined : { every: every as bigint, take: snapshotWriter(m, snapshotFile) };
  return report(linux || snapshots ? await runSliced(m, max, linux, snapshots) : timed(() => m.run({ maxInstructions: max })));
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
  if (cmd === "incoming") return incomingCommand(rest);
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
