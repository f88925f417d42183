/**
 * The systemctl stand-in a simulator's supervisor writes (`supervisor.systemctlPath`), run as a
 * process the way the watchdog's systemd restart runs it, and the unit states it reports.
 */
import { afterEach, describe, expect, it } from "vitest";
import { execArgv } from "../../src/core/exec.js";
import { operatorStoppedUnit, systemdPreflight } from "../../src/remediation/actions/restart-systemd.js";
import { type Supervisor, startSupervisor } from "../../src/simulator/index.js";
import { unitProperties } from "../../src/simulator/supervisor.js";
import type { Simulator } from "../../src/simulator/types.js";
import { waitFor } from "../support/wait.js";
import { generateOnce, startFast, stopAll } from "./support.js";

const supervisors: Supervisor[] = [];
afterEach(async () => {
  await Promise.all(supervisors.splice(0).map((s) => s.close()));
  await stopAll();
});

async function supervised(restartSecMs?: number): Promise<{ simulator: Simulator; supervisor: Supervisor }> {
  let supervisor: Supervisor | undefined;
  const simulator = await startFast({ onCrash: () => supervisor?.mainProcessExited() });
  supervisor = await startSupervisor(simulator, restartSecMs === undefined ? {} : { restartSecMs });
  supervisors.push(supervisor);
  return { simulator, supervisor };
}

const systemctl = (supervisor: Supervisor, ...args: string[]) =>
  execArgv([supervisor.systemctlPath, ...args], { timeoutMs: 10_000 });

describe("the systemctl stand-in", () => {
  it("show: the properties the watchdog's preflight reads, in systemd's format and order", async () => {
    const { supervisor } = await supervised();
    const show = await systemctl(
      supervisor,
      "show",
      "ollama.service",
      "--property=ActiveState,SubState,Result",
    );
    expect(show.exitCode).toBe(0);
    expect(show.stdout).toBe("Result=success\nActiveState=active\nSubState=running\n");
    expect(operatorStoppedUnit("ollama.service", show.stdout)).toBeUndefined();

    const spelled = await systemctl(
      supervisor,
      "show",
      "-p",
      "SubState",
      "-p",
      "LoadState",
      "ollama",
      "--value",
    );
    expect(spelled.stdout).toBe("loaded\nrunning\n");
    // An unknown unit is not an error for `show`: systemd answers for a not-found unit.
    const unknown = await systemctl(supervisor, "show", "nope.service", "-p", "LoadState,ActiveState");
    expect(unknown).toMatchObject({ exitCode: 0, stdout: "LoadState=not-found\nActiveState=inactive\n" });
  });

  it("restart: blocks until the simulator is back (runners gone), exits 0; an unknown unit exits 5", async () => {
    const { simulator, supervisor } = await supervised();
    expect((await generateOnce(simulator)).status).toBe(200);
    const runnerPid = simulator.runners()[0]?.pid;
    expect(runnerPid).toBeDefined();

    const restart = await systemctl(supervisor, "restart", "ollama");
    expect(restart.exitCode).toBe(0);
    expect(supervisor.restarts).toHaveLength(1);
    expect(simulator.phase()).toBe("running");
    expect(simulator.runners().map((r) => r.pid)).not.toContain(runnerPid);
    expect((await fetch(`${simulator.url}/api/version`)).ok).toBe(true);

    const unknown = await systemctl(supervisor, "restart", "ollama-typo.service");
    expect(unknown.exitCode).toBe(5);
    expect(unknown.stderr).toBe(
      "Failed to restart ollama-typo.service: Unit ollama-typo.service not found.\n",
    );
    expect(supervisor.restarts).toHaveLength(1);
    const verb = await systemctl(supervisor, "frobnicate", "ollama");
    expect(verb).toMatchObject({ exitCode: 1, stderr: "Unknown command verb 'frobnicate'.\n" });
  });

  it("a crash without Restart=: failed/exit-code, which the watchdog's preflight restarts; a restart resets Result", async () => {
    const { simulator, supervisor } = await supervised();
    simulator.setFault({ name: "crash" });
    await waitFor(() => simulator.phase() === "crashed");
    const show = await systemctl(supervisor, "show", "ollama.service", "-p", "ActiveState,SubState,Result");
    expect(show.stdout).toBe("Result=exit-code\nActiveState=failed\nSubState=failed\n");
    expect(await systemdPreflight("ollama.service", { systemctl: supervisor.systemctlPath })).toBeUndefined();

    expect((await systemctl(supervisor, "restart", "ollama.service")).exitCode).toBe(0);
    const after = await systemctl(supervisor, "show", "ollama.service", "-p", "ActiveState,Result");
    expect(after.stdout).toBe("Result=success\nActiveState=active\n");
  });

  it("Restart=always: systemd starts a crashed server again by itself after RestartSec", async () => {
    // Ollama's RestartSec=3: long enough to see the unit waiting to restart.
    const { simulator, supervisor } = await supervised(3000);
    simulator.setFault({ name: "crash" });
    const pending = await waitFor(async () => {
      const show = await systemctl(supervisor, "show", "ollama.service", "-p", "ActiveState,SubState,Result");
      return show.stdout.includes("auto-restart") ? show.stdout : undefined;
    });
    expect(pending).toBe("Result=exit-code\nActiveState=activating\nSubState=auto-restart\n");
    await waitFor(() => simulator.phase() === "running", {
      timeoutMs: 10_000,
      what: "the automatic restart",
    });
    expect(supervisor.autoRestarts).toHaveLength(1);
    expect((await fetch(`${simulator.url}/api/version`)).ok).toBe(true);
    expect((await generateOnce(simulator)).status).toBe(200);
  });
});

describe("unitProperties", () => {
  it("maps the server's phase to what systemd reports for a Type=simple unit", () => {
    const base = { restartingFromDown: false, autoRestartPending: false, result: "success" as const };
    expect(unitProperties({ ...base, phase: "restarting" })).toEqual({
      ActiveState: "deactivating",
      SubState: "stop-sigterm",
      Result: "success",
    });
    expect(unitProperties({ ...base, phase: "restarting", restartingFromDown: true }).ActiveState).toBe(
      "activating",
    );
    // An operator's `systemctl stop`: the watchdog's preflight leaves it stopped.
    const stopped = unitProperties({ ...base, phase: "stopped" });
    expect(stopped).toEqual({ ActiveState: "inactive", SubState: "dead", Result: "success" });
    const show = Object.entries(stopped)
      .map(([k, v]) => `${k}=${v}`)
      .join("\n");
    expect(operatorStoppedUnit("ollama.service", show)).toMatch(/stopped by its operator/);
  });
});
