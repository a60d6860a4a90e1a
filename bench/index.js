// npm run bench [-- --quick] [-- --png]: benny suites with ratios against
// baselines measured in the same run (native C, the real kernel via /dev/kvm).
// Runs the release core from dist/ (npm run build first; npm install does it);
// the suites that drive the test surface (the CPU harness, the batched lookup
// loop) load build/bench.wasm, the same optimized code with those exports.
// Writes bench/results/latest.json + latest.html (quick: quick.json + quick.html),
// keeping the run it replaces as previous.json (quick-previous.json) and showing it beside;
// --png also screenshots the page with headless chromium (not committed).
import b from "benny";
import { writeFileSync, mkdirSync, readFileSync, existsSync, renameSync } from "node:fs";
import { cpus, release } from "node:os";
import { fileURLToPath } from "node:url";
import { lookupSuite } from "./lookup.js";
import { churnSuite } from "./churn.js";
import { churnVcpusSuite } from "./churn-vcpus.js";
import { guestSuite } from "./guest.js";
import { dirtySuite } from "./dirty.js";
import { conformanceSuite } from "./conformance.js";
import { linuxSuite, mipsLinuxSuite } from "./linux.js";
import { snapshotSuite } from "./snapshot.js";
import { migrationSuite } from "./migration.js";
import { footprintSuite } from "./footprint.js";
import { figures, withPrevious, previousOf, printTable, renderHtml, renderPng } from "./report.js";

const quick = process.argv.includes("--quick");
// --only SUITE (lookup, churn, guest, dirty, conformance, linux, snapshot, migration, footprint): run one suite and print it; no report is written.
const onlyAt = process.argv.indexOf("--only");
const only = onlyAt >= 0 ? process.argv[onlyAt + 1] : null;
const SUITES = ["lookup", "churn", "guest", "dirty", "conformance", "linux", "snapshot", "migration", "footprint"];
if (only !== null && !SUITES.includes(only)) {
  console.error(`--only takes ${SUITES.slice(0, -1).join(", ")} or ${SUITES[SUITES.length - 1]}, not ${only}`);
  process.exit(2);
}
const options = quick ? { minSamples: 2, maxTime: 0.05, delay: 0 } : { minSamples: 10, maxTime: 1.5 };
const sizes = quick ? [1, 64, 4096] : [1, 8, 64, 512, 4096, 32764];
const started = Date.now();

function cpuModel() {
  try {
    return /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))[1];
  } catch {
    return cpus()[0]?.model ?? "?";
  }
}

const report = { date: new Date().toISOString(), quick, node: process.version,
  machine: `${cpuModel()}, ${cpus().length} cpus, Linux ${release()}`, suites: [] };
async function timed(run) {
  const t0 = Date.now();
  const suite = await run();
  suite.seconds = (Date.now() - t0) / 1000;
  report.suites.push(suite);
}
const want = (name) => only === null || only === name;
if (want("lookup")) await timed(() => lookupSuite(b, sizes, options, quick));
if (want("churn")) {
  await timed(() => churnSuite(quick));
  await timed(() => churnVcpusSuite(quick));
}
if (want("guest")) await timed(() => guestSuite(b, options, quick));
if (want("dirty")) await timed(() => dirtySuite(b, options, quick));
if (want("conformance")) await timed(() => conformanceSuite(b, options, quick));
if (want("migration")) await timed(() => migrationSuite(quick));
if (want("linux")) {
  await timed(() => linuxSuite(quick));
  await timed(() => mipsLinuxSuite(quick));
}
if (want("snapshot")) await timed(() => snapshotSuite(quick));
if (want("footprint")) await timed(() => footprintSuite(quick));
report.seconds = (Date.now() - started) / 1000;
const dir = fileURLToPath(new URL("./results/", import.meta.url));
const name = quick ? "quick" : "latest";
const file = `${dir}${name}.json`;
// The run this one replaces: kept as previous.json (quick: quick-previous.json) and shown beside it.
const previous = only === null && existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : null;
const figs = withPrevious(figures(report), previous);
report.figures = figs;
printTable(figs);

if (only !== null) process.exit(0);
mkdirSync(dir, { recursive: true });
if (previous) renameSync(file, previousOf(file));
writeFileSync(file, JSON.stringify(report, null, 2) + "\n");
writeFileSync(`${dir}${name}.html`, renderHtml(report, figs, previous));
console.log(`\nwrote bench/results/${name}.json and ${name}.html (${report.seconds.toFixed(1)} s)`);
if (process.argv.includes("--png")) {
  const p = renderPng(`${dir}${name}.html`, `${dir}${name}.png`);
  console.log(p.path ? `wrote bench/results/${name}.png` : `PNG skipped: ${p.skipped}`);
}
