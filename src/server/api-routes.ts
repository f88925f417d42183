import { failedCollectors } from "../collectors/collector.js";
import type { Snapshot, TargetSnapshot } from "../core/types.js";
import { inRotation } from "../remediation/drain.js";
import { type Route, sendJson } from "./route.js";

/** The /api/status body (DESIGN.md §7, contract). */
export function statusBody(snapshot: Snapshot) {
  return {
    version: snapshot.version,
    startedAt: new Date(snapshot.startedWall).toISOString(),
    lastTickAt: snapshot.lastTickWall === undefined ? null : new Date(snapshot.lastTickWall).toISOString(),
    targets: snapshot.targets.map((t: TargetSnapshot) => ({
      name: t.name,
      url: t.url,
      state: t.state,
      since: new Date(t.sinceWall).toISOString(),
      reason: t.reason,
      frozenForSeconds: t.frozenForMs / 1000,
      budget: t.budget,
      api: t.observation
        ? {
            up: t.observation.api.up,
            version: t.observation.api.version ?? null,
            latencyMs: t.observation.api.latencyMs ?? null,
          }
        : null,
      models: (t.observation?.ps?.models ?? []).map((m) => ({
        name: m.name,
        sizeVram: m.sizeVram,
        expiresAt: m.expiresAt,
        contextLength: m.contextLength,
        canaryDisabled: t.canaryDisabled?.find((d) => d.model === m.name)?.reason ?? null,
      })),
      modelsAvailable: t.observation?.tags?.models.length ?? null,
      lastCanary: t.lastCanary ?? null,
      lastIncident: t.lastIncident ?? null,
      collectorErrors: failedCollectors(t.observation?.collectors),
    })),
    gpus: snapshot.gpus,
  };
}

export function apiRoutes(deps: {
  snapshot: () => Snapshot;
  healthy: () => { ok: boolean; lastTickWall?: number; ticks: number; problems?: string[] };
}): Route[] {
  return [
    {
      method: "GET",
      path: "/healthz",
      handle: (_req, res) => {
        const health = deps.healthy();
        sendJson(res, health.ok ? 200 : 503, {
          ok: health.ok,
          ticks: health.ticks,
          lastTickAt: health.lastTickWall === undefined ? null : new Date(health.lastTickWall).toISOString(),
          // Still 200: the loop ticks and observes. What it cannot do is said here.
          ...(health.problems ? { problems: health.problems } : {}),
        });
      },
    },
    {
      method: "GET",
      path: "/api/status",
      handle: (_req, res) => sendJson(res, 200, statusBody(deps.snapshot())),
    },
    {
      method: "GET",
      path: /^\/targets\/([^/]+)\/health$/,
      handle: (_req, res, params) => {
        const name = decodeURIComponent(params?.[1] ?? "");
        const target = deps.snapshot().targets.find((t) => t.name === name);
        if (!target) {
          sendJson(res, 404, { error: `no target named ${name}` });
          return;
        }
        sendJson(res, inRotation(target.state, target.observation?.api.up) ? 200 : 503, {
          name: target.name,
          state: target.state,
          since: new Date(target.sinceWall).toISOString(),
          reason: target.reason,
        });
      },
    },
  ];
}
