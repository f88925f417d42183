/**
 * The daemon's side of the stall guards: one per target with `proxy`, fed the target's verdict
 * after every tick, closed with the daemon. The loop itself only calls start/ticked/close.
 */
import type { TargetConfig } from "../config/schema.js";
import type { Clock } from "../core/clock.js";
import type { Logger } from "../core/log.js";
import type { ProxyTelemetry } from "../telemetry/proxy.js";
import { gateDecision, type RetryAfter, type TargetView } from "./gate.js";
import { type Gate, StallGuard } from "./server.js";
import type { ModelTraffic } from "./traffic.js";

export interface StallGuardsOptions {
  targets: readonly TargetConfig[];
  /** The target's latest verdict, read for every request that needs a runner. */
  view: (target: string) => TargetView;
  retryAfter: RetryAfter;
  metrics: ProxyTelemetry;
  clock: Clock;
  log: Logger;
}

export class StallGuards {
  private wake: (() => void) | undefined;
  private next: Promise<void>;

  private constructor(private readonly guards: Map<string, StallGuard>) {
    this.next = this.arm();
  }

  static async start(options: StallGuardsOptions): Promise<StallGuards> {
    const guards = new Map<string, StallGuard>();
    const self = new StallGuards(guards);
    try {
      for (const target of options.targets) {
        if (!target.proxy) continue;
        const gate: Gate = {
          decide: (model) => gateDecision(options.view(target.name), model, options.retryAfter),
          changed: () => self.next,
        };
        const guard = await StallGuard.start({
          target: target.name,
          upstream: target.url,
          listen: target.proxy.listen,
          holdForMs: target.proxy.holdFor,
          maxTokenGapMs: target.proxy.maxTokenGap,
          gate,
          metrics: options.metrics.sink(target.name),
          clock: options.clock,
          log: options.log.child({ component: "proxy", target: target.name }),
        });
        guards.set(target.name, guard);
        options.log.info(
          { target: target.name, url: guard.url, upstream: target.url },
          "stall guard listening",
        );
      }
    } catch (error) {
      await self.close(0);
      throw error;
    }
    return self;
  }

  /** A new verdict is out: held requests look again. */
  ticked(): void {
    const wake = this.wake;
    this.next = this.arm();
    wake?.();
  }

  url(target: string): string | undefined {
    return this.guards.get(target)?.url;
  }

  /** The proxy's evidence for one target (undefined: no proxy in front of it). */
  traffic(target: string): ModelTraffic[] | undefined {
    return this.guards.get(target)?.traffic.byModel();
  }

  /** Refuses new connections at once; open answers get up to `graceMs` to end. */
  async close(graceMs = 5_000): Promise<void> {
    const closing = [...this.guards.values()].map((guard) => guard.close(graceMs));
    this.ticked();
    await Promise.all(closing);
  }

  private arm(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.wake = resolve;
    });
  }
}
