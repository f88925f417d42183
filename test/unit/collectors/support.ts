import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { CollectorContext } from "../../../src/collectors/collector.js";
import { parseConfig } from "../../../src/config/load.js";
import { systemClock } from "../../../src/core/clock.js";
import { silentLogger } from "../../../src/core/log.js";

export const FIXTURES = fileURLToPath(new URL("../../fixtures/", import.meta.url));

/** A collector context over the defaults, with config overrides as a YAML-shaped document. */
export function testContext(
  options: {
    config?: Record<string, unknown>;
    procRoot?: string;
    journalctl?: string;
    signal?: AbortSignal;
  } = {},
): CollectorContext {
  const config = parseConfig(options.config ?? {}, {});
  const target = config.targets[0];
  if (!target) throw new Error("no target");
  return {
    target,
    config,
    clock: systemClock,
    fetch,
    procRoot: options.procRoot ?? "/nonexistent-proc",
    ...(options.journalctl ? { journalctl: options.journalctl } : {}),
    signal: options.signal ?? new AbortController().signal,
    log: silentLogger(),
  };
}

/** A scratch directory removed by the returned cleanup. */
export function scratchDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `owd-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A tiny real executable (a /bin/sh script), the way a fake nvidia-smi or journalctl is tested. */
export function writeExecutable(dir: string, name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

export interface TestServer {
  url: string;
  requests: Array<{ method: string; url: string; body: string }>;
  close(): Promise<void>;
}

/** A node:http server on an ephemeral port; close() also drops connections a hanging handler keeps. */
export async function startServer(
  handler: (request: IncomingMessage, response: ServerResponse, body: string) => void,
): Promise<TestServer> {
  const requests: TestServer["requests"] = [];
  const server = createServer((request, response) => {
    let body = "";
    request.setEncoding("utf8");
    request.on("data", (chunk: string) => {
      body += chunk;
    });
    request.on("end", () => {
      requests.push({ method: request.method ?? "", url: request.url ?? "", body });
      handler(request, response, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function json(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { "content-type": "application/json" });
  response.end(JSON.stringify(body));
}
