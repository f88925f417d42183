import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dump as stringify } from "js-yaml";
import { afterAll, describe, expect, it } from "vitest";
import { restartCommand } from "../../src/remediation/actions/restart-command.js";
import { CLI_ARGV } from "../support/paths.js";
import { waitFor } from "../support/wait.js";

/**
 * Issue #11 M7: the restart command's arguments may carry a secret (a bearer token); they stay in
 * the config. Everything the watchdog shows names the program only.
 */
const SECRET = "Bearer-s3cr3t-0123456789";

describe("restart command arguments", () => {
  it("are not in the action's detail or error", async () => {
    const ok = await restartCommand(["/bin/sh", "-c", "exit 0", SECRET], { timeoutMs: 5000 });
    expect(ok).toEqual({ ok: true, detail: "/bin/sh (+3 arguments not shown)" });
    const failed = await restartCommand(["/bin/sh", "-c", "exit 3", SECRET], { timeoutMs: 5000 });
    expect(failed.ok).toBe(false);
    expect(JSON.stringify(failed)).not.toContain(SECRET);
    expect(failed.error).toMatch(/^\/bin\/sh \(\+3 arguments not shown\): exit code 3/);
  });

  it("are scrubbed from what the program prints, whole or as the value of name=value", async () => {
    const echoing = await restartCommand(
      [
        "/bin/sh",
        "-c",
        'echo "as given: $1; value: $(echo "$1" | cut -d= -f2-)" >&2; exit 3',
        "sh",
        `--token=${SECRET}`,
      ],
      { timeoutMs: 5000 },
    );
    expect(echoing.error).toBe("/bin/sh (+4 arguments not shown): exit code 3: as given: …; value: …");
  });
});

describe("the daemon with a token in the restart command", () => {
  let child: ChildProcess | undefined;
  let dir: string | undefined;
  afterAll(() => {
    if (child && child.exitCode === null) child.kill("SIGKILL");
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("never shows it: logs, ledger, incidents, /api/status, /api/incidents, /metrics", async () => {
    dir = mkdtempSync(join(tmpdir(), "owd-secret-"));
    const stateDir = join(dir, "state");
    const file = join(dir, "config.yaml");
    writeFileSync(
      file,
      stringify({
        interval: "100ms",
        listen: "127.0.0.1:0",
        stateDir,
        // Nothing listens on port 1: the target is down, so the watchdog restarts it.
        targets: [
          {
            name: "t",
            url: "http://127.0.0.1:1",
            // env refuses the option and prints it back on stderr, as many programs would.
            restart: { command: { argv: ["/usr/bin/env", `--token=${SECRET}`] } },
          },
        ],
        detection: { downAfter: 1, startupGrace: "0s" },
        remediation: { cooldown: "0s" },
        gpu: { backend: "none" },
      }),
    );
    const [node, cli] = CLI_ARGV as [string, string];
    const daemon = spawn(node, [cli, "run", "--config", file], { stdio: ["ignore", "pipe", "pipe"] });
    child = daemon;
    let output = "";
    daemon.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
    daemon.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const base = await waitFor(() => /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(output)?.[1], {
      timeoutMs: 15_000,
      what: "the start line",
    });
    const get = async (path: string) => (await fetch(`${base}${path}`)).text();
    await waitFor(
      async () => (await get("/api/incidents")).includes("/usr/bin/env") || output.includes("/usr/bin/env"),
      {
        timeoutMs: 20_000,
        what: "a restart that ran",
      },
    );
    const incidents = JSON.parse(await get("/api/incidents")) as { incidents: Array<{ id: string }> };
    const shown = [
      output,
      await get("/api/status"),
      await get("/api/incidents"),
      ...(await Promise.all(incidents.incidents.map((i) => get(`/api/incidents/${i.id}`)))),
      await get("/metrics"),
    ];
    const files = (d: string): string[] =>
      readdirSync(d).flatMap((n) => (statSync(join(d, n)).isDirectory() ? files(join(d, n)) : [join(d, n)]));
    for (const path of files(stateDir)) shown.push(readFileSync(path, "utf8"));
    expect(shown.join("\n")).toContain(
      "/usr/bin/env (+1 argument not shown): exit code 125: /usr/bin/env: unrecognized option '…'",
    );
    for (const text of shown) expect(text).not.toContain(SECRET);
  });
});
