import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CLI_ARGV } from "../support/paths.js";
import { waitFor } from "../support/wait.js";

/**
 * H1: the watchdog dies during its own action (a Docker restart of Ollama takes the watchdog down
 * with it). A supervisor restarts it at once, as systemd's Restart=always would. Every restart it
 * attempts must be counted before it starts, so the budget holds across the deaths.
 */
const workDir = mkdtempSync(join(tmpdir(), "owd-fault-h1-"));
const BUDGET = 3;
const MAX_LIVES = 12;

afterAll(() => rmSync(workDir, { recursive: true, force: true }));

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("exit", () => resolve());
  });
}

describe("the watchdog killed during its own action", () => {
  it(`never acts more than the budget (${BUDGET}/h), however often it dies mid-action`, async () => {
    const counter = join(workDir, "restarts");
    // The restart "takes the watchdog down": it records itself, then SIGKILLs its parent.
    const restartScript = join(workDir, "restart.mjs");
    writeFileSync(
      restartScript,
      [
        'import { appendFileSync } from "node:fs";',
        `appendFileSync(${JSON.stringify(counter)}, "restart\\n");`,
        'process.kill(process.ppid, "SIGKILL");',
        "setTimeout(() => {}, 5000);",
      ].join("\n"),
    );
    const configPath = join(workDir, "config.yaml");
    writeFileSync(
      configPath,
      [
        "interval: 100ms",
        "listen: 127.0.0.1:0",
        `stateDir: ${join(workDir, "state")}`,
        "targets:",
        "  - name: local",
        // Nothing listens on port 9: the API is down, the ladder goes straight to restart.
        "    url: http://127.0.0.1:9",
        `    restart: { command: { argv: [${JSON.stringify(process.execPath)}, ${JSON.stringify(restartScript)}], timeout: 5s } }`,
        "detection: { apiTimeout: 200ms, downAfter: 1, startupGrace: 100ms }",
        `remediation: { cooldown: 100ms, verifyWithin: 1s, budget: { max: ${BUDGET}, window: 1h } }`,
        "gpu: { backend: none }",
      ].join("\n"),
    );
    const [node, cli] = CLI_ARGV as [string, string];
    let lives = 0;
    let output = "";
    let current: ChildProcess | undefined;
    const restarts = () =>
      existsSync(counter) ? readFileSync(counter, "utf8").split("\n").filter(Boolean).length : 0;
    try {
      for (; lives < MAX_LIVES; lives++) {
        let log = "";
        const child = spawn(node, [cli, "run", "--config", configPath], { stdio: ["ignore", "pipe", "pipe"] });
        current = child;
        child.stdout?.on("data", (chunk: Buffer) => {
          log += chunk.toString();
        });
        child.stderr?.on("data", (chunk: Buffer) => {
          log += chunk.toString();
        });
        const died = exited(child).then(() => "died" as const);
        // Either it dies mid-action (the next life starts at once), or it settles: the budget is
        // spent and it stops acting while it keeps observing.
        const settled = waitFor(() => /"msg":"state exhausted"/.test(log) && ("settled" as const), {
          timeoutMs: 20_000,
          what: "the watchdog to die mid-action or to stop acting",
        });
        const how = await Promise.race([died, settled]);
        output += log;
        if (how === "settled") break;
      }
    } finally {
      if (current && current.exitCode === null && current.signalCode === null) {
        current.kill("SIGKILL");
        await exited(current);
      }
    }
    const ledger = readFileSync(join(workDir, "state", "actions.jsonl"), "utf8");
    console.log(
      JSON.stringify({ lives: lives + 1, restartsAttempted: restarts(), ledgerLines: ledger.split("\n").filter(Boolean).length }),
    );
    expect(restarts(), output.slice(-2000)).toBeLessThanOrEqual(BUDGET);
    expect(lives).toBeLessThan(MAX_LIVES);
  }, 120_000);
});
