/**
 * The ladder: a frozen or down target climbs `remediation.ladder` (kill-runner, restart) under the
 * budget and cooldown, and each action is verified within `verifyWithin` before the next.
 *
 * - Remediation (policy.ts): a frozen model climbs `remediation.ladder` (kill-runner needs the
 *   model's runner proven; if it cannot be, that step is skipped — after up to three ticks of
 *   looking again when it was proven a moment before); after each action `recovering`
 *   until verified within `verifyWithin`: model → a canary on it (issued once the action's
 *   outcome is back; it carries the reload) answers; down or scheduler → the API and /api/ps
 *   answer after the restart finished. After kill-runner the reload may outlast `verifyWithin`
 *   (a big model on a slow disk): verification keeps waiting while the model reloads — its runner
 *   changed and it is in load grace, or it is not listed (0.30+ lists it once loaded) — up to
 *   `loadGrace` after the action's outcome, with the verification canary still running. An action
 *   that reports failure climbs at once (cooldown still applies). Budget and cooldown gate every
 *   action, kill-runner included.
 * - Dry run: decided and counted exactly as live (the executor reports "dry-run"), so a dry run
 *   shows what the live watchdog would do, including climbing and running out of budget.
 */
import type { Config } from "../config/schema.js";
import type { Command, Observation, ProcessSample, WatchdogState } from "../core/types.js";
import { drainGate } from "../remediation/drain.js";
import {
  actionGate,
  type BudgetStatus,
  budgetStatus,
  formatMs,
  nextLadderStep,
} from "../remediation/policy.js";
import { exhaust, exhaustLadder } from "./exhausted.js";
import type { RemediationMemory, TargetMemory } from "./memory.js";
import { isLoading } from "./models.js";
import { provenRunner, sameProcess } from "./runners.js";
import { frozenSince, type Judgement, type Problem, stateFor, type Tick } from "./tick.js";

export function receiveActionOutcomes(m: TargetMemory, obs: Observation, now: number, config: Config): void {
  receiveNotExecuted(m, obs, now, config);
  const last = obs.actionResults.at(-1);
  if (!last) return;
  m.pendingAction = undefined;
  const r = m.remediation;
  if (r && r.issuedMono !== undefined && r.outcome === undefined) {
    r.outcome = last;
    r.outcomeMono = now;
  }
}

/**
 * A command the shell did not carry out (another action still ran, the ledger is unwritable, the
 * unit was stopped by its operator): nothing happened and nothing was counted, so the step is not
 * climbed; it waits (at least one interval) and is issued again.
 */
function receiveNotExecuted(m: TargetMemory, obs: Observation, now: number, config: Config): void {
  const dropped = obs.actionsNotExecuted?.at(-1);
  if (!dropped) return;
  const r = m.remediation;
  if (m.pendingAction?.action === dropped.action) m.pendingAction = undefined;
  if (!r || r.issuedMono === undefined || r.outcome !== undefined) return;
  r.issuedMono = undefined;
  r.verifyDeadlineMono = undefined;
  r.actions.pop();
  r.held = {
    why: `${dropped.action} not executed: ${dropped.text}`,
    untilMono: now + Math.max(dropped.retryAfterMs ?? 0, config.interval),
  };
}

export function startRemediation(t: Tick, problem: Problem): Judgement {
  const ladder = t.config.remediation.ladder;
  if (t.m.wedged) {
    return exhaust(
      t,
      problem.scope,
      problem.sinceMono,
      `${problem.text}; the journal reports "${t.m.wedged.evidence}": the GPU or its driver is wedged and a restart cannot fix that — stopped acting; reload the driver or reboot`,
    );
  }
  const step = nextLadderStep(ladder, 0, problem.scope);
  if (step === undefined) {
    return exhaust(
      t,
      problem.scope,
      problem.sinceMono,
      `${problem.text}; remediation.ladder [${ladder.join(", ")}] has no step for this (needs restart) — not acting`,
    );
  }
  t.m.remediation = {
    scope: problem.scope,
    model: problem.model,
    problem: problem.text,
    problemSinceMono: problem.sinceMono,
    step,
    issuedMono: undefined,
    verifyDeadlineMono: undefined,
    outcome: undefined,
    outcomeMono: undefined,
    dStateRunners: [],
    actions: [],
    history: [],
  };
  return issueStep(t, stateFor(problem.scope), "");
}

/** How long kill-runner waits for a runner it proved before to be proven again: three ticks. */
function proofPatience(config: Config): number {
  return 3 * config.interval;
}

export function pendingMonos(m: TargetMemory): number[] {
  return m.pendingAction ? [m.pendingAction.mono] : [];
}

function currentBudget(t: Tick): BudgetStatus {
  return budgetStatus(t.budget, pendingMonos(t.m), t.now, t.config.remediation);
}

