// QEMU TCG as a live baseline: the reference workload built for QEMU's virt
// machine (guests/mips-qemu: guests/mips's main.c and kernel.c with an M-mode
// start, run with -bios none; the iteration count goes in by QEMU's generic
// loader, the checksum comes out on the virt UART, the SiFive test device
// ends the run). The Linux boot's QEMU baseline is guests/linux/qemu-boot.sh
// (bench/linux.js).
//
// By hand: qemu-system-riscv64 -M virt -bios none -m 128M -smp 1 -nographic -monitor none \
//   -kernel guests/mips-qemu/mips-qemu.elf -device loader,addr=0x80200000,data=40000000,data-len=8
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const QEMU = process.env.QEMU || "qemu-system-riscv64";
const IMAGE = fileURLToPath(new URL("../guests/mips-qemu/mips-qemu.elf", import.meta.url));
/** Where guests/mips-qemu/start.S reads its iteration count (past the image; RAM reads 0 without the loader). */
const ARG_ADDR = "0x80200000";

/** QEMU's version line, or { skipped } with the reason. */
export function findQemu() {
  const r = spawnSync(QEMU, ["--version"], { encoding: "utf8" });
  if (r.error || r.status !== 0) {
    return { skipped: `${QEMU} not found (apt-get install -y qemu-system-misc)` };
  }
  return { version: /version (\S+)/.exec(r.stdout)?.[1] ?? "?" };
}

/**
 * One run of guests/mips-qemu for `iters` iterations: the wall time from
 * spawning QEMU to its exit (start-up included; the caller subtracts it) and
 * the guest's output line.
 */
export function qemuMipsRun(iters) {
  const args = ["-M", "virt", "-bios", "none", "-m", "128M", "-smp", "1", "-nographic", "-monitor", "none",
    "-kernel", IMAGE, "-device", `loader,addr=${ARG_ADDR},data=${iters},data-len=8`];
  const t0 = process.hrtime.bigint();
  const r = spawnSync(QEMU, args, { encoding: "utf8", timeout: 600_000, stdio: ["ignore", "pipe", "pipe"] });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.error || r.status !== 0) {
    throw new Error(`${QEMU} ${args.join(" ")}: ${r.error?.code ?? `exit ${r.status}`}\n${r.stdout}${r.stderr}`);
  }
  return { secs, output: r.stdout.replace(/\r/g, "").trim() };
}
