import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as v from "valibot";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/load.js";
import { systemClock } from "../../src/core/clock.js";
import { createLogger } from "../../src/core/log.js";
import type { Notice } from "../../src/notify/notice.js";
import { Notifications } from "../../src/notify/notifications.js";
import { Registry } from "../../src/telemetry/prom.js";
import { waitFor } from "../support/wait.js";
import {
  closedPortUrl,
  type HttpReceiver,
  type SmtpReceiver,
  startHttpReceiver,
  startSmtpReceiver,
} from "./receivers.js";

/** Fast retries: the policy is the same, only scaled down (a generous deadline: the machine is shared). */
const FAST = {
  timeout: "10s",
  retry: { attempts: 3, backoff: "20ms", maxBackoff: "100ms" },
  digest: false,
};

const SLACK_TOKEN = "T000/B000/slack-secret-token-1234";
const NTFY_TOPIC = "ollama-alerts-secret-topic-5678";
const NTFY_TOKEN = "tk_ntfy-secret-token-9012";
const SMTP_PASSWORD = "smtp-secret-password-3456";
const SECRETS = [SLACK_TOKEN, NTFY_TOPIC, NTFY_TOKEN, SMTP_PASSWORD];

const logLines: string[] = [];
const log = createLogger({ level: "debug", destination: { write: (line: string) => logLines.push(line) } });

let dir: string;
let http: HttpReceiver;
let smtp: SmtpReceiver;
const running: Notifications[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "ow-notify-"));
  http = await startHttpReceiver();
  smtp = await startSmtpReceiver({ user: "watchdog", password: SMTP_PASSWORD });
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((n) => n.stop(1000)));
  http.received.length = 0;
  http.attempts = 0;
  http.mode = { status: 200, delayMs: 0 };
});

afterAll(async () => {
  await http.stop();
  await smtp.stop();
  rmSync(dir, { recursive: true, force: true });
  // no log line of this file, failures included, shows a secret
  const all = logLines.join("");
  expect(logLines.length).toBeGreaterThan(10);
  for (const secret of SECRETS) expect(all).not.toContain(secret);
});

function secretFile(name: string, value: string): string {
  const path = join(dir, name);
  writeFileSync(path, `${value}\n`, { mode: 0o600 });
  return path;
}

function start(notify: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) {
  const registry = new Registry();
  const config = parseConfig({ notify: { ...FAST, ...notify } }, {}).notify;
  const notifications = new Notifications({
    config,
    listenUrl: "http://127.0.0.1:11464",
    clock: systemClock,
    log,
    registry,
    env,
  });
  running.push(notifications);
  const counts = async () => {
    const metric = (await registry.getMetricsAsJSON()).find(
      (m) => m.name === "ollama_watchdog_notifications_total",
    );
    const out: Record<string, number> = {};
    for (const value of (metric?.values ?? []) as Array<{ labels: Record<string, string>; value: number }>) {
      if (value.value) out[`${value.labels.receiver}/${value.labels.result}`] = value.value;
    }
    return out;
  };
  return { notifications, counts };
}

function notice(overrides: Partial<Notice> = {}): Notice {
  return {
    kind: "detected",
    severity: "critical",
    title: "Ollama default is frozen",
    text: "Why: canary on llama3.2 got no token for 75 s; GPU idle.",
    link: "http://gpu-box:11464/#incident=20260101T000000Z-default",
    target: "default",
    incident: {
      id: "20260101T000000Z-default",
      title: "default: frozen — open",
      outcome: "open",
      openedAt: "2026-01-01T00:00:00.000Z",
    },
    at: "2026-01-01T00:01:15.000Z",
    ...overrides,
  };
}

