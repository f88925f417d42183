import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { silentLogger } from "../../src/core/log.js";
import { StallGuard, type StallGuardOptions } from "../../src/proxy/server.js";
import type { FinishedRequest, ProxyMetricsSink, RejectReason } from "../../src/proxy/traffic.js";

const guards: StallGuard[] = [];
const servers: Server[] = [];

/** A stall guard on an ephemeral loopback port; closeAll() (afterEach) ends it. */
export async function startGuard(
  upstream: string,
  options: Partial<StallGuardOptions> = {},
): Promise<StallGuard> {
  const guard = await StallGuard.start({
    target: "default",
    upstream,
    listen: "127.0.0.1:0",
    holdForMs: 5_000,
    maxTokenGapMs: null,
    log: silentLogger(),
    ...options,
  });
  guards.push(guard);
  return guard;
}

/** A plain upstream of the test's own (where the simulator has no such endpoint, or to script bytes). */
export async function startUpstream(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<string> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

export async function closeAll(): Promise<void> {
  await Promise.all(guards.splice(0).map((guard) => guard.close()));
  await Promise.all(
    servers.splice(0).map(
      (server) =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    ),
  );
}

/** Records what a stall guard reports, for assertions. */
export class RecordingSink implements ProxyMetricsSink {
  readonly inFlight = new Map<string, number>();
  readonly finishedRequests: FinishedRequest[] = [];
  readonly heldModels: string[] = [];
  readonly replayedModels: string[] = [];
  readonly rejections: { model: string; reason: RejectReason }[] = [];
  started(model: string): void {
    this.inFlight.set(model, (this.inFlight.get(model) ?? 0) + 1);
  }
  finished(r: FinishedRequest): void {
    this.inFlight.set(r.model, (this.inFlight.get(r.model) ?? 0) - 1);
    this.finishedRequests.push(r);
  }
  held(model: string): void {
    this.heldModels.push(model);
  }
  replayed(model: string): void {
    this.replayedModels.push(model);
  }
  rejected(model: string, reason: RejectReason): void {
    this.rejections.push({ model, reason });
  }
}

export interface RawAnswer {
  status: number;
  headers: IncomingMessage["headers"];
  body: Buffer;
}

/** One request with node:http, the whole answer as bytes. */
export function raw(
  url: string,
  options: { method?: string; path?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const target = new URL(options.path ?? "/", url);
    const req = request(
      target,
      { method: options.method ?? "GET", headers: options.headers ?? {} },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(options.body);
  });
}

/** Drops the fields that measure time (they differ between two runs of the same request). */
export function withoutTimings<T>(value: T): T {
  return JSON.parse(
    JSON.stringify(value, (key, v) =>
      /duration$|^created(_at)?$|^expires_at$|^id$|^system_fingerprint$/.test(key) ? undefined : v,
    ),
  ) as T;
}
