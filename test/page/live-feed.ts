import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Snapshot, TargetSnapshot, TickRecord } from "../../src/core/types.js";
import type { IncidentRecorder } from "../../src/incidents/recorder.js";
import type { History } from "../../src/page/history.js";
import type { Route } from "../../src/server/route.js";

/** Serves a Route list the way the daemon's server does: method + exact path or RegExp over the path. */
export async function serveRoutes(routes: Route[]): Promise<{ url: string; close: () => Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    for (const route of routes) {
      if (route.method !== req.method) continue;
      const match = typeof route.path === "string" ? route.path === path : route.path.exec(path);
      if (!match) continue;
      const params = match === true ? null : match;
      void Promise.resolve(route.handle(req, res, params)).catch((error: unknown) => {
        res.writeHead(500).end(String(error));
      });
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Stands in for the daemon's tick loop: keeps the snapshot and feeds the recorder and history. */
export class LiveFeed {
  private readonly targets = new Map<string, TargetSnapshot>();
  private lastTickWall: number | undefined;
  private ticks = 0;

  constructor(
    private readonly incidents: IncidentRecorder,
    private readonly history: History,
    private readonly urls: Record<string, string>,
    private readonly intervalMs = 15_000,
  ) {
    for (const [name, url] of Object.entries(urls)) {
      this.targets.set(name, {
        name,
        url,
        state: "starting",
        sinceWall: 0,
        reason: "watchdog started",
        frozenForMs: 0,
        budget: { remaining: 3, max: 3 },
      });
    }
  }

  snapshot = (): Snapshot => ({
    version: "0.1.0",
    startedWall: 0,
    ...(this.lastTickWall === undefined ? {} : { lastTickWall: this.lastTickWall }),
    ticks: this.ticks,
    intervalMs: this.intervalMs,
    targets: [...this.targets.values()],
    gpus: [...this.targets.values()][0]?.observation?.gpus ?? [],
  });

  /** One tick: records of every target in it, in the order the daemon does it. */
  feed(...records: TickRecord[]): void {
    for (const record of records) {
      const previous = this.targets.get(record.target);
      const lastCanary = record.observation.canaryResults.at(-1) ?? previous?.lastCanary;
      this.targets.set(record.target, {
        name: record.target,
        url: this.urls[record.target] ?? "",
        state: record.verdict.state,
        sinceWall: previous?.state === record.verdict.state ? previous.sinceWall : record.wall,
        reason: record.verdict.reason,
        frozenForMs: record.verdict.frozenForMs,
        budget: record.verdict.budget,
        observation: record.observation,
        ...(lastCanary ? { lastCanary } : {}),
      });
      this.lastTickWall = Math.max(this.lastTickWall ?? 0, record.wall);
    }
    this.ticks++;
    for (const record of records) {
      this.incidents.onTick(record);
      this.history.push(record);
      const target = this.targets.get(record.target);
      const lastIncident = this.incidents.lastIncident(record.target);
      if (target && lastIncident) target.lastIncident = lastIncident;
    }
  }
}
