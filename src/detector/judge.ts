/**
 * Judging: grace, then what is wrong (down, scheduler stuck, a model frozen) or why all is calm.
 *
 * - Frozen: demand without progress for `freezeAfter`. A canary that timed out while progress was
 *   seen during its wait is inconclusive (B4): its demand ends with it. While any model is in its
 *   load grace nothing is judged frozen, and a canary timing out then is inconclusive too (it may
 *   wait behind the load, B3).
 * - Scheduler freeze (F5): `/api/ps` failing every tick for `freezeAfter` while `/api/version`
 *   answers → `frozen`, ladder straight to `restart`.
 * - F9: a canary answered with an HTTP error is not a freeze (the server answered). 503 (queue
 *   full) is load: `healthy`, said in the reason. Other errors are `suspect` (alert, no action).
 */
import { formatMs } from "../remediation/policy.js";
import { judgeExhausted } from "./exhausted.js";
import { advanceRemediation, startRemediation } from "./ladder.js";
import type { Episode, ModelMemory, TargetMemory } from "./memory.js";
import { isLoading, stuckUnlistedLoad, unlistedLoad } from "./models.js";
import { noProgressMs } from "./progress.js";
import type { Judgement, Problem, Tick } from "./tick.js";

export function judge(t: Tick): Judgement {
  if (t.m.exhausted) return judgeExhausted(t);
  if (t.m.remediation) return advanceRemediation(t);
  const grace = t.m.grace;
  if (grace) {
    const left = grace.sinceMono + t.config.detection.startupGrace - t.now;
    if (left > 0) {
      const api = t.obs.api.up ? "API answers" : `API not answering (${t.obs.api.error ?? "no answer"})`;
      return {
        state: "starting",
        reason: `starting: ${grace.why}; ${api}; no verdicts for ${formatMs(left)} more`,
        frozenForMs: 0,
      };
    }
    t.m.grace = undefined;
  }
  const problem = findProblem(t);
  if (problem) return startRemediation(t, problem);
  return judgeCalm(t);
}

function findProblem(t: Tick): Problem | undefined {
  const { m, config, now } = t;
  if (m.apiFailures >= config.detection.downAfter) {
    return {
      scope: "liveness",
      model: undefined,
      text: `the API has not answered for ${m.apiFailures} checks in a row (${m.lastApiError ?? "no answer"})`,
      sinceMono: undefined,
    };
  }
  const stuck = stuckUnlistedLoad(m, now, config);
  if (stuck) {
    return {
      scope: "scheduler",
      model: undefined,
      text: `runner ${stuck.pid} has been loading for ${formatMs(now - stuck.sinceMono)} (load grace ${formatMs(config.detection.loadGrace)}) and its model is still not listed: the load hangs`,
      sinceMono: stuck.sinceMono,
    };
  }
  const models = Object.values(m.models);
  if (models.some((mm) => isLoading(mm, now, config)) || unlistedLoad(m, now, config)) return undefined;
  const frozen: { mm: ModelMemory; episode: Episode; ms: number }[] = [];
  for (const mm of models) {
    if (!mm.episode) continue;
    const ms = noProgressMs(t, mm, mm.episode);
    if (ms >= config.detection.freezeAfter) frozen.push({ mm, episode: mm.episode, ms });
  }
  const [worst] = frozen.sort((a, b) => b.ms - a.ms);
  if (!worst) return undefined;
  // Every model's canary waits (at least canary.timeout) and the worst is frozen: the scheduler.
  const hung = models.filter(
    (mm) =>
      mm.episode !== undefined &&
      mm.episode.badAnswers === 0 &&
      noProgressMs(t, mm, mm.episode) >= config.detection.canary.timeout,
  );
  if (hung.length >= 2 && hung.length === models.length && worst.episode.badAnswers === 0) {
    // Every model's generations hang at once: not one runner but what they share, the scheduler
    // (ollama/ollama#17408, #14407) — /api/ps may well stay green. Only a restart helps.
    const names = hung.map((mm) => mm.name).join(", ");
    return {
      scope: "scheduler",
      model: undefined,
      text: `canaries on every loaded model (${names}) got no token for ${formatMs(worst.ms)}; no progress: ${idleEvidence(t)}: the scheduler is stuck`,
      sinceMono: now - worst.ms,
    };
  }
  const e = worst.episode;
  const what = e.badAnswers
    ? `answered ${e.badAnswers} time(s) with no real token (${worst.mm.lastError?.error ?? worst.mm.lastOutcome}) over ${formatMs(worst.ms)}`
    : `got no token for ${formatMs(worst.ms)}${e.timeouts ? ` (${e.timeouts} canary timeout(s))` : ""}; no progress: ${idleEvidence(t)}`;
  return {
    scope: "model",
    model: worst.mm.name,
    text: `canary on ${worst.mm.name} ${what}`,
    sinceMono: now - worst.ms,
  };
}

