/**
 * The stall guard: a reverse proxy in front of one Ollama target. Bytes pass through unchanged and
 * as they come (no buffering of answers; back-pressure from the client reaches Ollama); a client
 * that goes away aborts its upstream request. On the way it learns what the watchdog cannot see
 * from outside — which model each request waits on and when its tokens arrive — and, while the
 * target heals, holds new requests instead of letting them hang (see docs/proxy.md).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { type Clock, systemClock } from "../core/clock.js";
import type { Logger } from "../core/log.js";
import { listenOn, parseListen } from "../server/http.js";
import {
  type BodyFormat,
  bodyFormat,
  classifyEndpoint,
  type Endpoint,
  modelOf,
  pathOf,
} from "./endpoints.js";
import { sendError, streamErrorChunk } from "./errors.js";
import { StreamMeter } from "./meter.js";
import { type OpenRequest, type ProxyMetricsSink, type RejectReason, Traffic } from "./traffic.js";
import { Upstream, type UpstreamCall, type UpstreamHandlers, type UpstreamHeaders } from "./upstream.js";

/** What the watchdog's verdict means for a new request to one model. */
export type GateDecision =
  | { kind: "forward" }
  | { kind: "hold"; why: string }
  | { kind: "reject"; reason: Extract<RejectReason, "exhausted" | "down">; why: string; retryAfterS: number };

/** The watchdog's side: the current verdict per model, and a signal when it may have changed. */
export interface Gate {
  decide(model: string): GateDecision;
  /** Resolves at the next verdict (the next tick). */
  changed(): Promise<void>;
}

export interface StallGuardOptions {
  target: string;
  /** Ollama's base URL (the target's `url`). */
  upstream: string;
  /** HOST:PORT to listen on. */
  listen: string;
  /** How long a new request waits while its model is frozen or recovering. */
  holdForMs: number;
  /** Ends a stream that got no chunk for this long after its first one; null = never. */
  maxTokenGapMs: number | null;
  /** Largest request body read to learn the model (generation, embeddings, model management). */
  maxBodyBytes?: number;
  /** All request bodies held in memory at once (reading, held, kept for a replay). */
  maxBufferedBytes?: number;
  /** A request body that sends nothing for this long is answered 408. */
  bodyIdleMs?: number;
  /** Connecting to Ollama: deadline. */
  connectTimeoutMs?: number;
  maxConnections?: number;
  gate?: Gate;
  metrics?: ProxyMetricsSink;
  clock?: Clock;
  log: Logger;
}

export const PROXY_DEFAULTS = {
  maxBodyBytes: 64 * 1024 * 1024,
  maxBufferedBytes: 512 * 1024 * 1024,
  bodyIdleMs: 30_000,
  connectTimeoutMs: 5_000,
  maxConnections: 10_000,
};

