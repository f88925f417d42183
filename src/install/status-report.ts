import { existsSync } from "node:fs";
import { nvidiaSmiArgv, parseNvidiaSmiCsv } from "../collectors/gpu-nvidia.js";
import type { Config } from "../config/schema.js";
import { type FetchFn, fetchJson } from "../core/http.js";
import type { GpuSample, IncidentSummary, WatchdogState } from "../core/types.js";
import { ago } from "../fleet/fleet.js";
import { inRotation } from "../remediation/drain.js";
import { UNIT_NAME } from "./layout.js";
import { dropInPath } from "./proxy.js";
import { type Exec, listenUrl, showUnit, succeeded } from "./system.js";

/**
 * `status`: the one-glance report. gatherStatus asks (Ollama's API, the watchdog's /api/status,
 * systemd, nvidia-smi when the watchdog cannot say), formatStatus is pure.
 */

/** One target as the watchdog's /api/status reports it (DESIGN.md §7). */
export interface WatchdogTargetStatus {
  name: string;
  url: string;
  state: string;
  since?: string;
  reason?: string;
  budget?: { remaining: number; max: number };
  models?: Array<{ name: string }>;
  lastIncident?: IncidentSummary | null;
  lastCanary?: { model: string; outcome: string; startedMono?: number } | null;
  api?: { up: boolean } | null;
}

export interface WatchdogStatusBody {
  version?: string;
  targets: WatchdogTargetStatus[];
  gpus?: GpuSample[];
}

export interface StatusReport {
  ollama: {
    url: string;
    up: boolean;
    version?: string;
    error?: string;
    loaded: Array<{ name: string; sizeVram?: number; expiresAt?: string }>;
    available: string[] | null;
  };
  gpus: GpuSample[] | null;
  /**
   * The stall guards the config sets up: where clients connect, where Ollama is, and the drop-in
   * that moved Ollama there when `install --proxy` did it.
   */
  guards?: Array<{ target: string; listen: string; ollama: string; dropIn?: string }>;
  /** Where the GPU numbers came from. */
  gpuSource: "watchdog" | "nvidia-smi" | "none";
  watchdog: {
    /** systemd's word for the unit (active, inactive, failed, …), "not-installed", or "unknown" without systemd. */
    service: string;
    url: string;
    running: boolean;
    version?: string;
    error?: string;
    targets: WatchdogTargetStatus[];
  };
}

interface PsBody {
  models?: Array<{ name: string; size_vram?: number; expires_at?: string }>;
}
interface TagsBody {
  models?: Array<{ name: string }>;
}

export async function gatherStatus(
  config: Config,
  options: { url?: string; exec: Exec; fetch?: FetchFn; exists?: (path: string) => boolean },
): Promise<StatusReport> {
  const url = (options.url ?? config.targets[0]?.url ?? "http://127.0.0.1:11434").replace(/\/$/, "");
  const http = { timeoutMs: config.detection.apiTimeout, ...(options.fetch ? { fetch: options.fetch } : {}) };
  const watchdogUrl = listenUrl(config.listen);
  const [version, ps, tags, watchdog, unit] = await Promise.all([
    fetchJson<{ version?: string }>(`${url}/api/version`, http),
    fetchJson<PsBody>(`${url}/api/ps`, http),
    fetchJson<TagsBody>(`${url}/api/tags`, http),
    fetchJson<WatchdogStatusBody>(`${watchdogUrl}/api/status`, { ...http, timeoutMs: 3000 }),
    showUnit(options.exec, UNIT_NAME),
  ]);
  const report: StatusReport = {
    ollama: {
      url,
      up: version.ok,
      loaded: (ps.body?.models ?? []).map((m) => {
        const model: { name: string; sizeVram?: number; expiresAt?: string } = { name: m.name };
        if (m.size_vram !== undefined) model.sizeVram = m.size_vram;
        if (m.expires_at !== undefined) model.expiresAt = m.expires_at;
        return model;
      }),
      available: tags.ok ? (tags.body?.models ?? []).map((m) => m.name) : null,
    },
    gpus: null,
    gpuSource: "none",
    watchdog: {
      service: serviceWord(unit),
      url: watchdogUrl,
      running: watchdog.ok && Array.isArray(watchdog.body?.targets),
      targets: watchdog.body?.targets ?? [],
    },
  };
  const guards = guardsOf(config, options.exists ?? existsSync);
  if (guards.length) report.guards = guards;
  if (version.body?.version) report.ollama.version = version.body.version;
  if (!version.ok && version.error) report.ollama.error = version.error;
  if (watchdog.body?.version) report.watchdog.version = watchdog.body.version;
  if (!watchdog.ok && watchdog.error) report.watchdog.error = watchdog.error;

  if (report.watchdog.running && watchdog.body?.gpus) {
    report.gpus = watchdog.body.gpus;
    report.gpuSource = "watchdog";
  } else if (config.gpu.backend === "auto" || config.gpu.backend === "nvidia") {
    const smi = await options.exec(nvidiaSmiArgv(config.gpu.nvidiaSmi), config.gpu.timeout);
    if (succeeded(smi)) {
      report.gpus = parseNvidiaSmiCsv(smi.stdout);
      report.gpuSource = "nvidia-smi";
    }
  }
  return report;
}

