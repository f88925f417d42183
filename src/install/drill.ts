import type { Config, TargetConfig } from "../config/schema.js";
import { type FetchFn, fetchJson } from "../core/http.js";
import type { IncidentSummary } from "../core/types.js";
import { listProcesses, pickRunner, readProcess } from "./procfs.js";
import type { WatchdogStatusBody, WatchdogTargetStatus } from "./status-report.js";
import { listenUrl } from "./system.js";

/**
 * drill: the freeze test, for real. Against a live Ollama watched by a running watchdog: make sure
 * a model is loaded, SIGSTOP its runner, and time how long the watchdog takes to notice (its state
 * leaves healthy, or it acts) and to heal (a generation succeeds again). The runner is always
 * SIGCONT'ed at the end if it still exists — on success, failure, timeout or abort.
 */

/** The least budget a drill needs: the ladder's first step and, if that fails, a restart. */
export const MIN_BUDGET_FOR_DRILL = 2;

export type DrillOutcome = "recovered" | "not-detected" | "not-recovered" | "refused" | "aborted";

export interface DrillEvent {
  /** ms since the freeze. */
  atMs: number;
  event: string;
}

export interface DrillReport {
  outcome: DrillOutcome;
  target: string;
  refusedBecause?: string;
  model?: string;
  runner?: { pid: number; cmdline: string };
  frozenAt?: string;
  detectedAfterMs?: number;
  detectedAs?: { state: string; reason?: string };
  recoveredAfterMs?: number;
  budgetBefore?: number;
  budgetAfter?: number;
  incident?: IncidentSummary;
  timeline: DrillEvent[];
}

/** A stopped process, by pid and start time (so a reused pid is never signalled). */
export interface FrozenProcess {
  pid: number;
  startTicks: number;
}

export interface DrillDeps {
  fetch?: FetchFn;
  procRoot: string;
  /** process.kill */
  kill: (pid: number, signal: NodeJS.Signals) => void;
  now: () => number;
  sleep: (ms: number) => Promise<void>;
  print: (line: string) => void;
  /** Told about the stopped runner (and undefined once released): the shell's last-resort exit hook. */
  onFrozen?: (frozen: FrozenProcess | undefined) => void;
  signal?: AbortSignal;
}

