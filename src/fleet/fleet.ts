import { readFileSync } from "node:fs";
import { ConfigError } from "../config/load.js";
import type { Config } from "../config/schema.js";
import { type FetchFn, fetchJson } from "../core/http.js";
import { httpFetch } from "../core/http-client.js";
import type { IncidentSummary, WatchdogState } from "../core/types.js";
import { inRotation } from "../remediation/drain.js";

/**
 * Many hosts at one glance: each peer is another watchdog, asked for its `/api/status` under a
 * deadline. `fetchFleet` is the shell (used by `status --url A --url B` and the live page's fleet
 * panel); ordering, health and formatting are pure.
 */

export interface FleetPeer {
  name: string;
  /** The peer watchdog's base URL (its `listen` address), e.g. http://10.0.0.11:11464. */
  url: string;
  /** `Basic …` for a peer behind basic auth. */
  authorization?: string;
}

/** The config's `fleet:` list as peers; a basicAuth.passwordFile that cannot be read is a config error. */
export function peersFromConfig(fleet: Config["fleet"]): FleetPeer[] {
  const names = peerNames(fleet.map((peer) => peer.url));
  const problems: string[] = [];
  const peers = fleet.map((peer, i) => {
    const result: FleetPeer = { name: peer.name ?? (names[i] as string), url: peer.url };
    if (peer.basicAuth) {
      const { username, passwordFile } = peer.basicAuth;
      try {
        const password = readFileSync(passwordFile, "utf8").replace(/\r?\n$/, "");
        result.authorization = `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
      } catch (error) {
        problems.push(
          `fleet[${i}].basicAuth.passwordFile: cannot read ${passwordFile} (${(error as NodeJS.ErrnoException).code})`,
        );
      }
    }
    return result;
  });
  if (problems.length > 0) throw new ConfigError(problems.join("\n"), problems);
  return peers;
}

/** One target as a peer's /api/status reports it (DESIGN.md §7). */
interface PeerTarget {
  name: string;
  state: WatchdogState;
  since?: string;
  reason?: string;
  budget?: { remaining: number; max: number };
  lastIncident?: IncidentSummary | null;
  api?: { up: boolean } | null;
}

/** One line of the fleet view: a target of a reachable peer, or an unreachable peer. */
export interface FleetRow {
  host: string;
  url: string;
  /** The target's name when the peer watches more than one. */
  target?: string;
  state: WatchdogState | "unreachable";
  reason: string;
  since?: string;
  budget?: { remaining: number; max: number };
  lastIncident?: IncidentSummary | null;
  /** Whether the target's Ollama API answered (a peer's `api.up`). */
  apiUp?: boolean;
}

/**
 * Names for peers the config does not name: each URL's host name, with its port where another
 * peer has the same host name (two watchdogs on one machine), the whole URL where even that is shared.
 */
export function peerNames(urls: readonly string[]): string[] {
  const parsed = urls.map((url) => {
    try {
      return new URL(url);
    } catch {
      return undefined;
    }
  });
  const labels = [(url: URL) => url.hostname, (url: URL) => url.host];
  return urls.map((raw, i) => {
    const url = parsed[i];
    if (!url) return raw;
    const unique = labels.find((label) =>
      parsed.every((other, j) => j === i || other === undefined || label(other) !== label(url)),
    );
    return unique ? unique(url) : raw;
  });
}

export async function fetchFleet(
  peers: readonly FleetPeer[],
  options: { timeoutMs: number; fetch?: FetchFn },
): Promise<FleetRow[]> {
  const rows = await Promise.all(
    peers.map(async (peer): Promise<FleetRow[]> => {
      const base = peer.url.replace(/\/$/, "");
      const doFetch = options.fetch ?? httpFetch;
      const authorization = peer.authorization;
      const peerFetch: FetchFn = authorization
        ? (url, init) => doFetch(url, { ...init, headers: { ...(init?.headers ?? {}), authorization } })
        : doFetch;
      const result = await fetchJson<{ targets?: PeerTarget[] }>(`${base}/api/status`, {
        ...options,
        fetch: peerFetch,
      });
      const targets = result.body?.targets;
      if (!result.ok || !Array.isArray(targets)) {
        const why = result.timedOut
          ? `no answer within ${options.timeoutMs}ms`
          : (result.error ?? "not a watchdog's /api/status");
        return [{ host: peer.name, url: base, state: "unreachable", reason: why }];
      }
      return targets.map((t) => {
        const row: FleetRow = {
          host: peer.name,
          url: base,
          state: t.state,
          reason: t.reason ?? "",
          lastIncident: t.lastIncident ?? null,
        };
        if (targets.length > 1) row.target = t.name;
        if (t.since) row.since = t.since;
        if (t.budget) row.budget = t.budget;
        if (t.api) row.apiUp = t.api.up;
        return row;
      });
    }),
  );
  return sortFleet(rows.flat());
}

/** Worst first: what needs a person comes before what heals itself and what is fine. */
const SEVERITY: Record<FleetRow["state"], number> = {
  exhausted: 0,
  frozen: 1,
  down: 2,
  unreachable: 3,
  recovering: 4,
  suspect: 5,
  starting: 6,
  healthy: 7,
};

/** Hosts are URLs and names: code-point order. `localeCompare` would load ICU's collator (+3 MB of RSS). */
function byHost(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function sortFleet(rows: FleetRow[]): FleetRow[] {
  return [...rows].sort((a, b) => SEVERITY[a.state] - SEVERITY[b.state] || byHost(a.host, b.host));
}

/** A row is fine when a load balancer would keep it in rotation. */
export function rowHealthy(row: FleetRow): boolean {
  return row.state !== "unreachable" && inRotation(row.state, row.apiUp);
}

const REASON_WIDTH = 100;

/** Pure: one line per host (per target where a host watches several), worst first. */
export function formatFleet(rows: readonly FleetRow[], now: number): string {
  const label = (r: FleetRow) => (r.target ? `${r.host}/${r.target}` : r.host);
  const hostWidth = Math.max(4, ...rows.map((r) => label(r).length));
  const lines = [
    `${"HOST".padEnd(hostWidth)}  ${"STATE".padEnd(11)}  BUDGET  ${"LAST INCIDENT".padEnd(28)}  REASON`,
  ];
  for (const r of rows) {
    const budget = r.budget ? `${r.budget.remaining}/${r.budget.max}` : "-";
    const incident =
      r.state === "unreachable"
        ? "-"
        : r.lastIncident
          ? `${r.lastIncident.outcome} ${ago(r.lastIncident.openedWall, now)}`
          : "none";
    const state = r.state === "unreachable" ? "UNREACHABLE" : r.state;
    const reason = r.state === "unreachable" ? `${r.url}: ${r.reason}` : r.reason;
    const shortReason = reason.length > REASON_WIDTH ? `${reason.slice(0, REASON_WIDTH - 1)}…` : reason;
    lines.push(
      `${label(r).padEnd(hostWidth)}  ${state.padEnd(11)}  ${budget.padEnd(6)}  ${incident.padEnd(28)}  ${shortReason}`,
    );
  }
  return lines.join("\n");
}

export function ago(wall: number, now: number): string {
  if (!Number.isFinite(wall)) return "?";
  const seconds = Math.max(0, Math.round((now - wall) / 1000));
  if (seconds < 120) return `${seconds}s ago`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m ago`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)}h ago`;
  return `${Math.round(seconds / 86_400)}d ago`;
}
