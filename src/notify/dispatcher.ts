import type { Clock } from "../core/clock.js";
import type { FetchFn } from "../core/http.js";
import type { Logger } from "../core/log.js";
import type { ConfiguredReceiver } from "./kind.js";
import { DeliveryError, type Notice } from "./notice.js";
import { redact } from "./secret.js";

/** Outcomes counted in ollama_watchdog_notifications_total{receiver,result}. */
export const DELIVERY_RESULTS = [
  "sent",
  "retried",
  "failed",
  "dropped",
  "deduplicated",
  "rate-limited",
] as const;
export type DeliveryResult = (typeof DELIVERY_RESULTS)[number];

export interface DeliveryPolicy {
  timeoutMs: number;
  attempts: number;
  backoffMs: number;
  maxBackoffMs: number;
  queueSize: number;
  dedupWindowMs: number;
  rateLimit: { max: number; windowMs: number };
}

export interface DispatcherDeps {
  clock: Clock;
  log: Logger;
  fetch: FetchFn;
  count: (receiver: string, result: DeliveryResult) => void;
}

/**
 * One receiver's outbox: `enqueue` returns at once (the loop never waits on a receiver); a
 * background drain sends in order, one at a time, each attempt under a deadline, retrying with
 * exponential back-off. A full queue drops its oldest message; the same message within the dedup
 * window is sent once; beyond the rate limit messages are dropped. Every outcome is counted and
 * logged without the receiver's secrets.
 */
export class Outbox {
  private readonly queue: Notice[] = [];
  private readonly recent = new Map<string, number>();
  private readonly sentAt: number[] = [];
  private draining: Promise<void> | undefined;
  private readonly stopping = new AbortController();

  constructor(
    readonly receiver: ConfiguredReceiver,
    private readonly policy: DeliveryPolicy,
    private readonly deps: DispatcherDeps,
  ) {}

  get pending(): number {
    return this.queue.length;
  }

  enqueue(notice: Notice): void {
    if (this.stopping.signal.aborted) return;
    const now = this.deps.clock.monotonic();
    const key = `${notice.kind}\u0000${notice.target ?? ""}\u0000${notice.title}`;
    for (const [k, at] of this.recent) if (now - at >= this.policy.dedupWindowMs) this.recent.delete(k);
    if (this.recent.has(key)) {
      this.outcome("deduplicated", notice);
      return;
    }
    while (this.sentAt.length && now - (this.sentAt[0] ?? 0) >= this.policy.rateLimit.windowMs)
      this.sentAt.shift();
    if (this.sentAt.length >= this.policy.rateLimit.max) {
      this.outcome("rate-limited", notice);
      return;
    }
    this.recent.set(key, now);
    this.sentAt.push(now);
    this.queue.push(notice);
    while (this.queue.length > this.policy.queueSize) {
      const dropped = this.queue.shift();
      if (dropped) this.outcome("dropped", dropped);
    }
    this.draining ??= this.drain().finally(() => {
      this.draining = undefined;
    });
  }

  /** Sends what is queued until the deadline, then aborts the rest. */
  async stop(deadlineMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.draining, new Promise((resolve) => (timer = setTimeout(resolve, deadlineMs)))]);
    clearTimeout(timer);
    this.stopping.abort();
    await this.draining;
  }

  /** One attempt, without queue or retries (`notify test`). */
  async sendOnce(notice: Notice): Promise<{ ok: true; ms: number } | { ok: false; error: string }> {
    const started = performance.now();
    try {
      await this.attempt(notice);
      return { ok: true, ms: performance.now() - started };
    } catch (error) {
      return { ok: false, error: this.describe(error) };
    }
  }

  private async drain(): Promise<void> {
    for (let notice = this.queue.shift(); notice; notice = this.queue.shift()) {
      if (this.stopping.signal.aborted) {
        this.outcome("dropped", notice);
        continue;
      }
      await this.deliver(notice);
    }
  }

  private async deliver(notice: Notice): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.attempt(notice);
        this.outcome("sent", notice, { attempt });
        return;
      } catch (error) {
        const reason = this.describe(error);
        const retry = !(error instanceof DeliveryError) || error.retry;
        if (!retry || attempt >= this.policy.attempts || this.stopping.signal.aborted) {
          this.outcome("failed", notice, { attempt, error: reason });
          return;
        }
        const backoffMs = Math.min(this.policy.backoffMs * 2 ** (attempt - 1), this.policy.maxBackoffMs);
        this.outcome("retried", notice, { attempt, error: reason, backoffMs });
        await this.sleep(backoffMs);
      }
    }
  }

  private async attempt(notice: Notice): Promise<void> {
    const signal = AbortSignal.any([AbortSignal.timeout(this.policy.timeoutMs), this.stopping.signal]);
    await this.receiver.send(notice, { signal, timeoutMs: this.policy.timeoutMs, fetch: this.deps.fetch });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.stopping.signal.addEventListener("abort", done, { once: true });
    });
  }

  private describe(error: unknown): string {
    const message = error instanceof Error ? error.message : String(error);
    return redact(message, this.receiver.secrets);
  }

  private outcome(result: DeliveryResult, notice: Notice, extra: Record<string, unknown> = {}): void {
    this.deps.count(this.receiver.name, result);
    const fields = {
      receiver: this.receiver.name,
      kind: this.receiver.kind,
      event: notice.kind,
      target: notice.target,
      incident: notice.incident?.id,
      result,
      ...extra,
    };
    if (result === "sent") this.deps.log.info(fields, `notification sent to ${this.receiver.name}`);
    else if (result === "failed" || result === "dropped")
      this.deps.log.error(fields, `notification to ${this.receiver.name} ${result}`);
    else this.deps.log.warn(fields, `notification to ${this.receiver.name} ${result}`);
  }
}
