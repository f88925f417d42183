/**
 * Runner and model tracking: runner CPU rates, the models /api/ps lists, which runner serves which
 * model, whether a model is loading (its load grace), what its expiry says about real use, and
 * whether one of our canaries reloaded it.
 *
 * - Loading (B3): from when a model first appears in `/api/ps` (not on the watchdog's first
 *   look), its runner pid changes, or its expires_at moves in step with the clock between polls,
 *   for `loadGrace` or until a canary on it succeeds or its expiry stops moving. A moving expiry
 *   means Ollama has not set it yet: the model is loading **or its first request after the load is
 *   still running** (server/sched.go sets expiresAt only when the reference count drops to 0).
 *   From 0.30 a loading model is not listed at all: a runner whose `--model` blob belongs to no
 *   listed model is that load (`unlistedRunners`), in grace for `loadGrace` like a listed one.
 * - Real use: when the expiry changes and none of our canaries on the model ended since the
 *   previous poll (or the change is later than our canary explains), a real request set it:
 *   `realExpiryWall`. Periodic canaries stop once it has passed (canaries.ts).
 * - A canary that reloads: the model's runner changed, or the model left `/api/ps`, while one of
 *   our canaries on it was running or had just ended, its old runner alive and no remediation of
 *   ours on it → `canaryDisabled` (its periodic canaries stop; say so in the log, /api/status and
 *   `ollama_watchdog_canary_disabled`).
 */

import type { Config } from "../config/schema.js";
import { listsLoadingModels } from "../core/ollama-version.js";
import type { LoadedModel, Observation } from "../core/types.js";
import { formatMs } from "../remediation/policy.js";
import { parseExpiry } from "./keep-alive.js";
import type { ModelMemory, RunnerMemory, TargetMemory } from "./memory.js";
import { provenRunner, runnerForModel, sameProcess } from "./runners.js";
import type { RunnerRate } from "./tick.js";
import { lastTokenFor } from "./traffic-tokens.js";

/** How closely expires_at must track the clock between two polls to read as "loading". */
const LOADING_LEAD_TOLERANCE_MS = 250;
/** Slack when telling an expiry our canary set from a later one a user's request set. */
const OWN_EXPIRY_SLACK_MS = 1000;

export function trackRunners(m: TargetMemory, obs: Observation, now: number): RunnerRate[] {
  const runners = obs.processes?.runners;
  if (!runners) return [];
  const next: Record<string, RunnerMemory> = {};
  const rates = runners.map((runner): RunnerRate => {
    const prev = m.runners[runner.pid];
    const known = prev !== undefined && sameProcess(prev, runner);
    const cores =
      known && now > prev.mono
        ? (runner.cpuSeconds - prev.cpuSeconds) / ((now - prev.mono) / 1000)
        : undefined;
    next[runner.pid] = {
      pid: runner.pid,
      startSeconds: runner.startSeconds,
      cpuSeconds: runner.cpuSeconds,
      mono: now,
    };
    return { runner, cores, isNew: !known };
  });
  m.runners = next;
  return rates;
}

function newModelMemory(model: LoadedModel, now: number, loading: boolean): ModelMemory {
  return {
    name: model.name,
    digest: model.digest,
    blob: model.blob,
    contextLength: model.contextLength,
    expiresAt: model.expiresAt,
    size: model.size,
    sizeVram: model.sizeVram,
    firstSeenMono: now,
    loadingSinceMono: loading ? now : undefined,
    expiryLeadMs: undefined,
    runnerPid: undefined,
    lastCanaryIssuedMono: undefined,
    lastCanaryOkMono: undefined,
    lastOutcome: undefined,
    lastError: undefined,
    suspicionSinceMono: undefined,
    episode: undefined,
    probe: "generate",
    lastProgress: undefined,
    realExpiryWall: parseExpiry(model.expiresAt),
    ownEndWall: undefined,
    sessionMs: undefined,
    polledWall: undefined,
  };
}

/**
 * Our canaries on this model: one running now, or the wall time the latest finished. The end is
 * placed on the wall clock through the observation's own pair (wall and mono read together at the
 * tick's start), not the decision's `now`: that is later by however long the collectors took, and a
 * slow tick then dated our canary so early that its expiry read as a user's (residency extended).
 */
