import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { load as parse } from "js-yaml";
import { describe, expect, it } from "vitest";
import { ROOT } from "../support/paths.js";
import { promtool, RULES_FILE, WATCHDOG_JOB } from "../support/prometheus.js";

interface Rule {
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

const rules = (parse(readFileSync(RULES_FILE, "utf8")) as { groups: { rules: Rule[] }[] }).groups.flatMap(
  (g) => g.rules,
);
const alerts = rules.filter((r) => r.alert);
const TESTS_DIR = join(ROOT, "deploy/prometheus/tests");
const testFiles = () => readdirSync(TESTS_DIR).filter((f) => f.endsWith(".yml"));
const JOB_MATCHER = `job="${WATCHDOG_JOB}"`;
/** Our metrics without a `target` label: the watchdog's own and the host's GPUs. */
const HOST_LEVEL =
  /^(up|ollama_gpu_\w+|ollama_watchdog_(build_info|start_time_seconds|last_tick_timestamp_seconds|tick_interval_seconds))$/;

/** Every vector selector of a PromQL expression: metric name and its matchers (`""` when none). */
function selectors(expr: string): { metric: string; matchers: string }[] {
  return [...expr.matchAll(/\b(up|ollama_\w+)\b(\{[^}]*\})?/g)].map((m) => ({
    metric: m[1] ?? "",
    matchers: m[2] ?? "",
  }));
}

/**
 * Copies the rules and their promtool tests into a temp dir, each text passed through `edit`, and
 * runs `promtool test rules` on the copies.
 */
