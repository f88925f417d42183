import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Notice } from "../../src/notify/notice.js";
import { type Scenario, startScenario } from "../support/scenario.js";
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
  it("a crash: detected (down), restart (why), healed (time to recover) — in order, each linking its report", async () => {
    process.env.OW_TEST_SMTP_PASSWORD = "scenario-password";
    scenario = await startScenario({ config: notifyConfig() });
    await scenario.loadModelAndSettle();
    expect(http.received).toEqual([]); // a healthy start says nothing
    const mailsBefore = smtp.mails.length;
    scenario.simulator.setFault({ name: "crash" });
    await waitFor(() => kinds().includes("healed"), { timeoutMs: 40_000, what: "the healed message" }).catch(
      (error: Error) => {
        const s = scenario;
        throw new Error(
          `${error.message}; received ${JSON.stringify(kinds())}; states ${[...new Set(s?.states())].join(",")}; actions ${JSON.stringify(s?.actions())}`,
        );
      },
    );

    // detected first, healed last, the restart between; on a loaded machine the restart can outlast
    // the ladder, and then `exhausted` comes before the restart's result (as it happened)
    expect(kinds()[0]).toBe("detected");
    expect(kinds().at(-1)).toBe("healed");
    expect(kinds().filter((k) => k === "action")).toEqual(["action"]);
    expect(kinds().length).toBeLessThanOrEqual(4);
    const all = http.received.map((r) => r.json() as unknown as Notice);
    const byKind = (kind: string) => all.find((n) => n.kind === kind);
    const [detected, action, healed] = [byKind("detected"), byKind("action"), byKind("healed")];
    const id = detected?.incident?.id ?? "";
    for (const message of all) {
      expect(message?.target).toBe("sim");
      expect(message?.incident?.id).toBe(id);
      expect(message?.link).toBe(`${scenario.watchdog.url}/#incident=${encodeURIComponent(id)}`);
    }
    expect(detected).toMatchObject({ severity: "critical", title: "Ollama sim is down" });
    expect(detected?.text).toMatch(/^Why: .*(answer|connect|refused)/im);
    // (under heavy load the restart command can outlast its own deadline and count as failed)
    expect(action?.title).toMatch(/^Watchdog: restart (done|failed) on Ollama sim$/);
    expect(action?.text).toMatch(/^Why: .+\.$/m);
    expect(action?.text).toMatch(/^Budget left: 2 of 3 actions\.$/m);
    expect(healed?.title).toMatch(/^Ollama sim is healthy again \(after \d[\d.]* (ms|s|min)/);
    expect(healed?.text).toMatch(
      /^(Healed by restart|Recovered by itself|Healthy again after .*); time to recover: /m,
    );
    expect(healed?.incident?.outcome).not.toBe("open");

    // the link's incident is the one the live page serves
    const report = await fetch(`${scenario.watchdog.url}/api/incidents/${encodeURIComponent(id)}`);
    expect(report.status).toBe(200);
    expect(((await report.json()) as { markdown: string }).markdown).toContain("restart");

    // the e-mail receiver only asked for detected (and exhausted)
    await waitFor(() => smtp.mails.length > mailsBefore, { what: "the mail" });
    expect(smtp.mails.slice(mailsBefore).map((m) => /^Subject: (.*)$/m.exec(m.raw)?.[1])).toEqual([
      "Ollama sim is down",
    ]);

    const metrics = await (await fetch(`${scenario.watchdog.url}/metrics`)).text();
    expect(metrics).toContain(
      `ollama_watchdog_notifications_total{receiver="hook",result="sent"} ${all.length}`,
    );
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
