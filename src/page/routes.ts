import { readFileSync } from "node:fs";
import type { ServerResponse } from "node:http";
import { createRequire } from "node:module";
import type { Snapshot } from "../core/types.js";
import type { FleetView } from "../fleet/poller.js";
import type { IncidentRecorder } from "../incidents/recorder.js";
import { renderMarkdown } from "../incidents/report.js";
import { type Route, sendJson } from "../server/route.js";
import { PAGE_JS } from "./assets/client.js";
import { PAGE_CSS } from "./assets/css.js";
import { PAGE_HTML } from "./assets/html.js";
import type { History } from "./history.js";
import { markdownToHtml } from "./markdown-html.js";

export interface PageDependencies {
  snapshot: () => Snapshot;
  incidents: Pick<IncidentRecorder, "list" | "get" | "onChange">;
  history: History;
  /** The fleet panel's data (peer watchdogs polled in the background); absent: no panel. */
  fleet?: () => FleetView;
  /** Seconds between SSE keep-alive comments. Default 20. */
  keepAliveMs?: number;
  /** Event streams open at once; more are answered 503 (each costs a socket and its buffers). Default 32. */
  maxEventClients?: number;
  /** A client whose stream has not drained for this long is dropped (its browser reconnects). Default 60 s. */
  eventStallMs?: number;
}

// Only our own origin: no CDN, no external request can sneak in. uPlot styles its elements inline.
const CONTENT_SECURITY_POLICY =
  "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; " +
  "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

function sendAsset(res: ServerResponse, text: string, contentType: string): void {
  res.writeHead(200, {
    "content-type": contentType,
    "cache-control": "no-cache",
    "x-content-type-options": "nosniff",
    "content-security-policy": CONTENT_SECURITY_POLICY,
  });
  res.end(text);
}

const uplotFiles = new Map<string, string>();
/** uPlot's own dist files, read from node_modules at runtime (cached): no CDN, works offline. */
function uplotFile(name: "uPlot.iife.min.js" | "uPlot.min.css"): string {
  let text = uplotFiles.get(name);
  if (text === undefined) {
    const path = createRequire(import.meta.url).resolve(`uplot/dist/${name}`);
    text = readFileSync(path, "utf8");
    uplotFiles.set(name, text);
  }
  return text;
}

/** Calls `fn` once per turn of the event loop however often it is triggered within it. */
function coalesced(fn: () => void): () => void {
  let scheduled = false;
  return () => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      fn();
    });
  };
}

