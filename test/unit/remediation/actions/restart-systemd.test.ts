import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { restartSystemd } from "../../../../src/remediation/actions/restart-systemd.js";

describe("restart-systemd with a fake systemctl", () => {
  let dir: string;
  let record: string;

  function fakeSystemctl(exitCode: number, stderr = ""): string {
    const path = join(dir, "systemctl");
    writeFileSync(
      path,
      `#!/bin/sh\necho "$@" > "${record}"\n${stderr ? `echo "${stderr}" >&2\n` : ""}exit ${exitCode}\n`,
    );
    chmodSync(path, 0o755);
    return path;
  }

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "systemctl-"));
    record = join(dir, "argv");
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("runs `systemctl restart <unit>` (injected program)", async () => {
    const run = await restartSystemd("ollama.service", { systemctl: fakeSystemctl(0) });
    expect(run).toMatchObject({ ok: true });
    expect(readFileSync(record, "utf8").trim()).toBe("restart ollama.service");
  });

  it("finds systemctl on PATH", async () => {
    fakeSystemctl(0);
    const run = await restartSystemd("ollama.service", {
      env: { ...process.env, PATH: `${dir}:${process.env.PATH}` },
    });
    expect(run.ok).toBe(true);
    expect(readFileSync(record, "utf8").trim()).toBe("restart ollama.service");
  });

  it("a failed job is a failure with systemctl's message", async () => {
    const run = await restartSystemd("ollama.service", {
      systemctl: fakeSystemctl(1, "Job for ollama.service failed because the control process exited"),
    });
    expect(run.ok).toBe(false);
    expect(run.error).toMatch(/exit code 1: Job for ollama.service failed/);
  });
});
