// The `webkvm` command: exit codes scripts can rely on, help for each command.
import { describe, it, expect } from "vitest";
import { spawn, spawnSync } from "node:child_process";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { mkdtempSync, writeFileSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as A from "./cpu/asm.js";
import { REG } from "./cpu/asm.js";
// @ts-expect-error: a plain ES module without types
import { initResultLine, INIT_FIRST_LINE_PREFIX } from "../guests/linux/reference.mjs";
import { progressLine } from "../src/cli/progress-line.js";
import { describeProgress } from "../src/cli/migration.js";

const bin = fileURLToPath(new URL("../bin/webkvm.js", import.meta.url));
const root = fileURLToPath(new URL("..", import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: "utf8" });

/**
 * A stand-in kernel: p's code behind a RISC-V Image header (text_offset 2 MiB,
 * magic2 "RSC\x05", code0 a jump over the header), in a temporary file.
 */
function standInImage(p: A.Program): string {
  const code = p.finish();
  const img = new Uint8Array(64 + code.byteLength), dv = new DataView(img.buffer);
  dv.setUint32(0, A.jal(0, 64), true);
  dv.setBigUint64(8, 0x200000n, true);
  dv.setUint32(56, 0x05435352, true);
  img.set(new Uint8Array(code.buffer), 64);
  const file = join(mkdtempSync(join(tmpdir(), "webkvm-cli-")), "Image");
  writeFileSync(file, img);
  return file;
}

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

  it("run --kernel boots a RISC-V Image with --append as /chosen/bootargs; a file that is not one is status 1", () => {
    // A stand-in kernel: legacy putchar "L", then SRST shutdown.
    const p = new A.Program(0x80200040n);
    p.li(REG.a7, 1).li(REG.a0, 0x4c).emit(A.ecall()).li(REG.a7, 0x53525354).li(REG.a6, 0).li(REG.a0, 0).li(REG.a1, 0).emit(A.ecall());
    const file = standInImage(p);
    const r = run("run", "--kernel", file, "--append", "console=hvc0", "--mem", "16M");
    expect([r.stdout, r.status]).toEqual(["L", 0]);
    const bad = run("run", "--kernel", "guests/hello/hello.bin");
    expect([bad.status, bad.stderr]).toEqual([1, expect.stringMatching(/not a RISC-V kernel Image/)]);
    expect(run("run", "guests/hello/hello.bin", "--initrd", file).status).toBe(2); // --initrd only with --kernel
    expect(run("run", "guests/hello/hello.bin", "--kernel", file).status).toBe(2); // one of IMAGE and --kernel
  });

  it("linux boots the bundled guests/linux to its init and exits with its SRST reason; it takes no --kernel / --initrd", () => {
    const r = run("linux", "--mem", "64M", "--append", "console=hvc0 webkvm.run=poweroff");
    expect(r.stdout.replace(/\r\n/g, "\n")).toContain(`${INIT_FIRST_LINE_PREFIX}6.1.192\n`);
    expect(r.stdout.replace(/\r\n/g, "\n")).toContain(initResultLine());
    expect([r.status, r.stderr]).toEqual([0, expect.stringMatching(/shutdown \(reason 0\)/)]);
    expect(run("linux", "--kernel", "guests/linux/Image").status).toBe(2);
    expect(run("linux", "--initrd", "guests/linux/initramfs.cpio").status).toBe(2);
  });

  it("linux with its default append boots to the shell on hvc0: a command typed on stdin runs, and poweroff ends the CLI with status 0", async () => {
    const child = spawn(process.execPath, [bin, "linux", "--mem", "64M"], { cwd: root });
    let out = "";
    const waiters: Array<() => void> = [];
    child.stdout.on("data", (d: Buffer) => { out += d.toString(); waiters.forEach((w) => w()); });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (status) => { resolve(status); waiters.forEach((w) => w()); }));
    /** Resolves once the console (\r dropped) matches re; rejects, with the console's tail, if the CLI exits or a hang's safety net of 90 s passes. */
    const seen = (re: RegExp) => new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${re} within 90 s:\n${out.slice(-1500)}`)), 90_000);
      const check = () => {
        if (re.test(out.replace(/\r/g, ""))) { clearTimeout(timer); resolve(); }
        else if (child.exitCode !== null) { clearTimeout(timer); reject(new Error(`webkvm linux exited before ${re}:\n${out.slice(-1500)}`)); }
      };
      waiters.push(check);
      check();
    });
    try {
      await seen(/\n# /);                            // the shell's prompt, after /init's self-check
      child.stdin.write("echo cli-ok\n");
      await seen(/\ncli-ok\n/);                     // the output on a line of its own (the tty echoes "# echo cli-ok")
      child.stdin.write("poweroff\n");
      expect(await exited).toBe(0);
      expect(out.replace(/\r\n/g, "\n")).toContain(initResultLine());
    } finally {
      child.kill(); // a guest left at its prompt would run on
    }
  }, 120_000);

  it("run --kernel forwards stdin to the guest's consoles: a stand-in kernel reads a byte with SBI getchar and prints it", () => {
    // Legacy getchar until a byte comes (-1 while none has), putchar it, then SRST shutdown.
    const p = new A.Program(0x80200040n);
    p.label("poll").li(REG.a7, 2).emit(A.ecall()).to("poll", (off) => A.blt(REG.a0, 0, off));
    p.li(REG.a7, 1).emit(A.ecall()).li(REG.a7, 0x53525354).li(REG.a6, 0).li(REG.a0, 0).li(REG.a1, 0).emit(A.ecall());
    const file = standInImage(p);
    const r = spawnSync(process.execPath, [bin, "run", "--kernel", file, "--mem", "16M", "--max-instructions", "50000000"],
      { cwd: root, encoding: "utf8", input: "Q", timeout: 50_000 });
    expect([r.stdout, r.status]).toEqual(["Q", 0]);
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
    for (const c of ["run", "linux", "script", "bench", "restore", "incoming"]) {
      const r = run(c, "--help");
      expect([c, r.status, r.stdout.startsWith(`usage: webkvm ${c}`)]).toEqual([c, 0, true]);
    }
    expect(run("--help").status).toBe(0);
  });
});

describe("webkvm run --snapshot-every / webkvm restore", () => {
  const chainOf = (dir: string, prefix: string) =>
    readdirSync(dir).filter((f) => f.startsWith(`${prefix}.`)).map((f) => Number(f.slice(prefix.length + 1))).sort((a, b) => a - b)
      .map((n) => join(dir, `${prefix}.${n}`));

  it("run --snapshot-every N writes FILE.0 (full) and FILE.1... (incremental) with a line each; restore FILE... continues to the same end", () => {
    const dir = mkdtempSync(join(tmpdir(), "webkvm-snap-"));
    const r = run("run", "guests/memtest/memtest.bin", "--mem", "16M", "--arg", "1048576", "--snapshot", join(dir, "m"),
      "--snapshot-every", "300000");
    expect([r.status, r.stdout]).toEqual([0, expect.stringMatching(/^memtest ok checksum=0x[0-9a-f]{16}\n$/)]);
    const files = chainOf(dir, "m");
    expect(files.length).toBeGreaterThan(10);
    const lines = r.stderr.split("\n").filter((l) => l.startsWith("webkvm: snapshot"));
    expect(lines.length).toBe(files.length);
    expect(lines[0]).toMatch(/^webkvm: snapshot .*m\.0 \(full\): \d+ pages, \d+ KiB in \d+ ms$/);
    expect(lines[1]).toMatch(/^webkvm: snapshot .*m\.1 \(incremental\): \d+ pages/);
    for (const k of [0, 1, files.length >> 1, files.length - 1]) {
      const back = run("restore", ...files.slice(0, k + 1));
      expect([k, back.status, back.stdout]).toEqual([k, 0, r.stdout]);
      expect(back.stderr).toMatch(/shutdown \(reason 0\)/);
    }
    // A chain in one file (the snapshots one after another) restores too.
    const joined = join(dir, "joined");
    writeFileSync(joined, Buffer.concat(files.slice(0, 3).map((f) => readFileSync(f))));
    expect(run("restore", joined).stdout).toBe(r.stdout);
    const info = run("restore", "--info", files[0], files[1]);
    expect(info.stdout).toMatch(/^snapshot 0: full, id 0x[0-9a-f]+, \d+ bytes, \d+ pages \+ 0 zero\n  machine v1: \d+ bytes\n/);
    expect(info.stdout).toMatch(/\nsnapshot 1: incremental 1, id 0x[0-9a-f]+, parent 0x[0-9a-f]+, /);
    expect(info.stdout).toMatch(/  memory v1: \d+ bytes\n$/);
  });

  it("restore continues a guest mid-line: each point of the chain prints the rest of hello's line", () => {
    const dir = mkdtempSync(join(tmpdir(), "webkvm-snap-"));
    const r = run("run", "guests/hello/hello.bin", "--mem", "16M", "--snapshot", join(dir, "h"), "--snapshot-every", "10");
    expect(r.stdout).toBe("Hello from webkvm!\n");
    const files = chainOf(dir, "h");
    const rests = [0, 4, 8, 12].map((k) => run("restore", ...files.slice(0, k + 1)).stdout);
    rests.forEach((rest) => expect("Hello from webkvm!\n".endsWith(rest)).toBe(true));
    expect(new Set(rests.map((x) => x.length)).size).toBe(4); // four different points
    expect(rests.map((x) => x.length)).toEqual([...rests.map((x) => x.length)].sort((a, b) => b - a));
  });

  it("linux --snapshot-every: Linux restored from each snapshot of its boot prints the rest of its console and powers off", () => {
    const dir = mkdtempSync(join(tmpdir(), "webkvm-snap-"));
    const r = run("linux", "--mem", "64M", "--append", "console=hvc0 webkvm.run=poweroff", "--snapshot", join(dir, "l"),
      "--snapshot-every", "10000000");
    expect([r.status, r.stdout.replace(/\r\n/g, "\n")]).toEqual([0, expect.stringContaining(initResultLine())]);
    const files = chainOf(dir, "l");
    expect(files.length).toBeGreaterThanOrEqual(2);
    const rests = files.map((_, k) => run("restore", ...files.slice(0, k + 1)));
    for (const back of rests) {
      expect(back.status).toBe(0);
      expect(back.stdout.length).toBeGreaterThan(0);
      expect(r.stdout.endsWith(back.stdout)).toBe(true);
    }
    expect(rests[0].stdout.length).toBeGreaterThan(rests[rests.length - 1].stdout.length);
  });

  it("restore refuses a damaged, incomplete or foreign chain naming the snapshot and its section (status 1); usage errors are status 2", () => {
    const dir = mkdtempSync(join(tmpdir(), "webkvm-snap-"));
    expect(run("run", "guests/memtest/memtest.bin", "--mem", "16M", "--snapshot", join(dir, "m"), "--snapshot-every", "400000").status).toBe(0);
    const files = chainOf(dir, "m");
    const damaged = join(dir, "damaged");
    const bytes = readFileSync(files[1]);
    bytes[bytes.length - 100] ^= 1; // in its last section
    writeFileSync(damaged, bytes);
    const bad = run("restore", files[0], damaged);
    expect([bad.status, bad.stdout, bad.stderr]).toEqual([1, "", expect.stringMatching(/^webkvm: snapshot 1: section "memory": checksum mismatch/)]);
    const gap = run("restore", files[0], files[2]);
    expect([gap.status, gap.stderr]).toEqual([1, expect.stringMatching(/^webkvm: snapshot 1: section "header": its parent is snapshot/)]);
    const base = run("restore", files[1]);
    expect([base.status, base.stderr]).toEqual([1, expect.stringMatching(/without its base/)]);
    expect(run("restore", "guests/hello/hello.bin").stderr).toMatch(/section "header": not a webkvm snapshot/);
    expect(run("restore").status).toBe(2);
    expect(run("restore", "--frobnicate", files[0]).status).toBe(2);
    expect(run("run", "guests/hello/hello.bin", "--snapshot", join(dir, "x")).status).toBe(2); // --snapshot needs --snapshot-every
    expect(run("run", "guests/hello/hello.bin", "--snapshot-every", "10").status).toBe(2);
    expect(run("restore", "--help").stdout).toMatch(/^usage: webkvm restore/);
  });
});

interface Exited { status: number | null; stdout: string; stderr: string }

/** The CLI as a child process; `exited` when it ends, with all it printed. */
function start(...args: string[]): { exited: Promise<Exited>; stderr: () => string } {
  const child = spawn(process.execPath, [bin, ...args], { cwd: root });
  child.stdin.end();
  let stdout = "", stderr = "";
  child.stdout.on("data", (d: Buffer) => { stdout += d.toString(); });
  child.stderr.on("data", (d: Buffer) => { stderr += d.toString(); });
  const exited = new Promise<Exited>((resolve) => child.once("close", (status) => resolve({ status, stdout, stderr })));
  return { exited, stderr: () => stderr };
}

/** webkvm incoming on a port the system picks: the port its first line names, and its end. */
async function incoming(...args: string[]): Promise<{ port: number; exited: Promise<Exited> }> {
  const p = start("incoming", "--listen", "127.0.0.1:0", ...args);
  for (let waited = 0; ; waited += 20) {
    const m = /^webkvm: listening on 127\.0\.0\.1:(\d+)\n/.exec(p.stderr());
    if (m) return { port: Number(m[1]), exited: p.exited };
    if (waited > 30_000) throw new Error(`webkvm incoming did not listen: ${p.stderr()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The instruction count of a run's last line. */
const instructions = (stderr: string) => /, (\d+) instructions in /.exec(stderr)?.[1];

/** A port nothing listens on (taken from the system, then let go). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

describe("webkvm incoming / run --migrate-to: a guest moved live between two processes over TCP", () => {
  // memtest writes 1 MiB, reads it back and hashes it; 300,000 instructions in, it is part-way through writing.
  const GUEST = ["guests/memtest/memtest.bin", "--mem", "16M", "--arg", "1048576"];
  const AFTER = ["--migrate-after", "300000"];

  for (const mode of ["bitmap", "ring", "postcopy"] as const) {
    it(`${mode}: migrated mid-run, the guest finishes on the destination with the console output and exit status of an unmigrated run; the source exits 0 with a summary`, async () => {
      const plain = run("run", ...GUEST);
      expect([plain.status, plain.stdout]).toEqual([0, expect.stringMatching(/^memtest ok checksum=0x[0-9a-f]{16}\n$/)]);
      const dst = await incoming();
      const src = await start("run", ...GUEST, "--migrate-to", `127.0.0.1:${dst.port}`, ...AFTER, "--migrate-mode", mode).exited;
      const got = await dst.exited;
      expect([src.status, src.stdout + got.stdout, got.status]).toEqual([0, plain.stdout, plain.status]);
      const how = mode === "postcopy" ? "post-copy after 1 round, \\d+ pages? asked for" : `${mode}, \\d+ rounds?`;
      const summary = new RegExp(`^webkvm: migrated to 127\\.0\\.0\\.1:${dst.port} after (\\d+) instructions here \\(${how}\\): ` +
        "total \\d+ ms, downtime [\\d.]+ ms, [1-9]\\d* pages sent \\+ \\d+ zero, [\\d.]+ MiB\\n$").exec(src.stderr);
      expect(summary, src.stderr).not.toBeNull();
      expect(got.stderr).toMatch(/\nwebkvm: shutdown \(reason 0\), \d+ instructions/);
      // Mid-run, and every instruction once: those run here and those run there make the unmigrated run's.
      const before = BigInt(summary![1]);
      expect(before >= 300_000n && before < BigInt(instructions(plain.stderr)!) / 2n).toBe(true);
      expect(before + BigInt(instructions(got.stderr)!)).toBe(BigInt(instructions(plain.stderr)!));
    });
  }

  it("a guest that prints, runs 2 M instructions, prints and fails (SRST reason 1): migrated mid-way, its console is split between the two sides and the destination exits 1, as the unmigrated run does — with post-copy too, where it ends before its last pages are placed", async () => {
    // putchar "A"; 10^6 turns of a two-instruction loop; putchar "B", "\n"; SRST shutdown with reason 1 (legacy shutdown, reason 0, should it return).
    const p = new A.Program(0x80000000n);
    const putchar = (c: string) => p.li(REG.a7, 1).li(REG.a0, c.charCodeAt(0)).emit(A.ecall());
    putchar("A");
    p.li(REG.t0, 1_000_000).label("loop").emit(A.addi(REG.t0, REG.t0, -1)).to("loop", (off) => A.bne(REG.t0, 0, off));
    putchar("B");
    putchar("\n");
    p.li(REG.a7, 0x53525354).li(REG.a6, 0).li(REG.a0, 0).li(REG.a1, 1).emit(A.ecall()).li(REG.a7, 8).emit(A.ecall());
    p.label("park").to("park", (off) => A.jal(0, off));
    const file = join(mkdtempSync(join(tmpdir(), "webkvm-cli-")), "fails.bin");
    writeFileSync(file, new Uint8Array(p.finish().buffer));
    const plain = run("run", file, "--mem", "16M");
    expect([plain.status, plain.stdout]).toEqual([1, "AB\n"]);
    for (const mode of ["bitmap", "postcopy"]) {
      const dst = await incoming();
      const src = await start("run", file, "--mem", "16M", "--migrate-to", `127.0.0.1:${dst.port}`, "--migrate-after", "500000",
        "--migrate-mode", mode).exited;
      const got = await dst.exited;
      expect([mode, src.status, src.stdout, got.stdout, got.status]).toEqual([mode, 0, "A", "B\n", 1]);
      expect(got.stderr).toMatch(/\nwebkvm: shutdown \(reason 1\), \d+ instructions/);
      const before = /after (\d+) instructions here/.exec(src.stderr)?.[1];
      expect(BigInt(before!) + BigInt(instructions(got.stderr)!)).toBe(BigInt(instructions(plain.stderr)!));
    }
  });

  it("connection refused: the source says so and its guest runs on to the end an unmigrated run has", async () => {
    const plain = run("run", ...GUEST);
    const port = await closedPort();
    const src = await start("run", ...GUEST, "--migrate-to", `127.0.0.1:${port}`, ...AFTER).exited;
    expect([src.status, src.stdout]).toEqual([plain.status, plain.stdout]);
    expect(src.stderr).toMatch(new RegExp(`^webkvm: migration to 127\\.0\\.0\\.1:${port} failed: connect ECONNREFUSED .*\\n` +
      "webkvm: the guest runs on here\\nwebkvm: shutdown \\(reason 0\\)"));
    expect(instructions(src.stderr)).toBe(instructions(plain.stderr)); // not one instruction more or less
  });

  it("the destination refuses a guest larger than its --mem: it exits 1 saying so, the source's guest runs on", async () => {
    const plain = run("run", ...GUEST);
    const dst = await incoming("--mem", "8M");
    const src = await start("run", ...GUEST, "--migrate-to", `127.0.0.1:${dst.port}`, ...AFTER, "--migrate-mode", "postcopy").exited;
    const got = await dst.exited;
    expect([got.status, got.stdout]).toEqual([1, ""]);
    expect(got.stderr).toMatch(/webkvm: incoming migration failed: destination out of memory: the guest has 16777216 bytes, this destination takes 8388608\n$/);
    expect([src.status, src.stdout]).toEqual([plain.status, plain.stdout]);
    expect(src.stderr).toMatch(/failed: the destination failed: destination out of memory.*\nwebkvm: the guest runs on here\n/);
    expect(instructions(src.stderr)).toBe(instructions(plain.stderr));
  });

  it("a guest that ends before the switch-over ends on the source (its own exit status); the waiting destination is told and exits 1", async () => {
    // hello ends after ~170 instructions: before --migrate-after 10000, and within pre-copy's first slice after 100.
    for (const [after, said] of [["10000", /the guest stopped before --migrate-after 10000: not migrated/],
      ["100", /migration to .* aborted: the guest stopped \(shutdown\) during pre-copy, on this side/]] as const) {
      const dst = await incoming();
      const src = await start("run", "guests/hello/hello.bin", "--mem", "16M", "--migrate-to", `127.0.0.1:${dst.port}`,
        "--migrate-after", after).exited;
      expect([after, src.status, src.stdout]).toEqual([after, 0, "Hello from webkvm!\n"]);
      expect(src.stderr).toMatch(said);
      const got = await dst.exited;
      expect([after, got.status, got.stdout]).toEqual([after, 1, ""]);
      expect(got.stderr).toMatch(/webkvm: incoming migration failed: /);
    }
  });

  it("bad flags are usage errors (status 2): run's migration flags and incoming's", async () => {
    const img = "guests/hello/hello.bin";
    const bads = [
      ["run", img, "--migrate-to"], ["run", img, "--migrate-to", "4444"], ["run", img, "--migrate-to", "h:99999"],
      ["run", img, "--migrate-to", "h:1", "--migrate-after", "x"], ["run", img, "--migrate-after", "10"],
      ["run", img, "--migrate-to", "h:1", "--migrate-mode", "fast"], ["run", img, "--migrate-to", "h:1", "--downtime-ms", "0"],
      ["run", img, "--migrate-to", "h:1", "--migrate-mode", "postcopy", "--downtime-ms", "5"],
      ["run", img, "--migrate-to", "h:1", "--snapshot", "f", "--snapshot-every", "10"],
      ["run", img, "--migrate-to", "h:1", "--migrate-mode", "ring", "--dirty-log"],
      ["incoming"], ["incoming", "--listen"], ["incoming", "--listen", "x"], ["incoming", "--listen", "0", "--mem", "lots"],
      ["incoming", "--listen", "0", "--frobnicate"],
    ];
    const results = await Promise.all(bads.map((bad) => start(...bad).exited)); // at once: each is a process start
    bads.forEach((bad, i) => {
      expect([bad, results[i].status, results[i].stdout]).toEqual([bad, 2, ""]);
      expect(results[i].stderr).toMatch(new RegExp(`^usage: webkvm ${bad[0]} `));
    });
  });

  it("the progress line shows the phase, round, pages sent, dirty rate and estimated downtime on a terminal, at most every 100 ms, and is erased at the end; elsewhere nothing", () => {
    let now = 0;
    const written: string[] = [];
    const line = progressLine({ isTTY: true, write: (t) => written.push(t) }, () => now);
    const p = { phase: "precopy" as const, round: 3, pagesSent: 1200, zeroPages: 40, bytes: 5e6, dirtyRate: 2500.4,
      bandwidth: 1e8, remainingPages: 300, estimatedDowntimeMs: 12.34 };
    line.show(() => describeProgress(p, "migrating to h:1"));
    expect(written).toEqual(["\r\x1b[Kwebkvm: migrating to h:1: precopy, round 3, 1200 pages sent + 40 zero, dirty 2500 pages/s, " +
      "300 left, est. downtime 12.3 ms"]);
    now = 99;
    line.show(() => "again");
    expect(written.length).toBe(1);
    now = 100;
    line.show(() => describeProgress({ ...p, estimatedDowntimeMs: Infinity }, "m"));
    expect(written[1]).toMatch(/est\. downtime \?$/);
    line.clear();
    expect(written[2]).toBe("\r\x1b[K");
    const piped: string[] = [];
    const quiet = progressLine({ isTTY: false, write: (t) => piped.push(t) }, () => now);
    quiet.show(() => "x");
    quiet.clear();
    expect(piped).toEqual([]);
  });
});
