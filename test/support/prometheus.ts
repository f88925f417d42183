/**
 * A harness around the real Prometheus stack (Debian packages): Prometheus with our rules loaded,
 * Alertmanager routing to a webhook served by the test, node_exporter's textfile collector, and
 * promtool. Everything listens on 127.0.0.1 on ephemeral ports, keeps its data in a temp dir that
 * `stop()` removes, and is synchronized by polling its HTTP API (never by sleeping).
 *
 *   const hook = await startWebhook();
 *   const am = await startAlertmanager({ webhookUrl: hook.url });
 *   const prom = await startPrometheus({
 *     jobs: [{ job: "ollama-watchdog", targets: ["127.0.0.1:11464"] }],
 *     ruleFiles: [RULES_FILE],
 *     scaleFor: "2s", // every `for:` shortened in a test copy of the rules
 *     alertmanagerUrl: am.url,
 *   });
 *   await prom.waitForTargetsUp();
 *   await waitForAlert(prom, "OllamaFrozen", "firing");
 *   await hook.waitFor((n) => n.status === "firing" && n.commonLabels.alertname === "OllamaFrozen");
 *   await Promise.all([prom.stop(), am.stop(), hook.stop()]);
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { load as parse, dump as stringify } from "js-yaml";
import { ROOT } from "./paths.js";
import { waitFor } from "./wait.js";

export const PROMETHEUS_BIN = "/usr/bin/prometheus";
export const PROMTOOL_BIN = "/usr/bin/promtool";
export const ALERTMANAGER_BIN = "/usr/bin/prometheus-alertmanager";
export const NODE_EXPORTER_BIN = "/usr/bin/prometheus-node-exporter";
/** The shipped alert rules. */
export const RULES_FILE = join(ROOT, "deploy/prometheus/ollama-watchdog.rules.yml");
/** The job name the shipped rules assume for the watchdog's scrape (`up{job="ollama-watchdog"}`). */
export const WATCHDOG_JOB = "ollama-watchdog";

// ---------------------------------------------------------------------------------------------
// processes

const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

interface Daemon {
  child: ChildProcess;
  /** stdout + stderr so far, for failure messages. */
  log: () => string;
  stop: () => Promise<void>;
}

function startDaemon(bin: string, args: string[], dir: string): Daemon {
  const child = spawn(bin, args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  live.add(child);
  let log = "";
  const append = (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-20_000);
  };
  child.stdout?.on("data", append);
  child.stderr?.on("data", append);
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => resolve());
    child.once("error", (error) => {
      append(Buffer.from(`spawn error: ${error.message}\n`));
      resolve();
    });
  });
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
        await exited;
        clearTimeout(timer);
      }
      live.delete(child);
      rmSync(dir, { recursive: true, force: true });
    })();
    return stopping;
  };
  return { child, log: () => log, stop };
}

/** A port that was free a moment ago (the kernel's choice). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Starts a daemon listening on a fresh port and waits until `readyPath` answers 200; retries on
 * another port when it dies first (a port taken in between).
 */
async function startListening(
  what: string,
  bin: string,
  makeArgs: (port: number, dir: string) => string[],
  readyPath: string,
  prefix: string,
  timeoutMs = 30_000,
): Promise<Daemon & { url: string; dir: string }> {
  let lastLog = "";
  for (let attempt = 0; attempt < 3; attempt++) {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    const port = await freePort();
    const daemon = startDaemon(bin, makeArgs(port, dir), dir);
    const url = `http://127.0.0.1:${port}`;
    let outcome: "ready" | "died";
    try {
      outcome = await waitFor(
        async () => {
          if (daemon.child.exitCode !== null || daemon.child.signalCode !== null) return "died" as const;
          const res = await fetch(url + readyPath);
          return res.ok ? ("ready" as const) : undefined;
        },
        { timeoutMs, everyMs: 50, what: `${what} ready on ${url}` },
      );
    } catch (error) {
      const log = daemon.log();
      await daemon.stop();
      throw new Error(`${what} did not become ready: ${(error as Error).message}\n${log}`);
    }
    if (outcome === "ready") return { ...daemon, url, dir };
    lastLog = daemon.log();
    await daemon.stop();
  }
  throw new Error(`${what} exited before becoming ready:\n${lastLog}`);
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  const body = (await res.json()) as { status: string; data: T; error?: string };
  if (!res.ok || body.status !== "success") throw new Error(`${url}: ${res.status} ${body.error ?? ""}`);
  return body.data;
}

// ---------------------------------------------------------------------------------------------
// promtool

