#!/usr/bin/env node
/**
 * Builds deploy/grafana/ollama-watchdog.json (a Grafana dashboard model, schemaVersion 39):
 *   node deploy/grafana/build.mjs > deploy/grafana/ollama-watchdog.json
 * The committed JSON is what users import; test/telemetry/grafana.test.ts checks that it matches
 * this script's output, validates its structure and runs every query against a real Prometheus.
 * Plain JavaScript with no dependencies so it runs anywhere Node does.
 */

// biome-ignore lint/suspicious/noTemplateCurlyInString: a Grafana variable, not a JS template
const DS = { type: "prometheus", uid: "${datasource}" };
/** Per-target selector (the `target` and `instance` variables). */
const T = 'instance=~"$instance",target=~"$target"';
/** Host-level selector (GPU and watchdog metrics carry no `target`). */
const I = 'instance=~"$instance"';

const STATES = ["starting", "healthy", "suspect", "frozen", "down", "recovering", "exhausted"];
const STATE_COLORS = ["blue", "green", "yellow", "red", "dark-red", "orange", "purple"];

/** One number per target: the index (1..7) of its current state, for a state timeline. */
const stateCode = `max by (instance, target) (\n${STATES.map(
  (s, i) => `  ollama_watchdog_state{${T},state="${s}"} * ${i + 1}`,
).join("\n  or\n")}\n)`;

let nextId = 1;
let y = 0;
const panels = [];

function row(title) {
  panels.push({
    id: nextId++,
    type: "row",
    title,
    collapsed: false,
    gridPos: { h: 1, w: 24, x: 0, y },
    panels: [],
  });
  y += 1;
}

/** Lays panels of the given widths out left to right on one line of height h. */
function line(h, ...specs) {
  let x = 0;
  for (const spec of specs) {
    panels.push(panel(spec, { h, w: spec.w, x, y }));
    x += spec.w;
  }
  y += h;
}

function panel(spec, gridPos) {
  const {
    w: _w,
    type = "timeseries",
    title,
    description,
    unit,
    queries,
    fieldConfig = {},
    options = {},
  } = spec;
  const defaults = { unit: unit ?? "short", ...(fieldConfig.defaults ?? {}) };
  if (type === "timeseries") {
    defaults.custom = {
      drawStyle: "line",
      lineWidth: 1,
      fillOpacity: 10,
      showPoints: "never",
      ...defaults.custom,
    };
  }
  return {
    id: nextId++,
    type,
    title,
    description,
    datasource: DS,
    gridPos,
    fieldConfig: { defaults, overrides: fieldConfig.overrides ?? [] },
    options:
      type === "timeseries"
        ? {
            legend: { displayMode: "list", placement: "bottom", showLegend: true },
            tooltip: { mode: "multi", sort: "desc" },
            ...options,
          }
        : options,
    targets: queries.map(([expr, legendFormat], i) => ({
      refId: String.fromCharCode(65 + i),
      datasource: DS,
      editorMode: "code",
      expr,
      legendFormat,
      range: true,
      instant: false,
    })),
  };
}

