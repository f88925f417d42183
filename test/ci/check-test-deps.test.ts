import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseTestDeps, testDepsProblems } from "../../scripts/check-test-deps.js";
import { execArgv } from "../../src/core/exec.js";
import { ROOT } from "../support/paths.js";

const LIST = readFileSync(join(ROOT, "scripts/test-deps.txt"), "utf8");
const DEPS = parseTestDeps(LIST);
const everything = () => true;

describe("the system dependencies of the test suite (scripts/test-deps.txt)", () => {
  it("lists each package with what proves it is installed", () => {
    expect(DEPS.map((d) => d.pkg)).toEqual(
      expect.arrayContaining(["prometheus", "systemd-container", "chromium", "haproxy", "nginx"]),
    );
    for (const dep of DEPS) expect(dep.provides.length, dep.pkg).toBeGreaterThan(0);
    expect(DEPS.find((d) => d.pkg === "prometheus")?.provides).toEqual([
      "/usr/bin/prometheus",
      "/usr/bin/promtool",
    ]);
  });

  it("is the same list setup-test-deps.sh installs", async () => {
    const listed = await execArgv([join(ROOT, "scripts/setup-test-deps.sh"), "--list"], {
      timeoutMs: 10_000,
    });
    expect(listed.exitCode, listed.stderr).toBe(0);
    expect(listed.stdout.trim().split("\n")).toEqual(DEPS.map((d) => d.pkg));
  });

  it("has nothing to say on a machine that has it all, as root, on Node 20", () => {
    expect(testDepsProblems(DEPS, { exists: everything, uid: 0, nodeMajor: 20 })).toEqual([]);
  });

  it("names each missing package, what is absent, and the exact command that installs it", () => {
    const absent = new Set(["/usr/bin/chromium", "/usr/bin/promtool"]);
    const problems = testDepsProblems(DEPS, { exists: (p) => !absent.has(p), uid: 0, nodeMajor: 20 }).join(
      "\n",
    );
    expect(problems).toMatch(/^ {2}prometheus +\(no \/usr\/bin\/promtool\)/m);
    expect(problems).toMatch(/^ {2}chromium +\(no \/usr\/bin\/chromium\) +browser tests/m);
    expect(problems).toContain("  sudo scripts/setup-test-deps.sh");
    expect(problems).toContain("  sudo apt-get install -y --no-install-recommends prometheus chromium");
  });

  it("looks commands up in PATH and the sbin directories", () => {
    const problems = testDepsProblems([{ pkg: "iproute2", provides: ["ip"], why: "" }], {
      exists: (p) => p === "/usr/sbin/ip",
      uid: 0,
      nodeMajor: 20,
    });
    expect(problems).toEqual([]);
  });

  it("asks for root (the nspawn tests) and for Node ≥ 20", () => {
    const problems = testDepsProblems(DEPS, { exists: everything, uid: 1000, nodeMajor: 18 }).join("\n");
    expect(problems).toContain("Node 18 is too old");
    expect(problems).toContain("sudo .ci/run");
  });
});
