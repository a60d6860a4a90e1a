// Snapshots from the command line: `webkvm run --snapshot FILE --snapshot-every N`
// writes a chain (FILE.0 full, FILE.1... incremental), `webkvm restore`
// continues one in a fresh VM.

import { readFile, writeFile } from "node:fs/promises";
import type { Machine } from "../vmm/machine.js";
import { Snapshotter, restoreSnapshot, type SnapshotProgress } from "../migration/snapshot.js";
import { describeSnapshot, splitSnapshots } from "../migration/snapshot-file.js";
import { kib, progressLine } from "./progress-line.js";
import { parseCount } from "./args.js";
import { report, runSliced } from "./console-run.js";

/** The progress line of a snapshot written or restored. */
function snapshotProgress(what: string): (p: SnapshotProgress) => void {
  const line = progressLine();
  return (p) => {
    if (p.phase === "done") line.clear();
    else line.show(() => `${what}: ${p.phase} ${p.pages}/${p.totalPages} pages, ${kib(p.bytes)} KiB`);
  };
}

/** Takes the machine's next snapshot of the chain into FILE.n, with a line on stderr. */
export function snapshotWriter(m: Machine, file: string): () => Promise<void> {
  let progress = snapshotProgress(file);
  const snapshots = new Snapshotter(m, { onProgress: (p) => progress(p) });
  return async () => {
    const name = `${file}.${snapshots.taken}`;
    progress = snapshotProgress(name);
    const t0 = performance.now();
    const bytes = snapshots.take();
    await writeFile(name, bytes);
    const d = describeSnapshot(bytes);
    process.stderr.write(`webkvm: snapshot ${name} (${d.incremental ? "incremental" : "full"}): ${d.dataPages} pages` +
      `${d.zeroPages ? ` + ${d.zeroPages} zero` : ""}, ${kib(bytes.length)} KiB in ${(performance.now() - t0).toFixed(0)} ms\n`);
  };
}

export const RESTORE_USAGE = `usage: webkvm restore FILE... [--max-instructions N] [--info]
  Restores a snapshot chain into a fresh VM and continues the guest as run does: console to stdout, stdin to the
  guest's consoles, the same exit status. FILE...: the full snapshot, then its incrementals in order (FILE.0 FILE.1
  ... as run --snapshot wrote them), or files holding several one after another. The whole chain is checked first:
  a truncated, damaged or mismatched snapshot is refused naming it and its header or section (status 1).
  --max-instructions N    stop after N instructions
  --info                  list each snapshot's header, sections and pages instead`;

export async function restoreCommand(args: string[]): Promise<number> {
  if (args.includes("--help")) { process.stdout.write(RESTORE_USAGE + "\n"); return 0; }
  const files: string[] = [];
  let max: bigint | undefined, info = false, bad = false;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--max-instructions") bad ||= (max = parseCount(args[++i])) === undefined;
    else if (args[i] === "--info") info = true;
    else if (args[i].startsWith("-")) bad = true;
    else files.push(args[i]);
  }
  if (bad || files.length === 0) { process.stderr.write(RESTORE_USAGE + "\n"); return 2; }
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
    m = await restoreSnapshot(chain, { onConsole: (t) => process.stdout.write(t), onProgress: snapshotProgress("restore") });
  } catch (e) {
    process.stderr.write(`webkvm: ${(e as Error).message}\n`);
    return 1;
  }
  return report(await runSliced(m, max, true));
}