row("Ollama");
line(
  8,
  {
    w: 16,
    type: "state-timeline",
    title: "Watchdog state",
    description: "The watchdog's verdict per target over time (ollama_watchdog_state).",
    queries: [[stateCode, "{{instance}} {{target}}"]],
    fieldConfig: {
      defaults: {
        color: { mode: "thresholds" },
        thresholds: { mode: "absolute", steps: [{ color: "text", value: null }] },
        mappings: [
          {
            type: "value",
            options: Object.fromEntries(
              STATES.map((s, i) => [String(i + 1), { text: s, color: STATE_COLORS[i], index: i }]),
            ),
          },
        ],
        custom: { fillOpacity: 80, lineWidth: 0 },
      },
    },
    options: {
      showValue: "auto",
      mergeValues: true,
      alignValue: "left",
      rowHeight: 0.9,
      legend: { displayMode: "list", placement: "bottom", showLegend: false },
      tooltip: { mode: "single", sort: "none" },
    },
  },
  {
    w: 8,
    type: "stat",
    title: "Ollama API up",
    description: "Whether the Ollama API answered the latest tick (ollama_up).",
    queries: [[`ollama_up{${T}}`, "{{instance}} {{target}}"]],
    fieldConfig: {
      defaults: {
        color: { mode: "thresholds" },
        thresholds: {
          mode: "absolute",
          steps: [
            { color: "red", value: null },
            { color: "green", value: 1 },
          ],
        },
        mappings: [
          {
            type: "value",
            options: { 0: { text: "down", index: 0 }, 1: { text: "up", index: 1 } },
          },
        ],
      },
    },
    options: {
      reduceOptions: { calcs: ["lastNotNull"], fields: "", values: false },
      colorMode: "background",
      graphMode: "none",
      textMode: "value_and_name",
      justifyMode: "auto",
      orientation: "auto",
    },
  },
);
line(
  8,
  {
    w: 8,
    title: "Frozen duration",
    description: "How long demand has gone without progress (0 when not frozen).",
    unit: "s",
    queries: [[`ollama_frozen_duration_seconds{${T}}`, "{{instance}} {{target}}"]],
  },
  {
    w: 8,
    title: "Remediation actions",
    description: "Actions the watchdog took, by action and result (ollama_watchdog_actions_total).",
    queries: [
      [
        `sum by (instance, target, action, result) (increase(ollama_watchdog_actions_total{${T}}[$__rate_interval]))`,
        "{{target}} {{action}} {{result}}",
      ],
    ],
    fieldConfig: { defaults: { custom: { drawStyle: "bars", fillOpacity: 80 }, decimals: 0 } },
  },
  {
    w: 8,
    title: "Remediation budget",
    description: "Actions left in the budget window, against the maximum.",
    queries: [
      [`ollama_watchdog_budget_remaining{${T}}`, "{{target}} remaining"],
      [`ollama_watchdog_budget_max{${T}}`, "{{target}} max"],
    ],
    fieldConfig: { defaults: { decimals: 0, min: 0 } },
  },
);
line(
  8,
  {
    w: 8,
    title: "Canary time to first token",
    description: "Quantiles of ollama_canary_duration_seconds.",
    unit: "s",
    queries: [0.5, 0.9, 0.99].map((q) => [
      `histogram_quantile(${q}, sum by (instance, target, le) (rate(ollama_canary_duration_seconds_bucket{${T}}[$__rate_interval])))`,
      `{{target}} p${q * 100}`,
    ]),
  },
  {
    w: 8,
    title: "Canary outcomes",
    description: "Finished canaries by outcome (ok, timeout, error).",
    queries: [
      [
        `sum by (instance, target, outcome) (increase(ollama_canary_total{${T}}[$__rate_interval]))`,
        "{{target}} {{outcome}}",
      ],
    ],
    fieldConfig: {
      defaults: { custom: { drawStyle: "bars", fillOpacity: 80, stacking: { mode: "normal" } } },
    },
  },
  {
    w: 8,
    title: "Ollama API latency (p90)",
    description: "90th percentile of the API's answers to the watchdog (ollama_api_latency_seconds).",
    unit: "s",
    queries: [
      [
        `histogram_quantile(0.9, sum by (instance, target, le) (rate(ollama_api_latency_seconds_bucket{${T}}[$__rate_interval])))`,
        "{{target}}",
      ],
    ],
  },
);

row("Models");
line(
  8,
  {
    w: 12,
    title: "Models loaded and available",
    description: "Models in /api/ps (loaded) and /api/tags (available).",
    queries: [
      [`ollama_models_loaded{${T}}`, "{{target}} loaded"],
      [`ollama_models_available{${T}}`, "{{target}} available"],
    ],
    fieldConfig: { defaults: { decimals: 0, min: 0 } },
  },
  {
    w: 12,
    title: "VRAM per loaded model",
    description: "size_vram of each loaded model (ollama_model_vram_bytes).",
    unit: "bytes",
    queries: [[`ollama_model_vram_bytes{${T}}`, "{{target}} {{model}}"]],
    fieldConfig: { defaults: { custom: { stacking: { mode: "normal" }, fillOpacity: 30 } } },
  },
);

