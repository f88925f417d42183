import { describe, expect, it } from "vitest";
import { restartCommand } from "../../../../src/remediation/actions/restart-command.js";

const node = process.execPath;

describe("restart-command (argv, no shell, deadline)", () => {
  it("exit 0 is success", async () => {
    expect(await restartCommand([node, "-e", "process.exit(0)"], { timeoutMs: 10_000 })).toMatchObject({
      ok: true,
    });
  });

  it("a failing exit code is a failure with its stderr", async () => {
    const run = await restartCommand([node, "-e", "console.error('unit not found'); process.exit(3)"], {
      timeoutMs: 10_000,
    });
    expect(run.ok).toBe(false);
    expect(run.error).toMatch(/exit code 3: unit not found/);
  });

  it("a hanging program is stopped at the deadline", async () => {
    const run = await restartCommand([node, "-e", "setInterval(() => {}, 1000)"], { timeoutMs: 200 });
    expect(run.ok).toBe(false);
    expect(run.error).toMatch(/timed out/);
  });

  it("arguments are never interpreted by a shell", async () => {
    const run = await restartCommand(
      [node, "-e", "process.exit(process.argv[1] === '$(reboot); *' ? 0 : 1)", "$(reboot); *"],
      {
        timeoutMs: 10_000,
      },
    );
    expect(run.ok).toBe(true);
  });

  it("a missing program is a failure, not a throw", async () => {
    const run = await restartCommand(["/nonexistent/restart-ollama"], { timeoutMs: 1000 });
    expect(run.error).toMatch(/could not start/);
  });
});