/** Headers that describe one connection, not the message (RFC 9110 §7.6.1): never forwarded. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "expect",
]);

function forwardable(
  headers: IncomingMessage["headers"] | UpstreamHeaders,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const named = new Set(
    String(headers.connection ?? "")
      .split(",")
      .map((token) => token.trim().toLowerCase()),
  );
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name)) continue;
    out[name] = value;
  }
  return out;
}

const NOTHING: Buffer = Buffer.alloc(0);

export class StallGuard {
  readonly traffic = new Traffic();
  private readonly clock: Clock;
  private readonly upstream: URL;
  private readonly limits: typeof PROXY_DEFAULTS;
  private bufferedBytes = 0;
  private closing = false;

  private constructor(
    private readonly options: StallGuardOptions,
    private readonly server: Server,
    private readonly ollama: Upstream,
    readonly url: string,
  ) {
    this.clock = options.clock ?? systemClock;
    this.upstream = new URL(options.upstream);
    this.limits = {
      maxBodyBytes: options.maxBodyBytes ?? PROXY_DEFAULTS.maxBodyBytes,
      maxBufferedBytes: options.maxBufferedBytes ?? PROXY_DEFAULTS.maxBufferedBytes,
      bodyIdleMs: options.bodyIdleMs ?? PROXY_DEFAULTS.bodyIdleMs,
      connectTimeoutMs: options.connectTimeoutMs ?? PROXY_DEFAULTS.connectTimeoutMs,
      maxConnections: options.maxConnections ?? PROXY_DEFAULTS.maxConnections,
    };
  }

  static async start(options: StallGuardOptions): Promise<StallGuard> {
    const server = createServer({ keepAliveTimeout: 5_000, connectionsCheckingInterval: 5_000 });
    // Blob uploads and model loads legitimately take minutes: no whole-request deadline; a client
    // that sends no complete header block in 30 s is dropped, an idle keep-alive one after 5 s.
    server.requestTimeout = 0;
    server.headersTimeout = 30_000;
    server.timeout = 0;
    const { host, port } = parseListen(options.listen);
    const ollama = await Upstream.open(new URL(options.upstream).origin, {
      connectTimeoutMs: options.connectTimeoutMs ?? PROXY_DEFAULTS.connectTimeoutMs,
    });
    const { address, shownHost } = await listenOn(server, host, port);
    const guard = new StallGuard(options, server, ollama, `http://${shownHost}:${address.port}`);
    server.maxConnections = guard.limits.maxConnections;
    server.on("request", (req: IncomingMessage, res: ServerResponse) => guard.handle(req, res));
    server.on("clientError", (error: NodeJS.ErrnoException, socket: Socket) => {
      if (socket.writable && error.code !== "ECONNRESET") {
        socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
      }
      socket.destroy();
    });
    return guard;
  }

  /**
   * Stops listening at once (held requests are answered 503); open answers get up to `graceMs` to
   * end, then every connection is closed (their clients see it close, as when Ollama stops).
   */
  async close(graceMs = 0): Promise<void> {
    this.closing = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    if (graceMs > 0 && this.traffic.size > 0) {
      const deadline = this.clock.monotonic() + graceMs;
      while (this.traffic.size > 0 && this.clock.monotonic() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        this.server.closeIdleConnections();
      }
    }
    this.server.closeAllConnections();
    await this.ollama.close();
    await closed;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = pathOf(req.url);
    const endpoint = classifyEndpoint(req.method, path);
    const exchange = new Exchange(this, req, res, path, endpoint);
    exchange.run().catch((error: unknown) => {
      this.options.log.error({ err: error, path }, "stall guard: exchange failed");
      exchange.abort();
    });
  }

  // --- what an Exchange needs from its guard ---

  get opts(): StallGuardOptions {
    return this.options;
  }
  get caps(): typeof PROXY_DEFAULTS {
    return this.limits;
  }
  get isClosing(): boolean {
    return this.closing;
  }
  now(): number {
    return this.clock.monotonic();
  }
  reserve(bytes: number): boolean {
    if (this.bufferedBytes + bytes > this.limits.maxBufferedBytes) return false;
    this.bufferedBytes += bytes;
    return true;
  }
  release(bytes: number): void {
    this.bufferedBytes -= bytes;
  }

  openUpstream(req: IncomingMessage, body: Buffer | undefined, on: UpstreamHandlers): UpstreamCall {
    const headers = forwardable(req.headers);
    // Ollama refuses unknown Host headers when it listens on loopback (allowedHostsMiddleware in
    // server/routes.go): speak to it as its own client does, like nginx's default proxy_set_header.
    headers.host = this.upstream.host;
    const method = req.method ?? "GET";
    if (body !== undefined) headers["content-length"] = String(body.length);
    return this.ollama.call(
      {
        method,
        path: `${this.upstream.pathname.replace(/\/$/, "")}${req.url ?? "/"}`,
        headers,
        body: body ?? (method === "GET" || method === "HEAD" ? null : req),
      },
      on,
    );
  }
}

