import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import bcrypt from "bcryptjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Answer,
  basicAuth,
  httpsGet,
  makeServerCertificate,
  startFlood,
} from "../../bench/lib/auth-flood.js";
import { spread } from "../../bench/lib/stats.js";
import { sleep } from "../../bench/lib/target.js";
import { type Daemon, startDaemon } from "../faults/daemon.js";

/**
 * Wrong passwords cost a full bcrypt compare each, and only in the real daemon (`dist/cli.js run`,
 * its V8 flags: src/cli/v8-flags.ts) is that compare slow enough to matter: the in-process
 * Watchdog of web-config.test.ts runs with V8's defaults. A flood of them, from anyone who reaches
 * the port, must not delay a balancer's health check (HAProxy's check timeout is 2 s) nor the ticks.
 */
const PASSWORD = "correct horse battery staple";
let dir = "";
let daemon: Daemon | undefined;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "owd-flood-"));
  makeServerCertificate(dir);
  writeFileSync(
    join(dir, "web.yml"),
    `tls_server_config: { cert_file: server.crt, key_file: server.key }\nbasic_auth_users:\n  prometheus: ${bcrypt.hashSync(PASSWORD, 10)}\n`,
  );
  writeFileSync(
    join(dir, "config.yaml"),
    [
      "interval: 250ms",
      "listen: 127.0.0.1:0",
      `stateDir: ${join(dir, "state")}`,
      `webConfig: ${join(dir, "web.yml")}`,
      "targets:",
      "  - { name: default, url: http://127.0.0.1:9, restart: { command: { argv: [/bin/true] } } }",
      "remediation: { dryRun: true }",
      "gpu: { backend: none }",
    ].join("\n"),
  );
});

afterAll(async () => {
  await daemon?.kill();
  rmSync(dir, { recursive: true, force: true });
});

describe("a wrong-password flood against the real daemon (TLS + basic auth)", () => {
  it("20 concurrent wrong passwords for 5 s: the right ones answer within 1 s each, the ticks go on", async () => {
    daemon = startDaemon(join(dir, "config.yaml"));
    const url = await daemon.url();
    const ca = readFileSync(join(dir, "ca.pem"));
    const status = (): Promise<Answer> =>
      httpsGet(`${url}/api/status`, {
        ca,
        authorization: basicAuth("prometheus", PASSWORD),
        timeoutMs: 10_000,
      }).catch((error: Error) => ({ status: 0, body: error.message, ms: 10_000 }));
    // Verified once (a full compare), then remembered, as for a balancer checking every 2 s.
    expect((await status()).status).toBe(200);

    const flood = startFlood(`${url}/api/status`, { ca, user: "prometheus", concurrency: 20 });
    const answers: Answer[] = [];
    const floodUntil = performance.now() + 5000;
    while (performance.now() < floodUntil) {
      answers.push(await status());
      await sleep(200);
    }
    const floodAnswers = await flood.stop();

    const latency = spread(answers.map((a) => a.ms));
    const ticks = new Set(answers.map((a) => (a.status === 200 ? JSON.parse(a.body).lastTickAt : null)));
    ticks.delete(null);
    const summary = `right password: ${answers.length} requests, p50 ${latency?.median.toFixed(0)} ms, max ${latency?.max.toFixed(0)} ms; ${ticks.size} distinct lastTickAt; flood answers ${JSON.stringify(floodAnswers)}`;
    console.log(summary);
    expect(
      answers.map((a) => a.status).filter((s) => s !== 200),
      summary,
    ).toEqual([]);
    expect(latency?.max, summary).toBeLessThan(1000);
    // At 250 ms a tick, ≈ 20 over the flood; a starved loop ticks a few times at most.
    expect(ticks.size, summary).toBeGreaterThanOrEqual(10);
    expect(floodAnswers["200"], summary).toBeUndefined();
    expect(floodAnswers["401"], summary).toBeGreaterThan(0);
  });
});
