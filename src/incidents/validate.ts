import * as v from "valibot";
import { ACTION_KINDS, ACTION_RESULTS, WATCHDOG_STATES } from "../core/types.js";
import type { IncidentEvent } from "./types.js";

/**
 * The shape of each incident event as replay (incident.ts) and the reports (report.ts) read it.
 * An incident file is data on disk that anyone with write access to the state dir may have
 * changed, so every line is checked before it is trusted; extra keys are allowed (a newer version
 * may add some).
 */
const num = v.pipe(v.number(), v.finite());
const str = v.string();
const optionalNum = v.optional(num);
const optionalStr = v.optional(str);
const state = v.picklist(WATCHDOG_STATES);
const budget = v.looseObject({ remaining: num, max: num });

const sample = v.looseObject({
  wall: num,
  state,
  reason: str,
  frozenForMs: num,
  budget,
  api: v.looseObject({ up: v.boolean(), latencyMs: optionalNum, version: optionalStr, error: optionalStr }),
  ps: v.optional(
    v.looseObject({
      latencyMs: num,
      models: v.array(
        v.looseObject({
          name: str,
          size: num,
          sizeVram: num,
          expiresAt: str,
          contextLength: v.nullable(num),
        }),
      ),
    }),
  ),
  psError: optionalStr,
  canaries: v.array(
    v.looseObject({
      model: str,
      outcome: v.picklist(["ok", "timeout", "error"]),
      ttftMs: optionalNum,
      durationMs: num,
      status: optionalNum,
      error: optionalStr,
    }),
  ),
  canariesInFlight: v.array(v.looseObject({ model: str, waitingMs: num })),
  gpus: v.optional(
    v.array(
      v.looseObject({
        index: str,
        name: str,
        utilization: optionalNum,
        memoryUsedBytes: optionalNum,
        memoryTotalBytes: optionalNum,
        temperatureCelsius: optionalNum,
      }),
    ),
  ),
  runners: v.optional(
    v.array(
      v.looseObject({
        pid: num,
        state: str,
        cpuSeconds: num,
        cpuDeltaSeconds: optionalNum,
        deltaOverMs: optionalNum,
        modelPath: optionalStr,
      }),
    ),
  ),
  wedgedGpuEvidence: v.optional(v.array(str)),
  notable: v.optional(v.array(str)),
});

const stats = v.looseObject({
  ticks: num,
  apiDownTicks: num,
  apiErrors: v.array(str),
  maxApiLatencyMs: optionalNum,
  psFailures: num,
  maxPsLatencyMs: optionalNum,
  canaryOk: num,
  canaryTimeouts: num,
  canaryErrors: num,
  canaryTimeoutDurationsMs: v.array(num),
  canaryErrorMessages: v.array(str),
  maxFrozenForMs: num,
  minGpuUtilization: optionalNum,
  maxGpuUtilization: optionalNum,
  maxVramUsedBytes: optionalNum,
  vramTotalBytes: optionalNum,
  runners: v.array(
    v.looseObject({
      pid: num,
      modelPath: optionalStr,
      states: v.array(str),
      firstWall: num,
      lastWall: num,
      firstCpuSeconds: num,
      lastCpuSeconds: num,
    }),
  ),
  stuckStopping: v.array(str),
  wedgedGpuEvidence: v.array(str),
});

const last = v.looseObject({ wall: num, state, reason: str, budget });
const action = v.picklist(ACTION_KINDS);

/** Incident ids name files: `<target>-<time>…`, never a path. */
export const INCIDENT_ID = /^[A-Za-z0-9_.-]{1,200}$/;

const event = v.variant("type", [
  v.looseObject({
    type: v.literal("opened"),
    v: v.literal(1),
    id: v.pipe(str, v.regex(INCIDENT_ID)),
    target: str,
    wall: num,
    state,
    reason: str,
    recentIncidents: num,
    before: v.array(sample),
  }),
  v.looseObject({ type: v.literal("sample"), wall: num, sample, stats }),
  v.looseObject({
    type: v.literal("transition"),
    transition: v.looseObject({
      wall: num,
      from: v.union([state, v.literal("none")]),
      to: state,
      reason: str,
    }),
  }),
  v.looseObject({
    type: v.literal("requested"),
    request: v.looseObject({ wall: num, action, reason: str, pid: optionalNum, model: optionalStr }),
  }),
  v.looseObject({
    type: v.literal("action"),
    action: v.looseObject({
      action,
      result: v.picklist(ACTION_RESULTS),
      startedWall: num,
      durationMs: num,
      detail: optionalStr,
      error: optionalStr,
      wall: num,
      reason: optionalStr,
    }),
  }),
  v.looseObject({
    type: v.literal("verified"),
    verification: v.looseObject({
      wall: num,
      model: str,
      ttftMs: optionalNum,
      durationMs: num,
      afterActionMs: optionalNum,
      afterAction: v.optional(action),
    }),
  }),
  v.looseObject({
    type: v.literal("closed"),
    wall: num,
    outcome: v.picklist(["healed", "exhausted", "resolved-by-itself"]),
    stats,
    last,
  }),
  v.looseObject({ type: v.literal("healthy-again"), wall: num, stats, last }),
  v.looseObject({ type: v.literal("resumed"), wall: num }),
]);

/** One line of an incident file, checked; undefined when it is not a well-formed event. */
export function parseIncidentEvent(line: string): IncidentEvent | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  return v.is(event, value) ? (value as IncidentEvent) : undefined;
}