describe("receivers, each against a real receiver on loopback", () => {
  it("webhook, Slack, Discord and ntfy each get the notice in their own format", async () => {
    const { notifications, counts } = start(
      {
        receivers: [
          {
            name: "hook",
            webhook: { urlFile: secretFile("hook-url", `${http.url}/hook`), headers: { "x-team": "ml" } },
          },
          { name: "team", slack: { urlEnv: "SLACK_URL" } },
          { name: "gamers", discord: { url: `${http.url}/discord` } },
          { name: "phone", ntfy: { url: `${http.url}/${NTFY_TOPIC}`, tokenEnv: "NTFY_TOKEN" } },
        ],
      },
      { SLACK_URL: `${http.url}/services/${SLACK_TOKEN}`, NTFY_TOKEN },
    );
    notifications.publish(notice());
    await waitFor(() => http.received.length === 4, { what: "four deliveries" });
    const byPath = (p: string) => http.received.find((r) => r.path === p);

    const hook = byPath("/hook");
    expect(hook?.headers["content-type"]).toBe("application/json");
    expect(hook?.headers["x-team"]).toBe("ml");
    expect(hook?.json()).toMatchObject({
      source: "ollama-watchdog",
      version: 1,
      kind: "detected",
      severity: "critical",
      title: "Ollama default is frozen",
      target: "default",
      link: "http://gpu-box:11464/#incident=20260101T000000Z-default",
      incident: { id: "20260101T000000Z-default", outcome: "open" },
    });

    expect(byPath(`/services/${SLACK_TOKEN}`)?.json()).toEqual({
      text: "*Ollama default is frozen*\nWhy: canary on llama3.2 got no token for 75 s; GPU idle.\nReport: http://gpu-box:11464/#incident=20260101T000000Z-default",
    });
    expect(byPath("/discord")?.json()).toEqual({
      content:
        "**Ollama default is frozen**\nWhy: canary on llama3.2 got no token for 75 s; GPU idle.\nReport: http://gpu-box:11464/#incident=20260101T000000Z-default",
      allowed_mentions: { parse: [] },
    });

    const push = byPath("/");
    expect(push?.headers.authorization).toBe(`Bearer ${NTFY_TOKEN}`);
    expect(push?.json()).toMatchObject({
      topic: NTFY_TOPIC,
      title: "Ollama default is frozen",
      message: "Why: canary on llama3.2 got no token for 75 s; GPU idle.",
      priority: 5,
      tags: ["rotating_light"],
      click: "http://gpu-box:11464/#incident=20260101T000000Z-default",
    });
    await waitFor(async () => Object.keys(await counts()).length === 4, { what: "counted" });
    expect(await counts()).toEqual({ "hook/sent": 1, "team/sent": 1, "gamers/sent": 1, "phone/sent": 1 });
  });

  it("e-mail goes over STARTTLS with authentication to a real SMTP server", async () => {
    const { notifications, counts } = start({
      receivers: [
        {
          name: "oncall",
          email: {
            host: "127.0.0.1",
            port: smtp.port,
            caFile: smtp.caFile,
            user: "watchdog",
            passwordFile: secretFile("smtp-password", SMTP_PASSWORD),
            from: "watchdog@gpu-box.example",
            to: ["oncall@example.com", "ml@example.com"],
          },
        },
      ],
    });
    const before = smtp.mails.length;
    notifications.publish(notice());
    await waitFor(() => smtp.mails.length > before, { what: "a mail" });
    const mail = smtp.mails.at(-1);
    expect(mail).toMatchObject({
      from: "watchdog@gpu-box.example",
      to: ["oncall@example.com", "ml@example.com"],
      user: "watchdog",
      secure: true, // upgraded by STARTTLS before AUTH and DATA
    });
    expect(mail?.raw).toMatch(/^Subject: Ollama default is frozen$/m);
    expect(mail?.raw).toMatch(/^X-Ollama-Watchdog-Event: detected$/m);
    expect(mail?.raw).toContain("Report: http://gpu-box:11464/#incident=20260101T000000Z-default");
    // the server has the mail a moment before the client has its answer
    await waitFor(async () => (await counts())["oncall/sent"] === 1, { what: "counted sent" });
    expect(await counts()).toEqual({ "oncall/sent": 1 });
  });

  it("a wrong SMTP password fails at once (no retry) and the error shows no password", async () => {
    const wrong = "not-the-password-7890";
    SECRETS.push(wrong);
    const { notifications, counts } = start(
      {
        receivers: [
          {
            name: "oncall",
            email: {
              host: "127.0.0.1",
              port: smtp.port,
              caFile: smtp.caFile,
              user: "watchdog",
              passwordEnv: "SMTP_PASSWORD",
              from: "watchdog@gpu-box.example",
              to: ["oncall@example.com"],
            },
          },
        ],
      },
      { SMTP_PASSWORD: wrong },
    );
    const [result] = await notifications.sendTest();
    expect(result).toMatchObject({ receiver: "oncall", kind: "email", ok: false });
    expect(result?.error).toMatch(/EAUTH/);
    expect(result?.error).not.toContain(wrong);
    notifications.publish(notice());
    await waitFor(async () => (await counts())["oncall/failed"] === 1, { what: "failed" });
    expect((await counts())["oncall/retried"]).toBeUndefined();
  });
});

