// The `webkvm` command.

import { readFile } from "node:fs/promises";
import { runScript } from "./script.js";
import { Kvm } from "../kvm.js";

const USAGE = `usage: webkvm <command> [args]

commands:
  script FILE     run a conformance script (shared/conformance/README.md), one result line per op
  help            this text

exit status: 0 on success, 1 when the command failed, 2 on a usage error`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === "help" || cmd === "--help" || cmd === "-h") {
    process.stdout.write(USAGE + "\n");
    return cmd === undefined ? 2 : 0;
  }
  if (cmd === "script") {
    if (rest.includes("--help")) { process.stdout.write("usage: webkvm script [--debug-core] FILE\n"); return 0; }
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
