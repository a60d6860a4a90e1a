// The golden scripts recorded from Linux 6.18 (conformance/golden), run in-process on the debug core.
import { describe, it, expect } from "vitest";
import { readFileSync, existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { runScript } from "../src/conformance/index.js";
import { openKvm } from "./helpers.js";

const golden = fileURLToPath(new URL("../conformance/golden/", import.meta.url));

/** Goldens this build passes completely. */
const PASSING = ["validation", "guest_access", "lifecycle", "dirty_bitmap", "dirty_ring", "guest_memfd"];

describe("conformance goldens", () => {
  it("the project's goldens are present", () => {
    expect(existsSync(golden + "validation.txt")).toBe(true);
  });
  for (const name of PASSING) {
    it(`${name}.txt matches the Linux 6.18 recording line for line`, async () => {
      const text = readFileSync(golden + `${name}.txt`, "utf8");
      const expected = readFileSync(golden + `${name}.out`, "utf8").split("\n").filter((l) => l !== "");
      const got = await runScript(text, await openKvm());
      expect(got).toEqual(expected);
    });
  }
});
