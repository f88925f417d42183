import { describe, expect, it } from "vitest";
import { parseConfig } from "../../../src/config/load.js";
import type { TargetConfig } from "../../../src/config/schema.js";
import { ManualClock } from "../../../src/core/clock.js";
import type { ActionModule } from "../../../src/remediation/actions/action.js";
import { ACTIONS, createExecutor } from "../../../src/remediation/executor.js";

function setup(doc: Record<string, unknown> = {}) {
  const config = parseConfig(doc, {});
  return { config, target: config.targets[0] as TargetConfig, clock: new ManualClock() };
}

const restart = { kind: "restart" as const, reason: "frozen" };

describe("executor", () => {
  it("one registry list: each command and restart kind maps to its module", () => {
    const kinds = [
      { systemd: { unit: "ollama.service" } },
      { docker: { container: "ollama" } },
      { command: { argv: ["/bin/true"] } },
    ];
    const picked = kinds.map((restartKind) => {
      const { target } = setup({ targets: [{ name: "t", url: "http://127.0.0.1:1", restart: restartKind }] });
      return ACTIONS.find((a) => a.handles(restart, target))?.name;
    });
    expect(picked).toEqual(["restart-systemd", "restart-docker", "restart-command"]);
    const { target } = setup();
    expect(
      ACTIONS.find((a) => a.handles({ kind: "kill-runner", model: "m", pid: 1, reason: "" }, target))?.name,
    ).toBe("kill-runner");
  });

  it("dry run decides and records but executes nothing", async () => {
    const { config, target, clock } = setup({ remediation: { dryRun: true } });
    let ran = false;
    const spy: ActionModule = {
      name: "spy",
      handles: () => true,
      deadlineMs: () => 1000,
      run: async () => {
        ran = true;
        return { ok: true };
      },
    };
    const outcome = await createExecutor({ config, target, clock, actions: [spy] }).execute(restart);
    expect(ran).toBe(false);
    expect(outcome).toMatchObject({ action: "restart", result: "dry-run", startedWall: clock.now() });
    expect(outcome.detail).toMatch(/would restart Ollama/);
  });

  it("returns errors as data: a failing, a throwing and a missing module", async () => {
    const { config, target, clock } = setup();
    const failing: ActionModule = {
      name: "f",
      handles: () => true,
      deadlineMs: () => 1000,
      run: async () => ({ ok: false, error: "nope" }),
    };
    const throwing: ActionModule = {
      name: "t",
      handles: () => true,
      deadlineMs: () => 1000,
      run: async () => {
        throw new Error("boom");
      },
    };
    const run = (actions: ActionModule[]) =>
      createExecutor({ config, target, clock, actions }).execute(restart);
    expect(await run([failing])).toMatchObject({ result: "failure", error: "nope" });
    expect(await run([throwing])).toMatchObject({ result: "failure", error: "t threw: boom" });
    expect(await run([])).toMatchObject({
      result: "failure",
      error: "no action module handles restart here",
    });
  });

  it("runs the configured restart command and times it", async () => {
    const { config, target, clock } = setup({
      targets: [
        {
          name: "t",
          url: "http://127.0.0.1:1",
          restart: { command: { argv: [process.execPath, "-e", ""] } },
        },
      ],
    });
    const outcome = await createExecutor({ config, target, clock }).execute(restart);
    expect(outcome).toMatchObject({ action: "restart", result: "success" });
    expect(outcome.durationMs).toBeGreaterThanOrEqual(0);
  });
});