row("GPUs");
const gpuLegend = "{{instance}} GPU {{gpu}} {{name}}";
line(
  8,
  {
    w: 6,
    title: "GPU utilization",
    unit: "percentunit",
    queries: [[`ollama_gpu_utilization_ratio{${I}}`, gpuLegend]],
    fieldConfig: { defaults: { min: 0, max: 1 } },
  },
  {
    w: 6,
    title: "GPU memory",
    unit: "bytes",
    queries: [
      [`ollama_gpu_memory_used_bytes{${I}}`, `${gpuLegend} used`],
      [`ollama_gpu_memory_total_bytes{${I}}`, `${gpuLegend} total`],
    ],
  },
  {
    w: 6,
    title: "GPU temperature",
    unit: "celsius",
    queries: [[`ollama_gpu_temperature_celsius{${I}}`, gpuLegend]],
  },
  {
    w: 6,
    title: "GPU power",
    unit: "watt",
    queries: [[`ollama_gpu_power_watts{${I}}`, gpuLegend]],
  },
);

row("Watchdog");
line(
  8,
  {
    w: 8,
    title: "Collector success",
    description: "1 when a collector succeeded in the latest tick.",
    queries: [[`ollama_watchdog_collector_success{${T}}`, "{{target}} {{collector}}"]],
    fieldConfig: { defaults: { min: 0, max: 1, decimals: 0 } },
  },
  {
    w: 8,
    title: "Collector duration",
    unit: "s",
    queries: [[`ollama_watchdog_collector_duration_seconds{${T}}`, "{{target}} {{collector}}"]],
  },
  {
    w: 8,
    title: "Time since the last tick",
    description: "Grows when the watchdog's loop stalls (alert OllamaWatchdogStalled).",
    unit: "s",
    queries: [
      [`time() - ollama_watchdog_last_tick_timestamp_seconds{${I}}`, "{{instance}}"],
      [`ollama_watchdog_tick_interval_seconds{${I}}`, "{{instance}} interval"],
    ],
  },
);

function queryVariable(name, label, query) {
  return {
    type: "query",
    name,
    label,
    datasource: DS,
    definition: query,
    query: { query, refId: "PrometheusVariableQueryEditor-VariableQuery" },
    refresh: 2,
    regex: "",
    sort: 1,
    multi: true,
    includeAll: true,
    allValue: ".*",
    current: {},
    options: [],
    hide: 0,
  };
}

const dashboard = {
  uid: "ollama-watchdog",
  title: "Ollama watchdog",
  description: "Ollama servers watched by ollama-watchdog: verdicts, remediation, canaries, models and GPUs.",
  tags: ["ollama", "ollama-watchdog"],
  timezone: "browser",
  editable: true,
  graphTooltip: 1,
  fiscalYearStartMonth: 0,
  liveNow: false,
  refresh: "30s",
  schemaVersion: 39,
  version: 1,
  time: { from: "now-6h", to: "now" },
  timepicker: {},
  links: [],
  annotations: {
    list: [
      {
        builtIn: 1,
        datasource: { type: "grafana", uid: "-- Grafana --" },
        enable: true,
        hide: true,
        iconColor: "rgba(0, 211, 255, 1)",
        name: "Annotations & Alerts",
        type: "dashboard",
      },
      {
        datasource: DS,
        enable: true,
        hide: false,
        iconColor: "red",
        name: "Remediation actions",
        expr: `sum by (instance, target, action) (increase(ollama_watchdog_actions_total{${T},result!="dry-run"}[$__rate_interval])) > 0`,
        step: "1m",
        titleFormat: "{{action}} on {{target}}",
        textFormat: "{{instance}}",
        useValueForTime: false,
      },
    ],
  },
  templating: {
    list: [
      {
        type: "datasource",
        name: "datasource",
        label: "Data source",
        query: "prometheus",
        current: {},
        options: [],
        refresh: 1,
        regex: "",
        hide: 0,
      },
      queryVariable("instance", "Watchdog", "label_values(ollama_watchdog_build_info, instance)"),
      queryVariable("target", "Target", 'label_values(ollama_watchdog_state{instance=~"$instance"}, target)'),
    ],
  },
  panels,
};

process.stdout.write(`${JSON.stringify(dashboard, null, 2)}\n`);