function noteOwnCanaries(mm: ModelMemory, obs: Observation): boolean {
  for (const result of obs.canaryResults) {
    if (result.model !== mm.name) continue;
    const endWall = obs.wall - (obs.mono - (result.startedMono + result.durationMs));
    mm.ownEndWall = Math.max(mm.ownEndWall ?? endWall, endWall);
  }
  return obs.canariesInFlight.some((c) => c.model === mm.name);
}

/** Did one of our canaries touch the model since its previous poll? */
function touchedByOurCanary(mm: ModelMemory, inFlight: boolean): boolean {
  if (inFlight) return true;
  if (mm.ownEndWall === undefined) return false;
  return mm.polledWall === undefined || mm.ownEndWall >= mm.polledWall - OWN_EXPIRY_SLACK_MS;
}

/** Learns from an expiry change whether a real request set it. */
function trackRealUse(mm: ModelMemory, expiresAt: string, touched: boolean): void {
  if (expiresAt === mm.expiresAt) return;
  const expiry = parseExpiry(expiresAt);
  if (expiry === undefined) return;
  if (!touched || mm.ownEndWall === undefined) {
    mm.realExpiryWall = expiry;
    return;
  }
  const session = expiry - mm.ownEndWall;
  if (mm.sessionMs !== undefined && session > mm.sessionMs + OWN_EXPIRY_SLACK_MS) {
    // Later than our canary explains: a user's request ended after it.
    mm.realExpiryWall = expiry;
    return;
  }
  mm.sessionMs = session;
}

function disableCanaries(m: TargetMemory, name: string, now: number, reason: string): void {
  m.canaryDisabled[name] ??= { reason, sinceMono: now };
}

export function trackModels(
  m: TargetMemory,
  obs: Observation,
  now: number,
  rates: RunnerRate[],
  previousRunners: Record<string, RunnerMemory>,
): void {
  if (!obs.ps) return;
  const firstLook = !m.psSeen;
  m.psSeen = true;
  const runners = obs.processes?.runners ?? [];
  const newRunners = rates.filter((r) => r.isNew).map((r) => r.runner);
  const newModels = obs.ps.models.filter((model) => m.models[model.name] === undefined);
  const remedied = m.remediation?.model;
  const listed = new Set<string>();
  for (const model of obs.ps.models) {
    listed.add(model.name);
    let mm = m.models[model.name];
    if (!mm) {
      mm = newModelMemory(model, now, !firstLook);
      m.models[model.name] = mm;
      // A model and a runner that appeared together belong together.
      if (!firstLook && newModels.length === 1 && newRunners.length === 1) mm.runnerPid = newRunners[0]?.pid;
    }
    const inFlight = noteOwnCanaries(mm, obs);
    const touched = touchedByOurCanary(mm, inFlight);
    const lead = Date.parse(model.expiresAt) - obs.wall;
    const streamed = lastTokenFor(obs.traffic, model.name);
    if (streamed !== undefined) mm.lastTokenMono = streamed;
    if (
      mm.loadingSinceMono === undefined &&
      // A model that answered a canary, or streamed a token to a client through the stall guard,
      // is loaded (a reload changes its runner pid); its expiry also moves with every request
      // its users finish.
      mm.lastCanaryOkMono === undefined &&
      mm.lastTokenMono === undefined &&
      mm.expiryLeadMs !== undefined &&
      model.expiresAt !== mm.expiresAt &&
      Math.abs(lead - mm.expiryLeadMs) < LOADING_LEAD_TOLERANCE_MS
    ) {
      // Ollama reports now + session duration while the expiry is unset: the model is loading or
      // its first request since the load still runs, even one begun before the watchdog's first look.
      mm.loadingSinceMono = now;
    } else if (
      mm.loadingSinceMono !== undefined &&
      mm.expiryLeadMs !== undefined &&
      model.expiresAt === mm.expiresAt
    ) {
      // The expiry stopped moving: the request that loaded the model finished.
      mm.loadingSinceMono = undefined;
    }
    trackRealUse(mm, model.expiresAt, touched);
    mm.expiryLeadMs = Number.isFinite(lead) ? lead : undefined;
    mm.digest = model.digest;
    mm.blob = model.blob;
    mm.contextLength = model.contextLength;
    mm.expiresAt = model.expiresAt;
    mm.size = model.size;
    mm.sizeVram = model.sizeVram;
    mm.polledWall = obs.wall;
    if (obs.processes) {
      const runner = runnerForModel(model, runners, mm.runnerPid);
      if (runner && mm.runnerPid !== undefined && runner.pid !== mm.runnerPid) {
        mm.loadingSinceMono = now;
        if (touched && remedied !== mm.name && previousRunners[mm.runnerPid] !== undefined) {
          disableCanaries(
            m,
            mm.name,
            now,
            `our canary reloaded ${mm.name} (runner ${mm.runnerPid} → ${runner.pid}): its runner options differ from what a request without options gets`,
          );
        }
      }
      // Keep the last known runner while none is found (killed, not yet reloaded): the next one
      // to serve the model is then a change, a reload in progress.
      if (runner) mm.runnerPid = runner.pid;
      if ("runner" in provenRunner(mm, obs.processes)) mm.runnerProvenMono = now;
    }
  }
  for (const [name, mm] of Object.entries(m.models)) {
    if (listed.has(name)) continue;
    const inFlight = noteOwnCanaries(mm, obs);
    const oldRunnerAlive = mm.runnerPid !== undefined && previousRunners[mm.runnerPid] !== undefined;
    // A listed model cannot expire while our request holds it: it left to be reloaded (0.30+
    // lists a loading model only once loaded), by our canary unless its runner had died.
    if (touchedByOurCanary(mm, inFlight) && remedied !== name && (oldRunnerAlive || !obs.processes)) {
      disableCanaries(
        m,
        name,
        now,
        `${name} left /api/ps while our canary on it ran: the canary made Ollama reload it`,
      );
    }
    if (remedied !== name) delete m.models[name];
  }
  trackUnlistedRunners(m, obs, now);
}

