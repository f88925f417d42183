/**
 * Observability end to end, against the REAL daemon (src/daemon/watchdog.ts) watching the
 * in-process simulator with the scaled-down timings of test/support/scenario.ts:
 *
 * - a real Prometheus scrapes its /metrics every second and evaluates a test copy of the shipped
 *   rules (deploy/prometheus/ollama-watchdog.rules.yml) whose every `for:` is scaled down to FOR
 *   (scaleRules; the shipped `for:` values are what `promtool test rules` checks);
 * - a real Alertmanager routes the alerts to a webhook served by this test;
 * - the daemon also writes the textfile output (`textfile:`) that a real node_exporter reads;
 * - promtool lints what the daemon serves.
 *
 * One daemon, one Prometheus for the whole file; every wait polls an API (Prometheus, Alertmanager's
 * webhook, node_exporter, the daemon's tick records), never a fixed sleep.
 *
 * What OllamaFrozen sees: it alerts on ollama_frozen_duration_seconds (> 0 for `for:`), which is
 * above 0 from the tick the detector judges a freeze until a canary proves the target healthy
 * again — through `frozen`, `recovering` and `exhausted` — not on the state `frozen`, which lasts
 * one tick (the detector acts in the very tick it judges a target frozen). So the test shows both
 * sides: an F1 that kill-runner heals stays silent (and gives the dashboard an action to show); a
 * wedged GPU (F8), which neither kill-runner nor restart heals, fires while the watchdog is
 * `recovering` and keeps firing once it is `exhausted`, until the fault is cleared and a canary
 * answers. The heal time of the first freeze is checked against FOR (it fails with a clear message
 * rather than by a stray alert if that margin ever shrinks).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ActionOutcome } from "../../src/core/types.js";
import { type HttpReceiver, startHttpReceiver } from "../notify/receivers.js";
import {
  type Alertmanager,
  dashboardQueries,
  type NodeExporter,
  type PromAlert,
  type Prometheus,
  promtool,
  RULES_FILE,
  startAlertmanager,
  startNodeExporter,
  startPrometheus,
  startWebhook,
  WATCHDOG_JOB,
  type Webhook,
  waitForAlert,
} from "../support/prometheus.js";
import { MODEL, type Scenario, startScenario } from "../support/scenario.js";
import { waitFor } from "../support/wait.js";

/**
 * The scaled-down `for:` of every rule, in seconds: OllamaFrozen's 2m at the 1/40 scale of the
 * scenario's timings (test/support/scenario.ts), so "healed well within `for:`" keeps its meaning.
 */
const FOR = 3;
const TARGET = "sim";

