import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import { basicAuthenticator, loadWebConfig } from "../../src/server/web-config.js";
import { CLI, CLI_ARGV, ROOT } from "../support/paths.js";

/**
 * The README's fleet recipe (Deployment → "Several hosts behind a load balancer"), typed as it
 * stands on top of what `install` writes: the shell block is read from README.md, so the docs and
 * this test cannot drift. It runs on a staged install (`install --root`) with `/etc/ollama-watchdog`
 * pointed there; `sudo` runs the command as is, and what needs the real system (systemctl, the
 * service's group) is recorded instead of run.
 */

const HEADING = "### Several hosts behind a load balancer";

/** The first ```sh block after the heading. */
function recipeBlock(readme: string): string {
  const section = readme.slice(readme.indexOf(HEADING));
  const match = /```sh\n([\s\S]*?)```/.exec(section);
  if (readme.indexOf(HEADING) < 0 || !match) throw new Error(`README.md: no sh block under "${HEADING}"`);
  return match[1] as string;
}

let dir = "";
let root = "";
let etc = "";
let run: { status: number | null; stdout: string; stderr: string };
let calls: string[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "owd-recipe-"));
  root = join(dir, "root");
  etc = join(root, "etc/ollama-watchdog");
  execFileSync(CLI_ARGV[0] as string, [CLI, "install", "--root", root], { stdio: "pipe" });
  // The recipe runs in the checkout (its node_modules has bcryptjs) beside this host's certificate.
  const cwd = join(dir, "checkout");
  mkdirSync(cwd);
  symlinkSync(join(ROOT, "node_modules"), join(cwd, "node_modules"));
  execFileSync(
    "/usr/bin/openssl",
    ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=gpu1.internal"].concat([
      "-keyout",
      "server.key",
      "-out",
      "server.crt",
    ]),
    { cwd, stdio: "pipe" },
  );
  const log = join(dir, "calls.log");
  const script = [
    "set -euo pipefail",
    'sudo() { "$@"; }',
    `ollama-watchdog() { ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} "$@"; }`,
    `systemctl() { echo "systemctl $*" >> ${JSON.stringify(log)}; }`,
    // The service's group exists only where install really ran (systemd-sysusers).
    `chgrp() { echo "chgrp $*" >> ${JSON.stringify(log)}; }`,
    recipeBlock(readFileSync(join(ROOT, "README.md"), "utf8")).replaceAll("/etc/ollama-watchdog", etc),
  ].join("\n");
  const result = spawnSync("/bin/bash", ["-c", script], { cwd, encoding: "utf8", timeout: 30_000 });
  run = { status: result.status, stdout: result.stdout, stderr: result.stderr };
  try {
    calls = readFileSync(log, "utf8").trim().split("\n");
  } catch {
    calls = [];
  }
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("README fleet recipe on a fresh install", () => {
  it("runs through: config check passes, so the service is restarted", () => {
    expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(calls).toContain("systemctl restart ollama-watchdog");
    const check = spawnSync(CLI_ARGV[0] as string, [CLI, "config", "check", join(etc, "config.yaml")], {
      encoding: "utf8",
    });
    expect(check.status, check.stderr).toBe(0);
  });

  it("leaves the config with the recipe's values and install's own keys", () => {
    const config = loadConfig(join(etc, "config.yaml"));
    expect(config.listen).toBe("0.0.0.0:11464");
    expect(config.remediation.drainFor).toBe(10_000);
    expect(config.remediation.ladder).toEqual(["kill-runner", "restart"]);
    expect(config.targets.map((t) => t.name)).toEqual(["default"]);
    expect(config.webConfig).toBe(join(etc, "web.yml"));
    expect(
      config.fleet.map((p) => [p.name, p.url, p.basicAuth?.username, p.basicAuth?.passwordFile]),
    ).toEqual([
      ["gpu1", "https://gpu1.internal:11464", "fleet", join(etc, "fleet.password")],
      ["gpu2", "https://gpu2.internal:11464", "fleet", join(etc, "fleet.password")],
    ]);
  });

  it("web.yml has TLS and accepts the fleet password the peers send", async () => {
    const web = loadWebConfig(join(etc, "web.yml"));
    expect(web.tls?.cert.toString()).toContain("BEGIN CERTIFICATE");
    expect([...web.users.keys()]).toEqual(["fleet"]);
    const password = readFileSync(join(etc, "fleet.password"), "utf8").replace(/\r?\n$/, "");
    const authenticate = basicAuthenticator(web.users);
    expect(await authenticate(`Basic ${Buffer.from(`fleet:${password}`).toString("base64")}`)).toBe("ok");
    expect(await authenticate(`Basic ${Buffer.from("fleet:wrong").toString("base64")}`)).toBe("denied");
  });

  it("keeps the password and the TLS key from other users", () => {
    for (const file of ["fleet.password", "server.key"]) {
      expect(calls).toContainEqual(expect.stringMatching(new RegExp(`^chgrp ollama-watchdog .*${file}`)));
      expect(execFileSync("stat", ["-c", "%a", join(etc, file)], { encoding: "utf8" }).trim()).toBe("640");
    }
  });
});
