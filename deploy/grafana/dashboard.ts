/**
 * The Grafana dashboard, built with Grafana's typed builders (@grafana/grafana-foundation-sdk), so
 * `tsc` rejects a malformed panel. Writes deploy/grafana/ollama-watchdog.json, the file users
 * import:
 *   npx tsx deploy/grafana/dashboard.ts
 * test/telemetry/grafana.test.ts checks that the committed JSON equals a fresh build, runs the
 * dashboard-linter's checks on it, and runs every query against a real Prometheus.
 */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as common from "@grafana/grafana-foundation-sdk/common";
import * as dashboard from "@grafana/grafana-foundation-sdk/dashboard";
import { DataqueryBuilder, QueryEditorMode } from "@grafana/grafana-foundation-sdk/prometheus";
import { PanelBuilder as StatPanel } from "@grafana/grafana-foundation-sdk/stat";
import { PanelBuilder as StateTimelinePanel } from "@grafana/grafana-foundation-sdk/statetimeline";
import { PanelBuilder as TimeseriesPanel } from "@grafana/grafana-foundation-sdk/timeseries";
import * as units from "@grafana/grafana-foundation-sdk/units";
import { WATCHDOG_STATES } from "../../src/core/types.js";

/** The scrape job the dashboard selects by default (the `job` variable; docs/metrics.md). */
export const DEFAULT_JOB = "ollama-watchdog";

// biome-ignore lint/suspicious/noTemplateCurlyInString: a Grafana variable, not a JS template
const DS = { type: "prometheus", uid: "${datasource}" };
/** The watchdog's host-level series (GPUs, the watchdog itself: no `target` label). */
const HOST = 'job=~"$job",instance=~"$instance"';
/** The watchdog's per-target series; `target!=""` keeps other exporters' `ollama_up` & co. out. */
const TARGET = `${HOST},target=~"$target",target!=""`;

const STATE_COLORS = ["blue", "green", "yellow", "red", "dark-red", "orange", "purple"];

/** One number per target: the index (1..7) of its current state, for a state timeline. */
const stateCode = `max by (instance, target) (\n${WATCHDOG_STATES.map(
  (s, i) => `  ollama_watchdog_state{${TARGET},state="${s}"} * ${i + 1}`,
).join("\n  or\n")}\n)`;

type Query = [expr: string, legend: string];

function queries(list: Query[]): DataqueryBuilder[] {
  return list.map(([expr, legend], i) =>
    new DataqueryBuilder()
      .refId(String.fromCharCode(65 + i))
      .datasource(DS)
      .editorMode(QueryEditorMode.Code)
      .expr(expr)
      .legendFormat(legend)
      .range(),
  );
}

interface Common {
  title: string;
  description: string;
  unit: string;
  queries: Query[];
}

/** The settings every data panel shares: title, description, unit, datasource, queries. */
function base<P extends TimeseriesPanel | StatPanel | StateTimelinePanel>(panel: P, spec: Common): P {
  panel
    .title(spec.title)
    .description(spec.description)
    .unit(spec.unit)
    .datasource(DS)
    .targets(queries(spec.queries));
  return panel;
}

function timeseries(spec: Common & { decimals?: number; min?: number; max?: number }): TimeseriesPanel {
  const panel = base(new TimeseriesPanel(), spec)
    .drawStyle(common.GraphDrawStyle.Line)
    .lineWidth(1)
    .fillOpacity(10)
    .showPoints(common.VisibilityMode.Never)
    .legend(
      new common.VizLegendOptionsBuilder()
        .displayMode(common.LegendDisplayMode.List)
        .placement(common.LegendPlacement.Bottom)
        .showLegend(true),
    )
    .tooltip(
      new common.VizTooltipOptionsBuilder()
        .mode(common.TooltipDisplayMode.Multi)
        .sort(common.SortOrder.Descending),
    );
  if (spec.decimals !== undefined) panel.decimals(spec.decimals);
  if (spec.min !== undefined) panel.min(spec.min);
  if (spec.max !== undefined) panel.max(spec.max);
  return panel;
}

/** Counts per scrape interval, drawn as bars. */
function bars(spec: Common & { stacked?: boolean }): TimeseriesPanel {
  const panel = timeseries({ ...spec, decimals: 0 })
    .drawStyle(common.GraphDrawStyle.Bars)
    .fillOpacity(80);
  if (spec.stacked) panel.stacking(new common.StackingConfigBuilder().mode(common.StackingMode.Normal));
  return panel;
}

function row(title: string): dashboard.RowBuilder {
  return new dashboard.RowBuilder(title);
}