export interface ToolResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs promtool (`check metrics` reads `input` on stdin). */
export function promtool(args: string[], input?: string, cwd = ROOT): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(PROMTOOL_BIN, args, { cwd, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on("data", (c: Buffer) => {
      stderr += c.toString();
    });
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? "");
  });
}

/**
 * Writes a test copy of a rule file into `dir` with every `for:` replaced by `forDuration`, so a
 * live test sees an alert fire in seconds instead of minutes. Expressions are unchanged. The shipped
 * file is what `promtool test rules` checks; scaled copies are only for live runs. Returns its path.
 */
export function scaleRules(source: string, forDuration: string, dir: string): string {
  const doc = parse(readFileSync(source, "utf8")) as {
    groups: { interval?: string; rules: { for?: string }[] }[];
  };
  for (const group of doc.groups) {
    group.interval = undefined;
    for (const rule of group.rules) if (rule.for !== undefined) rule.for = forDuration;
  }
  const path = join(dir, `scaled-${basename(source)}`);
  writeFileSync(path, stringify(doc));
  return path;
}

// ---------------------------------------------------------------------------------------------
// Prometheus

export interface ScrapeJob {
  job: string;
  /** host:port */
  targets: string[];
  metricsPath?: string;
  /** More of the job's scrape config (scheme, basic_auth, tls_config, file_sd_configs, …). */
  extra?: Record<string, unknown>;
}

export interface PrometheusOptions {
  jobs: ScrapeJob[];
  ruleFiles?: string[];
  /**
   * Load copies of `ruleFiles` whose every `for:` is this duration (e.g. "2s"; see scaleRules),
   * written in Prometheus' temp dir. Unset: the rule files as they are.
   */
  scaleFor?: string;
  /** Alertmanager base URL (http://127.0.0.1:PORT) to send alerts to. */
  alertmanagerUrl?: string;
  /** Scrape and rule evaluation interval; 1s by default. */
  interval?: string;
}

export interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface PromAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: "pending" | "firing";
  activeAt: string;
  value: string;
}

export interface PromTarget {
  labels: Record<string, string>;
  scrapeUrl: string;
  health: "up" | "down" | "unknown";
  lastError: string;
}

export interface Prometheus {
  url: string;
  /** An instant query; throws when the expression does not parse. */
  query(expr: string, time?: number): Promise<Sample[]>;
  /** Alerts pending or firing now (/api/v1/alerts). */
  alerts(): Promise<PromAlert[]>;
  /** Loaded rule groups (/api/v1/rules). */
  rules(): Promise<
    { name: string; file: string; rules: { name: string; health: string; lastError?: string }[] }[]
  >;
  targets(): Promise<PromTarget[]>;
  /** Polls /api/v1/targets until every target is up (and has been scraped). */
  waitForTargetsUp(timeoutMs?: number): Promise<PromTarget[]>;
  log(): string;
  stop(): Promise<void>;
}

export async function startPrometheus(options: PrometheusOptions): Promise<Prometheus> {
  const interval = options.interval ?? "1s";
  const config = {
    global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
    ...(options.alertmanagerUrl
      ? {
          alerting: {
            alertmanagers: [{ static_configs: [{ targets: [new URL(options.alertmanagerUrl).host] }] }],
          },
        }
      : {}),
    scrape_configs: options.jobs.map((j) => ({
      job_name: j.job,
      metrics_path: j.metricsPath ?? "/metrics",
      ...(j.targets.length ? { static_configs: [{ targets: j.targets }] } : {}),
      ...j.extra,
    })),
  };
  const daemon = await startListening(
    "prometheus",
    PROMETHEUS_BIN,
    (port, dir) => {
      const ruleFiles = (options.ruleFiles ?? []).map((f) =>
        options.scaleFor ? scaleRules(f, options.scaleFor, dir) : f,
      );
      writeFileSync(join(dir, "prometheus.yml"), stringify({ rule_files: ruleFiles, ...config }));
      return [
        `--config.file=${join(dir, "prometheus.yml")}`,
        `--storage.tsdb.path=${join(dir, "data")}`,
        `--web.listen-address=127.0.0.1:${port}`,
        "--rules.alert.resend-delay=1s",
        "--log.level=warn",
      ];
    },
    "/-/ready",
    "ow-prometheus-",
  );
  const { url } = daemon;
  const api = (path: string) => `${url}/api/v1/${path}`;

  const targets = async () =>
    (await getJson<{ activeTargets: PromTarget[] }>(api("targets?state=active"))).activeTargets;

  return {
    url,
    query: async (expr, time) => {
      const q = new URLSearchParams({ query: expr });
      if (time !== undefined) q.set("time", String(time));
      const res = await fetch(api("query"), {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: q.toString(),
      });
      const body = (await res.json()) as {
        status: string;
        error?: string;
        data?: { resultType: string; result: unknown };
      };
      if (body.status !== "success" || !body.data) throw new Error(`query ${expr}: ${body.error}`);
      if (body.data.resultType === "scalar") {
        return [{ metric: {}, value: body.data.result as [number, string] }];
      }
      return body.data.result as Sample[];
    },
    alerts: async () => (await getJson<{ alerts: PromAlert[] }>(api("alerts"))).alerts,
    rules: async () => (await getJson<{ groups: never[] }>(api("rules"))).groups,
    targets,
    waitForTargetsUp: (timeoutMs = 30_000) =>
      waitFor(
        async () => {
          const list = await targets();
          return list.length > 0 && list.every((t) => t.health === "up") ? list : undefined;
        },
        { timeoutMs, everyMs: 100, what: "every Prometheus target up" },
      ),
    log: daemon.log,
    stop: daemon.stop,
  };
}

