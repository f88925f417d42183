import { spawnSync } from "node:child_process";
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/load.js";
import { createLogger } from "../../src/core/log.js";
import { Watchdog } from "../../src/daemon/watchdog.js";
import { type LedgerFs, nodeLedgerFs } from "../../src/remediation/ledger.js";
import { waitFor } from "../support/wait.js";
import { downTargetConfig, health, startDaemon } from "./daemon.js";

/**
 * M1: the state dir cannot be written (disk full, read-only). The watchdog must not crash, must
 * keep ticking, must not act (an action it cannot record would escape the budget), and must say
 * so: /healthz detail, a metric, the log, the target's reason.
 */
const workDir = mkdtempSync(join(tmpdir(), "owd-fault-disk-"));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

function countingRestart(name: string): { argv: string[]; count: () => number } {
  const counter = join(workDir, `${name}.count`);
  const script = join(workDir, `${name}.mjs`);
  writeFileSync(
    script,
    `import { appendFileSync } from "node:fs";\nappendFileSync(${JSON.stringify(counter)}, "x\\n");\n`,
  );
  return {
    argv: [process.execPath, script],
    count: () => (existsSync(counter) ? readFileSync(counter, "utf8").length / 2 : 0),
  };
}

describe("an unwritable state dir", () => {
  it("in-process, an injected ENOSPC/EROFS: keeps ticking, does not act, says so; acts again once writable", async () => {
    let failing = false;
    const failingFs: LedgerFs = {
      append(path, text) {
        if (failing)
          throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
        nodeLedgerFs.append(path, text);
      },
      replace(path, text) {
        if (failing) throw Object.assign(new Error("EROFS: read-only file system, open"), { code: "EROFS" });
        nodeLedgerFs.replace(path, text);
      },
    };
    const restart = countingRestart("inprocess");
    const logLines: string[] = [];
    const config = parseConfig(
      {
        interval: "100ms",
        listen: "127.0.0.1:0",
        stateDir: join(workDir, "inprocess-state"),
        targets: [
          {
            name: "local",
            url: "http://127.0.0.1:9",
            restart: { command: { argv: restart.argv, timeout: "5s" } },
          },
        ],
        detection: { apiTimeout: "200ms", downAfter: 1, startupGrace: "100ms", canary: { timeout: "500ms" } },
        remediation: { cooldown: "300ms", verifyWithin: "1s", budget: { max: 3, window: "1h" } },
        gpu: { backend: "none" },
      },
      {},
    );
    failing = true;
    const watchdog = await Watchdog.start({
      config,
      ledgerFs: failingFs,
      log: createLogger({
        level: "info",
        destination: { write: (line: string) => void logLines.push(line) },
      }),
    });
    try {
      const startTicks = watchdog.snapshot().ticks;
      await waitFor(() => watchdog.snapshot().ticks >= startTicks + 15, {
        what: "15 ticks on a failing disk",
      });
      expect(restart.count()).toBe(0);
      await waitFor(
        () =>
          /restart not executed: cannot record actions: ENOSPC/.test(
            watchdog.snapshot().targets[0]?.reason ?? "",
          ),
        { what: "the reason to say the restart was not executed" },
      );
      expect(watchdog.snapshot().targets[0]?.state).toBe("down");
      const healthz = await health(watchdog.url);
      expect(healthz.status).toBe(200);
      expect(healthz.body.problems?.[0]).toMatch(/cannot record actions: ENOSPC/);
      const metrics = await (await fetch(`${watchdog.url}/metrics`)).text();
      expect(metrics).toMatch(/^ollama_watchdog_can_record_actions 0$/m);
      expect(metrics).toMatch(
        /ollama_watchdog_actions_not_executed_total\{target="local",action="restart",why="cannot-record"\} [1-9]/,
      );
      // Logged once when it started failing, not at every tick.
      expect(logLines.filter((l) => /"msg":"cannot record actions/.test(l))).toHaveLength(1);
      // The disk has room again: the watchdog records, then acts.
      failing = false;
      await waitFor(() => restart.count() >= 1, { what: "the restart once the ledger is writable" });
      await waitFor(
        async () =>
          /^ollama_watchdog_can_record_actions 1$/m.test(
            await (await fetch(`${watchdog.url}/metrics`)).text(),
          ),
        {
          what: "the metric back at 1",
        },
      );
      expect(restart.count()).toBeLessThanOrEqual(3);
    } finally {
      await watchdog.stop();
    }
  }, 60_000);

  // A real full disk: a 16 KiB tmpfs in a user+mount namespace (no privileges needed where user
  // namespaces are allowed), filled before the watchdog starts.
  const unshareWorks = spawnSync("unshare", ["-rm", "true"]).status === 0;
  it.runIf(unshareWorks)(
    "a real process on a real full tmpfs: alive, ticking, not acting",
    async () => {
      const restart = countingRestart("tmpfs");
      const stateDir = join(workDir, "tmpfs-state");
      const configPath = join(workDir, "tmpfs.yaml");
      writeFileSync(configPath, downTargetConfig({ stateDir, restartArgv: restart.argv }));
      const { mkdirSync } = await import("node:fs");
      mkdirSync(stateDir);
      const daemon = startDaemon(configPath, (argv) => [
        "unshare",
        "-rm",
        "sh",
        "-c",
        `mount -t tmpfs -o size=16k none "$0" && : > "$0/actions.jsonl" && (cat /dev/zero > "$0/filler" 2>/dev/null; true) && exec "$@"`,
        stateDir,
        ...argv,
      ]);
      try {
        const url = await daemon.url();
        const first = (await health(url)).body.ticks;
        await waitFor(async () => (await health(url)).body.ticks >= first + 15, {
          what: "15 ticks",
          timeoutMs: 15_000,
        });
        const healthz = await health(url);
        console.log(
          JSON.stringify({
            realDiskFull: {
              restarts: restart.count(),
              alive: daemon.child.exitCode === null,
              problems: healthz.body.problems,
            },
          }),
        );
        expect(daemon.child.exitCode).toBeNull();
        expect(restart.count()).toBe(0);
        expect(healthz.body.problems?.[0]).toMatch(/cannot record actions: ENOSPC/);
      } finally {
        await daemon.kill();
      }
      appendFileSync(join(workDir, "done"), "");
    },
    60_000,
  );
});