describe("delivery never blocks and never gives up silently", () => {
  it("a receiver answering 500 is retried with back-off, then counted failed; later messages still go", async () => {
    http.mode.status = 500;
    const { notifications, counts } = start({
      receivers: [{ name: "hook", webhook: { url: `${http.url}/hook` } }],
    });
    notifications.publish(notice());
    await waitFor(async () => (await counts())["hook/failed"] === 1, { what: "failed after retries" });
    expect(http.attempts).toBe(3);
    expect(await counts()).toEqual({ "hook/retried": 2, "hook/failed": 1 });
    const failure = logLines
      .map((l) => JSON.parse(l))
      .find((l) => l.result === "failed" && l.receiver === "hook");
    expect(failure).toMatchObject({ level: "error", kind: "webhook", event: "detected", attempt: 3 });
    expect(failure.error).toBe("HTTP 500: receiver broken");

    http.mode.status = 200;
    notifications.publish(
      notice({ kind: "healed", severity: "info", title: "Ollama default is healthy again" }),
    );
    await waitFor(() => http.received.length === 1, { what: "the next message" });
    expect(http.received[0]?.json().kind).toBe("healed");
  });

  it("a 4xx answer is not retried (a retry cannot change it)", async () => {
    http.mode.status = 404;
    const { notifications, counts } = start({
      receivers: [{ name: "hook", webhook: { url: `${http.url}/gone` } }],
    });
    notifications.publish(notice());
    await waitFor(async () => (await counts())["hook/failed"] === 1, { what: "failed" });
    expect(http.attempts).toBe(1);
  });

  it("a slow receiver times out per attempt; publish returns before any answer; the others are not held up", async () => {
    http.mode.delayMs = 5_000;
    const fast = await startHttpReceiver();
    try {
      const { notifications, counts } = start({
        timeout: "300ms",
        receivers: [
          { name: "slow", webhook: { url: `${http.url}/slow` } },
          { name: "fast", webhook: { url: `${fast.url}/fast` } },
        ],
      });
      notifications.publish(notice());
      expect(http.received).toHaveLength(0); // enqueued, not sent: the caller never waits
      await waitFor(() => fast.received.length === 1, { what: "the fast receiver" });
      expect((await counts())["slow/sent"]).toBeUndefined();
      await waitFor(async () => (await counts())["slow/failed"] === 1, { what: "the slow one given up" });
      expect(await counts()).toMatchObject({ "slow/retried": 2, "slow/failed": 1, "fast/sent": 1 });
      const timedOut = logLines
        .map((l) => JSON.parse(l))
        .filter((l) => l.receiver === "slow" && l.result === "retried");
      expect(timedOut[0]?.error).toBe("timed out");
    } finally {
      await fast.stop();
    }
  });

  it("a receiver that is down: connection refused, retried, counted; its URL (a secret) is not logged", async () => {
    const down = await closedPortUrl();
    const secretUrl = `${down}/services/${SLACK_TOKEN}`;
    const { notifications, counts } = start({ receivers: [{ name: "team", slack: { url: secretUrl } }] });
    notifications.publish(notice());
    await waitFor(async () => (await counts())["team/failed"] === 1, { what: "failed" });
    const lines = logLines
      .map((l) => JSON.parse(l))
      .filter((l) => l.receiver === "team" && l.result === "failed");
    expect(lines.at(-1)?.error).toBe("ECONNREFUSED");
    expect(logLines.join("")).not.toContain(SLACK_TOKEN);
  });

  it("the same message within the dedup window is sent once; beyond the rate limit messages are dropped", async () => {
    const { notifications, counts } = start({
      rateLimit: { max: 2, window: "1h" },
      receivers: [{ name: "hook", webhook: { url: `${http.url}/hook` } }],
    });
    notifications.publish(notice());
    notifications.publish(notice());
    notifications.publish(notice({ kind: "action", title: "Watchdog: kill-runner done on Ollama default" }));
    notifications.publish(notice({ kind: "healed", title: "Ollama default is healthy again" }));
    await waitFor(() => http.received.length === 2, { what: "two deliveries" });
    await waitFor(async () => (await counts())["hook/sent"] === 2, { what: "counted" });
    expect(await counts()).toEqual({ "hook/sent": 2, "hook/deduplicated": 1, "hook/rate-limited": 1 });
    expect(http.received.map((r) => r.json().kind)).toEqual(["detected", "action"]);
  });

  it("a full queue drops its oldest message and counts it", async () => {
    http.mode.delayMs = 150;
    const { notifications, counts } = start({
      queueSize: 2,
      timeout: "2s",
      receivers: [{ name: "hook", webhook: { url: `${http.url}/hook` } }],
    });
    for (let i = 1; i <= 5; i++) notifications.publish(notice({ title: `message ${i}` }));
    await waitFor(async () => (await counts())["hook/sent"] === 3, { what: "three sent" });
    // message 1 was in flight; 2 and 3 were pushed out by 4 and 5
    expect(http.received.map((r) => r.json().title)).toEqual(["message 1", "message 4", "message 5"]);
    expect(await counts()).toEqual({ "hook/sent": 3, "hook/dropped": 2 });
  });

  it("a secret that cannot be read: every send fails naming the file or variable, the daemon goes on", async () => {
    const { notifications } = start({
      receivers: [
        { name: "hook", webhook: { urlFile: join(dir, "missing") } },
        { name: "team", slack: { urlEnv: "NOT_SET" } },
      ],
    });
    const results = await notifications.sendTest();
    expect(results).toEqual([
      { receiver: "hook", kind: "webhook", ok: false, error: `urlFile ${join(dir, "missing")}: ENOENT` },
      {
        receiver: "team",
        kind: "slack",
        ok: false,
        error: "urlEnv: the environment variable NOT_SET is not set",
      },
    ]);
  });
});

