import type { IncidentSummary, TickRecord, WatchdogState } from "../core/types.js";
import {
  emptyStats,
  isProblemState,
  type RunnerCpu,
  shouldKeepSample,
  toSample,
  updateStats,
  worseState,
} from "./evidence.js";
import type { EvidenceSample, Incident, IncidentEvent, IncidentStats } from "./types.js";

/**
 * The pure core of incident recording: `advance` turns one tick into events, `applyEvent` folds
 * events into an Incident. The recorder persists the events and replays them after a restart.
 */

/** Not persisted: the running totals and last verdict of a tick whose sample was not kept. */
export type TickUpdate = { type: "tick"; stats: IncidentStats; last: Incident["last"] };

export type Change = IncidentEvent | TickUpdate;

export interface TickContext {
  /** The incident of this target still being followed, if any. */
  active: Incident | undefined;
  /** The target's state at the previous tick ("none" before the first). */
  previousState: WatchdogState | "none";
  previousRunners: ReadonlyMap<number, RunnerCpu>;
  /** Recent healthy evidence, oldest first. */
  before: EvidenceSample[];
  recentIncidents: number;
  newId: () => string;
}

/** The most serious symptom state reached (suspect < frozen < down); exhausted and recovering are not symptoms. */
export function peakProblemState(incident: Pick<Incident, "problem" | "transitions">): WatchdogState {
  const symptoms: WatchdogState[] = ["suspect", "frozen", "down"];
  return [incident.problem.state, ...incident.transitions.map((t) => t.to)]
    .filter((s) => symptoms.includes(s))
    .reduce<WatchdogState>((worst, s) => worseState(worst, s), incident.problem.state);
}

export function titleOf(
  incident: Pick<Incident, "target" | "problem" | "transitions" | "outcome" | "actions">,
): string {
  const problem = `${incident.target}: ${peakProblemState(incident)}`;
  switch (incident.outcome) {
    case "open":
      return `${problem} — open`;
    case "resolved-by-itself":
      return `${problem} — resolved by itself`;
    case "exhausted":
      return `${problem} — remediation exhausted, needs a human`;
    case "healed": {
      const lastSuccess = [...incident.actions].reverse().find((a) => a.result === "success");
      return `${problem} — healed${lastSuccess ? ` by ${lastSuccess.action}` : ""}`;
    }
  }
}

export function summaryOf(incident: Incident): IncidentSummary {
  const summary: IncidentSummary = {
    id: incident.id,
    target: incident.target,
    openedWall: incident.openedWall,
    outcome: incident.outcome,
    title: incident.title,
  };
  if (incident.closedWall !== undefined) summary.closedWall = incident.closedWall;
  return summary;
}

function lastOf(sample: EvidenceSample): Incident["last"] {
  return { wall: sample.wall, state: sample.state, reason: sample.reason, budget: { ...sample.budget } };
}

/** Folds one event into the incident (undefined before "opened"). Pure. */
export function applyEvent(incident: Incident | undefined, event: Change): Incident | undefined {
  if (event.type === "opened") {
    const opened: Incident = {
      id: event.id,
      target: event.target,
      openedWall: event.wall,
      outcome: "open",
      title: "",
      problem: { state: event.state, reason: event.reason },
      worstState: event.state,
      recentIncidents: event.recentIncidents,
      before: event.before,
      evidence: [],
      transitions: [],
      requests: [],
      actions: [],
      stats: emptyStats(),
      last: {
        wall: event.wall,
        state: event.state,
        reason: event.reason,
        budget: event.before.at(-1)?.budget ?? { remaining: 0, max: 0 },
      },
      resumedWalls: [],
      finished: false,
    };
    opened.title = titleOf(opened);
    return opened;
  }
  if (!incident) return undefined;
  const next: Incident = { ...incident };
  switch (event.type) {
    case "sample":
      next.evidence = [...next.evidence, event.sample];
      next.stats = event.stats;
      next.last = lastOf(event.sample);
      next.worstState = worseState(next.worstState, event.sample.state);
      break;
    case "tick":
      next.stats = event.stats;
      next.last = event.last;
      next.worstState = worseState(next.worstState, event.last.state);
      break;
    case "transition":
      next.transitions = [...next.transitions, event.transition];
      next.worstState = worseState(next.worstState, event.transition.to);
      break;
    case "requested":
      next.requests = [...next.requests, event.request];
      break;
    case "action":
      next.actions = [...next.actions, event.action];
      break;
    case "verified":
      next.verification = event.verification;
      break;
    case "closed":
      next.outcome = event.outcome;
      next.closedWall = event.wall;
      next.stats = event.stats;
      next.last = event.last;
      next.worstState = worseState(next.worstState, event.last.state);
      next.finished = event.outcome !== "exhausted";
      break;
    case "healthy-again":
      next.healthyAgainWall = event.wall;
      next.stats = event.stats;
      next.last = event.last;
      next.finished = true;
      break;
    case "resumed":
      next.resumedWalls = [...next.resumedWalls, event.wall];
      break;
  }
  next.title = titleOf(next);
  return next;
}

