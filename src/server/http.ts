import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "../core/log.js";
import { type Route, sendJson } from "./route.js";
import { type WebConfig, webGate } from "./web-config.js";

export interface HttpServer {
  /** http(s)://host:port actually bound (port 0 resolved). */
  url: string;
  close(): Promise<void>;
}

function matches(route: Route, req: IncomingMessage, path: string): RegExpExecArray | null | false {
  const method = req.method === "HEAD" ? "GET" : req.method;
  if (route.method !== method) return false;
  if (typeof route.path === "string") return route.path === path ? null : false;
  return route.path.exec(path) ?? false;
}

/** Parses "127.0.0.1:11464" / "[::1]:11464" into host and port. */
export function parseListen(listen: string): { host: string; port: number } {
  const index = listen.lastIndexOf(":");
  const host = listen.slice(0, index).replace(/^\[(.*)\]$/, "$1");
  return { host, port: Number(listen.slice(index + 1)) };
}

/**
 * The daemon's HTTP server: a route table and nothing else. Modules contribute routes; a handler
 * that throws answers 500 and is logged, never crashes the daemon. With a web config: TLS and
 * basic auth in front of every route (src/server/web-config.ts).
 */
export async function startHttpServer(
  listen: string,
  routes: Route[],
  log: Logger,
  web?: WebConfig,
): Promise<HttpServer> {
  const gate = web ? webGate(web) : undefined;
  const handler = async (req: IncomingMessage, res: ServerResponse) => {
    if (gate && !(await gate(req, res))) return;
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    for (const route of routes) {
      const params = matches(route, req, path);
      if (params === false) continue;
      try {
        await route.handle(req, res, params);
      } catch (error) {
        log.error({ err: error, path }, "HTTP handler failed");
        if (!res.headersSent) sendJson(res, 500, { error: "internal error" });
        else res.destroy();
      }
      return;
    }
    sendJson(res, 404, { error: `no route for ${req.method} ${path}` });
  };
  // node:https (and TLS with it) is loaded only when TLS is configured: ≈ 2 MB otherwise carried.
  const server: Server = web?.tls
    ? (await import("node:https")).createServer(
        { cert: web.tls.cert, key: web.tls.key },
        (req, res) => void handler(req, res),
      )
    : createServer((req, res) => void handler(req, res));
  server.keepAliveTimeout = 5000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  const { host, port } = parseListen(listen);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return {
    url: `${web?.tls ? "https" : "http"}://${shownHost}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