/**
 * Runners whose `--model` blob belongs to no listed model: from 0.30 the model being loaded (it is
 * listed only once loaded). Only where every listed model's blob is known (else any runner could
 * be theirs).
 */
function trackUnlistedRunners(m: TargetMemory, obs: Observation, now: number): void {
  const runners = obs.processes?.runners;
  const models = Object.values(m.models);
  // Up to 0.24 a loading model is listed: a runner whose model is not is no load (a leftover).
  if (
    !runners ||
    !obs.ps ||
    listsLoadingModels(obs.api.version) ||
    models.some((mm) => mm.blob === undefined)
  ) {
    m.unlistedRunners = {};
    return;
  }
  const blobs = new Set(models.map((mm) => mm.blob));
  const runnerBlobs = new Set(runners.map((r) => r.modelPath?.split("/").pop()));
  // Every listed model must have its runner in view, else a stray runner may be one of theirs.
  if (models.some((mm) => !runnerBlobs.has(mm.blob))) {
    m.unlistedRunners = {};
    return;
  }
  const next: TargetMemory["unlistedRunners"] = {};
  for (const runner of runners) {
    const blob = runner.modelPath?.split("/").pop();
    if (!runner.modelPath || !blob || blobs.has(blob)) continue;
    next[runner.pid] = m.unlistedRunners[runner.pid] ?? { sinceMono: now, modelPath: runner.modelPath };
  }
  m.unlistedRunners = next;
}

export function isLoading(mm: ModelMemory, now: number, config: Config): boolean {
  if (mm.loadingSinceMono === undefined) return false;
  if (now - mm.loadingSinceMono >= config.detection.loadGrace) return false;
  if (mm.lastTokenMono !== undefined && mm.lastTokenMono >= mm.loadingSinceMono) return false;
  return !(mm.lastCanaryOkMono !== undefined && mm.lastCanaryOkMono >= mm.loadingSinceMono);
}

/** A load not listed in /api/ps (0.30+), still within its load grace. */
export function unlistedLoad(m: TargetMemory, now: number, config: Config): string | undefined {
  for (const [pid, u] of Object.entries(m.unlistedRunners)) {
    const ms = now - u.sinceMono;
    if (ms < config.detection.loadGrace) {
      return `runner ${pid} (${u.modelPath.split("/").pop()}) loading, not yet listed, for ${formatMs(ms)}`;
    }
  }
  return undefined;
}

/** A load not listed in /api/ps that has outlasted its load grace: the load hangs. */
export function stuckUnlistedLoad(
  m: TargetMemory,
  now: number,
  config: Config,
): { pid: string; sinceMono: number } | undefined {
  for (const [pid, u] of Object.entries(m.unlistedRunners)) {
    if (now - u.sinceMono >= config.detection.loadGrace) return { pid, sinceMono: u.sinceMono };
  }
  return undefined;
}
