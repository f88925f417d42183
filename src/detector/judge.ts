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
import { isLoading } from "./models.js";
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
  if (m.psFailingSinceMono !== undefined && now - m.psFailingSinceMono >= config.detection.freezeAfter) {
    return {
      scope: "scheduler",
      model: undefined,
      text: `/api/ps has failed for ${formatMs(now - m.psFailingSinceMono)} while /api/version answers: the scheduler is stuck`,
      sinceMono: m.psFailingSinceMono,
    };
  }
  const models = Object.values(m.models);
  if (models.some((mm) => isLoading(mm, now, config))) return undefined;
  let worst: { mm: ModelMemory; episode: Episode; ms: number } | undefined;
  for (const mm of models) {
    if (!mm.episode) continue;
    const ms = noProgressMs(t, mm.episode);
    if (ms >= config.detection.freezeAfter && (!worst || ms > worst.ms))
      worst = { mm, episode: mm.episode, ms };
  }
  if (!worst) return undefined;
  const timeouts = worst.episode.timeouts ? ` (${worst.episode.timeouts} canary timeout(s))` : "";
  return {
    scope: "model",
    model: worst.mm.name,
    text: `canary on ${worst.mm.name} got no token for ${formatMs(worst.ms)}${timeouts}; no progress: ${idleEvidence(t)}`,
    sinceMono: now - worst.ms,
  };
}

function idleEvidence(t: Tick): string {
  const parts: string[] = [];
  if (t.gpu.present && t.gpu.busiest) {
    parts.push(`GPU idle (max ${Math.round((t.gpu.busiest.utilization ?? 0) * 100)}%)`);
  } else parts.push("no GPU utilization reported");
  if (t.obs.journal) parts.push("no completions");
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
    suspect.push(
      `/api/ps failing for ${formatMs(now - m.psFailingSinceMono)} while the API answers (frozen at ${formatMs(config.detection.freezeAfter)})`,
    );
  }
  const models = Object.values(m.models);
  const loading = models.filter((mm) => isLoading(mm, now, config));
  for (const mm of loading) {
    const since = mm.loadingSinceMono ?? now;
    calm.push(
      `${mm.name} loading for ${formatMs(now - since)} (load grace ${formatMs(config.detection.loadGrace)})`,
    );
  }
  for (const mm of models) {
    if (mm.episode) {
      const ms = noProgressMs(t, mm.episode);
      if (loading.length && ms >= config.detection.canary.timeout) {
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
