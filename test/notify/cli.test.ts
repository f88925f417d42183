import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dump as stringify } from "js-yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI } from "../support/paths.js";
import { closedPortUrl, type HttpReceiver, startHttpReceiver } from "./receivers.js";

let dir: string;
let http: HttpReceiver;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "ow-notify-cli-"));
  http = await startHttpReceiver();
});
afterAll(async () => {
  await http.stop();
  rmSync(dir, { recursive: true, force: true });
});

function notifyTest(notify: unknown, env: NodeJS.ProcessEnv = {}) {
  const file = join(dir, `config-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, stringify({ stateDir: join(dir, "state"), notify }));
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [CLI, "notify", "test", "--config", file],
      { env: { ...process.env, ...env }, timeout: 30_000 },
      (error, stdout, stderr) => resolve({ code: error ? (error.code as number) : 0, stdout, stderr }),
    );
  });
}

describe("ollama-watchdog notify test", () => {
  it("sends a test message to every receiver, reports each, and exits 1 when one failed", async () => {
    const down = await closedPortUrl();
    const secret = "T111/B222/cli-secret-token";
    const result = await notifyTest(
      {
        timeout: "10s",
        receivers: [
          { name: "hook", webhook: { url: `${http.url}/hook` } },
          { name: "team", slack: { urlEnv: "OW_SLACK_URL" } },
        ],
      },
      { OW_SLACK_URL: `${down}/services/${secret}` },
    );
    expect(result.stdout).toMatch(/^ok {4}hook \(webhook\): delivered in \d/m);
    expect(result.stdout).toMatch(/^FAIL {2}team \(slack\): ECONNREFUSED$/m);
    expect(result.stdout).toMatch(/^1 of 2 receivers reached$/m);
    expect(result.stdout + result.stderr).not.toContain(secret);
    expect(result.code).toBe(1);
    const message = http.received.at(-1)?.json();
    expect(message).toMatchObject({ kind: "test", title: "Ollama watchdog: test message" });
  });

  it("exits 0 when every receiver got it", async () => {
    const result = await notifyTest({ receivers: [{ name: "hook", webhook: { url: `${http.url}/hook` } }] });
    expect(result.stdout).toMatch(/^1 of 1 receivers reached$/m);
    expect(result.code).toBe(0);
  });

  it("exits 1 with a hint when no receiver is configured, 2 on a bad notify: key", async () => {
    const none = await notifyTest({});
    expect(none.stderr).toContain("no receivers configured (notify.receivers");
    expect(none.code).toBe(1);
    const bad = await notifyTest({ receivers: [{ name: "x", webhook: {} }] });
    expect(bad.stderr).toContain("notify.receivers.0.webhook: expected exactly one of url, urlFile, urlEnv");
    expect(bad.code).toBe(2);
  });
});
