import { request } from "node:http";
import { connect } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { Snapshot } from "../../src/core/types.js";
import { apiRoutes } from "../../src/server/api-routes.js";
import { exposureWarning, type HttpServer, hostAllowed, startHttpServer } from "../../src/server/http.js";
import { capturingLogger } from "../incidents/helpers.js";

/** Issue #11 M7 (Host check, exposure warning) and L4 (malformed escapes) on the daemon's server. */
const servers: HttpServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

const snapshot: Snapshot = {
  version: "test",
  startedWall: 0,
  ticks: 0,
  intervalMs: 1000,
  targets: [],
  gpus: [],
};
const routes = apiRoutes({ snapshot: () => snapshot, healthy: () => ({ ok: true, ticks: 1 }) });

async function start(listen: string) {
  const { log, lines } = capturingLogger();
  const server = await startHttpServer(listen, routes, log);
  servers.push(server);
  return { server, lines, port: Number(new URL(server.url).port) };
}

/** A raw request: the Host header exactly as given (fetch would set its own). */
function get(port: number, path: string, host?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = host === undefined ? {} : { host };
    const req = request(
      { host: "127.0.0.1", port, path, headers, setHost: host === undefined ? false : undefined },
      (res) => {
        let body = "";
        res.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

describe("Host header on a loopback listen (DNS rebinding)", () => {
  it.each(["localhost", "127.0.0.1", "127.1.2.3", "[::1]", "LOCALHOST", "app.localhost"])(
    "accepts %s",
    async (name) => {
      const { port } = await start("127.0.0.1:0");
      expect((await get(port, "/healthz", `${name}:${port}`)).status).toBe(200);
      expect((await get(port, "/healthz", name)).status).toBe(200);
    },
  );

  it.each([
    "evil.example",
    "attacker.example:80",
    "127.0.0.1.evil.example",
    "10.0.0.1",
    "localhost.evil.example",
  ])("refuses %s with 421 and no data", async (host) => {
    const { port } = await start("127.0.0.1:0");
    const answer = await get(port, "/api/status", host);
    expect(answer.status).toBe(421);
    expect(answer.body).not.toContain("targets");
  });

  it("accepts the host name the listen address names (e.g. one /etc/hosts maps to 127.0.0.1)", () => {
    expect(hostAllowed("watchdog.internal:11464", "watchdog.internal")).toBe(true);
    expect(hostAllowed("WATCHDOG.internal", "watchdog.internal")).toBe(true);
    expect(hostAllowed("other.internal", "watchdog.internal")).toBe(false);
    expect(hostAllowed("", "127.0.0.1")).toBe(false);
  });

  it("serves an HTTP/1.0 request without Host (a health checker's); HTTP/1.1 without it is refused", async () => {
    const { port } = await start("127.0.0.1:0");
    const raw = (request: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = connect(port, "127.0.0.1", () => socket.end(request));
        let text = "";
        socket.setEncoding("utf8").on("data", (chunk: string) => (text += chunk));
        socket.on("end", () => resolve(text.split("\r\n")[0] ?? ""));
        socket.on("error", reject);
      });
    expect(await raw("GET /healthz HTTP/1.0\r\n\r\n")).toMatch(/^HTTP\/1\.1 200 /);
    expect(await raw("GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")).toMatch(/^HTTP\/1\.1 400 /);
  });
});

describe("listening beyond loopback", () => {
  it("warns loudly at start, and does not check Host (names are unknown)", async () => {
    const { port, lines } = await start("0.0.0.0:0");
    const warning = lines.find((l) => l.level === 40 && /beyond loopback/.test(String(l.msg)));
    expect(warning?.msg).toMatch(/no TLS and no authentication/);
    expect((await get(port, "/healthz", "watchdog.lan")).status).toBe(200);
  });

  it("names the risk of what is missing", () => {
    expect(exposureWarning(false, false)).toMatch(/^no TLS and no authentication: anyone who can reach/);
    expect(exposureWarning(true, false)).toMatch(/^no authentication: anyone who can reach/);
    expect(exposureWarning(false, true)).toMatch(
      /^no TLS: the password and every answer cross the network in clear text/,
    );
    expect(exposureWarning(true, true)).toBeUndefined();
  });

  it("says nothing on loopback", async () => {
    const { lines } = await start("127.0.0.1:0");
    expect(lines.filter((l) => (l.level as number) >= 40)).toEqual([]);
  });
});

describe("malformed URLs (L4)", () => {
  it.each(["/targets/%zz/health", "/targets/%E0%A4%A/health", "/api/incidents/%"])(
    "%s → 400, no stack trace",
    async (path) => {
      const { port, lines } = await start("127.0.0.1:0");
      const answer = await get(port, path, `127.0.0.1:${port}`);
      expect(answer.status).toBe(400);
      expect(answer.body).toMatch(/malformed/);
      expect(answer.body).not.toMatch(/\bat \w/);
      expect(lines.filter((l) => (l.level as number) >= 50)).toEqual([]);
    },
  );
});
