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
        res.writeHead(200, {
          "content-type": "text/event-stream; charset=utf-8",
          "cache-control": "no-store",
          connection: "keep-alive",
          "x-accel-buffering": "no",
        });
        const send = (event: string, data: unknown): void => {
          if (!res.writableEnded) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
        };
        res.write("retry: 2000\n\n");
        send("snapshot", tickPayload());
        send("incidents", incidentsPayload());
        const offTick = history.onTick(() => send("snapshot", tickPayload()));
        const offIncidents = incidents.onChange(coalesced(() => send("incidents", incidentsPayload())));
        const keepAlive = setInterval(() => {
          if (!res.writableEnded) res.write(": keep-alive\n\n");
        }, keepAliveMs);
        keepAlive.unref();
        const stop = (): void => {
          clearInterval(keepAlive);
          offTick();
          offIncidents();
        };
        req.on("close", stop);
        res.on("error", stop);
      },
    },
  ];
}
