// Booting Linux: the bundled guest (guests/linux) on webkvm (release core,
// default translation tier) against QEMU TCG booting the same Image and
// initramfs (guests/linux/qemu-boot.sh: its own rv64ima SBI firmware, built
// from guests/linux/qemu-sbi with the cross compiler at each call), both in
// this run, alternating, best of N each: wall time to the init's first line and to
// power-off. The boot's memory-subsystem counts are figures without targets.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { bootLinux } from "../examples/linux-boot.js";

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
      `webkvm / QEMU: ${(w.firstLineMs / q.firstLineMs).toFixed(2)}x, ${(w.powerOffMs / q.powerOffMs).toFixed(2)}x (target <= 1x)`);
  }
  const times = (boots) => boots.map(({ firstLineMs, powerOffMs }) => ({ firstLineMs, powerOffMs }));
  return { name: "linux-boot", runs, webkvm: w, webkvmRuns: times(mine), qemuRuns: qemu.skipped ? [] : times(qemu.boots), qemu: q, qemuSkipped: qemu.skipped, counts, targetVsQemu: 1 };
}