function idleEvidence(t: Tick): string {
  const parts: string[] = [];
  if (t.gpu.present && t.gpu.busiest) {
    parts.push(`GPU idle (max ${Math.round((t.gpu.busiest.utilization ?? 0) * 100)}%)`);
  } else parts.push("no GPU utilization reported");
  if (t.rates.length) {
    const cores = Math.max(...t.rates.map((r) => r.cores ?? 0));
    parts.push(`runner CPU ${cores.toFixed(2)} cores`);
  }
  return parts.join(", ");
}

function judgeCalm(t: Tick): Judgement {
  const { m, obs, config, now } = t;
  const suspect: string[] = [];
  const calm: string[] = [...t.notes];
  if (m.apiFailures > 0) {
    suspect.push(
      `the API did not answer (${m.lastApiError ?? "no answer"}): ${m.apiFailures} of ${config.detection.downAfter} checks before down`,
    );
  }
  if (m.psFailingSinceMono !== undefined) {
    // From 0.32.4 /api/ps takes the scheduler's locks, held for seconds in normal unloads: slow or
    // failing /api/ps alone is never acted on; it fires canaries, which judge the models.
    suspect.push(
      `/api/ps failing for ${formatMs(now - m.psFailingSinceMono)} while the API answers (canaries decide; no action on this alone)`,
    );
  }
  const models = Object.values(m.models);
  const loading: string[] = [];
  for (const mm of models.filter((model) => isLoading(model, now, config))) {
    const since = mm.loadingSinceMono ?? now;
    loading.push(
      `${mm.name} loading for ${formatMs(now - since)} (load grace ${formatMs(config.detection.loadGrace)})`,
    );
  }
  const unlisted = unlistedLoad(m, now, config);
  if (unlisted) loading.push(unlisted);
  calm.push(...loading);
  for (const mm of models) {
    if (mm.episode) {
      const ms = noProgressMs(t, mm, mm.episode);
      if (mm.episode.badAnswers > 0) {
        suspect.push(
          `canary on ${mm.name} answered without a real token (${mm.lastError?.error ?? mm.lastOutcome}) (frozen at ${formatMs(config.detection.freezeAfter)})`,
        );
      } else if (loading.length && ms >= config.detection.canary.timeout) {
        calm.push(`canary on ${mm.name} waiting ${formatMs(ms)} while a model loads: inconclusive`);
      } else if (ms >= config.detection.canary.timeout || mm.episode.timeouts > 0) {
        suspect.push(
          `canary on ${mm.name} has had no token for ${formatMs(ms)} and nothing else progresses (frozen at ${formatMs(config.detection.freezeAfter)})`,
        );
      }
    }
    if (mm.lastOutcome === "error" && mm.lastError) {
      const what = mm.lastError.status ? `HTTP ${mm.lastError.status}` : (mm.lastError.error ?? "an error");
      if (mm.lastError.status === 503) {
        calm.push(`canary on ${mm.name} got HTTP 503 (queue full): load, not a freeze — no action`);
      } else {
        suspect.push(
          `canary on ${mm.name} failed with ${what}: errors are not a freeze — no action, look at the logs`,
        );
      }
    }
  }
  if (m.wedged)
    suspect.push(`the journal reports "${m.wedged.evidence}" (GPU/driver trouble; restarts would not help)`);
  if (suspect.length) return { state: "suspect", reason: [...suspect, ...calm].join("; "), frozenForMs: 0 };
  if (!calm.length) {
    if (!obs.ps) calm.push("API answers");
    else if (!obs.ps.models.length) calm.push("idle: no model loaded");
    else {
      const names = obs.ps.models.map((model) => model.name).join(", ");
      const latest = [m.lastProgress, m.lastAnswer].reduce<TargetMemory["lastAnswer"]>(
        (a, b) => (b && (!a || b.mono > a.mono) ? b : a),
        undefined,
      );
      const progress = latest ? `; last progress ${formatMs(now - latest.mono)} ago: ${latest.why}` : "";
      calm.push(`${obs.ps.models.length} model(s) loaded (${names})${progress}`);
    }
  }
  return { state: "healthy", reason: calm.join("; "), frozenForMs: 0 };
}