/**
 * What one tick means for the target's incident: the events to record (empty when the target is
 * fine and no incident is being followed). Pure.
 */
export function advance(context: TickContext, record: TickRecord): Change[] {
  const { verdict, observation } = record;
  const changes: Change[] = [];
  let incident = context.active && !context.active.finished ? context.active : undefined;
  const emit = (change: Change): void => {
    changes.push(change);
    incident = applyEvent(incident, change);
  };

  if (!incident) {
    if (!isProblemState(verdict.state)) return [];
    emit({
      type: "opened",
      v: 1,
      id: context.newId(),
      target: record.target,
      wall: record.wall,
      state: verdict.state,
      reason: verdict.reason,
      recentIncidents: context.recentIncidents,
      before: context.before,
    });
  }
  if (!incident) return changes;

  const sample = toSample(record, context.previousRunners);
  const stats = updateStats(incident.stats, sample);

  // Results first: an action that finished before this tick belongs to this incident even when
  // this tick finds the target healthy again.
  for (const result of observation.actionResults) {
    const sameKindBefore = incident.actions.filter((a) => a.action === result.action).length;
    const request = incident.requests.filter((r) => r.action === result.action)[sameKindBefore];
    emit({
      type: "action",
      action: {
        wall: record.wall,
        ...result,
        ...(request ? { reason: request.reason } : {}),
      },
    });
  }
  for (const command of verdict.commands) {
    if (command.kind === "canary") continue;
    emit({
      type: "requested",
      request: {
        wall: record.wall,
        action: command.kind,
        reason: command.reason,
        ...(command.kind === "kill-runner" ? { pid: command.pid, model: command.model } : {}),
      },
    });
  }

  const previousState = incident.transitions.at(-1)?.to ?? context.previousState;
  if (previousState !== verdict.state) {
    emit({
      type: "transition",
      transition: { wall: record.wall, from: previousState, to: verdict.state, reason: verdict.reason },
    });
  }

  const okCanary = sample.canaries.find((c) => c.outcome === "ok");
  if (okCanary) {
    const lastSuccess = [...incident.actions].reverse().find((a) => a.result === "success");
    const lastSuccessEnd = lastSuccess ? lastSuccess.startedWall + lastSuccess.durationMs : undefined;
    const provesAction =
      lastSuccess !== undefined &&
      (incident.verification === undefined ||
        incident.verification.afterAction === undefined ||
        incident.verification.wall < (lastSuccessEnd ?? 0));
    const provesSelfRecovery = lastSuccess === undefined && verdict.state === "healthy";
    if (provesAction || provesSelfRecovery) {
      emit({
        type: "verified",
        verification: {
          wall: record.wall,
          model: okCanary.model,
          ...(okCanary.ttftMs === undefined ? {} : { ttftMs: okCanary.ttftMs }),
          durationMs: okCanary.durationMs,
          ...(lastSuccess && lastSuccessEnd !== undefined
            ? { afterActionMs: Math.max(0, record.wall - lastSuccessEnd), afterAction: lastSuccess.action }
            : {}),
        },
      });
    }
  }

  const last = lastOf(sample);
  const closing =
    incident.outcome === "open" && (verdict.state === "healthy" || verdict.state === "exhausted");
  const eventful =
    closing ||
    previousState !== verdict.state ||
    sample.canaries.length > 0 ||
    observation.actionResults.length > 0 ||
    verdict.commands.some((c) => c.kind !== "canary");
  if (shouldKeepSample(stats.ticks, incident.evidence.length, eventful)) {
    emit({ type: "sample", wall: record.wall, sample, stats });
  } else {
    emit({ type: "tick", stats, last });
  }

  if (closing) {
    const outcome =
      verdict.state === "exhausted"
        ? "exhausted"
        : incident.actions.some((a) => a.result === "success")
          ? "healed"
          : "resolved-by-itself";
    emit({ type: "closed", wall: record.wall, outcome, stats, last });
  } else if (incident.outcome === "exhausted" && verdict.state === "healthy") {
    emit({ type: "healthy-again", wall: record.wall, stats, last });
  }
  return changes;
}

/** Replays a persisted event log. */
export function replay(events: IncidentEvent[]): Incident | undefined {
  return events.reduce<Incident | undefined>(applyEvent, undefined);
}
