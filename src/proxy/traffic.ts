/**
 * The requests the stall guard has open right now, per model: what the detector reads as demand
 * (requests waiting for tokens) and progress (tokens streamed), and what the metrics count.
 */
import type { ModelTraffic } from "../core/types.js";
import type { TokenCounters } from "./meter.js";

export type { ModelTraffic };

export interface OpenRequest {
  readonly id: number;
  readonly model: string;
  readonly endpoint: string;
  readonly generates: boolean;
  readonly startedMono: number;
  /** Forwarded to Ollama (not held, not reading its body). */
  forwardedMono?: number;
  firstChunkMono?: number;
  lastChunkMono?: number;
  chunks: number;
}

/** One finished request, as the metrics record it. */
export interface FinishedRequest {
  model: string;
  endpoint: string;
  /** The HTTP status the client got, or "499" when it went away before the answer ended. */
  code: string;
  durationS: number;
  /** Streamed answers of generating endpoints only: time to the first chunk. */
  ttftS?: number;
  counters: TokenCounters;
}

/** Where the stall guard reports what it did (the target label is the sink's business). */
export interface ProxyMetricsSink {
  started(model: string): void;
  finished(request: FinishedRequest): void;
  held(model: string): void;
  replayed(model: string): void;
  rejected(model: string, reason: RejectReason): void;
}

export const REJECT_REASONS = [
  "hold-timeout",
  "exhausted",
  "down",
  "upstream-unreachable",
  "body-too-large",
  "overloaded",
  "token-gap",
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

const MAX_MODELS = 256;

interface ModelHistory {
  lastChunkMono?: number;
  chunks: number;
  requests: number;
  failed: number;
  lastTtftMs?: number;
}

export class Traffic {
  private readonly open = new Set<OpenRequest>();
  private readonly history = new Map<string, ModelHistory>();
  private nextId = 1;

  begin(model: string, endpoint: string, generates: boolean, startedMono: number): OpenRequest {
    const request: OpenRequest = { id: this.nextId++, model, endpoint, generates, startedMono, chunks: 0 };
    this.open.add(request);
    return request;
  }

  chunk(request: OpenRequest, count: number, mono: number): void {
    if (count <= 0) return;
    request.chunks += count;
    request.firstChunkMono ??= mono;
    request.lastChunkMono = mono;
    if (!request.generates) return;
    const seen = this.historyOf(request.model);
    seen.chunks += count;
    seen.lastChunkMono = mono;
  }

  /** `code`: the status the client got ("499": it left); a generating request is counted. */
  end(request: OpenRequest, code?: string): void {
    this.open.delete(request);
    if (!request.generates || code === undefined || request.forwardedMono === undefined) return;
    const seen = this.historyOf(request.model);
    seen.requests++;
    if (code !== "499" && Number(code) >= 400) seen.failed++;
    if (request.firstChunkMono !== undefined)
      seen.lastTtftMs = request.firstChunkMono - request.forwardedMono;
  }

  private historyOf(model: string): ModelHistory {
    let seen = this.history.get(model);
    if (!seen) {
      // Only models Ollama was asked to generate with get here, but keep it bounded all the same.
      if (this.history.size >= MAX_MODELS) this.history.delete(this.history.keys().next().value as string);
      seen = { chunks: 0, requests: 0, failed: 0 };
      this.history.set(model, seen);
    }
    return seen;
  }

  get size(): number {
    return this.open.size;
  }

  requests(): OpenRequest[] {
    return [...this.open];
  }

  /** Per model: generating requests in flight and the chunks they streamed. */
  byModel(): ModelTraffic[] {
    const models = new Map<string, ModelTraffic>();
    for (const [model, seen] of this.history) {
      const { chunks, requests, failed } = seen;
      const entry: ModelTraffic = { model, inFlight: 0, waiting: 0, chunks, requests, failed };
      if (seen.lastChunkMono !== undefined) entry.lastChunkMono = seen.lastChunkMono;
      if (seen.lastTtftMs !== undefined) entry.lastTtftMs = seen.lastTtftMs;
      models.set(model, entry);
    }
    for (const request of this.open) {
      if (!request.generates || request.forwardedMono === undefined) continue;
      let entry = models.get(request.model);
      if (!entry) {
        entry = { model: request.model, inFlight: 0, waiting: 0, chunks: 0, requests: 0, failed: 0 };
        models.set(request.model, entry);
      }
      entry.inFlight++;
      const quietSince = request.lastChunkMono ?? request.forwardedMono;
      entry.quietSinceMono = Math.min(entry.quietSinceMono ?? quietSince, quietSince);
      if (request.firstChunkMono === undefined) {
        entry.waiting++;
        entry.oldestWaitingMono = Math.min(
          entry.oldestWaitingMono ?? request.forwardedMono,
          request.forwardedMono,
        );
      }
    }
    return [...models.values()];
  }
}
