import type { IncidentSummary } from "../core/types.js";
import type { Incident } from "../incidents/types.js";
import { actionNotice, detectedNotice, digestNotice, exhaustedNotice, healedNotice } from "./message.js";
import type { Notice } from "./notice.js";

/** What has been announced of one incident. */
export interface Announced {
  detected: boolean;
  actions: number;
  exhausted: boolean;
  healed: boolean;
}

/** Everything in the incident as it is now counts as announced (incidents found at start). */
export function announcedAll(incident: Incident): Announced {
  return {
    detected: true,
    actions: incident.actions.length,
    exhausted: incident.outcome === "exhausted",
    healed:
      incident.finished && incident.outcome !== "exhausted" ? true : incident.healthyAgainWall !== undefined,
  };
}

const NOTHING: Announced = { detected: false, actions: 0, exhausted: false, healed: false };

/**
 * The notices an incident's latest changes call for, in the order they happened: detected (the
 * first frozen/down verdict), each finished action, then exhausted or healed. A suspicion that
 * clears by itself before frozen/down says nothing; one announced as detected gets its "healed".
 * Pure.
 */
export function newNotices(
  incident: Incident,
  before: Announced | undefined,
  baseUrl: string,
): { notices: Notice[]; announced: Announced } {
  const announced = { ...(before ?? NOTHING) };
  const notices: Notice[] = [];
  if (!announced.detected) {
    const serious = incident.transitions.find((t) => t.to === "frozen" || t.to === "down");
    if (serious) {
      notices.push(
        detectedNotice(incident, serious.to as "frozen" | "down", serious.reason, serious.wall, baseUrl),
      );
      announced.detected = true;
    }
  }
  // a target that goes straight to exhausted (budget already spent) is announced by that notice
  if (!announced.detected && incident.outcome === "exhausted") announced.detected = true;
  if (!announced.detected) return { notices, announced };
  for (const action of incident.actions.slice(announced.actions))
    notices.push(actionNotice(incident, action, baseUrl));
  announced.actions = incident.actions.length;
  if (incident.outcome === "exhausted" && !announced.exhausted) {
    notices.push(exhaustedNotice(incident, baseUrl));
    announced.exhausted = true;
  }
  const healthy =
    (incident.finished && incident.outcome !== "exhausted") || incident.healthyAgainWall !== undefined;
  if (healthy && !announced.healed) {
    notices.push(healedNotice(incident, baseUrl));
    announced.healed = true;
  }
  return { notices, announced };
}

const DAY_MS = 86_400_000;

/** The next time of day `at` ("08:00", UTC) strictly after `wall`. */
export function nextDigestWall(at: string, wall: number): number {
  const [h, m] = at.split(":").map(Number);
  const day = new Date(wall);
  let next = Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate(), h ?? 0, m ?? 0);
  while (next <= wall) next += DAY_MS;
  return next;
}

/** The digest for the 24 h before `wall`, or nothing when there were no incidents. */
export function digestFor(incidents: IncidentSummary[], wall: number, baseUrl: string): Notice | undefined {
  const recent = incidents.filter((i) => i.openedWall > wall - DAY_MS && i.openedWall <= wall);
  return recent.length ? digestNotice(recent, wall, baseUrl) : undefined;
}
