// Booting Linux: the bundled guest (guests/linux) on webkvm (release core,
// default translation tier) against QEMU TCG booting the same Image and
// initramfs (guests/linux/qemu-boot.sh: its own rv64ima SBI firmware, built
// from guests/linux/qemu-sbi with the cross compiler at each call), both in
// this run, alternating, best of N each: wall time to the init's first line and to
// power-off. The boot's memory-subsystem counts are figures without targets.
// Then the reference workload (guests/mips's loop) as a user process of that
// Linux (guests/linux/userland/mips.c: timer ticks, a page table, TLB refills
// underneath) against the same loop bare-metal, both in this run.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { bootLinux } from "../examples/linux-boot.js";
import { mipsRun } from "./guest.js";

/** webkvm's boot times as a multiple of QEMU TCG's (issue 19: at most half). */
const LINUX_TARGET_VS_QEMU = 0.5;
const QEMU_BOOT = fileURLToPath(new URL("../guests/linux/qemu-boot.sh", import.meta.url));

/** Runs qemu-boot.sh for `runs` boots: each run's times, or { skipped } with the script's reason. */
function qemuBoots(runs) {
  const r = spawnSync("bash", [QEMU_BOOT, String(runs)], { encoding: "utf8", timeout: 120_000 * runs });
  const out = `${r.stdout ?? ""}${r.stderr ?? ""}`;
  const skipped = /skipped, (.*)/.exec(out);
  if (skipped) return { skipped: skipped[1] };
  if (r.status !== 0) throw new Error(`guests/linux/qemu-boot.sh failed (${r.status ?? r.signal}):\n${out}`);
  const boots = [...out.matchAll(/run \d+: first line ([\d.]+) s, power-off ([\d.]+) s: ok/g)]
    .map((m) => ({ firstLineMs: Number(m[1]) * 1000, powerOffMs: Number(m[2]) * 1000 }));
  if (boots.length !== runs) throw new Error(`guests/linux/qemu-boot.sh: ${boots.length} good runs of ${runs}:\n${out}`);
  return { boots, version: /^qemu-system-riscv64 (.*)$/m.exec(out)?.[1] ?? "?" };
}

const best = (boots, k) => Math.min(...boots.map((b) => b[k]));

const MIPS_START = "mips-start";
const START_LINE = new RegExp(`(^|\n)${MIPS_START}\n`);
const RESULT_LINE = /\nmips iters=\d+ checksum=0x[0-9a-f]{16}\n/;

/**
 * One boot whose shell prints MIPS_START and then runs `mips ITERS`: the
 * instructions the vCPU retired and the wall time from that line to mips's
 * result line (the process's exec, its run, the kernel's ticks meanwhile).
 */
async function mipsInLinux(iters) {
  let start = null, end = null;
  const boot = await bootLinux({
    cmdline: `earlycon=sbi console=hvc0 webkvm.run=echo,${MIPS_START};mips,${iters};poweroff`,
    onConsole: (text, m) => {
      if (end !== null || !text.includes("\n")) return; // both marks are line ends
      const out = m.output.replace(/\r/g, "");
      const mark = () => ({ at: performance.now(), instret: Number(m.vcpu.instret) });
      if (start === null && START_LINE.test(out)) start = mark();
      if (start !== null && RESULT_LINE.test(out)) end = mark();
    },
  });
  if (start === null || end === null) throw new Error(`mips in Linux: no start or result line:\n${boot.output.slice(-1500)}`);
  const line = /mips iters=\d+ checksum=0x[0-9a-f]{16}/.exec(boot.output)[0];
  const secs = (end.at - start.at) / 1000;
  return { instructions: end.instret - start.instret, secs, mips: (end.instret - start.instret) / secs / 1e6, line };
}

