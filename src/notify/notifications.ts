import type { EventEmitter } from "node:events";
import type { Clock } from "../core/clock.js";
import type { FetchFn } from "../core/http.js";
import { httpFetch } from "../core/http-client.js";
import type { Logger } from "../core/log.js";
import type { IncidentSummary } from "../core/types.js";
import type { IncidentRecorder } from "../incidents/recorder.js";
import { Counter, type Registry } from "../telemetry/prom.js";
import { type Announced, announcedAll, digestFor, newNotices, nextDigestWall } from "./announcer.js";
import { DELIVERY_RESULTS, type DeliveryPolicy, Outbox } from "./dispatcher.js";
import { testNotice } from "./message.js";
import type { Notice } from "./notice.js";
import { createReceiver } from "./receivers.js";
import type { NotifyConfig, ReceiverConfig } from "./schema.js";

export interface NotificationsOptions {
  config: NotifyConfig;
  /** Where the live page is served (links use notify.publicUrl when set). */
  listenUrl: string;
  clock: Clock;
  log: Logger;
  fetch?: FetchFn;
  env?: NodeJS.ProcessEnv;
  /** Where ollama_watchdog_notifications_total is registered (the daemon's /metrics). */
  registry?: Registry;
}

export interface ReceiverTestResult {
  receiver: string;
  kind: string;
  ok: boolean;
  ms?: number;
  error?: string;
}

export function policyOf(config: NotifyConfig): DeliveryPolicy {
  return {
    timeoutMs: config.timeout,
    attempts: config.retry.attempts,
    backoffMs: config.retry.backoff,
    maxBackoffMs: config.retry.maxBackoff,
    queueSize: config.queueSize,
    dedupWindowMs: config.dedupWindow,
    rateLimit: { max: config.rateLimit.max, windowMs: config.rateLimit.window },
  };
}

/**
 * Tells people what the watchdog saw and did: turns incident changes into notices and hands them
 * to each receiver's outbox. It only listens (the recorder's onChange, the loop's "tick"), so a
 * slow or broken receiver never holds up the loop.
 */
export class Notifications {
  private readonly outboxes: Array<{ outbox: Outbox; events: ReadonlySet<string> }>;
  private readonly announced = new Map<string, Announced>();
  private readonly baseUrl: string;
  private nextDigest: number | undefined;
  private readonly detach: Array<() => void> = [];

  constructor(private readonly options: NotificationsOptions) {
    const { config, log } = options;
    this.baseUrl = config.publicUrl ?? options.listenUrl;
    const counter = options.registry ? notificationsCounter(options.registry) : undefined;
    for (const r of config.receivers)
      for (const result of DELIVERY_RESULTS) counter?.inc({ receiver: r.name, result }, 0);
    const policy = policyOf(config);
    this.outboxes = config.receivers.map((receiverConfig: ReceiverConfig) => ({
      events: new Set(receiverConfig.events),
      outbox: new Outbox(createReceiver(receiverConfig, options.env), policy, {
        clock: options.clock,
        log: log.child({ component: "notify" }),
        fetch: options.fetch ?? httpFetch,
        count: (receiver, result) => counter?.inc({ receiver, result }),
      }),
    }));
    if (config.digest) this.nextDigest = nextDigestWall(config.digest.at, options.clock.now());
  }

  get receivers(): number {
    return this.outboxes.length;
  }

  /** Follows the daemon's incidents and ticks; what is already recorded counts as announced. */
  attach(incidents: Pick<IncidentRecorder, "list" | "get" | "onChange">, loopEvents: EventEmitter): this {
    for (const summary of incidents.list()) {
      const incident = incidents.get(summary.id);
      if (incident && !incident.finished) this.announced.set(incident.id, announcedAll(incident));
    }
    this.detach.push(
      incidents.onChange((summary) => {
        const incident = incidents.get(summary.id);
        if (!incident) return;
        const { notices, announced } = newNotices(incident, this.announced.get(incident.id), this.baseUrl);
        if (incident.finished) this.announced.delete(incident.id);
        else this.announced.set(incident.id, announced);
        for (const notice of notices) this.publish(notice);
      }),
    );
    const onTick = () => this.digestDue(incidents.list());
    loopEvents.on("tick", onTick);
    this.detach.push(() => loopEvents.off("tick", onTick));
    return this;
  }

  /** Sends the daily digest when its time has come (called after each tick). */
  digestDue(incidents: IncidentSummary[]): void {
    const digest = this.options.config.digest;
    if (!digest || this.nextDigest === undefined) return;
    const now = this.options.clock.now();
    if (now < this.nextDigest) return;
    this.nextDigest = nextDigestWall(digest.at, now);
    const notice = digestFor(incidents, now, this.baseUrl);
    if (notice) this.publish(notice);
  }

  publish(notice: Notice): void {
    for (const { outbox, events } of this.outboxes) if (events.has(notice.kind)) outbox.enqueue(notice);
  }

  /** `notify test`: one test message to every receiver, one attempt each, in parallel. */
  async sendTest(): Promise<ReceiverTestResult[]> {
    const notice = testNotice(this.options.clock.now(), this.baseUrl);
    return Promise.all(
      this.outboxes.map(async ({ outbox }) => {
        const result = await outbox.sendOnce(notice);
        const base = { receiver: outbox.receiver.name, kind: outbox.receiver.kind };
        return result.ok ? { ...base, ok: true, ms: result.ms } : { ...base, ok: false, error: result.error };
      }),
    );
  }

  /** Stops listening; gives queued messages until the deadline. */
  async stop(deadlineMs: number): Promise<void> {
    for (const off of this.detach.splice(0)) off();
    await Promise.all(this.outboxes.map(({ outbox }) => outbox.stop(deadlineMs)));
  }
}

function notificationsCounter(registry: Registry): Counter<"receiver" | "result"> {
  const name = "ollama_watchdog_notifications_total";
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Counter<"receiver" | "result">;
  return new Counter({
    name,
    help: "Notifications by receiver and result: sent, retried, failed, dropped, deduplicated, rate-limited.",
    labelNames: ["receiver", "result"],
    registers: [registry],
  });
}