function queryVariable(name: string, label: string, query: string): dashboard.QueryVariableBuilder {
  return new dashboard.QueryVariableBuilder(name)
    .label(label)
    .datasource(DS)
    .definition(query)
    .query({ query, refId: "PrometheusVariableQueryEditor-VariableQuery" })
    .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
    .sort(dashboard.VariableSort.AlphabeticalAsc);
}

/** A multi-select variable as Grafana's dashboard-linter wants it: label "Name", All = `.+`. */
function multiVariable(name: string, query: string): dashboard.QueryVariableBuilder {
  return queryVariable(name, name[0]?.toUpperCase() + name.slice(1), query)
    .multi(true)
    .includeAll(true)
    .allValue(".+");
}

const gpuLegend = "{{instance}} GPU {{gpu}} {{name}}";

/** The dashboard's panels, top to bottom; each line's widths add up to 24. */
function layout(): Array<
  [
    dashboard.RowBuilder,
    ...Array<{ w: number; h: number; panel: TimeseriesPanel | StatPanel | StateTimelinePanel }>,
  ]
> {
  const stateTimeline = base(new StateTimelinePanel(), {
    title: "Watchdog state",
    description: "The watchdog's verdict per target over time (ollama_watchdog_state).",
    unit: units.NoUnit,
    queries: [[stateCode, "{{instance}} {{target}}"]],
  })
    .colorScheme(new dashboard.FieldColorBuilder().mode(dashboard.FieldColorModeId.Thresholds))
    .thresholds(
      new dashboard.ThresholdsConfigBuilder()
        .mode(dashboard.ThresholdsMode.Absolute)
        .steps([{ color: "text", value: null }]),
    )
    .mappings([
      {
        type: dashboard.MappingType.ValueToText,
        options: Object.fromEntries(
          WATCHDOG_STATES.map((s, i) => [
            String(i + 1),
            { text: s, color: STATE_COLORS[i] ?? "text", index: i },
          ]),
        ),
      },
    ])
    .fillOpacity(80)
    .lineWidth(0)
    .showValue(common.VisibilityMode.Auto)
    .mergeValues(true)
    .alignValue(common.TimelineValueAlignment.Left)
    .rowHeight(0.9)
    .legend(
      new common.VizLegendOptionsBuilder()
        .displayMode(common.LegendDisplayMode.List)
        .placement(common.LegendPlacement.Bottom)
        .showLegend(false),
    )
    .tooltip(
      new common.VizTooltipOptionsBuilder()
        .mode(common.TooltipDisplayMode.Single)
        .sort(common.SortOrder.None),
    );

  const apiUp = base(new StatPanel(), {
    title: "Ollama API up",
    description: "Whether the Ollama API answered the latest tick (ollama_up).",
    unit: units.NoUnit,
    queries: [[`ollama_up{${TARGET}}`, "{{instance}} {{target}}"]],
  })
    .colorScheme(new dashboard.FieldColorBuilder().mode(dashboard.FieldColorModeId.Thresholds))
    .thresholds(
      new dashboard.ThresholdsConfigBuilder().mode(dashboard.ThresholdsMode.Absolute).steps([
        { color: "red", value: null },
        { color: "green", value: 1 },
      ]),
    )
    .mappings([
      {
        type: dashboard.MappingType.ValueToText,
        options: { 0: { text: "down", index: 0 }, 1: { text: "up", index: 1 } },
      },
    ])
    .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(["lastNotNull"]).fields("").values(false))
    .colorMode(common.BigValueColorMode.Background)
    .graphMode(common.BigValueGraphMode.None)
    .textMode(common.BigValueTextMode.ValueAndName)
    .justifyMode(common.BigValueJustifyMode.Auto)
    .orientation(common.VizOrientation.Auto);

  return [
    [row("Ollama"), { w: 16, h: 8, panel: stateTimeline }, { w: 8, h: 8, panel: apiUp }],
    [
      row("Remediation"),
      {
        w: 8,
        h: 8,
        panel: timeseries({
          title: "Frozen duration",
          description: "How long demand has gone without progress (0 when not frozen).",
          unit: units.Seconds,
          queries: [[`ollama_frozen_duration_seconds{${TARGET}}`, "{{instance}} {{target}}"]],
        }),
      },
      {
        w: 8,
        h: 8,
        panel: bars({
          title: "Remediation actions",
          description: "Actions the watchdog took, by action and result (ollama_watchdog_actions_total).",
          unit: units.Short,
          queries: [
            [
              `sum by (instance, target, action, result) (increase(ollama_watchdog_actions_total{${TARGET}}[$__rate_interval]))`,
              "{{target}} {{action}} {{result}}",
            ],
          ],
        }),
      },
      {
        w: 8,
        h: 8,
        panel: timeseries({
          title: "Remediation budget",
          description: "Actions left in the budget window, against the maximum.",
          unit: units.Short,
          decimals: 0,
          min: 0,
          queries: [
            [`ollama_watchdog_budget_remaining{${TARGET}}`, "{{target}} remaining"],
            [`ollama_watchdog_budget_max{${TARGET}}`, "{{target}} max"],
          ],
        }),
      },
    ],
    [
      row("Canaries and API"),
      {
        w: 8,
        h: 8,
        panel: timeseries({
          title: "Canary time to first token",
          description: "Quantiles of the canaries' time to first token (ollama_canary_duration_seconds).",
          unit: units.Seconds,
          queries: [0.5, 0.9, 0.99].map(
            (q): Query => [
              `histogram_quantile(${q}, sum by (instance, target, le) (rate(ollama_canary_duration_seconds_bucket{${TARGET}}[$__rate_interval])))`,
              `{{target}} p${q * 100}`,
            ],
          ),
        }),
      },
      {
        w: 8,
        h: 8,
        panel: bars({
          title: "Canary outcomes",
          description: "Finished canaries by outcome: ok, timeout, error (ollama_canary_total).",
          unit: units.Short,
          stacked: true,
          queries: [
            [
              `sum by (instance, target, outcome) (increase(ollama_canary_total{${TARGET}}[$__rate_interval]))`,
              "{{target}} {{outcome}}",
            ],
          ],
        }),
      },
      {
        w: 8,
        h: 8,
        panel: timeseries({
          title: "Ollama API latency (p90)",
          description: "90th percentile of the API's answers to the watchdog (ollama_api_latency_seconds).",
          unit: units.Seconds,
          queries: [
            [
              `histogram_quantile(0.9, sum by (instance, target, le) (rate(ollama_api_latency_seconds_bucket{${TARGET}}[$__rate_interval])))`,
              "{{target}}",
            ],
          ],
        }),
      },
    ],
    [
      row("Models"),
      {
        w: 12,
        h: 8,
        panel: timeseries({
          title: "Models loaded and available",
          description: "Models in /api/ps (loaded) and /api/tags (available).",
          unit: units.Short,
          decimals: 0,
          min: 0,
          queries: [
            [`ollama_models_loaded{${TARGET}}`, "{{target}} loaded"],
            [`ollama_models_available{${TARGET}}`, "{{target}} available"],
          ],
        }),
      },
      {
        w: 12,
        h: 8,
        panel: timeseries({
          title: "VRAM per loaded model",
          description: "size_vram of each loaded model (ollama_model_vram_bytes).",
          unit: units.BytesIEC,
          queries: [[`ollama_model_vram_bytes{${TARGET}}`, "{{target}} {{model}}"]],
        })
          .stacking(new common.StackingConfigBuilder().mode(common.StackingMode.Normal))
          .fillOpacity(30),
      },
    ],
    [
      row("GPUs"),
      {
        w: 6,
        h: 8,
        panel: timeseries({
          title: "GPU utilization",
          description: "Utilization of each GPU of the watchdog's host (ollama_gpu_utilization_ratio).",
          unit: units.PercentUnit,
          min: 0,
          max: 1,
          queries: [[`ollama_gpu_utilization_ratio{${HOST}}`, gpuLegend]],
        }),
      },
      {
        w: 6,
        h: 8,
        panel: timeseries({
          title: "GPU memory",
          description: "Memory used and in total per GPU (ollama_gpu_memory_used_bytes, ..._total_bytes).",
          unit: units.BytesIEC,
          queries: [
            [`ollama_gpu_memory_used_bytes{${HOST}}`, `${gpuLegend} used`],
            [`ollama_gpu_memory_total_bytes{${HOST}}`, `${gpuLegend} total`],
          ],
        }),
      },
      {
        w: 6,
        h: 8,
        panel: timeseries({
          title: "GPU temperature",
          description: "Temperature per GPU, where the tool reports it (ollama_gpu_temperature_celsius).",
          unit: units.Celsius,
          queries: [[`ollama_gpu_temperature_celsius{${HOST}}`, gpuLegend]],
        }),
      },
      {
        w: 6,
        h: 8,
        panel: timeseries({
          title: "GPU power",
          description: "Power draw per GPU, where the tool reports it (ollama_gpu_power_watts).",
          unit: units.Watt,
          queries: [[`ollama_gpu_power_watts{${HOST}}`, gpuLegend]],
        }),
      },
    ],
    [
      row("Watchdog"),
      {
        w: 8,
        h: 8,
        panel: timeseries({
          title: "Collector success",
          description: "1 when a collector succeeded in the latest tick (ollama_watchdog_collector_success).",
          unit: units.NoUnit,
          decimals: 0,
          min: 0,
          max: 1,
          queries: [[`ollama_watchdog_collector_success{${TARGET}}`, "{{target}} {{collector}}"]],
        }),
      },
      {
        w: 8,
        h: 8,
        panel: timeseries({
          title: "Collector duration",
          description:
            "How long each collector took in the latest tick (ollama_watchdog_collector_duration_seconds).",
          unit: units.Seconds,
          queries: [[`ollama_watchdog_collector_duration_seconds{${TARGET}}`, "{{target}} {{collector}}"]],
        }),
      },
      {
        w: 8,
        h: 8,
        panel: timeseries({
          title: "Time since the last tick",
          description: "Grows when the watchdog's loop stalls (alert OllamaWatchdogStalled).",
          unit: units.Seconds,
          queries: [
            [`time() - ollama_watchdog_last_tick_timestamp_seconds{${HOST}}`, "{{instance}}"],
            [`ollama_watchdog_tick_interval_seconds{${HOST}}`, "{{instance}} interval"],
          ],
        }),
      },
    ],
    [
      row("Notifications"),
      {
        w: 24,
        h: 7,
        panel: bars({
          title: "Notifications",
          description:
            "Messages to each notify receiver by result: sent, retried, failed, dropped, deduplicated, rate-limited (ollama_watchdog_notifications_total).",
          unit: units.Short,
          stacked: true,
          queries: [
            [
              `sum by (instance, receiver, result) (increase(ollama_watchdog_notifications_total{${HOST}}[$__rate_interval]))`,
              "{{instance}} {{receiver}} {{result}}",
            ],
          ],
        }),
      },
    ],
  ];
}