function sseEvent(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

interface EventClient {
  res: ServerResponse;
  /** When a write found the stream not yet drained; undefined while it keeps up. */
  stalledSince?: number;
}

/**
 * The SSE fan-out: each event is serialized once for every client, and a client that does not read
 * gets no new events queued (snapshots are whole states: skipping some loses nothing) and is
 * dropped after `stallMs`.
 */
class EventHub {
  readonly clients = new Set<EventClient>();

  constructor(private readonly stallMs: number) {}

  broadcast(text: string): void {
    for (const client of this.clients) this.write(client, text);
  }

  write(client: EventClient, text: string): void {
    const { res } = client;
    if (res.writableEnded || res.destroyed) return;
    if (res.writableNeedDrain) {
      client.stalledSince ??= performance.now();
      if (performance.now() - client.stalledSince > this.stallMs) res.destroy();
      return;
    }
    client.stalledSince = undefined;
    res.write(text);
  }
}

/**
 * The live page and its data: `GET /` (the page), `/assets/*`, `GET /api/history?target=NAME`,
 * `GET /api/incidents`, `GET /api/incidents/ID` and `GET /api/events` (Server-Sent Events:
 * `snapshot` after each tick, `incidents` when one opens, changes or closes).
 */
export function pageRoutes(deps: PageDependencies): Route[] {
  const { history, incidents } = deps;
  const keepAliveMs = deps.keepAliveMs ?? 20_000;
  const tickPayload = () => ({ snapshot: deps.snapshot(), points: history.latest() });
  const incidentsPayload = () => ({ incidents: incidents.list() });
  const maxEventClients = deps.maxEventClients ?? 32;
  const hub = new EventHub(deps.eventStallMs ?? 60_000);
  let unsubscribe: (() => void) | undefined;
  const subscribe = (): void => {
    if (unsubscribe) return;
    const offTick = history.onTick(() => hub.broadcast(sseEvent("snapshot", tickPayload())));
    const offIncidents = incidents.onChange(
      coalesced(() => hub.broadcast(sseEvent("incidents", incidentsPayload()))),
    );
    unsubscribe = () => {
      offTick();
      offIncidents();
      unsubscribe = undefined;
    };
  };

  return [
    {
      method: "GET",
      path: "/",
      handle: (_req, res) => sendAsset(res, PAGE_HTML, "text/html; charset=utf-8"),
    },
    {
      method: "GET",
      path: "/assets/page.js",
      handle: (_req, res) => sendAsset(res, PAGE_JS, "text/javascript; charset=utf-8"),
    },
    {
      method: "GET",
      path: "/assets/page.css",
      handle: (_req, res) => sendAsset(res, PAGE_CSS, "text/css; charset=utf-8"),
    },
    {
      method: "GET",
      path: "/assets/uplot.js",
      handle: (_req, res) => sendAsset(res, uplotFile("uPlot.iife.min.js"), "text/javascript; charset=utf-8"),
    },
    {
      method: "GET",
      path: "/assets/uplot.css",
      handle: (_req, res) => sendAsset(res, uplotFile("uPlot.min.css"), "text/css; charset=utf-8"),
    },
    {
      method: "GET",
      path: "/api/history",
      handle: (req, res) => {
        const query = new URL(req.url ?? "/", "http://page.invalid").searchParams;
        const target = query.get("target");
        if (!target) {
          sendJson(res, 400, { error: "missing ?target=NAME" });
          return;
        }
        const since = Number(query.get("since") ?? Number.NEGATIVE_INFINITY);
        sendJson(res, 200, {
          target,
          windowMs: history.windowMs,
          bucketMs: history.bucketMs,
          points: history.series(target, Number.isNaN(since) ? Number.NEGATIVE_INFINITY : since),
        });
      },
    },
    {
      method: "GET",
      path: "/api/fleet",
      handle: (_req, res) => sendJson(res, 200, deps.fleet?.() ?? { peers: 0, fetchedWall: null, hosts: [] }),
    },
    {
      method: "GET",
      path: "/api/incidents",
      handle: (_req, res) => sendJson(res, 200, incidentsPayload()),
    },
    {
      method: "GET",
      path: /^\/api\/incidents\/([^/]+)$/,
      handle: (_req, res, params) => {
        let id: string;
        try {
          id = decodeURIComponent(params?.[1] ?? "");
        } catch {
          sendJson(res, 400, { error: "bad incident id" });
          return;
        }
        const incident = incidents.get(id);
        if (!incident) {
          sendJson(res, 404, { error: `no incident ${id}` });
          return;
        }
        const markdown = renderMarkdown(incident);
        sendJson(res, 200, { incident, markdown, html: markdownToHtml(markdown) });
      },
    },
    {
      method: "GET",
      path: "/api/events",
      handle: (req, res) => {
        if (hub.clients.size >= maxEventClients) {
          res.writeHead(503, { "content-type": "application/json; charset=utf-8", "retry-after": "10" });
          res.end(`${JSON.stringify({ error: `at most ${maxEventClients} live pages at once` })}\n`);
          return;
        }
        res.writeHead(200, {
          "content-type": "text/event-stream; charset=utf-8",
          "cache-control": "no-store",
          connection: "keep-alive",
          "x-accel-buffering": "no",
        });
        const client: EventClient = { res };
        hub.clients.add(client);
        subscribe();
        res.write("retry: 2000\n\n");
        hub.write(client, sseEvent("snapshot", tickPayload()));
        hub.write(client, sseEvent("incidents", incidentsPayload()));
        const keepAlive = setInterval(() => hub.write(client, ": keep-alive\n\n"), keepAliveMs);
        keepAlive.unref();
        const stop = (): void => {
          clearInterval(keepAlive);
          hub.clients.delete(client);
          if (hub.clients.size === 0) unsubscribe?.();
        };
        req.on("close", stop);
        res.on("error", stop);
      },
    },
  ];
}