/** Issues the remediation's current step if the gate allows, skipping kill-runner without a runner. */
function issueStep(t: Tick, state: WatchdogState, prefix: string): Judgement {
  const { m, config, now } = t;
  const r = m.remediation;
  if (!r) throw new Error("issueStep without remediation");
  const ladder = config.remediation.ladder;
  const frozenForMs = frozenSince(t, r.problemSinceMono);
  for (;;) {
    const kind = ladder[r.step];
    let runner: ProcessSample | undefined;
    const lead = (...more: string[]) =>
      [prefix, r.problem, ...r.history.filter((h) => h !== prefix), ...more].filter(Boolean).join("; ");
    if (r.held && now < r.held.untilMono) return { state, reason: `${lead()}; ${r.held.why}`, frozenForMs };
    const heldWhy = r.held ? `${r.held.why}; trying again` : "";
    r.held = undefined;
    if (kind === "kill-runner") {
      const mm = r.model ? m.models[r.model] : undefined;
      const proof = mm
        ? provenRunner(mm, t.obs.processes)
        : { why: `${r.model ?? "the model"} is not known` };
      if ("runner" in proof) runner = proof.runner;
      else if (mm?.runnerProvenMono !== undefined && now - mm.runnerProvenMono <= proofPatience(config)) {
        // Proven a moment ago, not now (a procfs scan that missed its deadline on a loaded host, a
        // process list read mid-change): a restart drops every model, so look again first.
        return {
          state,
          reason: `${lead()}; kill-runner waits: ${proof.why} (its runner was proven ${formatMs(now - mm.runnerProvenMono)} ago; looking again)`,
          frozenForMs,
        };
      } else {
        r.history.push(`kill-runner skipped: ${proof.why}`);
        const next = nextLadderStep(ladder, r.step + 1, r.scope);
        if (next === undefined) return exhaustLadder(t, r, r.history.at(-1) ?? "");
        r.step = next;
        continue;
      }
    }
    const gate = actionGate(currentBudget(t), now, config.remediation);
    if (!gate.open && gate.why === "budget") {
      return exhaust(t, r.scope, r.problemSinceMono, `${r.problem}; ${gate.text} — stopped acting`);
    }
    const said = lead(heldWhy);
    if (!gate.open) return { state, reason: `${said}; ${kind} waits — ${gate.text}`, frozenForMs };
    const drain =
      kind === "restart"
        ? drainGate(m.outOfRotationSinceMono, now, config.remediation.drainFor)
        : ({ open: true } as const);
    if (!drain.open) return { state, reason: `${said}; ${drain.text}`, frozenForMs };
    const dryRun = config.remediation.dryRun ? " (dry run)" : "";
    if (kind === "kill-runner" && runner && r.model) {
      const command: Command = {
        kind: "kill-runner",
        model: r.model,
        pid: runner.pid,
        startSeconds: runner.startSeconds,
        parentPid: runner.ppid,
        reason: r.problem,
      };
      t.commands.push(command);
    } else {
      t.commands.push({ kind: "restart", reason: r.problem });
    }
    const action = kind ?? "restart";
    r.issuedMono = now;
    r.verifyDeadlineMono = now + config.remediation.verifyWithin;
    r.outcome = undefined;
    r.dStateRunners = (t.obs.processes?.runners ?? [])
      .filter((p) => p.state === "D")
      .map((p) => ({ pid: p.pid, startSeconds: p.startSeconds }));
    m.pendingAction = { action, mono: now };
    r.actions.push(action);
    const target = runner ? ` ${runner.pid}` : "";
    return { state, reason: `${said} → ${action}${target}${dryRun}`, frozenForMs };
  }
}

function verifiedSince(t: Tick, r: RemediationMemory, sinceMono: number): string | undefined {
  const { obs } = t;
  if (r.scope === "model") {
    const ok = obs.canaryResults.find(
      (c) => c.model === r.model && c.outcome === "ok" && c.startedMono >= sinceMono,
    );
    return ok ? `canary on ${r.model} answered in ${Math.round(ok.ttftMs ?? ok.durationMs)}ms` : undefined;
  }
  const ok = obs.canaryResults.find((c) => c.outcome === "ok" && c.startedMono >= sinceMono);
  if (ok) return `canary on ${ok.model} answered in ${Math.round(ok.ttftMs ?? ok.durationMs)}ms`;
  return obs.api.up && obs.ps && (r.scope === "liveness" || obs.ps.models.length === 0)
    ? "the API and /api/ps answer"
    : undefined;
}

