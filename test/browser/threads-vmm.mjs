// The VMM Web Worker of test/browser/threads.html: runs the scenario the page
// names (a driver of test/threads-scenarios/) and posts back { result } or { error }.
// The driver spawns each vCPU on a Web Worker of its own (threads-scenarios/spawn.mjs).
import { mmioRace, moveWhileRunning, modificationStress } from "../threads-scenarios/vcpus.mjs";
import { dirtyLogTest } from "../threads-scenarios/dirtylog.mjs";
import { xenShinfoRace } from "../threads-scenarios/pfncache.mjs";
import { twoAtOnce, terminatedMidRun } from "../threads-scenarios/vcpu-thread.mjs";

const bytes = async (path) => new Uint8Array(await (await fetch(new URL(path, import.meta.url))).arrayBuffer());

const SCENARIOS = {
  mmioRace, moveWhileRunning, modificationStress, xenShinfoRace, twoAtOnce, terminatedMidRun,
  dirtyLogTest: async (p) => dirtyLogTest({ ...p, image: await bytes("../../guests/dirtylog/dirtylog.bin") }),
};

self.addEventListener("message", async ({ data: { name, params } }) => {
  try {
    if (!(name in SCENARIOS)) throw new Error(`no scenario ${name}`);
    self.postMessage({ result: await SCENARIOS[name](params) });
  } catch (e) {
    self.postMessage({ error: String(e?.stack ?? e) });
  }
}, { once: true });
