// npm run bench [-- --quick]: benny suites with ratios measured in the same run.
// Runs the release core from dist/ (npm run build first; npm install does it).
import b from "benny";
import { writeFileSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { lookupSuite } from "./lookup.js";
import { guestSuite } from "./guest.js";
import { dirtySuite } from "./dirty.js";

const quick = process.argv.includes("--quick");
const options = quick ? { minSamples: 2, maxTime: 0.05, delay: 0 } : { minSamples: 10, maxTime: 1.5 };
const sizes = quick ? [1, 64, 4096] : [1, 8, 64, 512, 4096, 32764];

const report = { date: new Date().toISOString(), quick, node: process.version, suites: [] };
report.suites.push(await lookupSuite(b, sizes, options));
report.suites.push(await guestSuite(b, options, quick));
report.suites.push(await dirtySuite(b, options, quick));

const dir = fileURLToPath(new URL("./results/", import.meta.url));
mkdirSync(dir, { recursive: true });
writeFileSync(dir + (quick ? "quick.json" : "latest.json"), JSON.stringify(report, null, 2) + "\n");
console.log(`\nwrote bench/results/${quick ? "quick" : "latest"}.json`);
