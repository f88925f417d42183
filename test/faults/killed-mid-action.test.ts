import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { waitFor } from "../support/wait.js";
import { type Daemon, downTargetConfig, startDaemon } from "./daemon.js";

/**
 * H1: the watchdog dies during its own action (a Docker restart of Ollama takes the watchdog down
 * with it). A supervisor restarts it at once, as systemd's Restart=always would. Every restart it
 * attempts must be counted before it starts, so the budget holds across the deaths.
 */
const workDir = mkdtempSync(join(tmpdir(), "owd-fault-h1-"));
const BUDGET = 3;
const MAX_LIVES = 12;

afterAll(() => rmSync(workDir, { recursive: true, force: true }));

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
      downTargetConfig({
        stateDir: join(workDir, "state"),
        restartArgv: [process.execPath, restartScript],
        extra: [`remediation: { cooldown: 100ms, verifyWithin: 1s, budget: { max: ${BUDGET}, window: 1h } }`],
      }),
    );
    const restarts = () =>
      existsSync(counter) ? readFileSync(counter, "utf8").split("\n").filter(Boolean).length : 0;
    let lives = 0;
    let daemon: Daemon | undefined;
    try {
      for (; lives < MAX_LIVES; lives++) {
        const life = startDaemon(configPath);
        daemon = life;
        // Either it dies mid-action (the next life starts at once), or it settles: the budget is
        // spent and it stops acting while it keeps observing.
        const how = await Promise.race([
          life.exited.then(() => "died" as const),
          waitFor(() => /"msg":"state exhausted"/.test(life.output()) && ("settled" as const), {
            timeoutMs: 20_000,
            what: "the watchdog to die mid-action or to stop acting",
          }),
        ]);
        if (how === "settled") break;
      }
    } finally {
      await daemon?.kill();
    }
    const ledger = readFileSync(join(workDir, "state", "actions.jsonl"), "utf8")
      .split("\n")
      .filter(Boolean);
    console.log(
      JSON.stringify({ lives: lives + 1, restartsAttempted: restarts(), ledgerLines: ledger.length }),
    );
    expect(restarts(), daemon?.output().slice(-2000)).toBeLessThanOrEqual(BUDGET);
    expect(lives).toBeLessThan(MAX_LIVES);
    // Each death left an intent without outcome: counted as a failed, interrupted action.
    const interrupted = ledger
      .map((line) => JSON.parse(line) as { error?: string })
      .filter((e) => /interrupted/.test(e.error ?? ""));
    expect(interrupted).toHaveLength(restarts());
  }, 120_000);
});
