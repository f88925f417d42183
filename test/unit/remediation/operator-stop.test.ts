import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseConfig } from "../../../src/config/load.js";
import { silentLogger } from "../../../src/core/log.js";
import { Watchdog } from "../../../src/daemon/watchdog.js";
import { operatorStoppedContainer } from "../../../src/remediation/actions/restart-docker.js";
import { operatorStoppedUnit } from "../../../src/remediation/actions/restart-systemd.js";
import { waitFor } from "../../support/wait.js";
import { writeExecutable } from "../collectors/support.js";

/** M6: a target its operator stopped is reported as such and never restarted; a crashed one is. */
describe("a unit stopped by its operator", () => {
  it("reads systemctl show: inactive+success and deactivating are operator stops; failed and crashes are not", () => {
    const show = (active: string, sub: string, result: string) =>
      `ActiveState=${active}\nSubState=${sub}\nResult=${result}\n`;
    expect(operatorStoppedUnit("ollama.service", show("inactive", "dead", "success"))).toMatch(
      /ollama.service is stopped \(ActiveState=inactive, SubState=dead, Result=success\): stopped by its operator/,
    );
    expect(operatorStoppedUnit("ollama.service", show("deactivating", "stop-sigterm", "success"))).toMatch(
      /being stopped/,
    );
    expect(operatorStoppedUnit("ollama.service", show("failed", "failed", "exit-code"))).toBeUndefined();
    expect(operatorStoppedUnit("ollama.service", show("inactive", "dead", "signal"))).toBeUndefined();
    expect(operatorStoppedUnit("ollama.service", show("active", "running", "success"))).toBeUndefined();
    expect(operatorStoppedUnit("ollama.service", "")).toBeUndefined();
  });

  it("reads docker inspect: a clean exit or a pause is an operator stop; a crash or OOM is not", () => {
    const state = (State: Record<string, unknown>) => ({ State });
    expect(
      operatorStoppedContainer("ollama", state({ Status: "exited", ExitCode: 0, OOMKilled: false })),
    ).toMatch(/stopped by its operator/);
    expect(operatorStoppedContainer("ollama", state({ Status: "paused" }))).toMatch(/paused by its operator/);
    expect(operatorStoppedContainer("ollama", state({ Status: "exited", ExitCode: 2 }))).toBeUndefined();
    expect(
      operatorStoppedContainer("ollama", state({ Status: "exited", ExitCode: 137, OOMKilled: true })),
    ).toBeUndefined();
    expect(operatorStoppedContainer("ollama", state({ Status: "running" }))).toBeUndefined();
    expect(operatorStoppedContainer("ollama", "garbage")).toBeUndefined();
  });

  describe("the daemon with a fake systemctl", () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), "owd-operator-"));
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it("never restarts a unit stopped on purpose, says so, and restarts it once it has failed", async () => {
      const unitState = join(dir, "unit-state");
      const restarts = join(dir, "restarts");
      writeFileSync(unitState, "ActiveState=inactive\nSubState=dead\nResult=success\n");
      writeFileSync(restarts, "");
      const systemctl = writeExecutable(
        dir,
        "systemctl",
        `case "$1" in\n  show) cat '${unitState}' ;;\n  restart) echo "$2" >> '${restarts}' ;;\n  *) exit 1 ;;\nesac`,
      );
      const config = parseConfig(
        {
          interval: "100ms",
          listen: "127.0.0.1:0",
          stateDir: join(dir, "state"),
          targets: [
            {
              name: "local",
              url: "http://127.0.0.1:9",
              restart: { systemd: { unit: "ollama.service" } },
              journalUnit: null,
            },
          ],
          detection: {
            apiTimeout: "200ms",
            downAfter: 1,
            startupGrace: "100ms",
            canary: { timeout: "500ms" },
          },
          remediation: { cooldown: "100ms", verifyWithin: "1s", budget: { max: 3, window: "1h" } },
          gpu: { backend: "none" },
        },
        {},
      );
      const watchdog = await Watchdog.start({ config, systemctl, log: silentLogger() });
      const restarted = () => readFileSync(restarts, "utf8").split("\n").filter(Boolean).length;
      try {
        await waitFor(
          () => /stopped by its operator — not restarting/.test(watchdog.snapshot().targets[0]?.reason ?? ""),
          {
            what: "the reason to say the operator stopped it",
            timeoutMs: 20_000,
          },
        );
        const ticks = watchdog.snapshot().ticks;
        await waitFor(() => watchdog.snapshot().ticks >= ticks + 15, {
          what: "15 more ticks",
          timeoutMs: 20_000,
        });
        console.log(JSON.stringify({ restartsOfAStoppedUnitIn15Ticks: restarted() }));
        expect(restarted()).toBe(0);
        expect(watchdog.snapshot().targets[0]?.state).toBe("down");
        // A tick that decided the restart shows it as pending until its preflight refuses it: the
        // budget is read once that has settled (a restart that ran would keep it at 2 for an hour).
        await waitFor(() => watchdog.snapshot().targets[0]?.budget.remaining === 3, {
          what: "the whole budget left",
          timeoutMs: 5_000,
        });
        // It crashes (or fails to start): now it is the watchdog's to restart.
        writeFileSync(unitState, "ActiveState=failed\nSubState=failed\nResult=exit-code\n");
        await waitFor(() => restarted() >= 1, { what: "the restart of the failed unit", timeoutMs: 20_000 });
      } finally {
        await watchdog.stop();
      }
    }, 60_000);
  });
});
