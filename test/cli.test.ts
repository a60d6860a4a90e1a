// The `webkvm` command: exit codes scripts can rely on, help for each command.
import { describe, it, expect } from "vitest";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const bin = fileURLToPath(new URL("../bin/webkvm.js", import.meta.url));
const root = fileURLToPath(new URL("..", import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: "utf8" });

describe("webkvm CLI", () => {
  it("run boots a guest, prints its UART and exits with the guest's SRST reason", () => {
    const r = run("run", "guests/hello/hello.bin", "--mem", "16M");
    expect(r.stdout).toBe("Hello from webkvm!\n");
    expect(r.stderr).toMatch(/shutdown \(reason 0\)/);
    expect(r.status).toBe(0);
  });

  it("run --max-instructions stops a guest early (status 3)", () => {
    const r = run("run", "guests/mips/mips.bin", "--max-instructions", "1000");
    expect(r.stderr).toMatch(/limit/);
    expect(r.status).toBe(3);
  });

  it("script prints one line per op", () => {
    const r = run("script", "conformance/golden/lifecycle.txt");
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split("\n").length).toBe(31);
  });

  it("usage errors are status 2, missing files status 1, --help status 0 for every command", () => {
    expect(run("frobnicate").status).toBe(2);
    expect(run("run").status).toBe(2);
    expect(run("run", "/nonexistent.bin").status).toBe(1);
    for (const c of ["run", "script", "bench"]) {
      const r = run(c, "--help");
      expect([c, r.status, r.stdout.startsWith(`usage: webkvm ${c}`)]).toEqual([c, 0, true]);
    }
    expect(run("--help").status).toBe(0);
  });
});