async function testRulesEdited(edit: (text: string) => string, only?: string) {
  const dir = mkdtempSync(join(tmpdir(), "ow-rules-"));
  try {
    mkdirSync(join(dir, "tests"));
    writeFileSync(join(dir, "ollama-watchdog.rules.yml"), edit(readFileSync(RULES_FILE, "utf8")));
    const files = testFiles().filter((f) => !only || f === only);
    for (const f of files)
      writeFileSync(join(dir, "tests", f), edit(readFileSync(join(TESTS_DIR, f), "utf8")));
    return await promtool(["test", "rules", ...files.map((f) => join(dir, "tests", f))]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes. */
function anchors(markdown: string): Set<string> {
  return new Set(
    [...markdown.matchAll(/^#{1,6}\s+(.+)$/gm)].map((m) =>
      (m[1] ?? "")
        .trim()
        .toLowerCase()
        .replace(/[^\w\- ]/g, "")
        .replace(/ /g, "-"),
    ),
  );
}

describe("alert rules (deploy/prometheus)", () => {
  it("pass promtool check rules", async () => {
    const result = await promtool(["check", "rules", RULES_FILE]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`SUCCESS: ${rules.length} rules found`);
  });

  it("pass promtool test rules", async () => {
    const files = testFiles().map((f) => join(TESTS_DIR, f));
    expect(files.length).toBeGreaterThan(0);
    const result = await promtool(["test", "rules", ...files]);
    expect(result.stdout + result.stderr).not.toMatch(/FAILED|error/i);
    expect(result.code).toBe(0);
  });

  it('select only the watchdog\'s own series: the job matcher everywhere, target!="" per target', () => {
    for (const rule of rules) {
      const found = selectors(rule.expr);
      expect(found.length, rule.alert).toBeGreaterThan(0);
      for (const { metric, matchers } of found) {
        expect(matchers, `${rule.alert}: ${metric}`).toContain(JOB_MATCHER);
        if (!HOST_LEVEL.test(metric)) expect(matchers, `${rule.alert}: ${metric}`).toContain('target!=""');
      }
    }
  });

  it("keep third-party series apart only thanks to the selectors (foreign.test.yml fails without them)", async () => {
    const strip = (text: string) =>
      text
        .replaceAll(`${JOB_MATCHER},target!="",`, "")
        .replaceAll(`{${JOB_MATCHER},target!=""}`, "")
        .replaceAll(`{${JOB_MATCHER}}`, "");
    const result = await testRulesEdited(strip, "foreign.test.yml");
    expect(result.stdout + result.stderr).toMatch(/FAILED/);
    expect(result.stdout + result.stderr).toContain('job="ollama-exporter"');
  });

  it("take another scrape job with the one substitution docs/metrics.md documents", async () => {
    const other = (text: string) =>
      text
        .replaceAll(JOB_MATCHER, 'job="gpu-fleet"')
        .replaceAll(`job: ${WATCHDOG_JOB}`, "job: gpu-fleet")
        .replaceAll(`the ${WATCHDOG_JOB} job`, "the gpu-fleet job"); // expected annotations in the tests;
    expect(other(readFileSync(RULES_FILE, "utf8"))).not.toContain(JOB_MATCHER);
    const result = await testRulesEdited(other);
    expect(result.stdout + result.stderr).not.toMatch(/FAILED|error/i);
    expect(result.code).toBe(0);
    const doc = readFileSync(join(ROOT, "docs/metrics.md"), "utf8");
    expect(doc).toContain(`sed 's/${JOB_MATCHER}/job="YOUR-JOB"/g'`);
  });

  it("include the alerts the design asks for", () => {
    expect(alerts.map((a) => a.alert)).toEqual(
      expect.arrayContaining([
        "OllamaDown",
        "OllamaFrozen",
        "OllamaWatchdogExhausted",
        "OllamaWatchdogAbsent",
        "OllamaRestartStorm",
        "OllamaGpuMemoryNearlyFull",
      ]),
    );
  });

  it("alert OllamaFrozen on the frozen duration, not on the state `frozen` (left the tick the watchdog acts)", () => {
    // the state `frozen` lasts at most remediation.cooldown; a freeze the actions do not heal goes
    // on as `recovering` and `exhausted` while ollama_frozen_duration_seconds keeps growing
    const frozen = alerts.find((a) => a.alert === "OllamaFrozen");
    expect(frozen?.expr).toMatch(/^ollama_frozen_duration_seconds\b/);
    expect(frozen?.expr).not.toContain("ollama_watchdog_state");
  });

  it("give every alert for:, severity, summary, description and a runbook section that exists", () => {
    const docs = anchors(readFileSync(join(ROOT, "docs/alerts.md"), "utf8"));
    for (const a of alerts) {
      expect(a.for, a.alert).toMatch(/^\d+[smh]$/);
      expect(["critical", "warning", "info"], a.alert).toContain(a.labels?.severity);
      expect(a.annotations?.summary, a.alert).toMatch(/\{\{ \$labels\./);
      expect(a.annotations?.description, a.alert).toMatch(/\$labels|\$value/);
      const url = a.annotations?.runbook_url ?? "";
      expect(url, a.alert).toBe(`docs/alerts.md#${a.alert?.toLowerCase()}`);
      expect(docs.has(url.split("#")[1] ?? ""), `docs/alerts.md has no section for ${a.alert}`).toBe(true);
    }
  });

  it("have a promtool test for every alert, firing at least once", () => {
    const tests = testFiles()
      .map((f) => readFileSync(join(TESTS_DIR, f), "utf8"))
      .join("\n");
    for (const a of alerts) {
      expect(tests, a.alert).toMatch(
        new RegExp(`alertname: ${a.alert}\\n\\s+exp_alerts:\\n\\s+- exp_labels:`),
      );
      expect(tests, `${a.alert} never shown silent`).toMatch(
        new RegExp(`alertname: ${a.alert}\\n\\s+exp_alerts: \\[\\]`),
      );
    }
  });

  it("ship a Prometheus example config that promtool accepts", async () => {
    const path = join(ROOT, "deploy/prometheus/prometheus.example.yml");
    const result = await promtool(["check", "config", "--syntax-only", path]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    const config = parse(readFileSync(path, "utf8")) as { scrape_configs: { job_name: string }[] };
    // the rules select this job
    expect(config.scrape_configs.map((c) => c.job_name)).toContain(WATCHDOG_JOB);
    expect(readFileSync(RULES_FILE, "utf8")).toContain(`up{${JOB_MATCHER}}`);
  });
});
