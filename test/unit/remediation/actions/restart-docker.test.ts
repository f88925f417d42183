import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { restartDocker } from "../../../../src/remediation/actions/restart-docker.js";

describe("restart-docker against a fake Engine API on a unix socket", () => {
  let dir: string;
  let socketPath: string;
  let server: Server;
  let requests: string[];
  let respond: (req: IncomingMessage, res: ServerResponse) => void;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), "docker-"));
    socketPath = join(dir, "docker.sock");
    requests = [];
    server = createServer((req, res) => {
      requests.push(`${req.method} ${req.url}`);
      respond(req, res);
    });
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  });
  afterEach(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  it("204 = restarted", async () => {
    respond = (_req, res) => res.writeHead(204).end();
    const run = await restartDocker({ socketPath, container: "ollama", timeoutMs: 5000 });
    expect(run).toMatchObject({ ok: true });
    expect(requests).toEqual(["POST /containers/ollama/restart?t=10"]);
  });

  it("404 = no such container, with the Engine's message", async () => {
    respond = (_req, res) =>
      res
        .writeHead(404, { "content-type": "application/json" })
        .end('{"message":"No such container: ollama"}');
    const run = await restartDocker({ socketPath, container: "ollama", timeoutMs: 5000 });
    expect(run.ok).toBe(false);
    expect(run.error).toMatch(/HTTP 404: No such container: ollama/);
  });

  it("a hanging Engine is cut at the deadline", async () => {
    respond = () => {};
    const run = await restartDocker({ socketPath, container: "ollama", timeoutMs: 150 });
    expect(run.ok).toBe(false);
    expect(run.error).toMatch(/timed out after 150ms/);
  });

  it("no daemon on the socket is a failure, not a throw", async () => {
    const run = await restartDocker({
      socketPath: join(dir, "missing.sock"),
      container: "ollama",
      timeoutMs: 1000,
    });
    expect(run.error).toMatch(/ENOENT/);
  });
});
