import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PanelBuilder as TimeseriesPanel } from "@grafana/grafana-foundation-sdk/timeseries";
import { dump as stringify } from "js-yaml";
import { describe, expect, it } from "vitest";
import { dashboardJson } from "../../deploy/grafana/dashboard.js";
import { WATCHDOG_STATES } from "../../src/core/types.js";
import { DASHBOARD_FILE, dashboardQueries, promtool } from "../support/prometheus.js";
import { rangeCalls, selectors } from "../support/promql.js";

interface Panel {
  id: number;
  type: string;
  title: string;
  description?: string;
  datasource?: { type: string; uid: string };
  fieldConfig?: { defaults: { unit?: string }; overrides: unknown[] };
  gridPos: { h: number; w: number; x: number; y: number };
  targets?: { refId: string; expr: string; datasource?: { uid: string } }[];
  panels?: Panel[];
}

/** Grafana's reference to the `datasource` variable. */
const DS_UID = ["$", "{datasource}"].join("");
const text = readFileSync(DASHBOARD_FILE, "utf8");
const dashboard = JSON.parse(text) as {
  uid: string;
  title: string;
  schemaVersion: number;
  id?: unknown;
  panels: Panel[];
  annotations: { list: { name: string; expr?: string; datasource?: { uid: string } }[] };
  templating: {
    list: {
      name: string;
      type: string;
      label?: string;
      query: unknown;
      definition?: string;
      datasource?: { uid: string };
      multi?: boolean;
      includeAll?: boolean;
      allValue?: string;
      refresh?: number;
    }[];
  };
};
const allPanels = (panels: Panel[]): Panel[] => panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
const panels = allPanels(dashboard.panels);
const dataPanels = panels.filter((p) => p.type !== "row");

