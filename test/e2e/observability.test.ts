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
 * Why the frozen state lasts long enough to alert on (by design, not by luck): the detector issues
 * its first action in the very tick it judges a target frozen, and the next tick is already
 * `recovering`, so with the scaled timings a freeze shows as `frozen` for one 250 ms tick — shorter
 * than a scrape. The only thing that holds a target in `frozen` is the remediation gate's
 * cooldown (`kill-runner waits — cooldown …`). So the test first lets one F1 be healed (action #1:
 * it also gives the dashboard an action to show), then injects F1 again right away: the second
 * freeze is judged after about canary.every + freezeAfter (~3 s) and then stays `frozen` until
 * COOLDOWN after action #1 — about 10 s, several scrapes and FOR, which the test checks (it fails
 * with a clear message rather than by timing out if that window ever shrinks). When the cooldown
 * ends, the watchdog kills the runner (action #2) and the alert resolves.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseDuration } from "../../src/config/duration.js";
import type { ActionOutcome } from "../../src/core/types.js";
import {
  type Alertmanager,
  dashboardQueries,
  type NodeExporter,
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
import { MODEL, SCALED, type Scenario, startScenario } from "../support/scenario.js";
import { waitFor } from "../support/wait.js";

/** The scaled-down `for:` of every rule, in seconds. */
const FOR = 2;
/** Long enough to hold the second freeze in `frozen` for several scrapes (see above). */
const COOLDOWN = "15s";
const TARGET = "sim";
const ms = (text: string) => parseDuration(text) as number;

describe("observability end to end: the real daemon, Prometheus, Alertmanager and node_exporter", () => {
  let textfileDir: string;
  let scenario: Scenario;
  let instance: string;
  let hook: Webhook;
  let am: Alertmanager;
  let prom: Prometheus;
  let exporter: NodeExporter;

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
  const actions = (): ActionOutcome[] => scenario.actions();

  beforeAll(async () => {
    textfileDir = mkdtempSync(join(tmpdir(), "ow-e2e-textfile-"));
    scenario = await startScenario({
      config: {
        textfile: join(textfileDir, "ollama-watchdog.prom"),
        remediation: { ...SCALED.remediation, cooldown: COOLDOWN },
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
    await Promise.all([prom?.stop(), am?.stop(), exporter?.stop(), hook?.stop(), scenario?.stop()]);
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

  it("F1: OllamaFrozen fires, reaches the webhook, and resolves once the watchdog kills the runner", async () => {
    // 1. A first F1, healed at once (its `frozen` lasts one tick): action #1 starts the cooldown.
    scenario.simulator.setFault({ name: "runner-deadlock", model: MODEL });
    await waitFor(() => actions().length >= 1, { timeoutMs: 20_000, what: "action #1" });
    const first = actions()[0] as ActionOutcome;
    expect(first).toMatchObject({ action: "kill-runner", result: "success" });
    await scenario.waitForState("healthy");
    await waitForValue(killRunnerSuccesses, 1);
    const before = (await value(killRunnerSuccesses)) as number;
    expect(hook.notifications.filter((n) => n.commonLabels.alertname === "OllamaFrozen")).toEqual([]);

    // 2. F1 again, inside the cooldown: frozen until it ends, then kill-runner.
    const from = scenario.records.length;
    scenario.simulator.setFault({ name: "runner-deadlock", model: MODEL });
    const frozen = await waitFor(
      () => scenario.records.slice(from).find((r) => r.verdict.state === "frozen"),
      { timeoutMs: 15_000, what: "the second freeze judged" },
    );
    expect(frozen.verdict.reason).toMatch(/kill-runner waits — cooldown/);
    const frozenFor = first.startedWall + ms(COOLDOWN) - frozen.wall;
    // the window the alert must fit in: FOR, plus a scrape, an evaluation and the webhook's delay
    expect(frozenFor, "the cooldown leaves the target frozen for this long (ms)").toBeGreaterThan(
      FOR * 1000 + 4_000,
    );

    console.log("FROZENFOR", frozenFor);
    const alert = await waitForAlert(prom, "OllamaFrozen", "firing", {
      labels: { target: TARGET },
      timeoutMs: 15_000,
    });
    expect(alert).toMatchObject({
      labels: { severity: "critical", job: WATCHDOG_JOB, instance, target: TARGET, state: "frozen" },
      annotations: { runbook_url: "docs/alerts.md#ollamafrozen" },
    });
    const firing = await hook.waitFor(
      (n) => n.status === "firing" && n.commonLabels.alertname === "OllamaFrozen",
      15_000,
    );
    expect(firing.alerts.map((a) => [a.labels.target, a.labels.instance])).toEqual([[TARGET, instance]]);
    expect(firing.alerts[0]?.annotations.summary).toBe(`Ollama ${TARGET} on ${instance} is frozen`);
    // it fired while the watchdog was still held by its cooldown: no second action yet
    expect(actions()).toHaveLength(1);

    // 3. The cooldown ends, the watchdog kills the runner, the target heals, the alert resolves.
    await waitForAlert(prom, "OllamaFrozen", "inactive", { timeoutMs: 30_000 });
    const resolved = await hook.waitFor(
      (n) => n.status === "resolved" && n.commonLabels.alertname === "OllamaFrozen",
      15_000,
    );
    expect(resolved.alerts.map((a) => a.labels.target)).toEqual([TARGET]);
    await scenario.waitForState("healthy");
    expect(actions().map((a) => `${a.action}:${a.result}`)).toEqual([
      "kill-runner:success",
      "kill-runner:success",
    ]);
    await waitForValue(killRunnerSuccesses, before + 1);
    await waitForValue(`ollama_watchdog_state{job="${WATCHDOG_JOB}",target="${TARGET}",state="healthy"}`, 1);

    // Nothing else reached the webhook but two alerts that scaling makes legitimate here:
    // - OllamaWatchdogAbsent may fire in the second before the first scrape (absent(up{job=…})
    //   with a scaled `for:`);
    // - OllamaCanaryFailing: its 15m rate window is unscaled and spans this whole test, in which
    //   the held freeze times out a canary every canary.timeout (~13) against a handful of good
    //   ones, so more than half of the canaries did fail.
    const expected = new Set(["OllamaFrozen", "OllamaWatchdogAbsent", "OllamaCanaryFailing"]);
    const others = hook.notifications
      .map((n) => n.commonLabels.alertname)
      .filter((a) => !expected.has(a ?? ""));
    expect(others).toEqual([]);
  });

  it("answers every Grafana dashboard query with data from the real daemon", async () => {
    // after canaries (every canary.every) and two actions
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
    const families = [...served.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => `${m[1]} ${m[2]}`);
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