/** One client request, from its first byte to the end of its answer (possibly across a replay). */
class Exchange {
  private readonly started: number;
  private model = "";
  private body: Buffer | undefined;
  private reserved = 0;
  private open: OpenRequest | undefined;
  private attempts = 0;
  private upstream: UpstreamCall | undefined;
  /** The status of Ollama's answer once its head arrived. */
  private upstreamStatus: number | undefined;
  private meter: StreamMeter | undefined;
  private format: BodyFormat = "other";
  /** The client has received (been sent) part of the answer: from here on nothing can be replayed. */
  private committed = false;
  private finished = false;
  private gapTimer: NodeJS.Timeout | undefined;
  private clientSlow = false;
  private corked = false;
  private responseHeaders: UpstreamHeaders | undefined;
  private holdWake: (() => void) | undefined;

  constructor(
    private readonly guard: StallGuard,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly path: string,
    private readonly endpoint: Endpoint,
  ) {
    this.started = guard.now();
    res.on("close", () => {
      if (this.finished) return;
      // The client went away before its answer ended: stop Ollama's work for it.
      this.holdWake?.();
      this.abortUpstream();
      this.finish("499");
    });
  }

  async run(): Promise<void> {
    if (this.endpoint.readsModel) {
      const body = await this.readBody();
      if (body === undefined) return;
      this.body = body;
      this.model = modelOf(body);
    }
    this.open = this.guard.traffic.begin(
      this.model,
      this.endpoint.label,
      this.endpoint.generates,
      this.started,
    );
    this.guard.opts.metrics?.started(this.model);
    if (this.endpoint.inference && !(await this.passGate())) return;
    this.forward();
  }

  /** Ends everything at once (a bug or a shutdown): the client sees the connection close. */
  abort(): void {
    this.abortUpstream();
    if (!this.res.destroyed) this.res.destroy();
    this.finish("499");
  }

