/**
 * Remediation policy, pure: the budget (sliding window + cooldown) and the ladder.
 *
 * Every action counts against the budget, kill-runner included. The budget is read from a
 * `BudgetView` (the ledger's past actions, times converted to monotonic-equivalent ms) plus the
 * action the detector issued but whose outcome has not reached the ledger yet.
 */
import { formatDuration } from "../config/duration.js";
import type { Config } from "../config/schema.js";
import type { ActionResult, RemediationKind } from "../core/types.js";

/** One past action as the budget sees it. `mono` is monotonic-equivalent ms of its start. */
export interface PastAction {
  mono: number;
  action: RemediationKind;
  result: ActionResult;
}

/** The actions the budget counts (the ledger's `budgetView`), any order. */
export type BudgetView = readonly PastAction[];

export interface BudgetStatus {
  max: number;
  used: number;
  remaining: number;
  /** When the newest counted action started (cooldown is measured from it). */
  lastActionMono: number | undefined;
  /** When the oldest action in the window leaves it (the next slot frees). */
  nextFreeMono: number | undefined;
}

export function budgetStatus(
  view: BudgetView,
  pendingMonos: readonly number[],
  nowMono: number,
  remediation: Config["remediation"],
): BudgetStatus {
  const windowStart = nowMono - remediation.budget.window;
  const inWindow = [...view.map((a) => a.mono), ...pendingMonos].filter((mono) => mono > windowStart);
  const all = [...view.map((a) => a.mono), ...pendingMonos];
  const max = remediation.budget.max;
  const used = inWindow.length;
  return {
    max,
    used,
    remaining: Math.max(0, max - used),
    lastActionMono: all.length ? Math.max(...all) : undefined,
    nextFreeMono: inWindow.length ? Math.min(...inWindow) + remediation.budget.window : undefined,
  };
}

export type Gate =
  | { open: true }
  | { open: false; why: "budget"; text: string }
  | { open: false; why: "cooldown"; waitMs: number; text: string };

/** May an action start now? */
export function actionGate(status: BudgetStatus, nowMono: number, remediation: Config["remediation"]): Gate {
  if (status.remaining <= 0) {
    const frees =
      status.nextFreeMono === undefined
        ? ""
        : `; the next slot frees in ${formatMs(status.nextFreeMono - nowMono)}`;
    return {
      open: false,
      why: "budget",
      text: `budget spent: ${status.used} of ${status.max} actions in the last ${formatMs(remediation.budget.window)}${frees}`,
    };
  }
  if (status.lastActionMono !== undefined) {
    const waitMs = status.lastActionMono + remediation.cooldown - nowMono;
    if (waitMs > 0) {
      return {
        open: false,
        why: "cooldown",
        waitMs,
        text: `cooldown: next action allowed in ${formatMs(waitMs)}`,
      };
    }
  }
  return { open: true };
}

/**
 * What a problem's ladder looks like. A frozen model climbs the configured ladder from its first
 * step; a dead API or a deadlocked scheduler skips to `restart` (killing runners does not help).
 */
export type Scope = "model" | "scheduler" | "liveness";

/** The index of the first step at or after `from` that suits the scope; undefined when none is left. */
export function nextLadderStep(
  ladder: readonly RemediationKind[],
  from: number,
  scope: Scope,
): number | undefined {
  for (let i = from; i < ladder.length; i++) {
    if (scope === "model" || ladder[i] === "restart") return i;
  }
  return undefined;
}

/** "45s", "2m5s", "1h" — durations in reasons. */
export function formatMs(ms: number): string {
  return formatDuration(Math.max(0, ms));
}
