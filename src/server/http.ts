import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { type AddressInfo, isIP } from "node:net";
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

/** 127.0.0.0/8, ::1 and the IPv4-mapped form of 127/8. */
export function isLoopbackAddress(address: string): boolean {
  const bare = address.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  return bare === "::1" || /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare);
}

/**
 * DNS rebinding: a web page in the operator's browser can make its own name resolve to 127.0.0.1
 * and then read this server as "same origin"; its requests still carry that name in Host. On a
 * loopback listen only loopback names and addresses (and the listen host itself) are served.
 * A request without the header is served: browsers always send one, Node refuses HTTP/1.1
 * without it (400), and HTTP/1.0 health checkers (HAProxy's `option httpchk` by default) omit it;
 * Ollama's allowedHost (server/routes.go) admits it too.
 */
export function hostAllowed(hostHeader: string | undefined, listenHost: string): boolean {
  if (hostHeader === undefined) return true;
  const name = hostHeader
    .trim()
    .toLowerCase()
    .replace(/:\d+$/, "")
    .replace(/^\[(.*)\]$/, "$1");
  if (!name) return false;
  if (name === listenHost.toLowerCase()) return true;
  if (name === "localhost" || name.endsWith(".localhost")) return true;
  return isIP(name) !== 0 && isLoopbackAddress(name);
}

/** What an exposed listener without TLS or authentication risks, in words; undefined when it has both. */
export function exposureWarning(tls: boolean, auth: boolean): string | undefined {
  if (!auth)
    return `${tls ? "no authentication" : "no TLS and no authentication"}: anyone who can reach this port reads status, incidents and metrics`;
  if (!tls)
    return "no TLS: the password and every answer cross the network in clear text, for anyone on the path to read";
  return undefined;
}

/**
 * The daemon's HTTP server: a route table and nothing else. Modules contribute routes; a handler
 * that throws answers 500 and is logged, never crashes the daemon. On a loopback listen the Host
 * header is checked (421 otherwise); a path whose %-escapes do not decode is a 400. With a web
 * config: TLS and basic auth in front of every route (src/server/web-config.ts).
 */
export async function startHttpServer(
  listen: string,
  routes: Route[],
  log: Logger,
  web?: WebConfig,
): Promise<HttpServer> {
  const { host, port } = parseListen(listen);
  const gate = web ? webGate(web) : undefined;
  let checkHost = true;
  const handler = async (req: IncomingMessage, res: ServerResponse) => {
    if (checkHost && !hostAllowed(req.headers.host, host)) {
      sendJson(res, 421, { error: "this server answers only to localhost names (Host header refused)" });
      return;
    }
    if (gate && !(await gate(req, res))) return;
    let path: string;
    try {
      path = new URL(req.url ?? "/", "http://localhost").pathname;
      decodeURIComponent(path);
    } catch {
      sendJson(res, 400, { error: "malformed URL (bad %-escape)" });
      return;
    }
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
  const { address, shownHost } = await listenOn(server, host, port);
  checkHost = isLoopbackAddress(address.address);
  const exposure = exposureWarning(Boolean(web?.tls), Boolean(web?.users.size));
  if (!checkHost && exposure) {
    log.warn(
      { listen, address: address.address },
      `listening beyond loopback on ${shownHost}:${address.port} with ${exposure}. Listen on 127.0.0.1, or set webConfig (TLS and basic auth, docs/fleet.md) (docs/security.md)`,
    );
  }
  return {
    url: `${web?.tls ? "https" : "http"}://${shownHost}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Binds a node:http(s) server; resolves with the bound address and the host as a URL shows it. */
export async function listenOn(
  server: Server,
  host: string,
  port: number,
): Promise<{ address: AddressInfo; shownHost: string }> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  return { address, shownHost: address.family === "IPv6" ? `[${address.address}]` : address.address };
}
