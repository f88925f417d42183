/**
 * Per-request metrics Ollama does not export itself, counted by the stall guard (src/proxy/), all
 * with `target` and `model`. Client-chosen model names become label values only up to a bound per
 * target, so a client cannot grow the registry without limit (docs/metrics.md).
 */

import type { FinishedRequest, ProxyMetricsSink, RejectReason } from "../proxy/traffic.js";
import { Counter, Gauge, Histogram, type Registry } from "./prom.js";

/** Whole-request durations (seconds): an embedding in ms, a long generation in minutes. */
export const REQUEST_DURATION_BUCKETS = [
  0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600,
];
/** Time to first token (seconds): a warm model in tens of ms, a cold load in tens of seconds. */
export const TTFT_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120];
/** Distinct model label values per target; later ones are counted as OTHER_MODEL. */
export const MAX_MODELS_PER_TARGET = 100;
export const OTHER_MODEL = "_other";
const MAX_LABEL_LENGTH = 128;

type Labels = "target" | "model";

export class ProxyTelemetry {
  private readonly requests: Counter<Labels | "endpoint" | "code">;
  private readonly inFlight: Gauge<Labels>;
  private readonly duration: Histogram<Labels>;
  private readonly ttft: Histogram<Labels>;
  private readonly generated: Counter<Labels>;
  private readonly prompt: Counter<Labels>;
  private readonly heldTotal: Counter<Labels>;
  private readonly replayedTotal: Counter<Labels>;
  private readonly rejectedTotal: Counter<Labels | "reason">;
  private readonly models = new Map<string, Set<string>>();

  constructor(registry: Registry) {
    const registers = [registry];
    this.requests = new Counter({
      name: "ollama_requests_total",
      help: "Client requests through the stall guard by endpoint and HTTP status (499: the client went away).",
      labelNames: ["target", "model", "endpoint", "code"],
      registers,
    });
    this.inFlight = new Gauge({
      name: "ollama_requests_in_flight",
      help: "Client requests through the stall guard not finished yet (held ones included).",
      labelNames: ["target", "model"],
      registers,
    });
    this.duration = new Histogram({
      name: "ollama_request_duration_seconds",
      help: "Client requests through the stall guard: from arrival to the end of the answer.",
      labelNames: ["target", "model"],
      buckets: REQUEST_DURATION_BUCKETS,
      registers,
    });
    this.ttft = new Histogram({
      name: "ollama_time_to_first_token_seconds",
      help: "Streamed generations through the stall guard: from arrival to the first streamed chunk.",
      labelNames: ["target", "model"],
      buckets: TTFT_BUCKETS,
      registers,
    });
    this.generated = new Counter({
      name: "ollama_tokens_generated_total",
      help: "Tokens generated, from Ollama's final counters (eval_count, usage.completion_tokens).",
      labelNames: ["target", "model"],
      registers,
    });
    this.prompt = new Counter({
      name: "ollama_prompt_tokens_total",
      help: "Prompt tokens evaluated, from Ollama's final counters (prompt_eval_count, usage.prompt_tokens).",
      labelNames: ["target", "model"],
      registers,
    });
    this.heldTotal = new Counter({
      name: "ollama_proxy_requests_held_total",
      help: "Requests the stall guard held while their model was frozen or recovering.",
      labelNames: ["target", "model"],
      registers,
    });
    this.replayedTotal = new Counter({
      name: "ollama_proxy_requests_replayed_total",
      help: "Requests sent to Ollama a second time because their runner failed before they got a byte.",
      labelNames: ["target", "model"],
      registers,
    });
    this.rejectedTotal = new Counter({
      name: "ollama_proxy_requests_rejected_total",
      help: "Requests the stall guard answered with an error itself, by reason.",
      labelNames: ["target", "model", "reason"],
      registers,
    });
  }

  /** The sink one target's stall guard reports to. */
  sink(target: string): ProxyMetricsSink {
    const labels = (model: string) => ({ target, model: this.modelLabel(target, model) });
    return {
      started: (model) => this.inFlight.inc(labels(model)),
      finished: (request: FinishedRequest) => {
        const l = labels(request.model);
        this.inFlight.dec(l);
        this.requests.inc({ ...l, endpoint: request.endpoint, code: request.code });
        if (request.durationS >= 0) this.duration.observe(l, request.durationS);
        if (request.ttftS !== undefined && request.ttftS >= 0) this.ttft.observe(l, request.ttftS);
        if (request.counters.generated !== undefined) this.generated.inc(l, request.counters.generated);
        if (request.counters.prompt !== undefined) this.prompt.inc(l, request.counters.prompt);
      },
      held: (model) => this.heldTotal.inc(labels(model)),
      replayed: (model) => this.replayedTotal.inc(labels(model)),
      rejected: (model, reason: RejectReason) => this.rejectedTotal.inc({ ...labels(model), reason }),
    };
  }

  private modelLabel(target: string, model: string): string {
    let seen = this.models.get(target);
    if (!seen) {
      seen = new Set();
      this.models.set(target, seen);
    }
    const value = model.length > MAX_LABEL_LENGTH ? model.slice(0, MAX_LABEL_LENGTH) : model;
    if (seen.has(value)) return value;
    if (seen.size >= MAX_MODELS_PER_TARGET) return OTHER_MODEL;
    seen.add(value);
    return value;
  }
}
