import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ROOT } from "../support/paths.js";
import { promtool, RULES_FILE } from "../support/prometheus.js";

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
    const files = readdirSync(TESTS_DIR)
      .filter((f) => f.endsWith(".yml"))
      .map((f) => join(TESTS_DIR, f));
    expect(files.length).toBeGreaterThan(0);
    const result = await promtool(["test", "rules", ...files]);
    expect(result.stdout + result.stderr).not.toMatch(/FAILED|error/i);
    expect(result.code).toBe(0);
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
    const tests = readdirSync(TESTS_DIR)
      .filter((f) => f.endsWith(".yml"))
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
    // OllamaWatchdogAbsent assumes this job name
    expect(config.scrape_configs.map((c) => c.job_name)).toContain("ollama-watchdog");
    expect(readFileSync(RULES_FILE, "utf8")).toContain('up{job="ollama-watchdog"}');
  });
});
