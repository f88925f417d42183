import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ACTION_KINDS, ACTION_RESULTS, WATCHDOG_STATES } from "../../src/core/types.js";
import { VERSION } from "../../src/core/version.js";
import { Telemetry } from "../../src/telemetry/metrics.js";
import { Registry } from "../../src/telemetry/prom.js";
import { ROOT } from "../support/paths.js";
import { promtool } from "../support/prometheus.js";
import { observation, snapshot, target } from "./fixtures.js";

/** Sample lines (no comments) of a family: `name{labels} value`. */
function samples(text: string, name: string): string[] {
  return text.split("\n").filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
}

function value(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe("Telemetry", () => {
  it("exports the §7 gauges from the latest snapshot, in base units", async () => {
    const s = snapshot();
    const t = new Telemetry({ getSnapshot: () => s });
    const text = await t.render();
    expect(value(text, `ollama_watchdog_build_info{version="${VERSION}"}`)).toBe(1);
    expect(value(text, 'ollama_up{target="default"}')).toBe(1);
    expect(value(text, 'ollama_frozen_duration_seconds{target="default"}')).toBe(0);
    expect(value(text, 'ollama_models_loaded{target="default"}')).toBe(1);
    expect(value(text, 'ollama_models_available{target="default"}')).toBe(2);
    expect(value(text, 'ollama_model_vram_bytes{target="default",model="llama3.2:1b"}')).toBe(1_500_000_000);
    expect(value(text, 'ollama_watchdog_budget_remaining{target="default"}')).toBe(3);
    expect(value(text, "ollama_watchdog_last_tick_timestamp_seconds")).toBe(1_700_000_015);
    expect(value(text, "ollama_watchdog_tick_interval_seconds")).toBe(15);
    const gpu = '{gpu="0",uuid="GPU-0000",name="NVIDIA GeForce RTX 4090"}';
    expect(value(text, `ollama_gpu_utilization_ratio${gpu}`)).toBe(0.42);
    expect(value(text, `ollama_gpu_memory_used_bytes${gpu}`)).toBe(8 * 2 ** 30);
    expect(value(text, `ollama_gpu_memory_total_bytes${gpu}`)).toBe(24 * 2 ** 30);
    expect(value(text, `ollama_gpu_temperature_celsius${gpu}`)).toBe(55);
    expect(value(text, `ollama_gpu_power_watts${gpu}`)).toBe(120.5);
    expect(value(text, 'ollama_watchdog_collector_success{target="default",collector="api"}')).toBe(1);
    expect(value(text, 'ollama_watchdog_collector_duration_seconds{target="default",collector="api"}')).toBe(
      0.004,
    );
    // a collector that does not apply (no systemd) is not a failure: absent
    expect(text).not.toContain('collector="journal"');
    expect(text).not.toMatch(/NaN/);
  });

  it("sets exactly one watchdog state to 1 per target", async () => {
    const s = snapshot({ targets: [target("a", "frozen", { frozenForMs: 75_500 }), target("b", "healthy")] });
    const text = await new Telemetry({ getSnapshot: () => s }).render();
    for (const name of ["a", "b"]) {
      const lines = samples(text, "ollama_watchdog_state").filter((l) => l.includes(`target="${name}"`));
      expect(lines).toHaveLength(WATCHDOG_STATES.length);
      expect(lines.filter((l) => l.endsWith(" 1"))).toHaveLength(1);
    }
    expect(value(text, 'ollama_watchdog_state{target="a",state="frozen"}')).toBe(1);
    expect(value(text, 'ollama_watchdog_state{target="a",state="healthy"}')).toBe(0);
    expect(value(text, 'ollama_frozen_duration_seconds{target="a"}')).toBe(75.5);
  });

  it("computes values at scrape time and drops series that disappeared", async () => {
    let s = snapshot();
    const t = new Telemetry({ getSnapshot: () => s });
    expect(value(await t.render(), 'ollama_watchdog_state{target="default",state="healthy"}')).toBe(1);
    s = snapshot({
      targets: [
        target("default", "down", {
          observation: observation("default", { api: { up: false }, ps: undefined, tags: undefined }),
        }),
      ],
      gpus: [],
    });
    const text = await t.render();
    expect(value(text, 'ollama_watchdog_state{target="default",state="down"}')).toBe(1);
    expect(value(text, 'ollama_up{target="default"}')).toBe(0);
    // /api/ps failed: the model count is unknown, not 0
    expect(samples(text, "ollama_models_loaded")).toEqual([]);
    expect(samples(text, "ollama_model_vram_bytes")).toEqual([]);
    expect(samples(text, "ollama_gpu_utilization_ratio")).toEqual([]);
  });

  it("omits GPU fields the tool did not report, never NaN", async () => {
    const s = snapshot({ gpus: [{ index: "0", uuid: "GPU-x", name: "Tesla T4", memoryUsedBytes: 1024 }] });
    const text = await new Telemetry({ getSnapshot: () => s }).render();
    expect(samples(text, "ollama_gpu_memory_used_bytes")).toHaveLength(1);
    for (const name of ["utilization_ratio", "memory_total_bytes", "temperature_celsius", "power_watts"]) {
      expect(samples(text, `ollama_gpu_${name}`)).toEqual([]);
    }
    expect(text).not.toMatch(/NaN/);
  });

  it("omits observation metrics before the first tick", async () => {
    const s = snapshot({
      lastTickWall: undefined,
      ticks: 0,
      targets: [target("default", "starting", { observation: undefined })],
    });
    const text = await new Telemetry({ getSnapshot: () => s }).render();
    expect(samples(text, "ollama_up")).toEqual([]);
    expect(samples(text, "ollama_watchdog_last_tick_timestamp_seconds")).toEqual([]);
    expect(value(text, 'ollama_watchdog_state{target="default",state="starting"}')).toBe(1);
  });

  it("pre-initialises every action×result and canary outcome to 0 per target", async () => {
    const s = snapshot({ targets: [target("a"), target("b")] });
    const text = await new Telemetry({ getSnapshot: () => s }).render();
    for (const name of ["a", "b"]) {
      for (const action of ACTION_KINDS) {
        for (const result of ACTION_RESULTS) {
          expect(
            value(
              text,
              `ollama_watchdog_actions_total{target="${name}",action="${action}",result="${result}"}`,
            ),
          ).toBe(0);
        }
      }
      expect(value(text, `ollama_canary_total{target="${name}",outcome="timeout"}`)).toBe(0);
      expect(value(text, `ollama_canary_duration_seconds_count{target="${name}"}`)).toBe(0);
    }
  });

  it("counts actions, canaries and API latency pushed by the daemon", async () => {
    const s = snapshot();
    const t = new Telemetry({ getSnapshot: () => s });
    t.countAction("default", { action: "kill-runner", result: "success", startedWall: 0, durationMs: 5 });
    t.countAction("default", { action: "restart", result: "failure", startedWall: 0, durationMs: 5 });
    t.observeCanary("default", { model: "m", outcome: "ok", startedMono: 0, ttftMs: 300, durationMs: 400 });
    t.observeCanary("default", { model: "m", outcome: "timeout", startedMono: 0, durationMs: 30_000 });
    t.observeApiLatency("default", 12);
    t.observeApiLatency("default", Number.NaN);
    const text = await t.render();
    expect(
      value(text, 'ollama_watchdog_actions_total{target="default",action="kill-runner",result="success"}'),
    ).toBe(1);
    expect(
      value(text, 'ollama_watchdog_actions_total{target="default",action="restart",result="failure"}'),
    ).toBe(1);
    expect(
      value(text, 'ollama_watchdog_actions_total{target="default",action="restart",result="success"}'),
    ).toBe(0);
    expect(value(text, 'ollama_canary_total{target="default",outcome="ok"}')).toBe(1);
    expect(value(text, 'ollama_canary_total{target="default",outcome="timeout"}')).toBe(1);
    // only a canary with a first token is in the time-to-first-token histogram
    expect(value(text, 'ollama_canary_duration_seconds_count{target="default"}')).toBe(1);
    expect(value(text, 'ollama_canary_duration_seconds_sum{target="default"}')).toBe(0.3);
    expect(value(text, 'ollama_canary_duration_seconds_bucket{le="0.25",target="default"}')).toBe(0);
    expect(value(text, 'ollama_canary_duration_seconds_bucket{le="0.5",target="default"}')).toBe(1);
    expect(value(text, 'ollama_api_latency_seconds_count{target="default"}')).toBe(1);
    expect(value(text, 'ollama_api_latency_seconds_sum{target="default"}')).toBe(0.012);
  });

  it("recordObservation pushes a tick's latency, canaries and actions", async () => {
    const s = snapshot();
    const t = new Telemetry({ getSnapshot: () => s });
    t.recordObservation(
      observation("default", {
        canaryResults: [{ model: "m", outcome: "ok", startedMono: 0, ttftMs: 80, durationMs: 90 }],
        actionResults: [{ action: "restart", result: "dry-run", startedWall: 0, durationMs: 0 }],
      }),
    );
    const text = await t.render();
    expect(value(text, 'ollama_api_latency_seconds_count{target="default"}')).toBe(1);
    expect(value(text, 'ollama_canary_duration_seconds_count{target="default"}')).toBe(1);
    expect(
      value(text, 'ollama_watchdog_actions_total{target="default",action="restart",result="dry-run"}'),
    ).toBe(1);
  });

  it("reads the snapshot once per scrape", async () => {
    let calls = 0;
    const t = new Telemetry({
      getSnapshot: () => {
        calls++;
        return snapshot();
      },
    });
    await t.render();
    expect(calls).toBe(1);
    await t.render();
    expect(calls).toBe(2);
  });

  it("uses its own registry: nothing on the global one, no default metrics", async () => {
    const registry = new Registry();
    const t = new Telemetry({ getSnapshot: () => snapshot(), registry });
    expect(t.registry).toBe(registry);
    const text = await t.render();
    expect(text).not.toMatch(/^process_|^nodejs_/m);
    // two instances side by side do not collide
    expect(() => new Telemetry({ getSnapshot: () => snapshot() })).not.toThrow();
  });

  it("passes promtool check metrics with nothing printed", async () => {
    const s = snapshot({ targets: [target("a", "frozen", { frozenForMs: 1_000 }), target("b")] });
    const t = new Telemetry({ getSnapshot: () => s });
    t.observeCanary("a", { model: "m", outcome: "ok", startedMono: 0, ttftMs: 1500, durationMs: 2000 });
    t.countAction("a", { action: "restart", result: "success", startedWall: 0, durationMs: 1 });
    t.observeApiLatency("b", 4);
    const result = await promtool(["check", "metrics"], await t.render());
    expect(result.stdout + result.stderr).toBe("");
    expect(result.code).toBe(0);
  });

  it("serves GET /metrics as a Route", async () => {
    const t = new Telemetry({ getSnapshot: () => snapshot() });
    const [route] = t.routes();
    expect(route?.method).toBe("GET");
    expect(route?.path).toBe("/metrics");
    const server = createServer((req, res) => void route?.handle(req, res, null));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe(t.contentType);
      expect(await res.text()).toContain("ollama_watchdog_build_info");
    } finally {
      server.close();
    }
  });
});

describe("docs/metrics.md", () => {
  it("documents every family the watchdog exports, with its type", async () => {
    const doc = readFileSync(join(ROOT, "docs/metrics.md"), "utf8");
    const text = await new Telemetry({ getSnapshot: () => snapshot() }).render();
    const families = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1], m[2]] as const);
    expect(families.length).toBeGreaterThan(20);
    for (const [name, type] of families) {
      expect(doc, name).toMatch(new RegExp(`^\\| \`${name}\` +\\| ${type} +\\|`, "m"));
    }
  });
});