/** After kill-runner: the model reloading under the verification canary, in words, or undefined. */
function reloading(t: Tick, r: RemediationMemory): string | undefined {
  const { m, obs, now, config } = t;
  if (r.scope !== "model" || !r.model || r.outcomeMono === undefined) return undefined;
  if (now - r.outcomeMono >= config.detection.loadGrace) return undefined;
  if (!obs.canariesInFlight.some((c) => c.model === r.model)) return undefined;
  const mm = m.models[r.model];
  if (!mm) return undefined;
  const listed = obs.ps?.models.some((model) => model.name === r.model) ?? true;
  if (!listed) return `${r.model} is reloading (not listed yet)`;
  return isLoading(mm, now, config) ? `${r.model} is reloading (runner ${mm.runnerPid ?? "?"})` : undefined;
}

export function advanceRemediation(t: Tick): Judgement {
  const { m, now, config } = t;
  const r = m.remediation as RemediationMemory;
  const frozenForMs = frozenSince(t, r.problemSinceMono);
  if (r.issuedMono === undefined) {
    const healed = verifiedSince(t, r, Number.NEGATIVE_INFINITY);
    if (healed) {
      m.remediation = undefined;
      return {
        state: "healthy",
        reason: `resolved without action: ${healed} (was: ${r.problem})`,
        frozenForMs: 0,
      };
    }
    return issueStep(t, r.actions.length ? "recovering" : stateFor(r.scope), "");
  }
  const kind = config.remediation.ladder[r.step] ?? "restart";
  if (m.wedged) {
    const evidence = `the journal reports "${m.wedged.evidence}"`;
    // An action still running is seen to its end first: "stopped acting" must be true when said.
    if (!r.outcome) {
      return {
        state: "recovering",
        reason: `${kind} ${formatMs(now - r.issuedMono)} ago for: ${r.problem}; ${evidence}: waiting for ${kind} to finish, then stopping`,
        frozenForMs,
      };
    }
    return exhaust(
      t,
      r.scope,
      r.problemSinceMono,
      `${r.problem}; after ${kind} ${evidence}: the GPU or its driver is wedged — stopped acting; reload the driver or reboot`,
    );
  }
  if (r.outcome) {
    const runners = t.obs.processes?.runners ?? [];
    const survivor = r.dStateRunners.find((d) => runners.some((p) => p.state === "D" && sameProcess(p, d)));
    if (survivor) {
      return exhaust(
        t,
        r.scope,
        r.problemSinceMono,
        `${r.problem}; runner ${survivor.pid} stayed in D state (uninterruptible, in the kernel) through ${kind}: the GPU driver is wedged — stopped acting; reboot or reload the driver`,
      );
    }
  }
  const verified = r.outcome ? verifiedSince(t, r, r.issuedMono) : undefined;
  if (verified) {
    m.remediation = undefined;
    m.grace = undefined;
    const mm = r.model ? m.models[r.model] : undefined;
    if (mm) mm.episode = undefined;
    return {
      state: "healthy",
      reason: `healed by ${kind} ${formatMs(now - r.issuedMono)} ago: ${verified} (was: ${r.problem})`,
      frozenForMs: 0,
    };
  }
  const failed = r.outcome?.result === "failure";
  const reload = failed ? undefined : reloading(t, r);
  if (reload && now >= (r.verifyDeadlineMono ?? now)) {
    const left = (r.outcomeMono ?? now) + config.detection.loadGrace - now;
    return {
      state: "recovering",
      reason: `${kind} ${formatMs(now - r.issuedMono)} ago for: ${r.problem}; ${reload}: waiting for it (load grace, ${formatMs(left)} left)`,
      frozenForMs,
    };
  }
  if (failed || now >= (r.verifyDeadlineMono ?? now)) {
    const why = failed
      ? `${kind} failed (${r.outcome?.error ?? r.outcome?.detail ?? "no detail"})`
      : `${kind} did not help: not verified within ${formatMs(config.remediation.verifyWithin)}`;
    r.history.push(why);
    const next = nextLadderStep(config.remediation.ladder, r.step + 1, r.scope);
    if (next === undefined) return exhaustLadder(t, r, why);
    r.step = next;
    r.issuedMono = undefined;
    r.outcome = undefined;
    return issueStep(t, "recovering", why);
  }
  const waitingFor = !r.outcome
    ? `waiting for ${kind} to finish`
    : r.scope === "model"
      ? `waiting for a canary on ${r.model} to answer`
      : r.scope === "liveness"
        ? "waiting for the API to answer"
        : "waiting for /api/ps to answer";
  const left = (r.verifyDeadlineMono ?? now) - now;
  const dryRun = r.outcome?.result === "dry-run" ? " (dry run: nothing was done)" : "";
  return {
    state: "recovering",
    reason: `${kind}${dryRun} ${formatMs(now - r.issuedMono)} ago for: ${r.problem}; ${waitingFor} (${formatMs(left)} left)`,
    frozenForMs,
  };
}
