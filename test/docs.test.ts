// The API reference is generated from the types (typedoc): it must build with no errors
// and document every type the public API refers to.
import { it, expect } from "vitest";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

it("typedoc builds the API reference from src/index.ts without errors or dangling types", () => {
  const root = fileURLToPath(new URL("..", import.meta.url));
  const r = spawnSync(process.execPath, ["node_modules/typedoc/bin/typedoc", "--tsconfig", "tsconfig.json",
    "--emit", "none", "--disableGit", "--sourceLinkTemplate", "src/{path}#L{line}", "src/index.ts"],
    { cwd: root, encoding: "utf8", timeout: 120_000 });
  const out = r.stdout + r.stderr;
  expect(out).not.toMatch(/\[(warning|error)\]/); // typedoc is silent when all is well
  expect(r.status).toBe(0);
}, 120_000);