function guardsOf(config: Config, exists: (path: string) => boolean): NonNullable<StatusReport["guards"]> {
  return config.targets.flatMap((target) => {
    if (!target.proxy) return [];
    const guard: NonNullable<StatusReport["guards"]>[number] = {
      target: target.name,
      listen: target.proxy.listen,
      ollama: target.url,
    };
    const unit = target.restart.systemd?.unit;
    const dropIn = unit ? dropInPath(unit) : undefined;
    if (dropIn && exists(dropIn)) guard.dropIn = dropIn;
    return [guard];
  });
}

function serviceWord(unit: Awaited<ReturnType<typeof showUnit>>): string {
  if (!unit) return "unknown";
  if (unit.LoadState === "not-found") return "not-installed";
  return unit.ActiveState ?? "unknown";
}

const GIB = 1024 ** 3;
const gib = (bytes: number) => `${(bytes / GIB).toFixed(1)} GiB`;

/** Pure: the report as a person reads it. */
export function formatStatus(report: StatusReport, now: number): string {
  const lines: string[] = [];
  const o = report.ollama;
  lines.push(
    o.up
      ? `Ollama     ${o.url}: up, version ${o.version ?? "?"}`
      : `Ollama     ${o.url}: DOWN (${o.error ?? "no answer"})`,
  );
  const loaded = o.loaded.length
    ? o.loaded.map((m) => (m.sizeVram ? `${m.name} (${gib(m.sizeVram)} VRAM)` : m.name)).join(", ")
    : "none";
  lines.push(`Models     loaded: ${loaded}; available: ${o.available === null ? "?" : o.available.length}`);
  for (const guard of report.guards ?? []) {
    const how = guard.dropIn
      ? `Ollama moved behind it by install --proxy (${guard.dropIn})`
      : "clients must use the guard's address";
    lines.push(`Guard      ${guard.target}: clients → ${guard.listen} → Ollama ${guard.ollama}; ${how}`);
  }
  if (!report.gpus || report.gpus.length === 0) {
    lines.push("GPU        none reported");
  } else {
    for (const gpu of report.gpus) {
      const util = gpu.utilization === undefined ? "util ?" : `util ${Math.round(gpu.utilization * 100)}%`;
      const vram =
        gpu.memoryUsedBytes !== undefined && gpu.memoryTotalBytes !== undefined
          ? `VRAM ${gib(gpu.memoryUsedBytes)} / ${gib(gpu.memoryTotalBytes)}`
          : "VRAM ?";
      lines.push(`GPU ${gpu.index.padEnd(6)} ${gpu.name || "?"}: ${util}, ${vram}`);
    }
  }
  const w = report.watchdog;
  if (!w.running) {
    lines.push(
      `Watchdog   NOT RUNNING (service: ${w.service}; ${w.url}: ${w.error ?? "no answer"})` +
        (w.service === "not-installed" ? " — sudo ollama-watchdog install" : ""),
    );
    return lines.join("\n");
  }
  lines.push(`Watchdog   service ${w.service}, ${w.url}${w.version ? `, version ${w.version}` : ""}`);
  for (const target of w.targets) {
    const budget = target.budget ? `budget ${target.budget.remaining}/${target.budget.max} left` : "budget ?";
    const since = target.since ? ` since ${ago(Date.parse(target.since), now)}` : "";
    lines.push(
      `  ${target.name}: ${target.state}${since}, ${budget}${target.reason ? ` — ${target.reason}` : ""}`,
    );
    const incident = target.lastIncident;
    lines.push(
      incident
        ? `  last incident: ${incident.id} ${incident.outcome}, ${ago(incident.openedWall, now)}: ${incident.title}`
        : "  last incident: none",
    );
  }
  return lines.join("\n");
}

/** Healthy at one glance: Ollama answers, the watchdog runs, and every target is in rotation. */
export function statusHealthy(report: StatusReport): boolean {
  return (
    report.ollama.up &&
    report.watchdog.running &&
    report.watchdog.targets.every((target) => inRotation(target.state as WatchdogState, target.api?.up))
  );
}