/** The reference workload in Linux and bare-metal (translation tier on), fastest of `runs` each, alternating. */
export async function mipsLinuxSuite(quick) {
  const iters = quick ? 200_000 : 20_000_000;
  const runs = quick ? 1 : 3;
  let inLinux = null, bare = null;
  for (let i = 0; i < runs; i++) {
    const l = await mipsInLinux(iters);
    if (!inLinux || l.secs < inLinux.secs) inLinux = l;
    const b = await mipsRun(iters, true);
    const mips = b.instructions / b.secs / 1e6;
    if (!bare || mips > bare.mips) bare = { ...b, mips };
  }
  if (inLinux.line !== bare.output) throw new Error(`mips in Linux and bare-metal disagree: ${inLinux.line} / ${bare.output}`);
  console.log(`\nreference workload (${iters} iterations, best of ${runs}): as a Linux user process ` +
    `${inLinux.mips.toFixed(0)} MIPS (${inLinux.instructions} instructions in ${inLinux.secs.toFixed(3)} s, kernel included), ` +
    `bare-metal ${bare.mips.toFixed(0)} MIPS: ${(inLinux.mips / bare.mips).toFixed(2)}x; ${inLinux.line}`);
  return { name: "mips-linux", iters, runs, linuxMips: inLinux.mips, bareMips: bare.mips, instructions: inLinux.instructions };
}

export async function linuxSuite(quick) {
  const runs = quick ? 1 : 5;
  // Alternating, one boot of each at a time, so a busy spell of the machine
  // falls on both sides alike; qemu-boot.sh builds its firmware before its clock starts.
  const mine = [], qemuBootsDone = [];
  let qemu = null;
  for (let i = 0; i < runs; i++) {
    mine.push(await bootLinux());
    if (qemu?.skipped) continue;
    qemu = qemuBoots(1);
    if (!qemu.skipped) qemuBootsDone.push(...qemu.boots);
  }
  if (!qemu.skipped) qemu.boots = qemuBootsDone;
  const w = { firstLineMs: best(mine, "firstLineMs"), powerOffMs: best(mine, "powerOffMs"), setupMs: best(mine, "setupMs") };
  const counts = mine[mine.length - 1].counts;
  console.log(`\nLinux boot (guests/linux, best of ${runs}): webkvm first line ${w.firstLineMs.toFixed(0)} ms, ` +
    `power-off ${w.powerOffMs.toFixed(0)} ms (of which opening the core, the machine and loading the images ` +
    `${w.setupMs.toFixed(0)} ms), ${counts.instructions} instructions`);
  const each = (boots) => boots.map((b) => `${b.firstLineMs.toFixed(0)}/${b.powerOffMs.toFixed(0)}`).join(" ");
  console.log(`  each run, first line / power-off ms: webkvm ${each(mine)}${qemu.skipped ? "" : `; QEMU ${each(qemu.boots)}`}`);
  let q = null;
  if (qemu.skipped) {
    console.log(`QEMU baseline skipped: ${qemu.skipped}`);
  } else {
    q = { firstLineMs: best(qemu.boots, "firstLineMs"), powerOffMs: best(qemu.boots, "powerOffMs"), version: qemu.version };
    console.log(`QEMU TCG (${q.version}): first line ${q.firstLineMs.toFixed(0)} ms, power-off ${q.powerOffMs.toFixed(0)} ms; ` +
      `webkvm / QEMU: ${(w.firstLineMs / q.firstLineMs).toFixed(2)}x, ${(w.powerOffMs / q.powerOffMs).toFixed(2)}x (target <= ${LINUX_TARGET_VS_QEMU}x)`);
  }
  const times = (boots) => boots.map(({ firstLineMs, powerOffMs }) => ({ firstLineMs, powerOffMs }));
  return { name: "linux-boot", runs, webkvm: w, webkvmRuns: times(mine), qemuRuns: qemu.skipped ? [] : times(qemu.boots), qemu: q, qemuSkipped: qemu.skipped, counts, targetVsQemu: LINUX_TARGET_VS_QEMU };
}