/** Polls /api/v1/alerts until an alert named `name` is in `state` (and matches `labels`). */
export function waitForAlert(
  prometheus: Prometheus,
  name: string,
  state: "pending" | "firing" | "inactive",
  options: { labels?: Record<string, string>; timeoutMs?: number } = {},
): Promise<PromAlert | true> {
  const matches = (a: PromAlert) =>
    a.labels.alertname === name && Object.entries(options.labels ?? {}).every(([k, v]) => a.labels[k] === v);
  return waitFor(
    async () => {
      const alerts = (await prometheus.alerts()).filter(matches);
      if (state === "inactive") return alerts.length === 0 ? true : undefined;
      return alerts.find((a) => a.state === state);
    },
    { timeoutMs: options.timeoutMs ?? 30_000, everyMs: 100, what: `alert ${name} ${state}` },
  );
}

// ---------------------------------------------------------------------------------------------
// Alertmanager and its webhook

export interface AlertmanagerNotification {
  status: "firing" | "resolved";
  receiver: string;
  groupLabels: Record<string, string>;
  commonLabels: Record<string, string>;
  commonAnnotations: Record<string, string>;
  alerts: {
    status: "firing" | "resolved";
    labels: Record<string, string>;
    annotations: Record<string, string>;
    startsAt: string;
    endsAt: string;
  }[];
}

export interface Webhook {
  url: string;
  /** Every notification received, in order. */
  notifications: AlertmanagerNotification[];
  /** Polls until a notification matching `predicate` arrived; returns it. */
  waitFor(
    predicate: (n: AlertmanagerNotification) => boolean,
    timeoutMs?: number,
  ): Promise<AlertmanagerNotification>;
  stop(): Promise<void>;
}