describe("observability end to end: the real daemon, Prometheus, Alertmanager and node_exporter", () => {
  let textfileDir: string;
  let scenario: Scenario;
  let instance: string;
  let hook: Webhook;
  let am: Alertmanager;
  let prom: Prometheus;
  let exporter: NodeExporter;
  let notifyReceiver: HttpReceiver;

  /** The value of a one-series instant query, or undefined while it has no result. */
  const value = async (expr: string): Promise<number | undefined> => {
    const [sample, ...more] = await prom.query(expr);
    if (more.length) throw new Error(`${expr}: ${more.length + 1} series`);
    return sample ? Number(sample.value[1]) : undefined;
  };
  const waitForValue = (expr: string, expected: number, timeoutMs = 15_000) =>
    waitFor(async () => (await value(expr)) === expected, {
      timeoutMs,
      everyMs: 100,
      what: `${expr} == ${expected} in Prometheus`,
    });
  const killRunnerSuccesses = `ollama_watchdog_actions_total{job="${WATCHDOG_JOB}",target="${TARGET}",action="kill-runner",result="success"}`;
  const frozenDuration = `ollama_frozen_duration_seconds{job="${WATCHDOG_JOB}",target="${TARGET}"}`;
  const actions = (): ActionOutcome[] => scenario.actions();

  beforeAll(async () => {
    textfileDir = mkdtempSync(join(tmpdir(), "ow-e2e-textfile-"));
    notifyReceiver = await startHttpReceiver();
    scenario = await startScenario({
      config: {
        textfile: join(textfileDir, "ollama-watchdog.prom"),
        // a notify receiver: the notifications panel has series, and the freezes are announced
        notify: { digest: false, receivers: [{ name: "ops", webhook: { url: notifyReceiver.url } }] },
      },
    });
    instance = new URL(scenario.watchdog.url).host;
    hook = await startWebhook();
    [am, exporter] = await Promise.all([
      startAlertmanager({ webhookUrl: hook.url }),
      startNodeExporter({ textfileDir }),
    ]);
    prom = await startPrometheus({
      jobs: [{ job: WATCHDOG_JOB, targets: [instance] }],
      ruleFiles: [RULES_FILE],
      scaleFor: `${FOR}s`,
      alertmanagerUrl: am.url,
    });
  });

  afterAll(async () => {
    await Promise.all([
      prom?.stop(),
      am?.stop(),
      exporter?.stop(),
      hook?.stop(),
      scenario?.stop(),
      notifyReceiver?.stop(),
    ]);
    if (textfileDir) rmSync(textfileDir, { recursive: true, force: true });
  });

  it("scrapes the daemon, loads every rule, and sees Ollama up and healthy", async () => {
    await scenario.loadModelAndSettle();
    const targets = await prom.waitForTargetsUp();
    expect(targets.map((t) => t.labels.instance)).toEqual([instance]);
    const rules = (await prom.rules()).flatMap((g) => g.rules);
    expect(rules.length).toBeGreaterThanOrEqual(6);
    for (const r of rules) expect(r.health, `${r.name}: ${r.lastError}`).not.toBe("err");
    await waitForValue(`ollama_up{job="${WATCHDOG_JOB}",target="${TARGET}"}`, 1);
    await waitForValue(`ollama_watchdog_state{job="${WATCHDOG_JOB}",target="${TARGET}",state="healthy"}`, 1);
    await waitForValue(`ollama_models_loaded{target="${TARGET}"}`, 1);
  });

  it("F1 healed by kill-runner: OllamaFrozen stays silent", async () => {
    const from = scenario.records.length;
    scenario.simulator.setFault({ name: "runner-deadlock", model: MODEL });
    await waitFor(() => actions().length >= 1, { timeoutMs: 20_000, what: "action #1" });
    expect(actions()[0]).toMatchObject({ action: "kill-runner", result: "success" });
    await scenario.waitForState("healthy");
    const records = scenario.records.slice(from);
    const judged = records.findIndex((r) => r.verdict.frozenForMs > 0);
    const healed = records.findIndex((r, i) => i > judged && r.verdict.frozenForMs === 0);
    expect(judged, "the freeze judged").toBeGreaterThanOrEqual(0);
    expect(records[healed]?.verdict.state).toBe("healthy");
    const frozenMs = (records[healed]?.wall ?? 0) - (records[judged]?.wall ?? 0);
    // the margin that keeps it silent: to fire, the duration must be above 0 in scrapes FOR apart;
    // leave a scrape (1s) of slack for scheduling
    expect(frozenMs, "kill-runner heals F1 within this long (ms)").toBeLessThan(FOR * 1000 - 1_000);

    await waitForValue(killRunnerSuccesses, 1);
    await waitForValue(frozenDuration, 0);
    await waitForAlert(prom, "OllamaFrozen", "inactive");
    // never fired: no ALERTS sample in `firing` (written at each evaluation), no notification
    expect(await prom.query(`ALERTS{alertname="OllamaFrozen",alertstate="firing"}[5m]`)).toEqual([]);
    expect(hook.notifications.filter((n) => n.commonLabels.alertname === "OllamaFrozen")).toEqual([]);
  });

  it("F8 not healed by the actions: OllamaFrozen fires through recovering and exhausted, and resolves once healed", async () => {
    const actionsBefore = actions().length;
    scenario.simulator.setFault({ name: "wedged-gpu" });

    const alert = (await waitForAlert(prom, "OllamaFrozen", "firing", {
      labels: { target: TARGET },
      timeoutMs: 20_000,
    })) as PromAlert;
    // it fires while the watchdog is acting (or has given up), not in the transient `frozen`
    const stateNow = scenario.records.at(-1)?.verdict.state;
    expect(["recovering", "exhausted"], `watchdog state when OllamaFrozen fired`).toContain(stateNow);
    expect(actions().length).toBeGreaterThan(actionsBefore);
    expect(alert).toMatchObject({
      labels: { severity: "critical", job: WATCHDOG_JOB, instance, target: TARGET },
      annotations: { runbook_url: "docs/alerts.md#ollamafrozen" },
    });
    expect(alert.labels.state).toBeUndefined();
    const firing = await hook.waitFor(
      (n) => n.status === "firing" && n.commonLabels.alertname === "OllamaFrozen",
      15_000,
    );
    expect(firing.alerts.map((a) => [a.labels.target, a.labels.instance])).toEqual([[TARGET, instance]]);
    expect(firing.alerts[0]?.annotations.summary).toBe(`Ollama ${TARGET} on ${instance} is frozen`);

    // the ladder runs out: exhausted, and OllamaFrozen still fires (with OllamaWatchdogExhausted)
    await scenario.waitForState("exhausted", 30_000);
    await waitForValue(
      `ollama_watchdog_state{job="${WATCHDOG_JOB}",target="${TARGET}",state="exhausted"}`,
      1,
    );
    await waitForAlert(prom, "OllamaWatchdogExhausted", "firing", { labels: { target: TARGET } });
    expect(
      (await prom.alerts()).filter((a) => a.labels.alertname === "OllamaFrozen").map((a) => a.state),
    ).toEqual(["firing"]);
    expect(actions().length - actionsBefore).toBeLessThanOrEqual(scenario.config.remediation.ladder.length);

    // a person fixes the GPU: a canary answers, the target is healthy, the alert resolves
    scenario.simulator.setFault(null);
    await scenario.loadModelAndSettle();
    await waitForValue(frozenDuration, 0);
    await waitForAlert(prom, "OllamaFrozen", "inactive", { timeoutMs: 15_000 });
    const resolved = await hook.waitFor(
      (n) => n.status === "resolved" && n.commonLabels.alertname === "OllamaFrozen",
      15_000,
    );
    expect(resolved.alerts.map((a) => a.labels.target)).toEqual([TARGET]);
    await waitForValue(`ollama_watchdog_state{job="${WATCHDOG_JOB}",target="${TARGET}",state="healthy"}`, 1);

    // Nothing else reached the webhook but alerts that this story or scaling makes legitimate:
    // - OllamaWatchdogExhausted and OllamaRestartStorm: the wedged GPU spends the ladder, and with
    //   action #1 that makes three real actions within the hour;
    // - OllamaWatchdogAbsent may fire in the second before the first scrape (absent(up{job=…})
    //   with a scaled `for:`);
    // - OllamaCanaryFailing: its 15m rate window is unscaled and spans this whole test, in which
    //   the freezes time out canaries against a handful of good ones.
    const expected = new Set([
      "OllamaFrozen",
      "OllamaWatchdogExhausted",
      "OllamaRestartStorm",
      "OllamaWatchdogAbsent",
      "OllamaCanaryFailing",
    ]);
    const others = hook.notifications
      .map((n) => n.commonLabels.alertname)
      .filter((a) => !expected.has(a ?? ""));
    expect(others).toEqual([]);
  });

  it("answers every Grafana dashboard query with data from the real daemon", async () => {
    // after canaries (every canary.every) and the actions of both freezes
    await waitFor(async () => ((await value(`sum(ollama_canary_total{outcome="ok"})`)) ?? 0) > 0, {
      what: "a canary scraped",
    });
    const queries = dashboardQueries({ target: TARGET, instance });
    expect(queries.length).toBeGreaterThan(15);
    const empty: string[] = [];
    for (const q of queries) {
      const result = await prom.query(q.expr).catch((error: Error) => {
        throw new Error(`${q.source}: ${error.message}`);
      });
      if (!result.some((s) => Number.isFinite(Number(s.value[1])))) empty.push(`${q.source}: ${q.expr}`);
    }
    expect(empty).toEqual([]);
    const timeline = queries.find((q) => q.source === 'panel "Watchdog state"');
    const [series] = await prom.query(timeline?.expr ?? "");
    expect(series?.metric).toEqual({ instance, target: TARGET });
    expect(series?.value[1]).toBe("2"); // healthy
  });

  it("writes the textfile that a real node_exporter serves with every family of /metrics", async () => {
    const served = await (await fetch(`${scenario.watchdog.url}/metrics`)).text();
    // A family with no sample yet (a counter nothing has incremented) is not a family node_exporter
    // can serve: compare the families that have samples.
    const sampled = new Set([...served.matchAll(/^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/gm)].map((m) => m[1]));
    const families = [...served.matchAll(/^# TYPE (\S+) (\S+)$/gm)]
      .filter((m) => [m[1], `${m[1]}_bucket`, `${m[1]}_count`].some((name) => sampled.has(name)))
      .map((m) => `${m[1]} ${m[2]}`);
    expect(families.length).toBeGreaterThan(20);
    // the daemon rewrites the file every tick; wait until node_exporter serves the latest actions
    const scraped = await waitFor(
      async () => {
        const text = await exporter.scrape();
        return text.includes(
          `ollama_watchdog_actions_total{action="kill-runner",result="success",target="${TARGET}"} 2`,
        )
          ? text
          : undefined;
      },
      { what: "node_exporter serving the textfile" },
    );
    const exported = new Set([...scraped.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => `${m[1]} ${m[2]}`));
    expect(families.filter((f) => !exported.has(f))).toEqual([]);
    expect(scraped).toContain(`ollama_up{target="${TARGET}"} 1`);
    expect(scraped).toMatch(/^ollama_watchdog_build_info\{version="[^"]+"\} 1$/m);
    expect(scraped).toMatch(/^node_textfile_scrape_error 0$/m);
    expect(scraped).toMatch(/^node_scrape_collector_success\{collector="textfile"\} 1$/m);
  });

  it("serves /metrics that promtool check metrics finds nothing to say about", async () => {
    const served = await (await fetch(`${scenario.watchdog.url}/metrics`)).text();
    expect(served).toContain(`ollama_watchdog_state{target="${TARGET}",state="healthy"} 1`);
    const lint = await promtool(["check", "metrics"], served);
    expect(lint.stdout + lint.stderr).toBe("");
    expect(lint.code).toBe(0);
  });
});