describe("Grafana dashboard (deploy/grafana/ollama-watchdog.json)", () => {
  it("is what deploy/grafana/dashboard.ts builds (run `npx tsx deploy/grafana/dashboard.ts`)", () => {
    expect(text).toBe(dashboardJson());
  });

  it("is an importable model with a stable uid and a current schemaVersion", () => {
    expect(dashboard.uid).toBe("ollama-watchdog");
    expect(dashboard.title).toBeTruthy();
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.id ?? null).toBeNull();
  });

  it("has a Prometheus datasource variable and job/instance/target query variables", () => {
    const vars = Object.fromEntries(dashboard.templating.list.map((v) => [v.name, v]));
    expect(vars.datasource).toMatchObject({ type: "datasource", query: "prometheus" });
    for (const name of ["job", "instance", "target"]) {
      expect(vars[name]).toMatchObject({ type: "query", datasource: { uid: DS_UID } });
    }
  });

  it("gives every panel a unique id, a gridPos, the datasource variable and queries with expr", () => {
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of panels) {
      const { h, w, x, y } = p.gridPos;
      for (const n of [h, w, x, y]) expect(Number.isInteger(n), p.title).toBe(true);
      expect(x + w, p.title).toBeLessThanOrEqual(24);
    }
    expect(dataPanels.length).toBeGreaterThanOrEqual(12);
    for (const p of dataPanels) {
      expect(p.datasource, p.title).toEqual({ type: "prometheus", uid: DS_UID });
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      const refIds = (p.targets ?? []).map((t) => t.refId);
      expect(new Set(refIds).size, p.title).toBe(refIds.length);
      for (const t of p.targets ?? []) {
        expect(t.expr, p.title).toMatch(/\S/);
        expect(t.datasource?.uid ?? DS_UID, p.title).toBe(DS_UID);
      }
    }
  });

  it("maps the state timeline's codes 1..7 to WATCHDOG_STATES in order", () => {
    const timeline = dataPanels.find((p) => p.type === "state-timeline") as Panel & {
      fieldConfig: { defaults: { mappings: { options: Record<string, { text: string }> }[] } };
    };
    const options = timeline.fieldConfig.defaults.mappings[0]?.options ?? {};
    expect(WATCHDOG_STATES.map((_, i) => options[String(i + 1)]?.text)).toEqual([...WATCHDOG_STATES]);
    WATCHDOG_STATES.forEach((state, i) => {
      expect(timeline.targets?.[0]?.expr).toContain(`state="${state}"} * ${i + 1}`);
    });
  });

  it("does not overlap panels", () => {
    const cells = new Set<string>();
    for (const p of panels) {
      for (let dx = 0; dx < p.gridPos.w; dx++) {
        for (let dy = 0; dy < p.gridPos.h; dy++) {
          const cell = `${p.gridPos.x + dx},${p.gridPos.y + dy}`;
          expect(cells.has(cell), `${p.title} overlaps at ${cell}`).toBe(false);
          cells.add(cell);
        }
      }
    }
  });

  it("covers state, frozen duration, actions, budget, canary latency, models, VRAM and GPUs", () => {
    const exprs = dataPanels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)).join("\n");
    for (const metric of [
      "ollama_watchdog_state",
      "ollama_frozen_duration_seconds",
      "ollama_watchdog_actions_total",
      "ollama_watchdog_budget_remaining",
      "ollama_canary_duration_seconds_bucket",
      "ollama_models_loaded",
      "ollama_models_available",
      "ollama_model_vram_bytes",
      "ollama_gpu_utilization_ratio",
      "ollama_gpu_memory_used_bytes",
      "ollama_gpu_temperature_celsius",
      "ollama_gpu_power_watts",
    ]) {
      expect(exprs).toContain(metric);
    }
    expect(exprs).toContain("histogram_quantile(");
  });

  it("has queries that parse once variables are substituted (promtool check rules, offline)", async () => {
    const queries = dashboardQueries({ target: "default", instance: "127.0.0.1:11464" });
    for (const q of queries) expect(q.expr, q.source).not.toMatch(/\$/);
    // promtool parses PromQL offline in rule files: one recording rule per query
    const dir = mkdtempSync(join(tmpdir(), "ow-grafana-"));
    try {
      const file = join(dir, "dashboard.rules.yml");
      const rules = queries.map((q, i) => ({ record: `dashboard:query_${i}`, expr: q.expr }));
      writeFileSync(file, stringify({ groups: [{ name: "dashboard", rules }] }));
      const result = await promtool(["check", "rules", file]);
      expect(result.stdout + result.stderr).toContain(`SUCCESS: ${queries.length} rules found`);
      expect(result.code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** The rules of Grafana's dashboard-linter (github.com/grafana/dashboard-linter, lint/rule_*.go). */
describe("Grafana dashboard-linter checks", () => {
  const vars = Object.fromEntries(dashboard.templating.list.map((v) => [v.name, v]));
  const panelQueries = dataPanels.flatMap((p) =>
    (p.targets ?? []).map((t) => ({ source: p.title, expr: t.expr })),
  );
  const annotationQueries = dashboard.annotations.list
    .filter((a) => a.expr)
    .map((a) => ({ source: `annotation ${a.name}`, expr: a.expr ?? "" }));
  const allQueries = [...panelQueries, ...annotationQueries];

  it("template-datasource-rule: a `datasource` variable of type datasource for Prometheus", () => {
    expect(vars.datasource).toMatchObject({ type: "datasource", query: "prometheus" });
  });

  it("template-job-rule and template-instance-rule: `job` and `instance` as the linter wants them", () => {
    for (const name of ["job", "instance"]) {
      const v = vars[name];
      expect(v, name).toBeDefined();
      expect(v?.type, name).toBe("query");
      expect(v?.datasource?.uid, name).toBe(DS_UID);
      expect(v?.label, name).toBe(name[0]?.toUpperCase() + name.slice(1));
      expect(v?.multi, name).toBe(true);
      expect(v?.allValue, name).toBe(".+");
    }
    // the instance list follows the job, the target list both
    expect(vars.instance?.definition).toContain('job=~"$job"');
    expect(vars.target?.definition).toContain('job=~"$job",instance=~"$instance"');
  });

  it("template-label-promql-rule and template-on-time-change-reload-rule: label_values over our series, reloaded", () => {
    for (const v of dashboard.templating.list.filter((t) => t.type === "query")) {
      expect(v.definition, v.name).toMatch(/^label_values\((ollama_\w+)(\{[^}]*\})?, (\w+)\)$/);
      expect(v.query, v.name).toEqual({ query: v.definition, refId: expect.any(String) });
      expect(v.refresh, v.name).toBe(2); // on time range change
    }
  });

  it("panel-datasource-rule: every panel and every query uses the datasource variable", () => {
    for (const p of dataPanels) {
      expect(p.datasource?.uid, p.title).toBe(DS_UID);
      for (const t of p.targets ?? []) expect(t.datasource?.uid, p.title).toBe(DS_UID);
    }
    for (const a of dashboard.annotations.list.filter((x) => x.expr))
      expect(a.datasource?.uid, a.name).toBe(DS_UID);
  });

  it("panel-no-targets-rule and panel-title-description-rule: queries, a title and a description on every panel", () => {
    for (const p of dataPanels) {
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      expect(p.title.trim(), String(p.id)).not.toBe("");
      expect(p.description?.trim() ?? "", p.title).not.toBe("");
    }
  });

  it("panel-units-rule: a unit from Grafana's list on every panel", () => {
    for (const p of dataPanels) {
      expect(GRAFANA_UNITS, `${p.title}: ${p.fieldConfig?.defaults.unit}`).toContain(
        p.fieldConfig?.defaults.unit,
      );
    }
  });

  it('target-job-rule and target-instance-rule: every selector has job=~"$job" and instance=~"$instance"', () => {
    expect(allQueries.length).toBeGreaterThan(15);
    for (const q of allQueries) {
      const found = selectors(q.expr);
      expect(found.length, q.source).toBeGreaterThan(0);
      for (const { metric, matchers } of found) {
        expect(matchers, `${q.source}: ${metric}`).toContain('job=~"$job"');
        expect(matchers, `${q.source}: ${metric}`).toContain('instance=~"$instance"');
      }
    }
  });

  it('selects only the watchdog\'s own per-target series (target!="" beside the job, docs/metrics.md)', () => {
    for (const q of allQueries) {
      for (const { metric, matchers } of selectors(q.expr)) {
        if (
          /^ollama_(gpu_|watchdog_(last_tick|tick_interval|build_info|start_time|notifications))/.test(metric)
        )
          continue;
        expect(matchers, `${q.source}: ${metric}`).toContain('target=~"$target",target!=""');
      }
    }
  });

  it("target-rate-interval-rule: $__rate_interval in every rate() and increase()", () => {
    const calls = allQueries.flatMap((q) => rangeCalls(q.expr).map((c) => ({ ...c, source: q.source })));
    expect(calls.length).toBeGreaterThan(5);
    for (const c of calls) {
      expect(["rate", "increase", "irate"], `${c.source}: ${c.fn}`).toContain(c.fn);
      expect(c.window, `${c.source}: ${c.fn}(${c.metric})`).toBe("$__rate_interval");
    }
  });

  it("target-counter-agg-rule: counters only inside rate() or increase()", () => {
    for (const q of allQueries) {
      const counters = selectors(q.expr).filter((s) => /_(total|bucket|count|sum)$/.test(s.metric));
      const ranged = rangeCalls(q.expr).map((c) => c.metric);
      for (const c of counters) expect(ranged, `${q.source}: ${c.metric}`).toContain(c.metric);
    }
  });

  it("the lexer behind these checks sees what it must (so the checks above cannot pass vacuously)", () => {
    expect(
      selectors(
        'sum by (instance, le) (rate(a_total{job=~"$job"}[$__rate_interval])) / on (x) b or time() - c',
      ),
    ).toEqual([
      { metric: "a_total", matchers: '{job=~"$job"}' },
      { metric: "b", matchers: "" },
      { metric: "c", matchers: "" },
    ]);
    expect(rangeCalls('increase(x{a="b"}[5m]) + rate(y[$__rate_interval])')).toEqual([
      { fn: "increase", window: "5m", metric: "x" },
      { fn: "rate", window: "$__rate_interval", metric: "y" },
    ]);
  });
});

/** Units the dashboard-linter accepts (lint/rule_panel_units.go), the subset a watchdog could use. */
const GRAFANA_UNITS = [
  "none",
  "short",
  "percent",
  "percentunit",
  "bytes",
  "decbytes",
  "watt",
  "celsius",
  "ns",
  "µs",
  "ms",
  "s",
  "m",
  "h",
  "d",
  "dtdurations",
  "ops",
  "reqps",
  "cps",
  "cpm",
  "bool",
];

describe("the dashboard's typed model", () => {
  it("makes tsc reject a malformed panel (checked by `tsc --noEmit`, which covers deploy/)", () => {
    const panel = new TimeseriesPanel().title("t");
    // @ts-expect-error a unit is a string, not a number
    panel.unit(5);
    // @ts-expect-error there is no such draw style
    panel.drawStyle("zigzag");
    expect(panel.build().type).toBe("timeseries");
  });
});
