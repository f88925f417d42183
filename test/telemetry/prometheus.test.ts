/**
 * The harness proven against a real Prometheus and Alertmanager: a tiny HTTP server serves our
 * Telemetry's /metrics for a synthetic snapshot the test mutates the way the daemon does for a
 * freeze its first action does not heal (healthy → frozen → recovering → healthy, with frozenForMs
 * growing from the judgement until healed). Prometheus scrapes it every second with a test copy of
 * the shipped rules whose `for:` is 2s (scaleFor; the shipped `for:` values are what `promtool test
 * rules` checks); OllamaFrozen (on ollama_frozen_duration_seconds) fires while `recovering`,
 * Alertmanager delivers it to a webhook, then it resolves. Every Grafana panel query then
 * runs against the same Prometheus and must return data.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/load.js";
import { systemClock } from "../../src/core/clock.js";
import { silentLogger } from "../../src/core/log.js";
import type { Snapshot, WatchdogState } from "../../src/core/types.js";
import { Notifications } from "../../src/notify/notifications.js";
import { Telemetry } from "../../src/telemetry/metrics.js";
import {
  type Alertmanager,
  dashboardQueries,
  type PromAlert,
  type Prometheus,
  RULES_FILE,
  startAlertmanager,
  startPrometheus,
  startWebhook,
  WATCHDOG_JOB,
  type Webhook,
  waitForAlert,
} from "../support/prometheus.js";
import { waitFor } from "../support/wait.js";
import { snapshot, target } from "./fixtures.js";

const FOR = 2; // seconds: the scaled-down `for:` of every rule
/** How long demand had gone without progress when the synthetic watchdog judged it frozen. */
const FREEZE_AFTER_MS = 60_000;

