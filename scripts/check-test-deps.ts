/**
 * The first step of `npm test`: stops at once, with the command that fixes it, when the machine
 * lacks something the suite needs — instead of a wall of failures or tests skipped in silence.
 * What is needed is scripts/test-deps.txt (the one list, shared with setup-test-deps.sh).
 */
import { accessSync, constants, readFileSync } from "node:fs";
import { delimiter, join } from "node:path";

export interface TestDependency {
  pkg: string;
  /** Absolute paths that must exist, or command names that must be found in PATH. */
  provides: string[];
  why: string;
}

export function parseTestDeps(text: string): TestDependency[] {
  const deps: TestDependency[] = [];
  for (const line of text.split("\n")) {
    const [fields = "", why = ""] = line.split(/#(.*)/s);
    const [pkg, ...rest] = fields.trim().split(/\s+/).filter(Boolean);
    if (!pkg) continue;
    deps.push({ pkg, provides: rest.filter((field) => !field.startsWith("disable=")), why: why.trim() });
  }
  return deps;
}

/** Where a command is looked for: PATH plus the sbin directories a non-root PATH may lack. */
const SEARCH = [...(process.env.PATH ?? "").split(delimiter), "/usr/local/sbin", "/usr/sbin", "/sbin"].filter(
  Boolean,
);

function present(thing: string, exists: (path: string) => boolean): boolean {
  if (thing.startsWith("/")) return exists(thing);
  return SEARCH.some((dir) => exists(join(dir, thing)));
}

function accessible(path: string): boolean {
  try {
    accessSync(path, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/** What stops the suite here, as lines for a person; empty when nothing does. */
export function testDepsProblems(
  deps: TestDependency[],
  host: { exists: (path: string) => boolean; uid: number | undefined; nodeMajor: number },
): string[] {
  const problems: string[] = [];
  if (host.nodeMajor < 20) problems.push(`Node ${host.nodeMajor} is too old: the project needs Node ≥ 20.`);
  const missing = deps.filter((dep) => dep.provides.some((thing) => !present(thing, host.exists)));
  if (missing.length > 0) {
    problems.push(
      "Missing Debian/Ubuntu packages the tests need:",
      ...missing.map((dep) => {
        const absent = dep.provides.filter((thing) => !present(thing, host.exists));
        return `  ${dep.pkg.padEnd(26)} (no ${absent.join(", ")})${dep.why ? `  ${dep.why}` : ""}`;
      }),
      "Install them (the whole list, idempotent), then run the tests again:",
      "  sudo scripts/setup-test-deps.sh",
      "or just these:",
      `  sudo apt-get install -y --no-install-recommends ${missing.map((dep) => dep.pkg).join(" ")}`,
    );
  }
  if (host.uid !== 0) {
    problems.push(
      "The systemd tests boot a throwaway systemd (systemd-nspawn), which needs root: run the tests as",
      "root, e.g. `sudo .ci/run` (installs the packages, `npm ci`, `npm test`) or `sudo npm test`.",
    );
  }
  return problems;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const list = new URL("./test-deps.txt", import.meta.url);
  const problems = testDepsProblems(parseTestDeps(readFileSync(list, "utf8")), {
    exists: accessible,
    uid: process.getuid?.(),
    nodeMajor: Number(process.versions.node.split(".")[0]),
  });
  if (problems.length > 0) {
    process.stderr.write(`npm test cannot run here:\n${problems.join("\n")}\n`);
    process.exit(1);
  }
}
