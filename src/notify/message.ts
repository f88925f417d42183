import type { IncidentSummary } from "../core/types.js";
import { humanDuration, iso } from "../incidents/format.js";
import type { ActionRecord, Incident } from "../incidents/types.js";
import type { Notice } from "./notice.js";

/**
 * What each event of an incident says, in words a person reads on a phone. Pure: an incident in,
 * notices out. The daemon decides *when* (src/notify/announcer.ts).
 */

/** The live page opens this incident's report (src/page/assets/client.ts reads the hash). */
export function reportLink(baseUrl: string, incidentId: string): string {
  return `${baseUrl.replace(/\/+$/, "")}/#incident=${encodeURIComponent(incidentId)}`;
}

function about(incident: Incident, baseUrl: string): Pick<Notice, "target" | "incident" | "link"> {
  return {
    target: incident.target,
    link: reportLink(baseUrl, incident.id),
    incident: {
      id: incident.id,
      title: incident.title,
      outcome: incident.outcome,
      openedAt: iso(incident.openedWall),
      ...(incident.closedWall !== undefined ? { closedAt: iso(incident.closedWall) } : {}),
    },
  };
}

const lines = (...parts: Array<string | false | undefined>) => parts.filter(Boolean).join("\n");

/** frozen or down: the first verdict of that kind in the incident. */
export function detectedNotice(
  incident: Incident,
  state: "frozen" | "down",
  reason: string,
  wall: number,
  baseUrl: string,
): Notice {
  return {
    kind: "detected",
    severity: "critical",
    title: `Ollama ${incident.target} is ${state}`,
    text: lines(
      `Why: ${reason}.`,
      `Since ${iso(incident.openedWall)} (first sign of trouble).`,
      incident.recentIncidents > 0 &&
        `This target had ${incident.recentIncidents} other incident(s) in the 24 h before.`,
      "The watchdog acts on its own within its budget; you will hear what it did.",
    ),
    at: iso(wall),
    ...about(incident, baseUrl),
  };
}

export function actionNotice(incident: Incident, action: ActionRecord, baseUrl: string): Notice {
  const verb =
    action.result === "success"
      ? `${action.action} done`
      : action.result === "dry-run"
        ? `${action.action} (dry run: nothing done)`
        : `${action.action} failed`;
  return {
    kind: "action",
    severity: action.result === "failure" ? "critical" : "warning",
    title: `Watchdog: ${verb} on Ollama ${incident.target}`,
    text: lines(
      action.reason && `Why: ${action.reason}.`,
      `What: ${action.action}${action.detail ? ` (${action.detail})` : ""}, took ${humanDuration(action.durationMs)}.`,
      action.error && `Error: ${action.error}.`,
      `Budget left: ${incident.last.budget.remaining} of ${incident.last.budget.max} actions.`,
      action.result === "success" && "Waiting for a canary to prove the recovery.",
    ),
    at: iso(action.wall),
    ...about(incident, baseUrl),
  };
}

/** Closed healed or resolved by itself, or healthy again after having been exhausted. */
export function healedNotice(incident: Incident, baseUrl: string): Notice {
  const endWall = incident.healthyAgainWall ?? incident.closedWall ?? incident.last.wall;
  const recovered = humanDuration(endWall - incident.openedWall);
  const how =
    incident.outcome === "healed"
      ? `Healed by ${
          incident.verification?.afterAction ??
          incident.actions.filter((a) => a.result === "success").at(-1)?.action ??
          "the watchdog"
        }`
      : incident.outcome === "exhausted"
        ? "Healthy again after the watchdog had given up (a person or Ollama itself fixed it)"
        : "Recovered by itself";
  return {
    kind: "healed",
    severity: "info",
    title: `Ollama ${incident.target} is healthy again (after ${recovered})`,
    text: lines(
      `${how}; time to recover: ${recovered}.`,
      incident.verification &&
        `Proof: a canary on ${incident.verification.model} answered${
          incident.verification.ttftMs !== undefined
            ? ` in ${humanDuration(incident.verification.ttftMs)}`
            : ""
        }.`,
      incident.actions.length > 0 &&
        `Actions: ${incident.actions.map((a) => `${a.action} ${a.result}`).join(", ")}.`,
    ),
    at: iso(endWall),
    ...about(incident, baseUrl),
  };
}

export function exhaustedNotice(incident: Incident, baseUrl: string): Notice {
  const tried =
    incident.actions.map((a) => `${a.action} ${a.result}`).join(", ") || "nothing (no budget left)";
  return {
    kind: "exhausted",
    severity: "critical",
    title: `Watchdog gave up on Ollama ${incident.target}: a person must act`,
    text: lines(
      `Still broken: ${incident.last.reason}.`,
      `Tried: ${tried}. Budget left: ${incident.last.budget.remaining} of ${incident.last.budget.max}.`,
      "Do: find why healing does not hold — a wedged GPU (nvidia-smi; a reboot may be needed), a model " +
        "that freezes on every load, a full disk, a bad upgrade (journalctl -u ollama). " +
        "The watchdog keeps observing and acts again once its budget window frees up.",
    ),
    at: iso(incident.closedWall ?? incident.last.wall),
    ...about(incident, baseUrl),
  };
}

/** The daily digest: the incidents opened in the last 24 h. */
export function digestNotice(incidents: IncidentSummary[], wall: number, baseUrl: string): Notice {
  const open = incidents.filter((i) => i.outcome === "open" || i.outcome === "exhausted").length;
  return {
    kind: "digest",
    severity: open ? "warning" : "info",
    title: `Ollama watchdog: ${incidents.length} incident(s) in the last 24 h${open ? `, ${open} not healed` : ""}`,
    text: incidents
      .map((i) => `- ${iso(i.openedWall)} ${i.title}\n  ${reportLink(baseUrl, i.id)}`)
      .join("\n"),
    link: `${baseUrl.replace(/\/+$/, "")}/`,
    at: iso(wall),
  };
}

export function testNotice(wall: number, baseUrl: string): Notice {
  return {
    kind: "test",
    severity: "info",
    title: "Ollama watchdog: test message",
    text: "If you read this, this receiver works. Sent by `ollama-watchdog notify test`.",
    link: `${baseUrl.replace(/\/+$/, "")}/`,
    at: iso(wall),
  };
}

/** The text body with the link, for receivers that show plain text (chat, e-mail). */
export function plainText(notice: Notice): string {
  return notice.link ? `${notice.text}\nReport: ${notice.link}` : notice.text;
}