describe("notify: in the configuration", () => {
  const problems = (notify: unknown): string[] => {
    try {
      parseConfig({ notify }, {});
      return [];
    } catch (error) {
      return (error as { problems: string[] }).problems;
    }
  };

  it("names the key path and the reason of each mistake", () => {
    expect(
      problems({
        receivers: [
          { name: "a", slack: { url: "http://x/1", urlEnv: "X" } },
          { name: "b" },
          { name: "c", email: { host: "h", from: "f", to: [], user: "u" } },
          { name: "d", ntfy: { url: "ftp://x" } },
        ],
        digest: { at: "25:00" },
        timeout: "soon",
      }),
    ).toEqual(
      expect.arrayContaining([
        "notify.receivers.0.slack: expected exactly one of url, urlFile, urlEnv",
        "notify.receivers.1: expected exactly one of webhook, ntfy, slack, discord, email",
        "notify.receivers.2.email.to: at least one recipient",
        "notify.receivers.3.ntfy.url: expected an http:// or https:// URL",
        'notify.timeout: expected a duration like "60s", got "soon"',
      ]),
    );
    expect(problems({ receivers: [{ name: "a", webhook: { url: "http://x", token: "t" } }] })).toEqual([
      "notify.receivers.0.webhook.token: unknown key",
    ]);
    expect(
      problems({
        receivers: [{ name: "a", email: { host: "h", from: "f", to: ["t"], password: "inline" } }],
      }),
    ).toContain("notify.receivers.0.email.password: unknown key");
  });

  it("defaults to no receivers (nothing loaded, nothing sent)", () => {
    const config = parseConfig({}, {});
    expect(config.notify.receivers).toEqual([]);
    expect(v.is(v.object({ at: v.string() }), config.notify.digest)).toBe(true);
  });
});