/** A node:http server that records Alertmanager's webhook notifications. */
export async function startWebhook(): Promise<Webhook> {
  const notifications: AlertmanagerNotification[] = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => {
      body += c.toString();
    });
    req.on("end", () => {
      try {
        notifications.push(JSON.parse(body) as AlertmanagerNotification);
        res.writeHead(200).end();
      } catch {
        res.writeHead(400).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    notifications,
    waitFor: (predicate, timeoutMs = 30_000) =>
      waitFor(() => notifications.find(predicate), { timeoutMs, everyMs: 50, what: "webhook notification" }),
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The default route to one webhook, or a whole configuration whose receivers name their own URLs. */
export type AlertmanagerOptions =
  | { webhookUrl: string; groupWait?: string; groupInterval?: string }
  | { config: Record<string, unknown> };

export interface Alertmanager {
  url: string;
  /** Alerts Alertmanager holds now (/api/v2/alerts). */
  alerts(): Promise<{ labels: Record<string, string>; status: { state: string } }[]>;
  log(): string;
  stop(): Promise<void>;
}

/**
 * A real Alertmanager routing every alert to `webhookUrl`, grouped by alertname and target (or
 * configured by `options.config`).
 */
export async function startAlertmanager(options: AlertmanagerOptions): Promise<Alertmanager> {
  const config =
    "config" in options
      ? options.config
      : {
          route: {
            receiver: "webhook",
            group_by: ["alertname", "target"],
            group_wait: options.groupWait ?? "1s",
            group_interval: options.groupInterval ?? "1s",
            repeat_interval: "1h",
          },
          receivers: [
            { name: "webhook", webhook_configs: [{ url: options.webhookUrl, send_resolved: true }] },
          ],
        };
  const daemon = await startListening(
    "alertmanager",
    ALERTMANAGER_BIN,
    (port, dir) => {
      writeFileSync(join(dir, "alertmanager.yml"), stringify(config));
      return [
        `--config.file=${join(dir, "alertmanager.yml")}`,
        `--storage.path=${join(dir, "data")}`,
        `--web.listen-address=127.0.0.1:${port}`,
        "--cluster.listen-address=",
        "--log.level=warn",
      ];
    },
    "/-/ready",
    "ow-alertmanager-",
  );
  return {
    url: daemon.url,
    alerts: async () => {
      const res = await fetch(`${daemon.url}/api/v2/alerts`);
      return (await res.json()) as { labels: Record<string, string>; status: { state: string } }[];
    },
    log: daemon.log,
    stop: daemon.stop,
  };
}

// ---------------------------------------------------------------------------------------------
// node_exporter (textfile collector only)

export interface NodeExporter {
  url: string;
  /** GET /metrics as text. */
  scrape(): Promise<string>;
  log(): string;
  stop(): Promise<void>;
}

/** node_exporter with only the textfile collector, reading `textfileDir`. */
export async function startNodeExporter(options: { textfileDir: string }): Promise<NodeExporter> {
  const daemon = await startListening(
    "node_exporter",
    NODE_EXPORTER_BIN,
    (port) => [
      "--collector.disable-defaults",
      "--collector.textfile",
      `--collector.textfile.directory=${options.textfileDir}`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--log.level=warn",
    ],
    "/metrics",
    "ow-node-exporter-",
  );
  return {
    url: daemon.url,
    scrape: async () => (await fetch(`${daemon.url}/metrics`)).text(),
    log: daemon.log,
    stop: daemon.stop,
  };
}

// ---------------------------------------------------------------------------------------------
// the Grafana dashboard's queries

export const DASHBOARD_FILE = join(ROOT, "deploy/grafana/ollama-watchdog.json");

export interface DashboardQuery {
  /** Where it comes from: a panel title, a variable or an annotation. */
  source: string;
  /** As written in the dashboard. */
  raw: string;
  /** Variables substituted, Grafana's label_values() turned into PromQL: ready for Prometheus. */
  expr: string;
}

/**
 * Every PromQL query of the dashboard (panels, rows' panels, annotations, query variables) with
 * Grafana's variables substituted the way Grafana would for the given values:
 * `$target`/`$instance` → `values.target`/`values.instance` (default `.+`, the dashboard's "All"),
 * `$job` → `values.job` (default the watchdog's job), `$__rate_interval` → 1m,
 * `$__interval` → 15s, `$__range` → 1h. `label_values(m, l)` becomes `group by (l) (m)`.
 */
export function dashboardQueries(
  values: { target?: string; instance?: string; job?: string } = {},
  file = DASHBOARD_FILE,
): DashboardQuery[] {
  interface Panel {
    title?: string;
    targets?: { expr?: string }[];
    panels?: Panel[];
  }
  const dashboard = JSON.parse(readFileSync(file, "utf8")) as {
    panels: Panel[];
    annotations?: { list: { name: string; expr?: string }[] };
    templating: { list: { name: string; type: string; query?: string | { query: string } }[] };
  };
  const vars: Record<string, string> = {
    job: values.job ?? WATCHDOG_JOB,
    target: values.target ?? ".+",
    instance: values.instance ?? ".+",
    __rate_interval: "1m",
    __interval: "15s",
    __range: "1h",
  };
  const substitute = (raw: string) => {
    let expr = raw.replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, braced?: string, bare?: string) => {
      const name = braced ?? bare ?? "";
      const value = vars[name];
      if (value === undefined) throw new Error(`unknown variable ${whole} in ${raw}`);
      return value;
    });
    expr = expr.replace(/^label_values\((.*),\s*(\w+)\)$/s, "group by ($2) ($1)");
    return expr;
  };
  const out: DashboardQuery[] = [];
  const walk = (panels: Panel[]) => {
    for (const p of panels) {
      for (const t of p.targets ?? []) {
        if (t.expr) out.push({ source: `panel "${p.title}"`, raw: t.expr, expr: substitute(t.expr) });
      }
      walk(p.panels ?? []);
    }
  };
  walk(dashboard.panels);
  for (const a of dashboard.annotations?.list ?? []) {
    if (a.expr) out.push({ source: `annotation "${a.name}"`, raw: a.expr, expr: substitute(a.expr) });
  }
  for (const v of dashboard.templating.list) {
    if (v.type !== "query" || !v.query) continue;
    const raw = typeof v.query === "string" ? v.query : v.query.query;
    out.push({ source: `variable $${v.name}`, raw, expr: substitute(raw) });
  }
  return out;
}