  /** The body, bounded in size and idle time; undefined when the request was answered already. */
  private readBody(): Promise<Buffer | undefined> {
    const { maxBodyBytes, bodyIdleMs } = this.guard.caps;
    const declared = Number(this.req.headers["content-length"] ?? Number.NaN);
    if (declared > maxBodyBytes) {
      this.reject(413, "body-too-large", `request body larger than ${maxBodyBytes} bytes`, { close: true });
      return Promise.resolve(undefined);
    }
    return new Promise((resolve) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const stop = (answer: () => void) => {
        clearTimeout(idle);
        this.req.removeAllListeners("data");
        this.req.removeAllListeners("end");
        answer();
        resolve(undefined);
      };
      const idle = setTimeout(
        () =>
          stop(() =>
            this.reject(408, "overloaded", `request body idle for ${bodyIdleMs} ms`, {
              close: true,
              count: false,
            }),
          ),
        bodyIdleMs,
      );
      this.req.on("data", (chunk: Buffer) => {
        if (this.finished) return stop(() => undefined);
        idle.refresh();
        size += chunk.length;
        if (size > maxBodyBytes) {
          return stop(() =>
            this.reject(413, "body-too-large", `request body larger than ${maxBodyBytes} bytes`, {
              close: true,
            }),
          );
        }
        if (!this.guard.reserve(chunk.length)) {
          return stop(() =>
            this.reject(503, "overloaded", "the stall guard holds too many request bodies; retry shortly", {
              close: true,
              retryAfterS: 1,
            }),
          );
        }
        this.reserved += chunk.length;
        chunks.push(chunk);
      });
      this.req.on("end", () => {
        clearTimeout(idle);
        resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
      });
      this.req.on("error", () => {
        clearTimeout(idle);
        resolve(undefined);
      });
    });
  }

  /** Waits while the model's target heals; false when the request was answered (or the client left). */
  private async passGate(): Promise<boolean> {
    const gate = this.guard.opts.gate;
    if (!gate) return true;
    let decision = gate.decide(this.model);
    if (decision.kind === "forward") return true;
    const deadline = this.guard.now() + this.guard.opts.holdForMs;
    let held = false;
    while (decision.kind === "hold") {
      const left = deadline - this.guard.now();
      if (left <= 0 || this.guard.isClosing) {
        this.reject(503, "hold-timeout", `${decision.why}; still not healthy after holding this request`, {
          retryAfterS: Math.max(1, this.guard.opts.holdForMs / 1000),
        });
        return false;
      }
      if (!held) {
        held = true;
        this.guard.opts.metrics?.held(this.model);
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        gate.changed(),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, left);
          this.holdWake = resolve;
        }),
      ]);
      clearTimeout(timer);
      this.holdWake = undefined;
      if (this.finished) return false;
      decision = gate.decide(this.model);
    }
    if (decision.kind === "reject") {
      this.reject(503, decision.reason, decision.why, { retryAfterS: decision.retryAfterS });
      return false;
    }
    return true;
  }

  private forward(): void {
    if (this.finished) return;
    this.attempts++;
    if (this.open) this.open.forwardedMono = this.guard.now();
    let status = 502;
    const current = () => !this.finished && call === this.upstream;
    const call: UpstreamCall = this.guard.openUpstream(this.req, this.body, {
      response: (code, headers) => {
        if (!current()) return;
        status = code;
        this.upstreamStatus = code;
        this.responseHeaders = headers;
        this.format = bodyFormat(headers["content-type"] as string | undefined);
        this.meter = new StreamMeter(this.format);
      },
      data: (chunk) => {
        if (!current()) return;
        if (!this.committed) {
          if (this.replayable(status, chunk)) return this.replay();
          this.commit(status);
        }
        const now = this.guard.now();
        const count = (this.meter as StreamMeter).feed(chunk);
        if (this.open) this.guard.traffic.chunk(this.open, count, now);
        this.gapTimer?.refresh();
        this.corkUntilNextTurn();
        if (!this.res.write(chunk)) {
          // A slow client slows Ollama down (TCP back-pressure), and is never taken for a stall.
          this.clientSlow = true;
          call.pause();
          this.res.once("drain", () => {
            this.clientSlow = false;
            this.gapTimer?.refresh();
            call.resume();
          });
        }
      },
      end: () => {
        if (!current()) return;
        if (!this.committed) {
          if (this.replayable(status, NOTHING)) return this.replay();
          this.commit(status);
        }
        this.meter?.end();
        this.res.end();
        this.finish(String(status));
      },
      error: (error, responded) => {
        if (!current()) return;
        if (responded) {
          // Ollama's side broke mid-answer (a crash, a restart): the client sees the same break.
          if (!this.committed && this.replayable(500, NOTHING)) return this.replay();
          this.res.destroy();
          this.finish(this.committed ? String(status) : "502");
        } else {
          this.onUpstreamError(error);
        }
      },
    });
    this.upstream = call;
  }

  /**
   * Chunks that arrive in one turn of the event loop (and the answer's end, when it comes with
   * them) leave in one write: `res.end()` flushes what is corked, else the next turn does.
   */
  private corkUntilNextTurn(): void {
    if (this.corked) return;
    this.corked = true;
    this.res.cork();
    setImmediate(() => {
      this.corked = false;
      if (!this.res.writableEnded) this.res.uncork();
    });
  }

  private commit(status: number): void {
    this.committed = true;
    this.res.writeHead(status, forwardable(this.responseHeaders ?? {}));
    const gap = this.guard.opts.maxTokenGapMs;
    if (gap !== null && this.endpoint.generates && this.format !== "other") {
      this.gapTimer = setTimeout(() => this.endStalledStream(gap), gap);
    }
  }

  private onUpstreamError(error: NodeJS.ErrnoException): void {
    if (this.committed) {
      this.res.destroy();
      this.finish(String(this.upstreamStatus ?? 502));
      return;
    }
    if (this.replayable(502, NOTHING)) {
      this.replay();
      return;
    }
    const why = error.code ? `${error.code}: ${error.message}` : error.message;
    this.reject(502, "upstream-unreachable", `Ollama at ${this.guard.opts.upstream} did not answer (${why})`);
  }

  /**
   * A request whose runner died before it sent the client a byte is sent again once — but only when
   * the watchdog is healing that model (its verdict holds new requests): nothing reached the
   * client, and the failure is the one being healed, not a bad request.
   */
  private replayable(status: number, first: Buffer): boolean {
    if (this.attempts > 1 || !this.endpoint.inference || this.body === undefined) return false;
    const failed = status >= 500 || (status === 200 && this.format === "ndjson" && startsWithError(first));
    if (!failed) return false;
    return this.guard.opts.gate?.decide(this.model).kind === "hold";
  }

  private replay(): void {
    // Waiting again, not at Ollama: not demand on the runner until it is forwarded anew.
    if (this.open) this.open.forwardedMono = undefined;
    this.upstream?.abort();
    this.upstream = undefined;
    this.upstreamStatus = undefined;
    this.responseHeaders = undefined;
    this.guard.opts.metrics?.replayed(this.model);
    this.guard.opts.log.info(
      { model: this.model, endpoint: this.endpoint.label },
      "stall guard: replaying a request",
    );
    void this.passGate().then((pass) => {
      if (pass) this.forward();
    });
  }

  private endStalledStream(gapMs: number): void {
    if (this.finished) return;
    if (this.clientSlow) {
      this.gapTimer?.refresh();
      return;
    }
    const message = `no token for ${gapMs / 1000}s: ollama-watchdog ended this stream (proxy.maxTokenGap)`;
    this.abortUpstream();
    this.guard.opts.metrics?.rejected(this.model, "token-gap");
    this.res.end(streamErrorChunk(this.format, this.path, message));
    this.finish(String(this.upstreamStatus ?? 200));
  }

  private reject(
    status: number,
    reason: RejectReason,
    message: string,
    extra: { retryAfterS?: number; close?: boolean; count?: boolean } = {},
  ): void {
    if (this.finished || this.res.headersSent) return;
    if (extra.count !== false) this.guard.opts.metrics?.rejected(this.model, reason);
    sendError(this.res, this.path, status, message, extra);
    if (extra.close) this.res.once("finish", () => this.req.destroy());
    this.finish(String(status));
  }

  private abortUpstream(): void {
    clearTimeout(this.gapTimer);
    this.upstream?.abort();
  }

  /** Accounting, exactly once per exchange. */
  private finish(code: string): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.gapTimer);
    this.guard.release(this.reserved);
    this.reserved = 0;
    this.body = undefined;
    const open = this.open;
    if (!open) return;
    const now = this.guard.now();
    // A whole answer (not streamed) is a token too: the model is loaded and answering.
    if (code === "200" && this.format === "other" && this.endpoint.generates)
      this.guard.traffic.chunk(open, 1, now);
    this.guard.traffic.end(open, code);
    const ttft =
      this.endpoint.generates && this.format !== "other" && open.firstChunkMono !== undefined
        ? (open.firstChunkMono - this.started) / 1000
        : undefined;
    this.guard.opts.metrics?.finished({
      model: this.model,
      endpoint: this.endpoint.label,
      code,
      durationS: (now - this.started) / 1000,
      ...(ttft !== undefined ? { ttftS: ttft } : {}),
      counters: this.meter?.counters ?? {},
    });
  }
}

const ERROR_PREFIX = Buffer.from('{"error"');

function startsWithError(chunk: Buffer): boolean {
  return chunk.length >= ERROR_PREFIX.length && chunk.subarray(0, ERROR_PREFIX.length).equals(ERROR_PREFIX);
}
