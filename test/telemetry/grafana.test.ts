import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { WATCHDOG_STATES } from "../../src/core/types.js";
import { ROOT } from "../support/paths.js";
import { DASHBOARD_FILE, dashboardQueries, promtool } from "../support/prometheus.js";

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
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
  templating: { list: { name: string; type: string; query: unknown; datasource?: { uid: string } }[] };
};
const allPanels = (panels: Panel[]): Panel[] => panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
const panels = allPanels(dashboard.panels);
const dataPanels = panels.filter((p) => p.type !== "row");

describe("Grafana dashboard (deploy/grafana/ollama-watchdog.json)", () => {
  it("is what deploy/grafana/build.mjs generates", () => {
    const built = execFileSync(process.execPath, [join(ROOT, "deploy/grafana/build.mjs")], {
      encoding: "utf8",
    });
    expect(text).toBe(built);
  });

  it("is an importable model with a stable uid and a current schemaVersion", () => {
    expect(dashboard.uid).toBe("ollama-watchdog");
    expect(dashboard.title).toBeTruthy();
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.id ?? null).toBeNull();
  });

  it("has a Prometheus datasource variable and instance/target query variables", () => {
    const vars = Object.fromEntries(dashboard.templating.list.map((v) => [v.name, v]));
    expect(vars.datasource).toMatchObject({ type: "datasource", query: "prometheus" });
    for (const name of ["instance", "target"]) {
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
