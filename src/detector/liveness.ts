/**
 * Liveness: is Ollama answering at all, did it restart (startup grace), and does /api/ps answer.
 *
 * - Liveness: `/api/version` failing `detection.downAfter` consecutive ticks → `down` → `restart`
 *   (no kill-runner: F6/F7). The count is also the wait that lets systemd's Restart=always act
 *   first; fewer failures are `suspect`.
 * - Scheduler freeze (F5): `/api/ps` failing every tick for `freezeAfter` while `/api/version`
 *   answers → `frozen`, ladder straight to `restart`.
 * - Grace: `starting` for `startupGrace` after the watchdog starts and after Ollama (re)starts
 *   (server pid/start time changed, or the API is back after `down`); a successful canary ends it
 *   early (Ollama has proven healthy). A model is loading (B3) from when it first appears in
 *   `/api/ps` (models already there on the watchdog's first look are not), its runner pid
 *   changes, or its expires_at moves in step with the clock between polls (Ollama lists a loading
 *   model as "now + keep-alive"; this catches loads begun before the first look), for `loadGrace`
 *   or until a canary on it succeeds or its expiry stops moving (Ollama fixes it when the loading
 *   request finishes), so a freshly loaded model is watched at once.
 */
import type { Config } from "../config/schema.js";
import type { Observation } from "../core/types.js";
import type { TargetMemory } from "./memory.js";
import type { Tick } from "./tick.js";

function serverIdentity(obs: Observation): string | undefined {
  const servers = obs.processes?.server;
  if (!servers?.length) return undefined;
  return [...servers]
    .sort((a, b) => a.pid - b.pid)
    .map((s) => `${s.pid}@${s.startSeconds}`)
    .join(",");
}

/** Ollama (re)started: its models are new loads, except the one a remediation must verify. */
function startGrace(m: TargetMemory, now: number, why: string): void {
  m.grace = { sinceMono: now, why };
  const remedied = m.remediation?.model ? m.models[m.remediation.model] : undefined;
  m.models = {};
  if (remedied) m.models[remedied.name] = { ...remedied, runnerPid: undefined, episode: undefined };
  m.psFailingSinceMono = undefined;
}

export function trackLiveness(m: TargetMemory, obs: Observation, now: number, config: Config): void {
  const identity = serverIdentity(obs);
  const restarted = m.serverIdentity !== undefined && identity !== undefined && identity !== m.serverIdentity;
  if (identity !== undefined) m.serverIdentity = identity;
  if (!obs.api.up) {
    m.apiFailures++;
    m.lastApiError = obs.api.error;
    if (m.apiFailures >= config.detection.downAfter) m.wasDown = true;
    if (restarted) startGrace(m, now, "Ollama restarted (server pid changed)");
    return;
  }
  const cameBack = m.wasDown;
  m.apiFailures = 0;
  m.wasDown = false;
  if (restarted) startGrace(m, now, "Ollama restarted (server pid changed)");
  else if (cameBack) startGrace(m, now, "Ollama answers again after being down");
}

export function trackScheduler(t: Tick): void {
  if (t.obs.api.up && !t.obs.ps) t.m.psFailingSinceMono ??= t.now;
  else t.m.psFailingSinceMono = undefined;
}