describe("a real Prometheus and Alertmanager on our /metrics", () => {
  let state: WatchdogState = "healthy";
  /** When the synthetic freeze was judged (Date.now()); undefined while not frozen. */
  let frozenSince: number | undefined;
  const current = (): Snapshot =>
    snapshot({
      lastTickWall: Date.now(),
      intervalMs: 1_000,
      targets: [
        target("default", state, {
          // as src/detector/decide.ts: above 0 from the judgement through frozen, recovering and
          // exhausted, 0 once healthy
          frozenForMs: frozenSince === undefined ? 0 : FREEZE_AFTER_MS + Date.now() - frozenSince,
          budget: { remaining: 2, max: 3 },
        }),
      ],
    });
  const telemetry = new Telemetry({ getSnapshot: current });
  // a notify receiver, so that the notifications counter (and its dashboard panel) has series
  new Notifications({
    config: parseConfig(
      { notify: { digest: false, receivers: [{ name: "ops", webhook: { url: "http://127.0.0.1:9/" } }] } },
      {},
    ).notify,
    listenUrl: "http://127.0.0.1:11464",
    clock: systemClock,
    log: silentLogger(),
    registry: telemetry.registry,
  });
  let server: Server;
  let instance: string;
  let hook: Webhook;
  let am: Alertmanager;
  let prom: Prometheus;

  beforeAll(async () => {
    const [route] = telemetry.routes();
    server = createServer((req, res) => {
      // a canary and an API round trip per scrape, so every histogram has data to rate()
      telemetry.observeCanary("default", {
        model: "m",
        outcome: "ok",
        startedMono: 0,
        ttftMs: 180,
        durationMs: 250,
      });
      telemetry.observeApiLatency("default", 4);
      if (route && req.url === route.path) void route.handle(req, res, null);
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    instance = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    hook = await startWebhook();
    am = await startAlertmanager({ webhookUrl: hook.url });
    prom = await startPrometheus({
      jobs: [{ job: WATCHDOG_JOB, targets: [instance] }],
      ruleFiles: [RULES_FILE],
      scaleFor: `${FOR}s`,
      alertmanagerUrl: am.url,
    });
  });

  afterAll(async () => {
    await Promise.all([prom?.stop(), am?.stop(), hook?.stop()]);
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
  });

  it("scrapes the metrics and loads every rule", async () => {
    const targets = await prom.waitForTargetsUp();
    expect(targets.map((t) => t.labels.instance)).toEqual([instance]);
    const groups = await prom.rules();
    const rules = groups.flatMap((g) => g.rules);
    expect(rules.length).toBeGreaterThanOrEqual(6);
    for (const r of rules) expect(r.health, `${r.name}: ${r.lastError}`).not.toBe("err");
    const up = await prom.query(`ollama_up{job="${WATCHDOG_JOB}"}`);
    expect(up.map((s) => [s.metric.target, s.value[1]])).toEqual([["default", "1"]]);
    // With `for:` scaled to 2s, OllamaWatchdogAbsent may fire in the seconds before the first
    // scrape (absent(up{job=…})); it resolves as soon as the target is scraped.
    await waitFor(async () => (await prom.alerts()).length === 0, { what: "no alert pending or firing" });
  });

  it("fires OllamaFrozen after `for:` through recovering, delivers it through Alertmanager, then resolves it", async () => {
    const judged = Date.now();
    frozenSince = judged;
    state = "frozen";
    // the watchdog acts in the next tick: `frozen` lasts one scrape, then `recovering`
    await waitFor(
      async () => Number((await prom.query("ollama_frozen_duration_seconds"))[0]?.value[1] ?? 0) > 0,
      { what: "the freeze scraped" },
    );
    state = "recovering";
    const alert = (await waitForAlert(prom, "OllamaFrozen", "firing", {
      labels: { target: "default" },
    })) as PromAlert;
    expect(Date.now() - judged).toBeGreaterThanOrEqual(FOR * 1000);
    expect(alert).toMatchObject({
      labels: { severity: "critical", instance, job: WATCHDOG_JOB, target: "default" },
      annotations: { runbook_url: "docs/alerts.md#ollamafrozen" },
    });
    // the rule reads the duration, not the state: no `state` label, the duration as its value
    expect(alert.labels.state).toBeUndefined();
    expect(Number(alert.value)).toBeGreaterThan(FREEZE_AFTER_MS / 1000);
    expect((await prom.alerts()).map((a) => a.labels.alertname)).toEqual(["OllamaFrozen"]);
    const firing = await hook.waitFor(
      (n) => n.status === "firing" && n.commonLabels.alertname === "OllamaFrozen",
    );
    expect(firing.alerts[0]?.annotations.summary).toBe(`Ollama default on ${instance} is frozen`);

    state = "healthy";
    frozenSince = undefined;
    await waitForAlert(prom, "OllamaFrozen", "inactive");
    const resolved = await hook.waitFor(
      (n) => n.status === "resolved" && n.commonLabels.alertname === "OllamaFrozen",
    );
    expect(resolved.alerts[0]?.labels.target).toBe("default");
    // nothing else fired along the way (but the start-up OllamaWatchdogAbsent above)
    const others = hook.notifications
      .map((n) => n.commonLabels.alertname)
      .filter((name) => name !== "OllamaFrozen" && name !== "OllamaWatchdogAbsent");
    expect(others).toEqual([]);
  });

  it("answers every Grafana dashboard query with data", async () => {
    // an action, so that the remediation panels and annotation have something to show
    telemetry.countAction("default", {
      action: "kill-runner",
      result: "success",
      startedWall: 0,
      durationMs: 1,
    });
    await waitFor(async () => (await prom.query("sum(ollama_watchdog_actions_total)"))[0]?.value[1] === "1", {
      what: "the action scraped",
    });
    const queries = dashboardQueries({ target: "default", instance });
    expect(queries.length).toBeGreaterThan(15);
    const empty: string[] = [];
    for (const q of queries) {
      const result = await prom.query(q.expr).catch((error: Error) => {
        throw new Error(`${q.source}: ${error.message}`);
      });
      const finite = result.some((s) => Number.isFinite(Number(s.value[1])));
      if (!finite) empty.push(`${q.source}: ${q.expr}`);
    }
    expect(empty).toEqual([]);
    // the state timeline encodes states 1..7 in WATCHDOG_STATES order: healthy is 2
    const timeline = queries.find((q) => q.source === 'panel "Watchdog state"');
    const [series] = await prom.query(timeline?.expr ?? "");
    expect(series?.metric).toEqual({ instance, target: "default" });
    expect(series?.value[1]).toBe("2");
  });
});