/** The dashboard model Grafana imports. */
export function buildDashboard(): dashboard.Dashboard {
  const builder = new dashboard.DashboardBuilder("Ollama watchdog")
    .uid("ollama-watchdog")
    .description(
      "Ollama servers watched by ollama-watchdog: verdicts, remediation, canaries, models and GPUs.",
    )
    .tags(["ollama", "ollama-watchdog"])
    .timezone("browser")
    .editable()
    .tooltip(dashboard.DashboardCursorSync.Crosshair)
    .refresh("30s")
    .version(1)
    .time({ from: "now-6h", to: "now" })
    .withVariable(
      new dashboard.DatasourceVariableBuilder("datasource").label("Data source").type("prometheus"),
    )
    .withVariable(
      multiVariable("job", "label_values(ollama_watchdog_build_info, job)").current({
        text: [DEFAULT_JOB],
        value: [DEFAULT_JOB],
        selected: true,
      }),
    )
    .withVariable(
      multiVariable("instance", 'label_values(ollama_watchdog_build_info{job=~"$job"}, instance)'),
    )
    .withVariable(multiVariable("target", `label_values(ollama_watchdog_state{${HOST},target!=""}, target)`))
    .annotation(
      new dashboard.AnnotationQueryBuilder()
        .name("Remediation actions")
        .datasource(DS)
        .enable(true)
        .hide(false)
        .iconColor("red")
        .expr(
          `sum by (instance, target, action) (increase(ollama_watchdog_actions_total{${TARGET},result!="dry-run"}[$__rate_interval])) > 0`,
        )
        .step("1m")
        .titleFormat("{{action}} on {{target}}")
        .textFormat("{{instance}}")
        .useValueForTime(false),
    );
  let id = 1;
  let y = 0;
  for (const [rowBuilder, ...cells] of layout()) {
    builder.withRow(rowBuilder.id(id++).gridPos({ h: 1, w: 24, x: 0, y }));
    y += 1;
    let x = 0;
    let height = 0;
    for (const { w, h, panel } of cells) {
      builder.withPanel(panel.id(id++).gridPos({ h, w, x, y }));
      x += w;
      height = Math.max(height, h);
    }
    y += height;
  }
  return builder.build();
}

/** The text of deploy/grafana/ollama-watchdog.json. */
export function dashboardJson(): string {
  return `${JSON.stringify(buildDashboard(), null, 2)}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const file = fileURLToPath(new URL("ollama-watchdog.json", import.meta.url));
  writeFileSync(file, dashboardJson());
  process.stdout.write(`wrote ${file}\n`);
}
