// The conformance-script runner as a library: `webkvm script` (src/cli) is a
// shell over it, and the tests drive it line by line.

import { Kvm } from "../kvm.js";
import { ScriptRunner } from "./runner.js";

export { ScriptRunner } from "./runner.js";
export { listOf, runsList, ringListOf } from "./output.js";

/** Runs a script in a fresh runner (and a fresh instance unless one is given); one line per operation. */
export async function runScript(text: string, kvm?: Kvm): Promise<string[]> {
  const runner = new ScriptRunner(kvm ?? (await Kvm.open()));
  try {
    return runner.run(text);
  } finally {
    runner.close();
  }
}
