import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Notice } from "../../src/notify/notice.js";
import { MODEL, type Scenario, startScenario } from "../support/scenario.js";
import { waitFor } from "../support/wait.js";
import { type HttpReceiver, type SmtpReceiver, startHttpReceiver, startSmtpReceiver } from "./receivers.js";

/**
 * The whole path: a real watchdog watching the simulator, a real freeze, and the messages as the
 * receivers get them — in order, with the incident's numbers and a link to its report.
 */
let http: HttpReceiver;
let smtp: SmtpReceiver;
let scenario: Scenario | undefined;

beforeAll(async () => {
  http = await startHttpReceiver();
  smtp = await startSmtpReceiver({ user: "watchdog", password: "scenario-password" });
});
afterEach(async () => {
  await scenario?.stop();
  scenario = undefined;
  http.received.length = 0;
});
afterAll(async () => {
  await http.stop();
  await smtp.stop();
});

function notifyConfig(publicUrl?: string) {
  return {
    notify: {
      ...(publicUrl ? { publicUrl } : {}),
      timeout: "10s",
      retry: { attempts: 3, backoff: "50ms", maxBackoff: "200ms" },
      digest: false,
      receivers: [
        { name: "hook", webhook: { url: `${http.url}/hook` } },
        {
          name: "oncall",
          events: ["detected", "exhausted"],
          email: {
            host: "127.0.0.1",
            port: smtp.port,
            caFile: smtp.caFile,
            user: "watchdog",
            passwordEnv: "OW_TEST_SMTP_PASSWORD",
            from: "watchdog@sim.example",
            to: ["oncall@example.com"],
          },
        },
      ],
    },
  };
}

const kinds = () => http.received.map((r) => r.json().kind);

describe("notifications from a real watchdog", () => {
  it("F1 runner deadlock: detected, kill-runner (why), healed (time to recover) — in order, each linking its report", async () => {
    process.env.OW_TEST_SMTP_PASSWORD = "scenario-password";
    scenario = await startScenario({ config: notifyConfig() });
    await scenario.loadModelAndSettle();
    expect(http.received).toEqual([]); // a healthy start says nothing
    const mailsBefore = smtp.mails.length;
    scenario.simulator.setFault({ name: "runner-deadlock", model: MODEL });
    await waitFor(() => kinds().includes("healed"), { timeoutMs: 30_000, what: "the healed message" });

    expect(kinds()).toEqual(["detected", "action", "healed"]);
    const [detected, action, healed] = http.received.map((r) => r.json() as unknown as Notice);
    const id = detected?.incident?.id ?? "";
    for (const message of [detected, action, healed]) {
      expect(message?.target).toBe("sim");
      expect(message?.incident?.id).toBe(id);
      expect(message?.link).toBe(`${scenario.watchdog.url}/#incident=${encodeURIComponent(id)}`);
    }
    expect(detected).toMatchObject({ severity: "critical", title: "Ollama sim is frozen" });
    expect(detected?.text).toMatch(/^Why: .*canary/m);
    expect(action).toMatchObject({ title: "Watchdog: kill-runner done on Ollama sim" });
    expect(action?.text).toMatch(/^Why: .+\.$/m);
    expect(action?.text).toMatch(/^Budget left: 2 of 3 actions\.$/m);
    expect(healed?.title).toMatch(/^Ollama sim is healthy again \(after \d[\d.]* (ms|s|min)/);
    expect(healed?.text).toMatch(/^Healed by kill-runner; time to recover: /m);
    expect(healed?.incident?.outcome).toBe("healed");

    // the link's incident is the one the live page serves
    const report = await fetch(`${scenario.watchdog.url}/api/incidents/${encodeURIComponent(id)}`);
    expect(report.status).toBe(200);
    expect(((await report.json()) as { markdown: string }).markdown).toContain("kill-runner");

    // the e-mail receiver only asked for detected (and exhausted)
    await waitFor(() => smtp.mails.length > mailsBefore, { what: "the mail" });
    expect(smtp.mails.slice(mailsBefore).map((m) => /^Subject: (.*)$/m.exec(m.raw)?.[1])).toEqual([
      "Ollama sim is frozen",
    ]);

    const metrics = await (await fetch(`${scenario.watchdog.url}/metrics`)).text();
    expect(metrics).toContain('ollama_watchdog_notifications_total{receiver="hook",result="sent"} 3');
    expect(metrics).toContain('ollama_watchdog_notifications_total{receiver="oncall",result="sent"} 1');
    expect(metrics).toContain('ollama_watchdog_notifications_total{receiver="hook",result="failed"} 0');
  });

  it("F8 wedged GPU: the actions fail to heal, then exhausted tells a person what to do", async () => {
    process.env.OW_TEST_SMTP_PASSWORD = "scenario-password";
    scenario = await startScenario({ config: notifyConfig("https://watchdog.example.org/") });
    await scenario.loadModelAndSettle();
    const mailsBefore = smtp.mails.length;
    scenario.simulator.setFault({ name: "wedged-gpu" });
    await waitFor(() => kinds().includes("exhausted"), { timeoutMs: 40_000, what: "the exhausted message" });
    const messages = http.received.map((r) => r.json() as unknown as Notice);
    expect(kinds()[0]).toBe("detected");
    expect(kinds().at(-1)).toBe("exhausted");
    expect(
      kinds()
        .slice(1, -1)
        .every((k) => k === "action"),
    ).toBe(true);
    const exhausted = messages.at(-1);
    expect(exhausted?.title).toBe("Watchdog gave up on Ollama sim: a person must act");
    expect(exhausted?.text).toMatch(/^Do: /m);
    expect(exhausted?.link).toMatch(/^https:\/\/watchdog\.example\.org\/#incident=/);
    await waitFor(() => smtp.mails.length >= mailsBefore + 2, { what: "detected and exhausted mails" });
    const subjects = smtp.mails.slice(mailsBefore).map((m) => /^Subject: (.*)$/m.exec(m.raw)?.[1]);
    expect(subjects).toEqual(["Ollama sim is frozen", "Watchdog gave up on Ollama sim: a person must act"]);
  });
});