/** Resumes a process we stopped, only if it is still the same process. Returns whether it did. */
export function thaw(frozen: FrozenProcess, procRoot: string, kill: DrillDeps["kill"]): boolean {
  const current = readProcess(procRoot, frozen.pid);
  if (!current || current.startTicks !== frozen.startTicks) return false;
  try {
    kill(frozen.pid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
}

/** Pure: has the watchdog noticed? Its state left healthy, or its budget shrank (it acted). */
export function noticed(target: WatchdogTargetStatus, budgetBefore: number): boolean {
  return (
    !["healthy", "starting"].includes(target.state) ||
    (target.budget?.remaining ?? budgetBefore) < budgetBefore
  );
}

export async function runDrill(
  config: Config,
  options: { target?: string; timeoutMs: number },
  deps: DrillDeps,
): Promise<DrillReport> {
  const target = options.target ? config.targets.find((t) => t.name === options.target) : config.targets[0];
  const name = options.target ?? config.targets[0]?.name ?? "?";
  const timeline: DrillEvent[] = [];
  const refuse = (why: string): DrillReport => ({
    outcome: "refused",
    target: name,
    refusedBecause: why,
    timeline,
  });
  if (!target) return refuse(`no target named ${options.target} in the config`);
  const http = (timeoutMs: number) => ({ timeoutMs, ...(deps.fetch ? { fetch: deps.fetch } : {}) });
  const statusUrl = `${listenUrl(config.listen)}/api/status`;
  const watchdogTarget = async () => {
    const status = await fetchJson<WatchdogStatusBody>(statusUrl, http(3000));
    return { status, target: status.body?.targets?.find((t) => t.name === target.name) };
  };

  // 1. Preconditions: a running watchdog, a healthy target, budget for the ladder.
  const before = await watchdogTarget();
  if (!before.status.ok) {
    return refuse(
      `the watchdog is not running (${statusUrl}: ${before.status.error}): sudo ollama-watchdog install`,
    );
  }
  if (!before.target) return refuse(`the watchdog does not watch a target named ${target.name}`);
  const budgetBefore = before.target.budget?.remaining ?? 0;
  if (budgetBefore < MIN_BUDGET_FOR_DRILL) {
    return refuse(
      `the watchdog's budget has ${budgetBefore} action(s) left; a drill needs ${MIN_BUDGET_FOR_DRILL} (wait for the window to pass)`,
    );
  }
  if (before.target.state !== "healthy") {
    return refuse(`the target is ${before.target.state}, not healthy: drill only a healthy Ollama`);
  }

  // 2. A loaded model (one tiny generation loads one if none is).
  const model = await ensureLoadedModel(target, config, deps);
  if ("refused" in model) return refuse(model.refused);
  deps.print(`model ${model.name} is loaded${model.loadedByDrill ? " (loaded by the drill)" : ""}`);

  // The watchdog must have seen the model answer (a successful canary) before the freeze, or it
  // would rightly treat the silence as a model still loading (detection.loadGrace).
  const canaryBefore = JSON.stringify(before.target.lastCanary ?? null);
  const seenWithin = Math.min(
    options.timeoutMs,
    config.detection.loadGrace +
      config.detection.canary.every +
      config.detection.canary.timeout +
      3 * config.interval +
      10_000,
  );
  const seenBy = deps.now() + seenWithin;
  for (;;) {
    const now = await watchdogTarget();
    const canary = now.target?.lastCanary;
    const fresh = canary && JSON.stringify(canary) !== canaryBefore;
    if (canary?.model === model.name && canary.outcome === "ok" && (fresh || !model.loadedByDrill)) break;
    if (deps.now() > seenBy || deps.signal?.aborted) {
      return refuse(
        `the watchdog did not see ${model.name} answer a canary within ${Math.round(seenWithin / 1000)}s`,
      );
    }
    await deps.sleep(500);
  }
  deps.print(`the watchdog has seen ${model.name} answer`);

  // 3. Its runner, found in procfs.
  const pick = pickRunner(listProcesses(deps.procRoot), target.processes, model.name);
  if (!pick.runner) return refuse(`cannot tell which runner to freeze: ${pick.why}`);
  const runner = pick.runner;

  const report: DrillReport = {
    outcome: "not-detected",
    target: target.name,
    model: model.name,
    runner: { pid: runner.pid, cmdline: runner.cmdline },
    budgetBefore,
    timeline,
  };
  const frozen: FrozenProcess = { pid: runner.pid, startTicks: runner.startTicks };
  const start = deps.now();
  const at = () => deps.now() - start;
  const log = (event: string) => {
    timeline.push({ atMs: at(), event });
    deps.print(`[${(at() / 1000).toFixed(1)}s] ${event}`);
  };
  try {
    deps.kill(runner.pid, "SIGSTOP");
    deps.onFrozen?.(frozen);
    report.frozenAt = new Date(start).toISOString();
    log(`SIGSTOP runner pid ${runner.pid} (${pick.why})`);

    // 4. Detection.
    let lastState = before.target.state;
    const deadline = start + options.timeoutMs;
    while (report.detectedAfterMs === undefined) {
      if (deps.signal?.aborted) return { ...report, outcome: "aborted" };
      if (deps.now() > deadline) return { ...report, outcome: "not-detected" };
      const now = await watchdogTarget();
      if (now.target) {
        if (now.target.state !== lastState) {
          log(
            `watchdog: ${lastState} → ${now.target.state}${now.target.reason ? ` (${now.target.reason})` : ""}`,
          );
          lastState = now.target.state;
        }
        if (noticed(now.target, budgetBefore)) {
          report.detectedAfterMs = at();
          report.detectedAs = {
            state: now.target.state,
            ...(now.target.reason ? { reason: now.target.reason } : {}),
          };
          log("detected");
        }
      }
      if (report.detectedAfterMs === undefined) await deps.sleep(500);
    }

    // 5. Recovery: the watchdog is healthy again and a generation works.
    let runnerGone = false;
    for (;;) {
      if (deps.signal?.aborted) return { ...report, outcome: "aborted" };
      if (deps.now() > deadline) return { ...report, outcome: "not-recovered" };
      if (!runnerGone && readProcess(deps.procRoot, runner.pid)?.startTicks !== runner.startTicks) {
        runnerGone = true;
        deps.onFrozen?.(undefined);
        log(`runner pid ${runner.pid} is gone (killed)`);
      }
      const now = await watchdogTarget();
      if (now.target && now.target.state !== lastState) {
        log(
          `watchdog: ${lastState} → ${now.target.state}${now.target.reason ? ` (${now.target.reason})` : ""}`,
        );
        lastState = now.target.state;
      }
      if (now.target?.state === "healthy") {
        const generation = await generate(target, model.name, config.detection.canary.timeout, deps.fetch);
        if (generation.ok) {
          report.recoveredAfterMs = at();
          report.budgetAfter = now.target.budget?.remaining ?? budgetBefore;
          if (now.target.lastIncident) report.incident = now.target.lastIncident;
          log(`recovered: a generation on ${model.name} succeeded`);
          return { ...report, outcome: "recovered" };
        }
        log(`watchdog says healthy but a generation failed: ${generation.error}`);
      }
      if (now.target?.state === "exhausted") return { ...report, outcome: "not-recovered" };
      await deps.sleep(1000);
    }
  } finally {
    if (thaw(frozen, deps.procRoot, deps.kill)) log(`SIGCONT runner pid ${runner.pid} (cleanup)`);
    deps.onFrozen?.(undefined);
  }
}

async function ensureLoadedModel(
  target: TargetConfig,
  config: Config,
  deps: DrillDeps,
): Promise<{ name: string; loadedByDrill: boolean } | { refused: string }> {
  const http = (timeoutMs: number) => ({ timeoutMs, ...(deps.fetch ? { fetch: deps.fetch } : {}) });
  const ps = await fetchJson<{ models?: Array<{ name: string }> }>(
    `${target.url}/api/ps`,
    http(config.detection.apiTimeout),
  );
  if (!ps.ok) return { refused: `Ollama at ${target.url} does not answer /api/ps: ${ps.error}` };
  const loaded = ps.body?.models?.[0]?.name;
  if (loaded) return { name: loaded, loadedByDrill: false };
  const tags = await fetchJson<{ models?: Array<{ name: string }> }>(
    `${target.url}/api/tags`,
    http(config.detection.apiTimeout),
  );
  const first = tags.body?.models?.[0]?.name;
  if (!first) return { refused: `Ollama at ${target.url} has no model to load (ollama pull one first)` };
  const generation = await generate(target, first, Math.max(config.detection.loadGrace, 60_000), deps.fetch);
  if (!generation.ok) return { refused: `loading ${first} failed: ${generation.error}` };
  return { name: first, loadedByDrill: true };
}

/** One tiny non-streamed generation: proof that the model answers. */
async function generate(
  target: TargetConfig,
  model: string,
  timeoutMs: number,
  fetchFn: FetchFn | undefined,
): Promise<{ ok: boolean; error?: string }> {
  const result = await fetchJson<{ done?: boolean; error?: string }>(`${target.url}/api/generate`, {
    method: "POST",
    timeoutMs,
    body: { model, prompt: "hi", stream: false, options: { num_predict: 1 } },
    ...(fetchFn ? { fetch: fetchFn } : {}),
  });
  if (result.ok && !result.body?.error) return { ok: true };
  return { ok: false, error: result.body?.error ?? result.error ?? "no answer" };
}

/** Pure: the report as a person reads it. */
export function formatDrill(report: DrillReport): string {
  const s = (ms: number | undefined) => (ms === undefined ? "—" : `${(ms / 1000).toFixed(1)}s`);
  if (report.outcome === "refused") return `drill refused: ${report.refusedBecause}`;
  const lines = [
    `drill on target ${report.target}: ${report.outcome.toUpperCase()}`,
    `  model:      ${report.model}`,
    `  runner:     pid ${report.runner?.pid} (${report.runner?.cmdline})`,
    `  frozen at:  ${report.frozenAt}`,
    `  detected:   ${s(report.detectedAfterMs)}${report.detectedAs ? ` (${report.detectedAs.state}${report.detectedAs.reason ? `: ${report.detectedAs.reason}` : ""})` : ""}`,
    `  recovered:  ${s(report.recoveredAfterMs)}`,
  ];
  if (report.budgetBefore !== undefined && report.budgetAfter !== undefined) {
    lines.push(`  budget:     ${report.budgetBefore} → ${report.budgetAfter} actions left`);
  }
  if (report.incident)
    lines.push(`  incident:   ${report.incident.id} (ollama-watchdog incidents show ${report.incident.id})`);
  return lines.join("\n");
}
